"""What each AU head's task means to ``AUModel``: which target it reads, which metrics score it, how those are
logged, what it adds to a prediction. The heads (``nn/au_heads.py``) stay in the network layer; these
adapters need ``affectlab.metrics`` (a layer above ``nn``), so they live here, beside the model, and the
model calls them uniformly instead of asking each head its task.

``TASKS`` maps a head's ``task`` to its adapter class; ``task_of(head)`` builds the adapter of one head.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from affectlab.metrics.action_units import AUIntensityMetrics, AUOccurrenceMetrics, best_thresholds
from affectlab.metrics.classification import classification_metrics
from affectlab.nn.au_heads import AUHead


def au_name(au: int) -> str:
    return f"AU{au}"


class HeadTask:
    """The adapter of one head. ``columns`` are the head's AUs' columns in the data's AU targets."""

    pseudo_labelled = False  # FixMatch pseudo-labels this head's outputs
    has_thresholds = False  # its metric is scored at per-AU thresholds chosen on validation

    def __init__(self, head: AUHead) -> None:
        self.head = head

    def target(self, batch: dict[str, Any], columns: list[int]) -> torch.Tensor:
        return batch["targets"][self.head.task][:, columns].float()  # (B, A_h)

    def make_metrics(self) -> nn.Module:
        raise NotImplementedError

    def update_metrics(self, metric: nn.Module, logits: torch.Tensor, target: torch.Tensor) -> None:
        metric.update(self.head.predict(logits), target)

    def epoch_values(self, metric: nn.Module, stage: str, suffix: str,
                     thresholds: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, list[float]]]:
        """The epoch's logged values and per-AU bars (resets ``metric``)."""
        raise NotImplementedError

    def add_prediction(self, prediction: dict[str, torch.Tensor], logits: torch.Tensor) -> None:
        for au, column in zip(self.head.aus, self.head.predict(logits).T):
            prediction[f"{au_name(au)}_intensity"] = column

    def _per_au(self, result: dict[str, torch.Tensor], keys: tuple[str, ...], stage: str,
                suffix: str) -> dict[str, torch.Tensor]:
        names = [au_name(a) for a in self.head.aus]
        values: dict[str, torch.Tensor] = {}
        for key in keys:
            values[f"{stage}/au_{key}{suffix}_mean"] = result[f"{key}_mean"]
            values.update({f"{stage}/au_{key}{suffix}/{n}": v for n, v in zip(names, result[key])})
        return values


class OccurrenceTask(HeadTask):
    """F1, precision and recall per AU at the head's thresholds."""

    pseudo_labelled = True
    has_thresholds = True

    def make_metrics(self) -> nn.Module:
        return AUOccurrenceMetrics(len(self.head.aus))

    def choose_thresholds(self, metric: AUOccurrenceMetrics, thresholds: torch.Tensor) -> None:
        """Each AU's F1-maximising threshold on the epoch seen so far, into ``thresholds``."""
        probabilities, targets = metric.epoch_arrays()
        if len(probabilities):
            thresholds.copy_(best_thresholds(probabilities, targets))

    def epoch_values(self, metric: nn.Module, stage: str, suffix: str,
                     thresholds: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, list[float]]]:
        result = metric.compute(thresholds)
        metric.reset()
        return self._per_au(result, ("f1", "precision", "recall"), stage, suffix), {f"F1{suffix}": result["f1"].tolist()}

    def add_prediction(self, prediction: dict[str, torch.Tensor], logits: torch.Tensor) -> None:
        if "probabilities" in prediction:  # only the first occurrence head's, as class_names say
            super().add_prediction(prediction, logits)
        else:
            prediction["probabilities"] = self.head.predict(logits)


class IntensityTask(HeadTask):
    """ICC(3,1), Pearson and MAE per AU."""

    def make_metrics(self) -> nn.Module:
        return AUIntensityMetrics(len(self.head.aus))

    def epoch_values(self, metric: nn.Module, stage: str, suffix: str,
                     thresholds: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, list[float]]]:
        result = metric.compute()
        metric.reset()
        return self._per_au(result, ("icc", "pearson", "mae"), stage, suffix), {f"ICC{suffix}": result["icc"].tolist()}


class EmotionTask(HeadTask):
    """Classification metrics over the basic emotions; no per-AU bars."""

    def target(self, batch: dict[str, Any], columns: list[int]) -> torch.Tensor:
        return batch["targets"]["emotion"]  # (B,) class index

    def make_metrics(self) -> nn.Module:
        return classification_metrics(self.head.num_classes)

    def epoch_values(self, metric: nn.Module, stage: str, suffix: str,
                     thresholds: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, list[float]]]:
        result = metric.compute()
        metric.reset()
        return {f"{stage}/emotion_{key}{suffix}": v for key, v in result.items()}, {}

    def add_prediction(self, prediction: dict[str, torch.Tensor], logits: torch.Tensor) -> None:
        prediction["emotion_probabilities"] = self.head.predict(logits)


TASKS: dict[str, type[HeadTask]] = {"au": OccurrenceTask, "au_intensity": IntensityTask, "emotion": EmotionTask}


def task_of(head: AUHead) -> HeadTask:
    if head.task not in TASKS:
        raise ValueError(f"{type(head).__name__} has task {head.task!r}; known: {sorted(TASKS)}")
    return TASKS[head.task](head)
