"""Loss weighting: the task losses ``L_k`` in, ``sum_k lambda_k L_k`` (plus a regulariser) out.

``L_k`` is each head's loss already multiplied by its static ``weight`` (``TaskHeads.weight``), so ``fixed``
weights are those static weights, and with all of them 1 ``sum`` is seed 002's plain sum.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from affectlab.methods.balancing.base import Balancing


class FixedWeights(Balancing):
    """``L = sum_k w_k loss_k`` with the heads' static weights ``w_k`` (``sum``: all 1, seed 002's objective)."""

    name = "fixed"

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([losses[task] for task in self.tasks]).sum()

    def weights(self) -> dict[str, float]:
        return dict(self.static_weights)


class UncertaintyWeighting(Balancing):
    """Implements homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018, arXiv 1705.07115).

    With ``s_k = log sigma_k^2`` learned per task (initialised 0), eq. 7 (regression) reads
    ``L_k / (2 sigma_k^2) + log sigma_k = L_k / (2 e^{s_k}) + s_k / 2``; the classification form (eq. 10) drops
    the 2: ``L_k / e^{s_k} + s_k / 2``. ``form: uniform`` (default) applies the regression form to every task,
    as METHODS.md and LibMTL's UW write it, ``sum_k L_k / (2 e^{s_k}) + s_k / 2``; ``form: paper`` uses eq. 10
    for classification and multi-label heads. Its weight of task k is ``c_k e^{-s_k}`` (``c_k`` 1/2 or 1).

    Args:
        form: ``uniform`` or ``paper``.
    """

    name = "uncertainty"

    def __init__(self, form: Literal["uniform", "paper"] = "uniform") -> None:
        super().__init__()
        if form not in ("uniform", "paper"):
            raise ValueError(f"uncertainty form {form!r} is not 'uniform' or 'paper'")
        self.form = form
        self.log_variance = nn.Parameter(torch.zeros(0))

    def bind(self, tasks: list[str], kinds: dict[str, str], static_weights: dict[str, float],
             shared_layer: nn.Module | None = None) -> None:
        super().bind(tasks, kinds, static_weights, shared_layer)
        self.log_variance = nn.Parameter(torch.zeros(len(self.tasks)))  # s_k = log sigma_k^2, sigma_k = 1 at start
        paper = self.form == "paper"
        factors = [1.0 if paper and kinds.get(t) in ("classification", "multilabel") else 0.5 for t in self.tasks]
        self.register_buffer("factor", torch.tensor(factors), persistent=False)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([losses[task] for task in self.tasks])  # (K,)
        s = self.log_variance
        return (self.factor * stacked * torch.exp(-s) + s / 2).sum()

    def weights(self) -> dict[str, float]:
        values = (self.factor * torch.exp(-self.log_variance.detach())).tolist()
        return dict(zip(self.tasks, values))


class DynamicWeightAverage(Balancing):
    """Implements Dynamic Weight Average (Liu, Johns and Davison, "End-to-End Multi-Task Learning with
    Attention", CVPR 2019, arXiv 1803.10704, eq. 7).

    ``lambda_k(t) = K exp(w_k(t-1) / T) / sum_i exp(w_i(t-1) / T)``, ``w_k(t-1) = L_k(t-1) / L_k(t-2)``, where
    ``L_k(t)`` is task k's mean training loss of epoch t; ``lambda_k = 1`` in the first two epochs (no ratio yet).

    Args:
        temperature: ``T`` (2 in the paper); larger is closer to equal weights.
    """

    name = "dwa"

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"dwa temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.history: list[dict[str, float]] = []
        self.lambdas: dict[str, float] = {}

    def bind(self, tasks: list[str], kinds: dict[str, str], static_weights: dict[str, float],
             shared_layer: nn.Module | None = None) -> None:
        super().bind(tasks, kinds, static_weights, shared_layer)
        self.lambdas = {task: 1.0 for task in self.tasks}

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.lambdas[task] * losses[task] for task in self.tasks]).sum()

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        self.history = [*self.history[-1:], {task: float(mean_losses[task]) for task in self.tasks}]
        if len(self.history) < 2:
            return
        before, last = self.history
        # a task whose loss was 0 (no labelled sample that epoch) keeps ratio 1: no information about its pace
        ratios = [last[t] / before[t] if before[t] > 0 else 1.0 for t in self.tasks]
        exps = [math.exp(r / self.temperature) for r in ratios]
        total = sum(exps)
        self.lambdas = {t: len(self.tasks) * e / total for t, e in zip(self.tasks, exps)}

    def weights(self) -> dict[str, float]:
        return dict(self.lambdas)

    def get_extra_state(self) -> dict:
        return {"history": self.history, "lambdas": self.lambdas}

    def set_extra_state(self, state: dict) -> None:
        # resuming from last.ckpt continues the same weights instead of restarting at 1
        self.history, self.lambdas = list(state["history"]), dict(state["lambdas"])
