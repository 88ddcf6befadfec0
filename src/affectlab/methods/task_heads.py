"""The heads of ``MultiTaskMethod`` (``methods/multitask.py``): what each task owns, written once for all tasks
or per task (``TaskHeads``), and one task's output layer, loss and metrics (``TaskHead``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from affectlab.errors import ConfigError
from affectlab.metrics.classification import classification_metrics, multilabel_metrics

Kind = Literal["classification", "multilabel", "regression"]
Reduction = Literal["mean", "sum"]
KEY = "model.init_args.heads"


@dataclass
class TaskHeads:
    """What each task's head owns; every field is one value for all tasks or ``{task: value}``.

    Args:
        kind: ``classification`` (cross-entropy, targets ``[B]`` class indices), ``multilabel`` (binary
            cross-entropy, targets ``[B, n]`` 0/1) or ``regression`` (squared error, targets ``[B]`` or ``[B, n]``).
        num_outputs: classes, labels or regression dimensions; regression defaults to 1 (or ``len(outputs)``).
        outputs: indices of the trunk's output the head reads as its prediction, with no layer of its own (seed
            002: task_0 reads output ``[0]``, task_1 ``[1, 2, 3, 4, 5, 6]``); None gives the head a layer.
        hidden: width of a hidden ReLU layer before the output layer; None: one linear layer.
        dropout: before the head's first layer.
        weight: the task loss's static weight (every balancing sees ``weight * loss``; ``fixed`` uses it alone).
        reduction: of the task loss over its labelled samples (and dimensions): ``mean`` (default: a task's scale
            does not grow with how many of a batch's samples carry it) or ``sum`` (seed 002's sum of squared
            errors over samples and active dimensions).
        lr: learning rate of the head's parameters (a parameter group of whichever optimiser holds them);
            None keeps the optimiser's.
    """

    kind: Kind | dict[str, Kind] = "classification"
    num_outputs: int | None | dict[str, int | None] = None
    outputs: list[int] | None | dict[str, list[int] | None] = None
    hidden: int | None | dict[str, int | None] = None
    dropout: float | dict[str, float] = 0.0
    weight: float | dict[str, float] = 1.0
    reduction: Reduction | dict[str, Reduction] = "mean"
    lr: float | None | dict[str, float | None] = None


def task_heads(value: TaskHeads | dict | None) -> TaskHeads:
    """``heads`` as jsonargparse built it, or as a Python caller wrote it (a mapping), checked for unknown keys."""
    if value is None:
        return TaskHeads()
    if isinstance(value, TaskHeads):
        return value
    known = [f.name for f in fields(TaskHeads)]
    unknown = [k for k in value if k not in known]
    if unknown:
        raise ConfigError(f"{KEY}: unknown keys {unknown}; a head owns {', '.join(known)}")
    return TaskHeads(**value)


class TaskHead(nn.Module):
    """One task's output layer(s) and loss (``TaskHeads`` documents the arguments)."""

    def __init__(self, task: str, in_dim: int, kind: str, num_outputs: int | None, outputs: list[int] | None,
                 hidden: int | None, dropout: float, reduction: str) -> None:
        super().__init__()
        where = f"{KEY} (task {task!r})"
        if kind not in ("classification", "multilabel", "regression"):
            raise ConfigError(f"{where}.kind: {kind!r} is not classification, multilabel or regression")
        if reduction not in ("mean", "sum"):
            raise ConfigError(f"{where}.reduction: {reduction!r} is not mean or sum")
        if outputs is not None:
            if num_outputs is not None and num_outputs != len(outputs):
                raise ConfigError(f"{where}: num_outputs {num_outputs} disagrees with outputs {outputs}; give one")
            bad = [i for i in outputs if not 0 <= i < in_dim]
            if bad or not outputs:
                raise ConfigError(f"{where}.outputs: {outputs} must be indices of the trunk's {in_dim} outputs")
            num_outputs = len(outputs)
        elif num_outputs is None:
            if kind != "regression":
                raise ConfigError(f"{where}.num_outputs: a {kind} head needs its number of classes or labels")
            num_outputs = 1
        self.task, self.kind, self.reduction, self.num_outputs = task, kind, reduction, int(num_outputs)
        if outputs is not None:
            self.register_buffer("outputs", torch.tensor(outputs, dtype=torch.long), persistent=False)
            self.layers = None
        else:
            self.outputs = None
            hidden_layers = [nn.Linear(in_dim, hidden), nn.ReLU()] if hidden else []
            self.layers = nn.Sequential(nn.Dropout(dropout), *hidden_layers, nn.Linear(hidden or in_dim, num_outputs))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, self.outputs] if self.layers is None else self.layers(z)  # (B, n)

    def target(self, target: torch.Tensor, size: int) -> torch.Tensor:
        if self.kind == "classification":
            return target.long()
        return target.float().reshape(size, self.num_outputs)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
        """The loss over the samples ``labelled`` ``[B]`` marks; exactly 0 (zero gradient) when it marks none."""
        if not bool(labelled.any()):
            return prediction.sum() * 0.0
        y, t = prediction[labelled], self.target(target[labelled], int(labelled.sum()))
        if self.kind == "classification":
            return F.cross_entropy(y, t, reduction=self.reduction)
        if self.kind == "multilabel":
            return F.binary_cross_entropy_with_logits(y, t, reduction=self.reduction)
        return F.mse_loss(y, t, reduction=self.reduction)

    def metrics(self) -> MetricCollection:
        if self.kind == "classification":
            return classification_metrics(self.num_outputs)
        if self.kind == "multilabel":
            return multilabel_metrics(self.num_outputs)
        return MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})

    def update(self, metrics: MetricCollection, prediction: torch.Tensor, target: torch.Tensor,
               labelled: torch.Tensor) -> None:
        if bool(labelled.any()):
            t = self.target(target[labelled], int(labelled.sum()))
            metrics.update(prediction[labelled], t.long() if self.kind == "multilabel" else t)
