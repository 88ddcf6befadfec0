"""Gradient aggregation through torchjd 0.18 (Jacobian descent, arXiv 2406.16232): UPGrad, PCGrad, CAGrad.

Instead of one scalar, each task's loss is differentiated on its own: ``torchjd.autojac.mtl_backward`` puts
each head's gradient in its ``.grad`` and the Jacobian of all task losses with respect to the shared (trunk)
parameters, one row per task, in their ``.jac``; ``jac_to_grad`` reduces that Jacobian to one update with
the aggregator and returns the weights it gave each row. torchjd implements the aggregators:

- UPGrad (Quinton and Rey, arXiv 2406.16232): each task gradient projected onto the dual cone of all of them,
  then averaged, so no task's loss increases to first order;
- PCGrad (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020, arXiv 2001.06782, Algorithm 1):
  each gradient's component along a conflicting (negative inner product) gradient removed, then summed;
- CAGrad (Liu et al., "Conflict-Averse Gradient Descent", NeurIPS 2021, arXiv 2110.14048): the update within
  a ball of radius ``c ||g_0||`` around the mean gradient that maximises the worst task's improvement
  (torchjd solves it with cvxpy: ``torchjd[cagrad]``).

Logged per step (and so per epoch as means): each row's weight (``train/weight_<task>``), each task
gradient's norm on the shared parameters (``train/grad_norm_<task>``) and the cosine between task gradients
(``train/grad_cosine``: the mean over pairs, for two tasks their cosine), the conflict statistics.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from affectlab.errors import ConfigError
from affectlab.methods.balancing.base import Balancing


class JacobianAggregation(Balancing):
    """Base of the torchjd aggregators: ``backward`` instead of ``combine``."""

    aggregates_gradients = True

    def __init__(self) -> None:
        super().__init__()
        self._weights: dict[str, float] = {}
        self._statistics: dict[str, float] = {}

    def make_aggregator(self):
        raise NotImplementedError

    def bind(self, tasks: list[str], kinds: dict[str, str], static_weights: dict[str, float],
             shared_layer: nn.Module | None = None) -> None:
        super().bind(tasks, kinds, static_weights, shared_layer)
        try:  # built here, so a missing solver stops the run before training
            self.aggregator = self.make_aggregator()
        except ImportError as error:  # UPGrad's quadprog, CAGrad's cvxpy: torchjd's optional extras
            raise ConfigError(f"model.init_args.balancing: {self.name} needs a solver torchjd installs as an extra "
                              f"({error}); pip install 'torchjd[quadprog-projector,cagrad]==0.18.0'") from None

    def backward(self, losses: dict[str, torch.Tensor], features: torch.Tensor, shared: list[nn.Parameter],
                 heads: dict[str, list[nn.Parameter]], active: list[str] | None = None) -> None:
        """Accumulate the aggregated update in ``.grad`` of ``shared`` and each task's gradient in its head's.

        Args:
            losses: ``{task: L_k}`` scalars.
            features: the trunk's output ``[B, D]`` every head read.
            shared: the trunk's trainable parameters.
            heads: each task's head parameters.
            active: the tasks with labelled samples in this batch (None: all). Only their rows are aggregated:
                a task without labels has a zero gradient, which is no direction to keep (CAGrad's optimum
                puts all weight on it, UPGrad's projection onto its dual cone is void) but would still move
                the weights; with one active task the update is that task's gradient.
        """
        from torchjd.autojac import jac_to_grad, mtl_backward

        tasks = [t for t in self.tasks if active is None or t in active]
        self._weights, self._statistics = {}, {}
        if not tasks:
            return
        if len(tasks) == 1:
            losses[tasks[0]].backward()
            self._weights = {tasks[0]: 1.0}
            return
        mtl_backward([losses[t] for t in tasks], features=features, tasks_params=[heads[t] for t in tasks],
                     shared_params=shared)
        with_jac = [p for p in shared if getattr(p, "jac", None) is not None]
        jacobian = torch.cat([p.jac.reshape(len(tasks), -1) for p in with_jac], dim=1)  # (K, P) task gradients
        self._statistics = conflict_statistics(jacobian.detach(), tasks)
        weights = jac_to_grad(with_jac, self.aggregator)
        if weights is not None:
            self._weights = dict(zip(tasks, weights.detach().flatten().tolist()))

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def statistics(self) -> dict[str, float]:
        return dict(self._statistics)


def conflict_statistics(jacobian: torch.Tensor, tasks: list[str]) -> dict[str, float]:
    """Each row's norm and the mean pairwise cosine of the rows of ``jacobian`` ``[K, P]`` (a zero row, a task
    without labels in the batch, is left out of the cosines)."""
    norms = jacobian.norm(dim=1)  # (K,)
    values = {f"grad_norm_{task}": float(n) for task, n in zip(tasks, norms)}
    cosines = [float(jacobian[i] @ jacobian[j] / (norms[i] * norms[j]))
               for i, j in itertools.combinations(range(len(tasks)), 2) if norms[i] > 0 and norms[j] > 0]
    if cosines:
        values["grad_cosine"] = sum(cosines) / len(cosines)
    return values


class UPGradAggregation(JacobianAggregation):
    """torchjd's ``UPGrad`` (module docstring)."""

    name = "upgrad"

    def make_aggregator(self):
        from torchjd.aggregation import UPGrad

        return UPGrad()


class PCGradAggregation(JacobianAggregation):
    """torchjd's ``PCGrad`` (module docstring)."""

    name = "pcgrad"

    def make_aggregator(self):
        from torchjd.aggregation import PCGrad

        return PCGrad()


class CAGradAggregation(JacobianAggregation):
    """torchjd's ``CAGrad`` (module docstring).

    Args:
        c: the radius' scale (the paper's ``c``; 0.4 and 0.5 in its experiments); 0 is the mean gradient.
    """

    name = "cagrad"

    def __init__(self, c: float = 0.5) -> None:
        super().__init__()
        self.c = c

    def make_aggregator(self):
        from torchjd.aggregation import CAGrad

        return CAGrad(c=self.c)
