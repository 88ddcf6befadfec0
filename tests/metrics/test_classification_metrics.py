"""The classification metrics against scikit-learn on the edge cases where torchmetrics' averaging differs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from affectlab.metrics.classification import classification_metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")

CASES = {
    # a class (3) predicted but never in the targets: sklearn leaves its 0 / 0 recall out
    "predicted but absent": ([0, 0, 0, 1, 1, 2, 2, 2, 2, 0], [0, 1, 3, 1, 1, 2, 3, 2, 0, 0]),
    # a class (3) neither in the targets nor predicted
    "never seen": ([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]),
    "every class": ([0, 1, 2, 3, 0, 1, 2, 3], [0, 1, 2, 2, 0, 3, 2, 3]),
}


def _computed(targets: list[int], predictions: list[int], num_classes: int = 4) -> dict[str, torch.Tensor]:
    metrics = classification_metrics(num_classes)
    half = len(targets) // 2  # two updates: the epoch's value, not a batch's
    for part in (slice(None, half), slice(half, None)):
        metrics.update(F.one_hot(torch.tensor(predictions[part]), num_classes).float(), torch.tensor(targets[part]))
    return metrics.compute()


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("case", CASES)
def test_wacc_equals_balanced_accuracy_score(case):
    targets, predictions = CASES[case]
    values = _computed(targets, predictions)
    expected = sklearn_metrics.balanced_accuracy_score(targets, predictions)
    assert values["wacc"].item() == pytest.approx(expected, abs=1e-6)
    assert values["acc"].item() == pytest.approx(sklearn_metrics.accuracy_score(targets, predictions), abs=1e-6)


def test_macro_recall_is_not_balanced_accuracy_when_a_predicted_class_is_absent():
    """What ``wacc`` was (torchmetrics' macro recall): 0.5 here, against scikit-learn's 0.667, so the test above
    fails for it."""
    targets, predictions = CASES["predicted but absent"]
    values = _computed(targets, predictions)
    assert values["recall_macro"].item() == pytest.approx(0.5, abs=1e-6)
    assert values["wacc"].item() == pytest.approx(2 / 3, abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_wacc_on_random_imbalanced_labels(seed):
    g = torch.Generator().manual_seed(seed)
    targets = torch.multinomial(torch.tensor([0.6, 0.3, 0.1, 0.0, 0.0, 0.0, 0.0]), 200, True, generator=g)
    predictions = torch.randint(7, (200,), generator=g)  # predicts classes 3-6, which never occur
    values = _computed(targets.tolist(), predictions.tolist(), 7)
    with pytest.warns(UserWarning, match="not in y_true"):
        expected = sklearn_metrics.balanced_accuracy_score(targets.numpy(), predictions.numpy())
    assert values["wacc"].item() == pytest.approx(expected, abs=1e-6)
