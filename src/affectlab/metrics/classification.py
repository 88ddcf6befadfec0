"""Classification metrics over a whole epoch (never averaged per batch; see METHODS.md, seed 001 defects).

- ``acc``: overall accuracy.
- ``wacc``: weighted accuracy as in the affect literature (Tong et al., 2017): the mean of per-class recalls,
  so every class counts equally however rare; equals balanced accuracy.
- ``f1_macro``: unweighted mean of per-class F1.
"""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score


def classification_metrics(num_classes: int) -> MetricCollection:
    """The scalar metrics, keyed by their short names."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "wacc": MulticlassAccuracy(num_classes, average="macro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
        }
    )


def confusion_matrix(num_classes: int) -> MulticlassConfusionMatrix:
    return MulticlassConfusionMatrix(num_classes)


def scalar(value: torch.Tensor) -> float:
    return float(value.detach().cpu())
