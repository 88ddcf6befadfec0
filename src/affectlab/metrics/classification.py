"""Classification metrics over a whole epoch (never averaged per batch; see METHODS.md, seed 001 defects).

Single-label (``classification_metrics``), the figures ConCluGen reports (arXiv 2404.10904) and more:

- ``acc``: overall accuracy.
- ``wacc``: weighted accuracy as in the affect literature (Tong et al., 2017): the mean of per-class recalls over
  the classes that occur in the targets, so every class counts equally however rare; equals scikit-learn's
  ``balanced_accuracy_score``, also when a class is predicted but never occurs in the targets (its recall 0 / 0
  is left out, as scikit-learn does; torchmetrics' macro recall counts it as 0; see ``BalancedAccuracy``).
- ``precision_weighted``, ``recall_weighted``, ``f1_weighted``: per-class scores averaged with weights
  proportional to each class's support (number of true samples), the averaging of ConCluGen's tables.
  ``recall_weighted`` equals ``acc``.
- ``precision_macro``, ``recall_macro``, ``f1_macro``: unweighted means over classes.
- with ``per_class=True``: ``precision``, ``recall``, ``f1`` as ``[C]`` vectors; ``expand_per_class`` turns
  them into ``precision/<class name>`` ... scalars for logging.

Multi-label (``multilabel_metrics``, e.g. CMU-MOSEI's six emotions), every label thresholded at 0.5 on
sigmoid probabilities:

- ``acc``: fraction of correct (sample, label) decisions (1 - Hamming loss);
- ``precision_/recall_/f1_weighted`` (weights: positives per label) and ``..._macro``;
- with ``per_label=True``: ``acc``, ``precision``, ``recall``, ``f1`` per label (``acc_per_label`` for the first,
  so it does not clash with the scalar ``acc``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelAccuracy,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)

#: keys whose value is one number per class (or label); ``expand_per_class`` names their entries.
PER_CLASS_KEYS = ("precision", "recall", "f1", "acc_per_label")


class BalancedAccuracy(MulticlassRecall):
    """Mean recall tp_c / (tp_c + fn_c) over the classes c with support tp_c + fn_c > 0 (scikit-learn's
    ``balanced_accuracy_score``).

    torchmetrics' ``average="macro"`` drops only the classes that are neither in the targets nor predicted, so a
    class that is predicted but absent from the targets enters its mean with recall 0 and lowers it (by 0.057 in
    the issue's example). A class absent from the targets has no recall to average. NaN when no target was seen.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes, average="none")

    def compute(self) -> torch.Tensor:
        tp, _, _, fn = self._final_state()  # (C,) each: tp, fp, tn, fn
        support = tp + fn  # (C,)
        present = support > 0
        return (tp[present].double() / support[present]).mean().float()


def classification_metrics(num_classes: int, per_class: bool = False) -> MetricCollection:
    """The scalar metrics of single-label classification, keyed by their short names (see the module doc).

    Args:
        num_classes: number of classes; updates take logits or probabilities ``[B, C]`` and targets ``[B]``.
        per_class: also compute ``precision``, ``recall`` and ``f1`` per class (``[C]`` vectors).
    """
    metrics = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "wacc": BalancedAccuracy(num_classes),
        "f1_macro": MulticlassF1Score(num_classes, average="macro"),
        "precision_macro": MulticlassPrecision(num_classes, average="macro"),
        "recall_macro": MulticlassRecall(num_classes, average="macro"),
        "precision_weighted": MulticlassPrecision(num_classes, average="weighted"),
        "recall_weighted": MulticlassRecall(num_classes, average="weighted"),
        "f1_weighted": MulticlassF1Score(num_classes, average="weighted"),
    }
    if per_class:
        metrics |= {
            "precision": MulticlassPrecision(num_classes, average="none"),
            "recall": MulticlassRecall(num_classes, average="none"),
            "f1": MulticlassF1Score(num_classes, average="none"),
        }
    return MetricCollection(metrics)


def multilabel_metrics(num_labels: int, per_label: bool = False, threshold: float = 0.5) -> MetricCollection:
    """The scalar metrics of multi-label classification (see the module doc).

    Args:
        num_labels: number of labels; updates take logits or probabilities ``[B, L]`` and 0/1 targets ``[B, L]``.
        per_label: also compute ``acc_per_label``, ``precision``, ``recall``, ``f1`` per label (``[L]`` vectors).
        threshold: on the sigmoid probability (logits are passed through a sigmoid by torchmetrics).
    """
    kwargs = {"num_labels": num_labels, "threshold": threshold}
    metrics = {
        "acc": MultilabelAccuracy(**kwargs, average="micro"),
        "f1_macro": MultilabelF1Score(**kwargs, average="macro"),
        "precision_macro": MultilabelPrecision(**kwargs, average="macro"),
        "recall_macro": MultilabelRecall(**kwargs, average="macro"),
        "precision_weighted": MultilabelPrecision(**kwargs, average="weighted"),
        "recall_weighted": MultilabelRecall(**kwargs, average="weighted"),
        "f1_weighted": MultilabelF1Score(**kwargs, average="weighted"),
    }
    if per_label:
        metrics |= {
            "acc_per_label": MultilabelAccuracy(**kwargs, average="none"),
            "precision": MultilabelPrecision(**kwargs, average="none"),
            "recall": MultilabelRecall(**kwargs, average="none"),
            "f1": MultilabelF1Score(**kwargs, average="none"),
        }
    return MetricCollection(metrics)


def expand_per_class(values: dict[str, torch.Tensor], class_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Split every per-class vector of ``values`` into scalars named ``<key>/<class name>``.

    ``acc_per_label`` becomes ``acc/<label>``. Scalars pass through unchanged, so the result can be logged.
    """
    flat: dict[str, torch.Tensor] = {}
    for key, value in values.items():
        if key in PER_CLASS_KEYS and value.ndim == 1:
            if len(value) != len(class_names):
                raise ValueError(f"{key} has {len(value)} entries but {len(class_names)} class names were given")
            name = "acc" if key == "acc_per_label" else key
            flat.update({f"{name}/{class_name}": v for class_name, v in zip(class_names, value)})
        else:
            flat[key] = value
    return flat


def confusion_matrix(num_classes: int) -> MulticlassConfusionMatrix:
    return MulticlassConfusionMatrix(num_classes)


def scalar(value: torch.Tensor) -> float:
    return float(value.detach().cpu())
