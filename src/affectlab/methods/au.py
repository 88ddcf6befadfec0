"""Implements FaceFlow's facial action unit model (seed 001): a timm backbone as feature extractor and a
list of AU heads, each with its own AU subset, loss and activation (``nn/au_heads.py``).

Per batch of clips ``[B, T, 3, H, W]`` (images are clips of one frame):
1. features   f = backbone(frames)                            (B*T, C, h, w)  the chosen stage's feature map
                (``nn/encoders``' ``StageEncoder``, built through the encoder registry)
2. heads      z_h = head_h(f)                                 (B*T, A_h, L_h) 1x1 conv + global average pool
3. over time  z_h = max over the T frames                     (B, A_h, L_h)   a clip's label is its apex
4. loss       L = sum_h w_h loss_h(z_h, y[:, AUs of h])       over the samples that carry the head's target

Metrics over each epoch (``metrics/action_units.py``): occurrence heads F1 (precision, recall) per AU and
mean, at per-AU thresholds chosen on the validation epoch (or a fixed ``occurrence_threshold``); intensity
heads ICC(3,1), Pearson and MAE per AU and mean; a per-AU bar chart per stage.

A method that trains the AU model another way (``FixMatchAU``, ``MiroAU``) holds an ``AUModel`` rather than
copying its arguments (``AUTrainingMethod``): its config names ``configs/model/au.yaml``, so the backbone, stage,
heads and optimiser are stated once, and it is evaluated, checkpointed, exported and run by predict as that model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from affectlab.data.contract import ACTION_UNITS
from affectlab.data.transforms import augment_frames
from affectlab.errors import ConfigError
from affectlab.io import load_checkpoint
from affectlab.methods.base import BaseMethod, OptimizerInit, SchedulerInit
from affectlab.methods.au_tasks import au_name, task_of
from affectlab.nn.au_heads import AUHead, IntensityHead, OccurrenceHead
from affectlab.nn.encoders import StageEncoder, create_encoder
from affectlab.plots import log_figure, per_au_bar_figure

STAGES = ("val", "test")
WRAPPED = "au_model"  # the attribute, and so the state-dict prefix, of the AUModel an AUTrainingMethod trains


def load_backbone(backbone: nn.Module, checkpoint: str) -> None:
    """Copies the ``backbone.*`` weights of an AffectLab checkpoint into ``backbone`` (every one must fit)."""
    key = "model.init_args.backbone_init"
    if not Path(checkpoint).is_file():
        raise ConfigError(f"{key}: {checkpoint} is not a file; give the best.ckpt of an "
                          "earlier AU run (runs/artifacts/<experiment>/<run id>/artifacts/checkpoints/best.ckpt)")
    state = load_checkpoint(checkpoint, key=key).get("state_dict")
    if not isinstance(state, dict):
        raise ConfigError(f"{key}: {checkpoint} holds no 'state_dict'; give the best.ckpt of an earlier AU run")
    # An AUModel run's keys start with backbone., a FixMatchAU or MiroAU run's with au_model.backbone.
    prefix = "backbone." if any(k.startswith("backbone.") for k in state) else f"{WRAPPED}.backbone."
    weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    try:
        backbone.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"model.init_args.backbone_init: {checkpoint} does not fit this backbone ({first}); "
                          "its run must use the same backbone and feature_stage") from None


class AUModel(BaseMethod):
    """Action unit occurrence and intensity from face frames.

    Args:
        backbone: timm model name (random init unless ``backbone_kwargs`` gives a local ``checkpoint_path``).
        backbone_kwargs: passed to ``timm.create_model``.
        feature_stage: which stage's feature map the heads read (-1: the last).
        heads: AU heads as partials completed with the backbone's channel count; None: an occurrence and an
            ordinal intensity head over all 12 AUs.
        occurrence_threshold: a fixed probability threshold for every AU; None chooses each AU's threshold
            on the validation epoch (maximising its F1) and uses it at test.
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
        backbone_init: a checkpoint (``.ckpt`` of an earlier AffectLab run of an AU model with the same backbone,
            e.g. ``runs/artifacts/<experiment>/<run id>/artifacts/checkpoints/best.ckpt``) whose backbone weights
            start this model, as FaceFlow starts from pretrained timm weights; loaded with ``weights_only=True``
            before anything copies the backbone (MIRO's oracle is then the pretrained backbone, as its paper has it).
        augment: train on weakly augmented frames (zoom-and-shift crop, horizontal flip, brightness, contrast:
            ``data/transforms.py``), the same weak view FixMatch's labelled loss sees, so a comparison of the
            two measures the unlabelled data and nothing else.
    """

    def __init__(
        self,
        backbone: str = "test_convnext",
        backbone_kwargs: dict[str, Any] | None = None,
        feature_stage: int = -1,
        heads: list[Callable[[int], AUHead]] | None = None,
        occurrence_threshold: float | None = None,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
        augment: bool = True,
        backbone_init: str | None = None,
    ) -> None:
        super().__init__(optimizer_init, lr_scheduler_init)
        self.augment = augment
        try:
            self.backbone: StageEncoder = create_encoder("StageEncoder", backbone=backbone, backbone_kwargs=backbone_kwargs,
                                                         feature_stage=feature_stage)
        except ValueError as error:
            raise ConfigError(f"model.init_args.backbone: {error}") from None
        if backbone_init is not None:
            load_backbone(self.backbone, backbone_init)
        channels = self.backbone.num_features
        factories = heads or [OccurrenceHead, IntensityHead]
        self.heads = nn.ModuleList([make(channels) for make in factories])
        if not self.heads:
            raise ConfigError("model.init_args.heads: give at least one AU head")
        self.occurrence_threshold = occurrence_threshold
        # Plain list, not modules: each adapter only points at its head, which self.heads already holds.
        self.head_tasks = [task_of(h) for h in self.heads]
        self.metrics = nn.ModuleDict({stage: nn.ModuleList([t.make_metrics() for t in self.head_tasks])
                                      for stage in STAGES})
        # Per occurrence head, its AUs' thresholds; chosen on validation, saved with the checkpoint.
        for i, head in enumerate(self.heads):
            self.register_buffer(f"thresholds_{i}", torch.full((len(head.aus),), occurrence_threshold or 0.5))
        self.data_aus: list[int] = list(ACTION_UNITS)  # the AU columns of the data's targets; set at setup
        occurrence = next((t.head for t in self.head_tasks if t.has_thresholds), None)
        self.class_names = [au_name(a) for a in occurrence.aus] if occurrence is not None else []

    @property
    def modalities(self) -> list[str]:
        return ["video"]

    @property
    def tasks(self) -> list[str]:
        return sorted({h.task for h in self.heads})

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.fit_to_data(getattr(self.trainer, "datamodule", None), stage)

    def fit_to_data(self, datamodule: Any, stage: str) -> None:
        """Reads the data's AU columns (checking every head's AUs are labelled) and, for ``fit``, sets the
        occurrence heads' positive weights from the training counts; the data module is passed in, so a
        method that holds this model (``AUTrainingMethod``) runs it without attaching the model to a trainer."""
        names = getattr(datamodule, "class_names", {}).get("au") if datamodule is not None else None
        if names is not None:
            self.data_aus = [int(str(n).removeprefix("AU")) for n in names]
        for head in self.heads:
            missing = [au for au in head.aus if au not in self.data_aus]
            if missing:
                raise ConfigError(f"model.init_args.heads: {type(head).__name__} predicts AUs {missing} that the data "
                                  f"does not label (it labels {self.data_aus})")
        if stage == "fit" and datamodule is not None and hasattr(datamodule, "class_counts"):
            counts = datamodule.class_counts("au")  # (A_data, 2): without, with
            for head in self.heads:
                if isinstance(head, OccurrenceHead):
                    rows = counts[self._columns(head)].double()
                    head.pos_weight.copy_((rows[:, 0] / rows[:, 1].clamp(min=1)).float())

    def _columns(self, head: AUHead) -> list[int]:
        return [self.data_aus.index(au) for au in head.aus]

    def _target(self, i: int, batch: dict[str, Any]) -> torch.Tensor:
        return self.head_tasks[i].target(batch, self._columns(self.heads[i]))

    # -- the model ------------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        video = batch["video"]  # (B, T, 3, H, W)
        features = self.backbone.forward_stages(video.flatten(0, 1))  # 1. per stage (B*T, C_s, h_s, w_s)
        return self.apply_heads(features[-1], *video.shape[:2])

    def apply_heads(self, features: torch.Tensor, B: int, T: int) -> list[torch.Tensor]:
        """Steps 2-3: each head's logits ``(B, A, L)`` from the last stage's map ``(B*T, C, h, w)``."""
        outputs = []
        for head in self.heads:
            logits = head(features)  # 2. (B*T, A, L)
            outputs.append(logits.view(B, T, *logits.shape[1:]).amax(dim=1))  # 3. (B, A, L)
        return outputs

    def head_losses(self, outputs: list[torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        losses = {}
        for i, (head, logits) in enumerate(zip(self.heads, outputs)):
            labelled = batch["target_mask"][head.task]
            target = self._target(i, batch)
            term = head.loss(logits[labelled], target[labelled]) if labelled.any() else logits.sum() * 0.0
            losses[f"{head.task}_{i}"] = term
        losses["loss"] = sum(h.weight * losses[f"{h.task}_{i}"] for i, h in enumerate(self.heads))  # 4.
        return losses

    def training_frames(self, batch: dict[str, Any]) -> torch.Tensor:
        """The training batch's frames ``[B, T, 3, H, W]``, weakly augmented when ``augment``."""
        return augment_frames(batch["video"]) if self.augment else batch["video"]

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.head_losses(self({**batch, "video": self.training_frames(batch)}), batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=True,
                      batch_size=len(batch["video"]))
        return losses["loss"]

    # -- evaluation -----------------------------------------------------------------------------------------------
    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        self.log(f"{stage}/loss", self.evaluate_batch(batch, stage), on_epoch=True, sync_dist=True,
                 batch_size=len(batch["video"]))

    def evaluation_epoch_end(self, stage: str) -> None:
        log_epoch_results(self, self, stage)

    def evaluate_batch(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        """Adds the batch to ``stage``'s metrics and returns its loss (the caller logs it)."""
        outputs = self(batch)
        losses = self.head_losses(outputs, batch)
        for i, (task, logits, metric) in enumerate(zip(self.head_tasks, outputs, self.metrics[stage])):
            labelled = batch["target_mask"][task.head.task]
            if labelled.any():
                task.update_metrics(metric, logits[labelled], self._target(i, batch)[labelled])
        return losses["loss"]

    def epoch_results(self, stage: str, choose_thresholds: bool
                      ) -> tuple[dict[str, torch.Tensor], dict[str, list[float]], list[str]]:
        """The epoch's metric values, the per-AU bars of the figure and their AU names; with
        ``choose_thresholds`` (validation) each occurrence head's per-AU thresholds are chosen first."""
        values: dict[str, torch.Tensor] = {}
        bars: dict[str, list[float]] = {}
        names: list[str] = []
        for i, (task, metric) in enumerate(zip(self.head_tasks, self.metrics[stage])):
            head = task.head
            suffix = "" if sum(h.task == head.task for h in self.heads) == 1 else f"_{i}"
            thresholds = getattr(self, f"thresholds_{i}")
            if choose_thresholds and task.has_thresholds:
                task.choose_thresholds(metric, thresholds)
            head_values, head_bars = task.epoch_values(metric, stage, suffix, thresholds)
            values.update(head_values)
            if head_bars:  # the figure's x axis: the AUs of the last head with bars
                bars.update(head_bars)
                names = [au_name(a) for a in head.aus]
        return values, bars, names

    # -- export (affectlab export onnx) ------------------------------------------------------------------------
    image_size: int = 64  # of the example input; the exported graph fixes the frame size, not the batch

    def onnx_input_names(self) -> list[str]:
        return ["frames"]

    def onnx_output_names(self) -> list[str]:
        return [f"{head.task}_{i}" for i, head in enumerate(self.heads)]

    def onnx_inputs(self, batch_size: int, seed: int = 0) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return [torch.rand(batch_size, 1, 3, self.image_size, self.image_size, generator=generator)]

    def onnx_forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Frames ``[B, T, 3, H, W]`` -> per head its activated output ``[B, A_h]`` (probabilities, intensities)."""
        return tuple(head.predict(logits) for head, logits in zip(self.heads, self({"video": frames})))

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        prediction: dict[str, torch.Tensor] = {"id": batch["id"]}
        for task, logits in zip(self.head_tasks, self(batch)):
            task.add_prediction(prediction, logits)
        return prediction


def log_epoch_results(method: BaseMethod, model: AUModel, stage: str) -> None:
    """Logs ``model``'s epoch metrics and per-AU figure of ``stage`` through ``method``, the module the trainer
    runs (the model itself, or the ``AUTrainingMethod`` that holds it); validation chooses the thresholds."""
    trainer = method.trainer
    choose = stage == "val" and model.occurrence_threshold is None and not trainer.sanity_checking
    values, bars, names = model.epoch_results(stage, choose)
    method.log_dict(values)
    if not trainer.sanity_checking and len({len(v) for v in bars.values()}) == 1:
        figure = per_au_bar_figure(bars, names, f"{stage}, epoch {method.current_epoch}")
        log_figure(trainer, figure, f"plots/{stage}_per_au.png")


class AUTrainingMethod(BaseMethod):
    """What a method that trains an ``AUModel`` another way shares (``FixMatchAU``, ``MiroAU``): it holds the
    model instead of copying its arguments, so one config (``configs/model/au.yaml``, named by path as
    ``au_model``) states the architecture and its optimiser for every method. The method trains the model with
    that optimiser and schedule, and is validated, tested, checkpointed (state-dict keys ``au_model.*``),
    exported and run by predict as that model (``deployed_model``). A subclass implements ``training_loss``.

    Args:
        au_model: the AU model to train. Its ``optimizer_init`` and ``lr_scheduler_init`` train it here too,
            over every trainable parameter of the method: a ``params`` prefix in them names the model's own
            parameters (``backbone``, ``heads``), and the method's own (MIRO's variances) go to the optimiser
            that takes the remaining parameters.
    """

    monitor = AUModel.monitor
    monitor_mode = AUModel.monitor_mode

    def __init__(self, au_model: AUModel) -> None:
        if not isinstance(au_model, AUModel):
            raise ConfigError(f"model.init_args.{WRAPPED}: got {type(au_model).__name__}, not an AUModel; give the "
                              "AU model's config, e.g. au_model: au.yaml (class_path affectlab.methods.AUModel)")
        super().__init__()
        self.au_model = au_model  # the attribute named WRAPPED
        # The optimiser is the architecture's, parsed and checked by AUModel; only its prefixes move under au_model.
        self._optimizer_specs = [replace(spec, params=[f"{WRAPPED}.{p}" for p in spec.params]) if spec.params else spec
                                 for spec in au_model._optimizer_specs]
        self._scheduler_pairs = au_model._scheduler_pairs
        self.automatic_optimization = au_model.automatic_optimization

    @property
    def modalities(self) -> list[str]:
        return self.au_model.modalities

    @property
    def tasks(self) -> list[str]:
        return self.au_model.tasks

    @property
    def class_names(self) -> list[str]:
        return self.au_model.class_names  # the predictions table's columns

    def deployed_model(self) -> AUModel:
        return self.au_model

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.au_model.fit_to_data(getattr(self.trainer, "datamodule", None), stage)

    def forward(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        return self.au_model(batch)

    # The held model computes, this module logs: Lightning lets only the module it runs call self.log.
    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        self.log(f"{stage}/loss", self.au_model.evaluate_batch(batch, stage), on_epoch=True, sync_dist=True,
                 batch_size=len(batch["video"]))

    def evaluation_epoch_end(self, stage: str) -> None:
        log_epoch_results(self, self.au_model, stage)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self.au_model.predict_step(batch, batch_idx)
