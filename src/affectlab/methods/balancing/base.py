"""What every loss-balancing strategy of ``MultiTaskMethod`` implements (``methods/balancing/``).

A strategy is bound to the task names (and each task's kind and the trunk's last shared layer, which some
need) when the method is built, so parameters it learns (uncertainty's log-variances, GradNorm's weights)
exist before the optimisers are made and train with the rest. Loss weighting strategies implement
``combine``: the task losses ``L_k`` (already multiplied by each head's static ``weight``) in, one scalar out,
and autograd does the rest. Gradient aggregators (``aggregates_gradients``) implement ``backward`` instead:
they need each task's gradient on the shared parameters, which one scalar's backward cannot give.
"""

from __future__ import annotations

import torch
from torch import nn


class Balancing(nn.Module):
    """Base of the balancing strategies; ``weights()`` and ``statistics()`` are what the method logs per epoch."""

    #: the name a config selects it by (``balancing: <name>``).
    name: str = ""
    #: True for strategies that set the gradients themselves (``backward``) instead of returning a loss.
    aggregates_gradients: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[str] = []
        self.kinds: dict[str, str] = {}
        self.static_weights: dict[str, float] = {}

    def bind(self, tasks: list[str], kinds: dict[str, str], static_weights: dict[str, float],
             shared_layer: nn.Module | None = None) -> None:
        """Learn the task names and kinds (and the trunk's last shared layer); called once by the method."""
        self.tasks, self.kinds, self.static_weights = list(tasks), dict(kinds), dict(static_weights)

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The scalar to minimise from the task losses ``{task: L_k}``."""
        raise NotImplementedError(f"{type(self).__name__} combines no losses; it aggregates gradients")

    def weights(self) -> dict[str, float]:
        """The current weight of each task's loss, as logged (``train/weight_<task>``)."""
        return {}

    def statistics(self) -> dict[str, float]:
        """Further per-step quantities worth a curve (gradient conflicts), logged as ``train/<name>``."""
        return {}

    def after_step(self) -> None:
        """Called after every optimiser step (GradNorm renormalises its weights here)."""

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        """Called at the end of every training epoch with each task's mean loss of that epoch (DWA)."""
