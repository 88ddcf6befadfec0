"""AU metrics against values computed by hand, and epoch-level accumulation."""

from __future__ import annotations

import torch

from affectlab.metrics.action_units import (
    AUIntensityMetrics,
    AUOccurrenceMetrics,
    best_thresholds,
    f1_per_au,
)

_EPS = 1e-12


def icc_3_1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ICC(3,1) per column of ``x`` and ``y`` ``[N, A]`` (the direct two-way ANOVA formula: the test oracle
    of the moment-based metric)."""
    data = torch.stack([x, y], dim=-1).double()  # (N, A, 2)
    n, k = data.shape[0], 2
    grand = data.mean(dim=(0, 2))  # (A,)
    ss_rows = k * ((data.mean(dim=2) - grand) ** 2).sum(dim=0)
    ss_cols = n * ((data.mean(dim=0) - grand[:, None]) ** 2).sum(dim=1)
    ss_total = ((data - grand[None, :, None]) ** 2).sum(dim=(0, 2))
    ms_rows = ss_rows / (n - 1)
    ms_error = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    return ((ms_rows - ms_error) / (ms_rows + (k - 1) * ms_error + _EPS)).float()


def test_icc_3_1_by_hand():
    # Frames (x, y): (1, 1), (2, 2), (3, 4). Frame means 1, 2, 3.5; grand mean 13/6.
    # SS_rows = 2 * 19/6 = 19/3, SS_cols = 1/6, SS_total = 41/6, SS_error = 1/3;
    # MS_rows = 19/6, MS_error = 1/6; ICC = (19/6 - 1/6) / (19/6 + 1/6) = 0.9.
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[1.0], [2.0], [4.0]])
    assert torch.allclose(icc_3_1(x, y), torch.tensor([0.9]))
    metric = AUIntensityMetrics(1)
    metric.update(x, y)
    assert torch.allclose(metric.compute()["icc"], torch.tensor([0.9]), atol=1e-6)


def test_icc_is_consistency_pearson_and_mae_match_their_definitions():
    torch.manual_seed(0)
    y = torch.rand(200, 3) * 5
    x = torch.stack([y[:, 0] + 1.0, 2 * y[:, 1], torch.rand(200) * 5], dim=1)  # offset, scale, noise
    metric = AUIntensityMetrics(3)
    for part in range(4):  # accumulated over batches = computed on the whole epoch
        metric.update(x[part * 50 : (part + 1) * 50], y[part * 50 : (part + 1) * 50])
    values = metric.compute()
    assert values["icc"][0] > 0.999  # a constant offset does not hurt consistency
    assert torch.allclose(values["icc"], icc_3_1(x, y), atol=1e-5)
    expected_r = torch.stack([torch.corrcoef(torch.stack([x[:, i], y[:, i]]))[0, 1] for i in range(3)])
    assert torch.allclose(values["pearson"], expected_r, atol=1e-5)
    assert torch.allclose(values["mae"], (x - y).abs().mean(0), atol=1e-5)
    assert abs(values["icc"][2]) < 0.2 and torch.isclose(values["icc_mean"], values["icc"].mean())


def test_f1_per_au_by_hand_and_threshold_choice():
    probabilities = torch.tensor([[0.9, 0.2], [0.6, 0.4], [0.3, 0.45], [0.1, 0.1]])
    targets = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]])
    values = f1_per_au(probabilities, targets, torch.tensor([0.5, 0.5]))
    # AU a: predicted {0, 1}, present {0, 2}: tp 1, fp 1, fn 1 -> F1 0.5. AU b: nothing predicted -> 0.
    assert torch.allclose(values["f1"], torch.tensor([0.5, 0.0]))
    thresholds = best_thresholds(probabilities, targets)
    tuned = f1_per_au(probabilities, targets, thresholds)["f1"]
    assert tuned[1] == 1.0 and 0.2 < thresholds[1] <= 0.4  # b's positives are 0.4 and 0.45
    assert (tuned >= values["f1"]).all()


def test_occurrence_metric_accumulates_the_epoch():
    metric = AUOccurrenceMetrics(2)
    metric.update(torch.tensor([[0.9, 0.2], [0.6, 0.4]]), torch.tensor([[1, 0], [0, 1]]))
    metric.update(torch.tensor([[0.3, 0.45], [0.1, 0.1]]), torch.tensor([[1, 1], [0, 0]]))
    values = metric.compute()
    assert torch.allclose(values["f1"], torch.tensor([0.5, 0.0])) and values["f1_mean"] == 0.25
    metric.reset()
    assert metric.epoch_arrays()[0].shape == (0, 2)


def test_per_au_bar_chart_is_drawn(tmp_path):
    from affectlab.plots import per_au_bar_figure

    figure = per_au_bar_figure({"F1": [0.5, 0.2, 0.7], "ICC": [0.3, -0.1, 0.6]}, ["AU1", "AU2", "AU4"], "test")
    figure.savefig(tmp_path / "bars.png")
    assert len(figure.axes[0].patches) == 6


def shrout_fleiss_icc3(x: list[float], y: list[float]) -> float:
    """ICC(3,1) of Shrout & Fleiss (1979), Table 2, with k = 2 judges (prediction, target) of n targets, in plain
    Python: (BMS - EMS) / (BMS + (k - 1) EMS); NaN for 0 / 0 (pingouin's ICC(C,1) is NaN there too)."""
    n, k = len(x), 2
    rows = [(a + b) / 2 for a, b in zip(x, y)]
    grand = sum(rows) / n
    judges = [sum(x) / n, sum(y) / n]
    bms = k * sum((r - grand) ** 2 for r in rows) / (n - 1)
    residual = sum((v - r - j + grand) ** 2 for r, pair in zip(rows, zip(x, y)) for v, j in zip(pair, judges))
    ems = residual / ((n - 1) * (k - 1))
    return float("nan") if bms + (k - 1) * ems == 0 else (bms - ems) / (bms + (k - 1) * ems)


def test_icc_of_constant_columns_is_undefined_like_shrout_fleiss():
    """AU 0: prediction and target constant, 0 / 0: NaN (it was 0). AU 1: constant target, varying prediction:
    defined, as the reference. AU 2: ordinary. ``icc_mean`` averages the defined ones."""
    x = torch.tensor([[0.7, 0.2, 1.0], [0.7, 0.9, 2.0], [0.7, 0.4, 2.5], [0.7, 0.1, 4.5]])
    y = torch.tensor([[0.3, 1.0, 1.5], [0.3, 1.0, 2.0], [0.3, 1.0, 3.5], [0.3, 1.0, 4.0]])
    metric = AUIntensityMetrics(3)
    metric.update(x[:2], y[:2])
    metric.update(x[2:], y[2:])
    values = metric.compute()
    expected = [shrout_fleiss_icc3(x[:, a].tolist(), y[:, a].tolist()) for a in range(3)]
    assert torch.isnan(values["icc"][0]) and torch.isnan(torch.tensor(expected[0]))
    assert torch.allclose(values["icc"][1:], torch.tensor(expected[1:]), atol=1e-6)
    assert torch.isclose(values["icc_mean"], values["icc"][1:].mean())


def test_icc_matches_shrout_fleiss_on_random_columns():
    g = torch.Generator().manual_seed(3)
    y = torch.rand(40, 4, generator=g) * 5
    x = y + torch.randn(40, 4, generator=g) * torch.tensor([0.1, 1.0, 3.0, 0.0])
    metric = AUIntensityMetrics(4)
    metric.update(x, y)
    expected = torch.tensor([shrout_fleiss_icc3(x[:, a].tolist(), y[:, a].tolist()) for a in range(4)])
    assert torch.allclose(metric.compute()["icc"], expected.float(), atol=1e-5)
