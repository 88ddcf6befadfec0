"""Action unit metrics over a whole epoch, per AU and averaged over AUs (seed 001 averaged per batch: a defect).

Intensity (``AUIntensityMetrics``), for predictions x and ground truth y of each AU over the N frames:

- ICC(3,1), two-way mixed, consistency, single measurement (Shrout & Fleiss 1979), with the two "raters"
  x and y of n = N targets:  ICC = (MS_R - MS_E) / (MS_R + MS_E), where MS_R is the mean square between
  frames (of the frame means (x_i + y_i) / 2) and MS_E the residual mean square after removing frame and
  rater effects. When MS_R + MS_E = 0 (prediction and target both constant over the frames, e.g. an AU absent
  from the test set and predicted as a constant) the ratio is 0 / 0 and the ICC is NaN, as in pingouin's
  ICC(C,1): the coefficient is the share of the variance that lies between frames, and there is no variance to
  share. A 0 would score a perfect constant prediction of a constant target as "no agreement", a 1 would score
  any constant prediction of it as perfect; neither is measured. ``icc_mean`` is the mean over the AUs where it is
  defined (``nanmean``; NaN only when it is defined for none). (A constant target alone with varying predictions
  leaves MS_R > 0 and the ICC defined, as in pingouin.)
- Pearson's r;
- mean absolute error.

Every one of them is a function of the sums of x, y, x^2, y^2, xy and |x - y| and the count, so the metric
keeps only those (one number each per AU) and synchronises across processes by summing.

Occurrence (``AUOccurrenceMetrics``): per-AU F1, precision and recall at one threshold per AU, and
``best_thresholds``, which picks each AU's threshold maximising its F1 on validation data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric

_EPS = 1e-12


class AUIntensityMetrics(Metric):
    """Per-AU ICC(3,1), Pearson's r and MAE of intensity predictions ``[B, A]`` against targets ``[B, A]``."""

    full_state_update = False

    def __init__(self, num_aus: int) -> None:
        super().__init__()
        for name in ("sx", "sy", "sxx", "syy", "sxy", "sad"):
            self.add_state(name, default=torch.zeros(num_aus, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        x, y = prediction.detach().double(), target.detach().double()
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.sxx += (x * x).sum(0)
        self.syy += (y * y).sum(0)
        self.sxy += (x * y).sum(0)
        self.sad += (x - y).abs().sum(0)
        self.n += x.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.n
        mx, my = self.sx / n, self.sy / n
        grand = (mx + my) / 2
        # Sums of squares of the two-way layout (frames x {prediction, target}) from the moments.
        ss_total = self.sxx + self.syy - 2 * n * grand**2
        ss_rows = 2 * ((self.sxx + 2 * self.sxy + self.syy) / 4 - n * grand**2)
        ss_cols = n * ((mx - grand) ** 2 + (my - grand) ** 2)
        ms_rows = ss_rows / (n - 1)
        ms_error = (ss_total - ss_rows - ss_cols) / (n - 1)
        # 0 / 0 (no variance at all, see the module doc) is NaN. From moments a constant column leaves rounding
        # residue of about 1e-16 of the mean square, not an exact 0, hence the relative tolerance.
        scale = (self.sxx + self.syy) / (2 * n)  # mean square of the values
        undefined = ms_rows + ms_error <= 1e-9 * scale + _EPS
        icc = torch.where(undefined, torch.nan, (ms_rows - ms_error) / (ms_rows + ms_error).clamp_min(_EPS))
        cov = self.sxy / n - mx * my
        var_x, var_y = self.sxx / n - mx**2, self.syy / n - my**2
        pearson = cov / (torch.sqrt(var_x.clamp(min=0) * var_y.clamp(min=0)) + _EPS)
        mae = self.sad / n
        return {
            "icc": icc.float(), "pearson": pearson.float(), "mae": mae.float(),
            "icc_mean": icc.nanmean().float(), "pearson_mean": pearson.mean().float(), "mae_mean": mae.mean().float(),
        }


def f1_per_au(probabilities: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-AU F1, precision and recall of ``probabilities >= thresholds`` ``[N, A]`` against 0/1 ``targets``.

    An AU that is never present and never predicted scores F1 0 (as torchmetrics and the literature do).
    """
    predicted = probabilities >= thresholds
    present = targets.bool()
    tp = (predicted & present).sum(0).double()
    fp = (predicted & ~present).sum(0).double()
    fn = (~predicted & present).sum(0).double()
    precision = tp / (tp + fp).clamp(min=1)
    recall = tp / (tp + fn).clamp(min=1)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    return {"f1": f1.float(), "precision": precision.float(), "recall": recall.float()}


def best_thresholds(probabilities: torch.Tensor, targets: torch.Tensor,
                    grid: Sequence[float] = tuple(i / 20 for i in range(1, 20))) -> torch.Tensor:
    """Per AU, the threshold of ``grid`` with the best F1 on (validation) ``probabilities`` ``[N, A]``;
    ties go to the threshold nearest 0.5."""
    candidates = torch.tensor(sorted(grid, key=lambda t: abs(t - 0.5)), dtype=probabilities.dtype)
    scores = torch.stack([f1_per_au(probabilities, targets, t.expand(probabilities.shape[1]))["f1"] for t in candidates])
    return candidates[scores.argmax(dim=0)]  # argmax takes the first maximum: the one nearest 0.5


class AUOccurrenceMetrics(Metric):
    """Keeps an epoch's probabilities and targets ``[B, A]``; ``compute(thresholds)`` gives per-AU and mean
    F1, precision and recall (default threshold 0.5 for every AU)."""

    full_state_update = False

    def __init__(self, num_aus: int, threshold: float = 0.5) -> None:
        super().__init__()
        self.num_aus, self.threshold = num_aus, threshold
        self.add_state("probabilities", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor) -> None:
        self.probabilities.append(probabilities.detach().float())
        self.targets.append(targets.detach().float())

    def epoch_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        def cat(values):
            return torch.cat(values) if isinstance(values, list) else values

        if isinstance(self.probabilities, list) and not self.probabilities:
            empty = torch.zeros(0, self.num_aus)
            return empty, empty
        return cat(self.probabilities), cat(self.targets)

    def compute(self, thresholds: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        probabilities, targets = self.epoch_arrays()
        if thresholds is None:
            thresholds = torch.full((self.num_aus,), self.threshold)
        values = f1_per_au(probabilities, targets, thresholds.to(probabilities.device))
        values |= {f"{k}_mean": v.mean() for k, v in list(values.items())}
        return values
