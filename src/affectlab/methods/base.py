"""BaseMethod: what every training method shares, and nothing a method's algorithm depends on.

A method subclasses it, builds its encoders/heads/losses from constructor arguments (injected by the
config), and implements ``training_loss`` (the loss of one training batch, logged under ``train/``),
``evaluation_step(batch, stage)`` and, if it accumulates metrics, ``evaluation_epoch_end(stage)``, both
shared by validation and test. BaseMethod supplies:

- optimisers and schedulers from config (``methods/optim.py``), validated when the model is built, a
  schedule's horizon taken from the trainer when the config leaves it out;
- the training step itself: with one optimiser Lightning's automatic optimisation steps it; with several,
  Lightning 2 requires manual optimisation, which happens here once so no method re-implements it;
- the check that the data module serves the modalities and tasks the method reads, and that its class
  count is the configured one (``data_class_names``);
- frozen parts in eval mode: a method lists them in ``frozen_modules()`` and they stay in eval (no dropout,
  no BatchNorm statistics updates) whatever mode Lightning or a caller puts the method in.

``MultimodalMethod`` adds what every method with one encoder per modality shares: the encoders, the
modality subset, freezing them, and ``represent`` (what downstream probes read).
"""

from __future__ import annotations

import functools

from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import nn

from affectlab.data.contract import mask_key
from affectlab.errors import ConfigError
from affectlab.methods.optim import (
    OptimizerInit,
    SchedulerInit,
    build_optimizers,
    parse_optimizers,
    parse_schedulers,
    scheduler_init_args,
)
from affectlab.plots import confusion_matrix_figure, log_figure

DEFAULT_OPTIMIZER: dict = {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1e-3, "weight_decay": 1e-2}}


class BaseMethod(LightningModule):
    """Shared plumbing of AffectLab's methods.

    Args:
        optimizer_init: one optimiser spec or a list (see ``affectlab.methods.optim``).
        lr_scheduler_init: one scheduler spec, a list, or None.
    """

    #: the metric that selects the best checkpoint, and whether lower or higher is better.
    monitor: str = "val/loss"
    monitor_mode: str = "min"

    def __init__(self, optimizer_init: OptimizerInit | None = None, lr_scheduler_init: SchedulerInit | None = None) -> None:
        super().__init__()
        self._optimizer_specs = parse_optimizers(optimizer_init or DEFAULT_OPTIMIZER)
        self._scheduler_pairs = parse_schedulers(lr_scheduler_init, self._optimizer_specs)
        self.automatic_optimization = len(self._optimizer_specs) == 1

    # -- logging ------------------------------------------------------------------------------------------------
    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        """Lightning's ``log``, reducing epoch-level values across processes unless told otherwise. Under DDP an
        epoch value logged without ``sync_dist`` holds rank 0's share only, and Lightning warns once per key
        (dozens of lines); torchmetrics values are already reduced, so reducing them again changes nothing."""
        per_step = kwargs.get("on_step") or (kwargs.get("on_step") is None and self.training)
        if not per_step or kwargs.get("on_epoch"):
            kwargs.setdefault("sync_dist", True)
        super().log(name, value, *args, **kwargs)

    def log_dict(self, dictionary: Any, *args: Any, **kwargs: Any) -> None:
        """Lightning's ``log_dict`` with ``log``'s ``sync_dist`` default (it passes its own False otherwise)."""
        per_step = kwargs.get("on_step") or (kwargs.get("on_step") is None and self.training)
        if not per_step or kwargs.get("on_epoch"):
            kwargs.setdefault("sync_dist", True)
        super().log_dict(dictionary, *args, **kwargs)

    # -- what the method reads from the batch contract -------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        """Batch entries this method reads; subclasses say which."""
        return []

    @property
    def tasks(self) -> list[str]:
        """Target tasks this method needs labels for."""
        return []

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        name = type(datamodule).__name__
        # A data module that declares nothing cannot vouch for the batch: defaulting to the method's own
        # needs would make the check pass by construction.
        for declared in ("modalities", "tasks"):
            if getattr(datamodule, declared, None) is None:
                raise ConfigError(
                    f"data module {name} declares no {declared}; the model needs {getattr(self, declared)} "
                    f"(give {name} a {declared} attribute listing what its batches hold)"
                )
        served = list(datamodule.modalities)
        missing = [m for m in self.modalities if m not in served]
        if missing:
            raise ConfigError(
                f"model reads modalities {missing} that data module {name} does not serve "
                f"(it serves {served}); set model.init_args.modalities to a subset of {served} or add them to "
                "data.init_args.modalities"
            )
        tasks = list(datamodule.tasks)
        missing = [t for t in self.tasks if t not in tasks]
        if missing:
            raise ConfigError(f"model needs labels for tasks {missing}; data module {name} provides {tasks}")

    def data_class_names(self, task: str, num_classes: int) -> list[str] | None:
        """The data module's class names of ``task`` (None when it names none), checked against the model's
        ``num_classes``: a mismatch is a ConfigError naming the key to change, not a shape error later."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        names = getattr(datamodule, "class_names", {}).get(task) if datamodule is not None else None
        if names is None:
            return None
        if len(names) != num_classes:
            raise ConfigError(
                f"model.init_args.num_classes is {num_classes} but the data's {task!r} task has "
                f"{len(names)} classes {list(names)}; set model.init_args.num_classes: {len(names)}"
            )
        return list(names)

    def deployed_model(self) -> nn.Module:
        """What export and predict run of a trained run: the method itself, unless it trains a model it holds
        (``AUTrainingMethod``: FixMatchAU and MiroAU deploy their AUModel, without MIRO's oracle)."""
        return self

    # -- frozen parts -------------------------------------------------------------------------------------------
    def frozen_modules(self) -> list[nn.Module]:
        """Parts that never train and must run in eval mode; none by default."""
        return []

    def train(self, mode: bool = True) -> BaseMethod:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Lightning restores each submodule's mode by attribute after validation, bypassing train(): re-freeze
        # before every step so a frozen part never updates BatchNorm statistics or applies dropout.
        for module in self.frozen_modules():
            module.eval()

    # -- training ---------------------------------------------------------------------------------------------
    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss")

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.training_loss(batch, batch_idx)
        if not self.automatic_optimization:
            self._manual_step(loss)
        return loss

    # -- evaluation: one step and one epoch end for validation and test alike -------------------------------
    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement evaluation_step")

    def evaluation_epoch_end(self, stage: str) -> None:
        """Compute and log what accumulated over the epoch of ``stage``; nothing by default."""

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.evaluation_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.evaluation_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.evaluation_epoch_end("test")

    def log_confusion(self, stage: str, confusion: Any, class_names: list[str]) -> None:
        """Log ``stage/num_samples`` and ``plots/<stage>_confusion.png`` from an epoch's confusion matrix
        metric, then reset it; nothing during Lightning's sanity check."""
        matrix = confusion.compute().cpu().numpy()
        confusion.reset()
        if self.trainer.sanity_checking:
            return
        self.log(f"{stage}/num_samples", float(matrix.sum()))
        title = f"{stage} confusion, epoch {self.current_epoch}"
        log_figure(self.trainer, confusion_matrix_figure(matrix, class_names, title), f"plots/{stage}_confusion.png")

    def _manual_step(self, loss: torch.Tensor) -> None:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for optimizer in optimizers:
            optimizer.zero_grad()
        self.manual_backward(loss)
        for optimizer in optimizers:
            optimizer.step()
        self._step_schedulers("step")

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:
            self._step_schedulers("epoch")

    def _step_schedulers(self, interval: str) -> None:
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval:
                continue
            counter = self.trainer.global_step if interval == "step" else self.current_epoch + 1
            if counter % config.frequency:
                continue
            metric = self.trainer.callback_metrics.get(config.monitor) if config.monitor else None
            self.lr_scheduler_step(config.scheduler, metric)

    def param_groups(self, parameters: list[torch.nn.Parameter]) -> list[dict]:
        """How one optimiser's parameters split into groups; a group's ``lr_scale`` multiplies its lr.
        One group by default; a method overrides this to give a part of itself another learning rate."""
        return [{"params": parameters}]

    def configure_optimizers(self) -> dict | list:
        optimizers = build_optimizers(self, self._optimizer_specs, self.param_groups)
        schedulers = []
        for index, spec in self._scheduler_pairs:
            trainer = self.trainer if self._trainer is not None else None
            scheduler = spec.cls(optimizers[index], **scheduler_init_args(spec, trainer))
            entry = {"scheduler": scheduler, "interval": spec.interval, "frequency": spec.frequency}
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) or spec.monitor:
                entry["monitor"] = spec.monitor or self.monitor
            schedulers.append(entry)
        return optimizers, schedulers

    @property
    def lr(self) -> float:
        """The one optimiser's learning rate (``optimizer_init``'s ``lr``), as Lightning's learning-rate finder
        reads and sets it (``--commands tune-fit``, ``runs/tune.py``): setting it rebuilds the optimiser factory
        with the new ``lr``, so the next ``configure_optimizers`` (the fit's) uses it and the config's other
        arguments stay. Several optimisers have no single rate: AttributeError, so ``hasattr`` is False."""
        if len(self._optimizer_specs) != 1:
            raise AttributeError(f"{type(self).__name__} has {len(self._optimizer_specs)} optimisers, no single lr")
        value = getattr(self._optimizer_specs[0].factory, "keywords", {}).get("lr")
        if value is None:
            raise AttributeError(f"{type(self).__name__}'s optimizer_init gives no lr")
        return float(value)

    @lr.setter
    def lr(self, value: float) -> None:
        if len(self._optimizer_specs) != 1:
            raise AttributeError(f"{type(self).__name__} has {len(self._optimizer_specs)} optimisers, no single lr")
        spec = self._optimizer_specs[0]
        spec.factory = functools.partial(spec.factory, lr=float(value))  # a partial of a partial: keywords merge

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if hasattr(scheduler, "step_update"):  # timm schedulers count epochs and updates themselves
            if self.trainer.lr_scheduler_configs and any(
                c.scheduler is scheduler and c.interval == "step" for c in self.trainer.lr_scheduler_configs
            ):
                scheduler.step_update(num_updates=self.global_step, metric=metric)
            else:
                scheduler.step(epoch=self.current_epoch + 1, metric=metric)
        elif metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)


def check_modalities(requested: list[str] | None, available: list[str], key: str) -> list[str]:
    """Validate a ``modalities`` subset against what is configured."""
    if requested is None:
        return list(available)
    unknown = [m for m in requested if m not in available]
    if unknown or not requested:
        raise ConfigError(f"{key}: {requested} must be a non-empty subset of the configured encoders {available}")
    return list(requested)


class MultimodalMethod(BaseMethod):
    """A method with one encoder per modality, keyed by the batch entry it reads.

    Args:
        encoders: one encoder per modality (``video``, ``audio``, ``text``), each giving ``[B, D_m]``.
        modalities: the subset of ``encoders`` to use; None uses them all.
        freeze_encoders: keep the encoders' weights fixed and run them in eval mode.
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    def __init__(
        self,
        encoders: dict[str, nn.Module],
        modalities: list[str] | None = None,
        freeze_encoders: bool = False,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(optimizer_init, lr_scheduler_init)
        used = check_modalities(modalities, list(encoders), "model.init_args.modalities")
        self.encoders = nn.ModuleDict({m: encoders[m] for m in used})
        self.freeze_encoders = freeze_encoders
        if freeze_encoders:
            self.encoders.requires_grad_(False)

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    def frozen_modules(self) -> list[nn.Module]:
        return [self.encoders] if self.freeze_encoders else []

    def encode(self, batch: dict[str, Any], encoders: nn.ModuleDict | None = None) -> dict[str, torch.Tensor]:
        """Each modality's encoder vector ``(B, D_m)``, from ``encoders`` (default: the method's own)."""
        encoders = self.encoders if encoders is None else encoders
        return {m: encoder(batch[m], batch.get(mask_key(m))) for m, encoder in encoders.items()}

    @property
    def representation_dims(self) -> dict[str, int]:
        """Size of each modality's vector that ``represent`` returns; the encoder's unless a method maps it."""
        return {m: encoder.num_features for m, encoder in self.encoders.items()}

    def represent(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Each modality's representation ``(B, D_m)``, what downstream probes read."""
        return self.encode(batch)
