"""Implements multi-task learning with a shared trunk and one head per task (seed 002, wowolo/multi_task_learning),
with the task losses balanced by a strategy chosen in the config (``methods/balancing/``).

Algorithm, per training batch:
1. shared representation:   z = trunk(batch)                                          (B, D)
2. one head per task k:     y_k = head_k(z)                                           (B, n_k)
   (a linear layer, an MLP with ``hidden``, or dimensions of z itself: ``outputs``, seed 002's one network
   whose seven outputs the tasks share)
3. task loss over the samples that carry task k's label (``target_mask[k]``; 0, and no gradient, when none):
                            L_k = weight_k * loss_k(y_k[m_k], t_k[m_k])   (reduction mean or sum)
4. balancing: L = combine({L_k}) and one backward (sum, fixed, uncertainty, dwa, gradnorm), or each L_k's
   gradient on the trunk aggregated by torchjd (upgrad, pcgrad, cagrad);
5. one step of every optimiser. Several optimisers (per-task ``NamedOptimizer``s: ``params: [heads.<task>]``,
   the trunk's shared) share that one backward: every one is zeroed before it and stepped after it, so no
   task's ``zero_grad`` wipes another's gradient (seed 002's defect), and the trunk's update is the sum of the
   tasks' gradients (under ``sum``).

What a task owns is written once for all tasks or per task (``{task: value}``, ``methods/task_values.py``) in
``heads`` (``TaskHeads``, ``methods/task_heads.py``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric

from affectlab.errors import ConfigError
from affectlab.methods.balancing import Balancing, create_balancing
from affectlab.methods.base import BaseMethod, OptimizerInit, SchedulerInit
from affectlab.methods.callbacks import LossCurves
from affectlab.methods.task_heads import KEY, TaskHead, TaskHeads, task_heads
from affectlab.methods.task_values import resolve_all, task_set
from affectlab.nn.trunks import last_shared_layer
from affectlab.plots import log_figure, loss_curves_figure

class TaskCurves(LossCurves):
    """``LossCurves`` drawn under a name of its own (per-task losses and balancing weights are two pictures)."""

    def __init__(self, terms: list[str], title: str, path: str) -> None:
        super().__init__(terms, title)
        self.path = path

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        curves = {k: v for k, v in self.curves.items() if v}
        if curves:
            log_figure(trainer, loss_curves_figure(curves, self.title), self.path)


class MultiTaskMethod(BaseMethod):
    """A shared trunk, one head per task, the task losses balanced (module docstring).

    Args:
        trunk: maps a batch to ``[B, D]``; has ``out_dim`` (``nn/trunks.py``: ``MultimodalTrunk``, ``MLPTrunk``).
        tasks: the task names (keys of ``batch["targets"]``); None takes them from the per-task values in ``heads``.
        heads: what each head owns (``TaskHeads``), each value plain or per task.
        balancing: a strategy's name (``sum``, ``fixed``, ``uncertainty``, ``dwa``, ``gradnorm``, ``upgrad``,
            ``pcgrad``, ``cagrad``) or a ``Balancing`` with its arguments (``methods/balancing/``).
        optimizer_init: see ``BaseMethod``; per-task optimisers name ``params: [heads.<task>]`` and ``[trunk]``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    def __init__(
        self,
        trunk: nn.Module,
        tasks: list[str] | None = None,
        heads: TaskHeads | None = None,
        balancing: str | Balancing = "sum",
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(optimizer_init, lr_scheduler_init)
        values = asdict(task_heads(heads))
        names = list(tasks) if tasks is not None else task_set(values, KEY)
        if not names:
            raise ConfigError(f"model.init_args.tasks: no tasks; list them (e.g. tasks: [emotion, au]) or write a "
                              f"per-task value in {KEY}")
        if len(set(names)) != len(names):
            raise ConfigError(f"model.init_args.tasks: {names} names a task twice")
        per_task = resolve_all(values, names, KEY)
        out_dim = getattr(trunk, "out_dim", getattr(trunk, "output_dim", None))
        if not isinstance(out_dim, int):
            raise ConfigError(f"model.init_args.trunk: {type(trunk).__name__} declares no out_dim (its [B, D] size)")
        self.trunk = trunk
        self.task_names = names
        self.heads = nn.ModuleDict({
            t: TaskHead(t, out_dim, v["kind"], v["num_outputs"], v["outputs"], v["hidden"], v["dropout"], v["reduction"])
            for t, v in per_task.items()})
        self.loss_weights = {t: float(v["weight"]) for t, v in per_task.items()}
        self.head_lr = {t: v["lr"] for t, v in per_task.items() if v["lr"] is not None}
        self.balancing = create_balancing(balancing)
        self.balancing.bind(names, {t: h.kind for t, h in self.heads.items()}, self.loss_weights,
                            last_shared_layer(trunk))
        self.automatic_optimization = len(self._optimizer_specs) == 1 and not self.balancing.aggregates_gradients
        self.metrics = nn.ModuleDict({s: nn.ModuleDict({t: h.metrics() for t, h in self.heads.items()})
                                      for s in ("val", "test")})
        self.mean_losses = nn.ModuleDict({s: nn.ModuleDict({t: MeanMetric() for t in names}) for s in ("val", "test")})
        self._epoch_losses: dict[str, list[float]] = {t: [] for t in names}

    # -- what the method reads ----------------------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        return list(getattr(self.trunk, "modalities", []))

    @property
    def tasks(self) -> list[str]:
        return list(self.task_names)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        for task, head in self.heads.items():
            names = getattr(datamodule, "class_names", {}).get(task) if datamodule is not None else None
            if names is not None and head.kind != "regression" and len(names) != head.num_outputs:
                raise ConfigError(f"{KEY}.num_outputs: task {task!r} has {head.num_outputs} outputs but the data names "
                                  f"{len(names)} classes {list(names)}; set it to {len(names)} for {task}")

    def frozen_modules(self) -> list[nn.Module]:
        frozen = getattr(self.trunk, "frozen_modules", None)
        return list(frozen()) if frozen is not None else []

    def represent(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"shared": self.trunk(batch)}

    @property
    def representation_dims(self) -> dict[str, int]:
        return {"shared": self.trunk.out_dim}

    # -- the steps ----------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        z = self.trunk(batch)  # 1. (B, D)
        return {"shared": z, **{t: head(z) for t, head in self.heads.items()}}  # 2. (B, n_k) per task

    def task_losses(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[dict, dict]:
        """3. ``{task: L_k}`` and ``{task: labelled samples}``."""
        losses, counts = {}, {}
        for task, head in self.heads.items():
            labelled = batch["target_mask"][task].bool()
            losses[task] = self.loss_weights[task] * head.loss(outputs[task], batch["targets"][task], labelled)
            counts[task] = int(labelled.sum())
        return losses, counts

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        outputs = self(batch)
        losses, counts = self.task_losses(outputs, batch)
        if self.balancing.aggregates_gradients:  # 4. torchjd, then 5.
            optimizers = self._optimizer_list()
            for optimizer in optimizers:
                optimizer.zero_grad()
            shared = [p for p in self.trunk.parameters() if p.requires_grad]
            heads = {t: [p for p in h.parameters() if p.requires_grad] for t, h in self.heads.items()}
            self.balancing.backward(losses, outputs["shared"], shared, heads, [t for t in counts if counts[t]])
            for optimizer in optimizers:
                optimizer.step()
            self._step_schedulers("step")
            total = torch.stack(list(losses.values())).sum().detach()
        else:
            total = self.balancing.combine(losses)  # 4.
            if not self.automatic_optimization:  # 5. several optimisers: one zero_grad each, one backward, steps
                self._manual_step(total)
        size = len(next(iter(batch["target_mask"].values())))
        self.log("train/loss", total.detach(), on_step=True, on_epoch=True, batch_size=size)
        for task, loss in losses.items():
            if counts[task]:
                self.log(f"train/loss_{task}", loss.detach(), on_step=False, on_epoch=True, batch_size=counts[task])
                self._epoch_losses[task].append(float(loss.detach()))
        extra = {f"train/weight_{t}": w for t, w in self.balancing.weights().items()}
        extra |= {f"train/{k}": v for k, v in self.balancing.statistics().items()}
        if extra:
            self.log_dict(extra, on_step=False, on_epoch=True, batch_size=size)
        return total

    def _optimizer_list(self) -> list:
        optimizers = self.optimizers()
        return optimizers if isinstance(optimizers, list) else [optimizers]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.balancing.after_step()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        means = {t: sum(v) / len(v) if v else 0.0 for t, v in self._epoch_losses.items()}
        self.balancing.epoch_end(means)
        self._epoch_losses = {t: [] for t in self.task_names}

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        outputs = self(batch)
        losses, counts = self.task_losses(outputs, batch)
        for task, head in self.heads.items():
            if counts[task]:
                self.mean_losses[stage][task].update(losses[task].detach(), weight=counts[task])
            head.update(self.metrics[stage][task], outputs[task], batch["targets"][task], batch["target_mask"][task].bool())

    def evaluation_epoch_end(self, stage: str) -> None:
        values = {}
        for task in self.task_names:
            mean = self.mean_losses[stage][task]
            if mean.update_count:  # a task without labelled samples in this stage has no loss or metrics
                values[f"{stage}/loss_{task}"] = mean.compute()
                values |= {f"{stage}/{task}/{k}": v for k, v in self.metrics[stage][task].compute().items()}
            mean.reset()
            self.metrics[stage][task].reset()
        task_values = [v for k, v in values.items() if k.startswith(f"{stage}/loss_")]
        if task_values:
            values[f"{stage}/loss"] = torch.stack(task_values).sum()
        self.log_dict(values)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        """One column per task value (``predictions.csv``): a class index, each label's probability, or each
        regression output (``<task>`` when it has one, ``<task>_<j>`` otherwise)."""
        outputs = self(batch)
        columns = {"id": batch["id"]} if "id" in batch else {}
        for task, head in self.heads.items():
            if head.kind == "classification":
                columns[f"{task}_prediction"] = outputs[task].argmax(dim=-1)
                continue
            values = outputs[task].sigmoid() if head.kind == "multilabel" else outputs[task]  # (B, n)
            for j in range(values.shape[1]):
                columns[task if values.shape[1] == 1 else f"{task}_{j}"] = values[:, j]
        return columns

    # -- optimisers and pictures --------------------------------------------------------------------------------
    def param_groups(self, parameters: list[torch.nn.Parameter]) -> list[dict]:
        """A head with its own ``lr`` gets a parameter group at that rate in whichever optimiser holds it."""
        owner = {id(p): t for t in self.head_lr for p in self.heads[t].parameters()}
        groups = [{"params": [p for p in parameters if id(p) not in owner]}]
        for task, lr in self.head_lr.items():
            groups.append({"params": [p for p in parameters if owner.get(id(p)) == task], "lr": float(lr)})
        return groups

    def configure_callbacks(self) -> list:
        tasks = self.task_names
        balancing = [f"weight_{t}" for t in tasks] + ["grad_cosine", "gradnorm_loss"] + [f"grad_norm_{t}" for t in tasks]
        return [
            TaskCurves([f"loss_{t}" for t in tasks] + ["loss"], "task losses per epoch", "plots/task_losses.png"),
            TaskCurves(balancing, f"{self.balancing.name or 'balancing'}: task weights and conflicts per epoch",
                       "plots/balancing.png"),
        ]
