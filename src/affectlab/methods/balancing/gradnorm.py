"""Implements GradNorm (Chen, Badrinarayanan, Lee and Rabinovich, ICML 2018, arXiv 1711.02257, Algorithm 1).

Per step, with learned weights ``w_k`` (1 at start) and ``W`` the trunk's last shared layer:

1. ``G_k = || grad_W (w_k L_k) ||_2 = w_k || grad_W L_k ||_2``, ``G_bar = mean_k G_k``;
2. ``L~_k = L_k(t) / L_k(0)`` (the first step's loss), ``r_k = L~_k / mean_j L~_j`` (relative inverse rate);
3. ``L_grad = sum_k | G_k - G_bar r_k^alpha |`` with the target ``G_bar r_k^alpha`` held constant (eq. 2), whose
   gradient moves only the weights;
4. the network descends ``sum_k w_k L_k`` with the weights held constant;
5. after the step the weights are renormalised to sum to K.

Steps 3 and 4 are one backward here: the returned scalar is ``sum_k sg(w_k) L_k + L_grad`` where
``|| grad_W L_k ||`` is computed without a graph, so ``L_grad`` reaches the weights only and the network's
gradient is that of ``sum_k w_k L_k``. The weights train with the method's optimiser (its learning rate).
"""

from __future__ import annotations

import torch
from torch import nn

from affectlab.methods.balancing.base import Balancing


class GradNorm(Balancing):
    """Args:
        alpha: the restoring force ``alpha`` (1.5 in most of the paper's experiments); 0 equalises gradient
            norms whatever the training rates.
    """

    name = "gradnorm"

    def __init__(self, alpha: float = 1.5) -> None:
        super().__init__()
        self.alpha = alpha
        self.loss_weight = nn.Parameter(torch.ones(0))
        self._shared: list[nn.Parameter] = []
        self._last_loss = 0.0

    def bind(self, tasks: list[str], kinds: dict[str, str], static_weights: dict[str, float],
             shared_layer: nn.Module | None = None) -> None:
        super().bind(tasks, kinds, static_weights, shared_layer)
        if shared_layer is None:
            raise ValueError("GradNorm needs the trunk's last shared layer")
        self.loss_weight = nn.Parameter(torch.ones(len(self.tasks)))
        self.register_buffer("initial_loss", torch.zeros(len(self.tasks)))  # L_k(0); 0 until task k was seen
        # a plain list, not registered: these parameters belong to the trunk
        self._shared = [p for p in shared_layer.parameters() if p.requires_grad]

    def combine(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([losses[task] for task in self.tasks])  # (K,)
        detached = stacked.detach()
        with torch.no_grad():  # L_k(0): the first step on which task k had a (non-zero) loss
            unseen = (self.initial_loss == 0) & (detached > 0)
            self.initial_loss[unseen] = detached[unseen]
        norms = []
        for loss in stacked:  # 1. ||grad_W L_k||, no graph: a constant for the weights' gradient
            if not loss.requires_grad:
                norms.append(torch.zeros((), device=stacked.device))
                continue
            grads = torch.autograd.grad(loss, self._shared, retain_graph=True, allow_unused=True)
            norms.append(torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None), torch.zeros((), device=stacked.device))))
        G = self.loss_weight * torch.stack(norms).to(stacked.device)  # (K,) G_k = w_k ||grad_W L_k||
        # tasks with a loss now and a first loss to compare with; one absent from this batch (loss 0) would pull
        # G_bar and the mean rate towards 0
        active = (self.initial_loss > 0) & (detached > 0)
        objective = (self.loss_weight.detach() * stacked).sum()  # 4.
        if active.sum() < 1:
            self._last_loss = 0.0
            return objective
        with torch.no_grad():  # 2. and the constant target of 3.
            ratio = torch.where(active, detached / self.initial_loss.clamp_min(1e-12), torch.zeros_like(detached))
            relative = ratio / ratio[active].mean().clamp_min(1e-12)
            target = G[active].mean() * relative.pow(self.alpha)
        grad_loss = (G - target).abs()[active].sum()  # 3. L_grad
        self._last_loss = float(grad_loss.detach())
        return objective + grad_loss

    def after_step(self) -> None:
        with torch.no_grad():  # 5. renormalise: sum_k w_k = K
            self.loss_weight.clamp_(min=1e-6)
            self.loss_weight.mul_(len(self.tasks) / self.loss_weight.sum())

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.loss_weight.detach().tolist()))

    def statistics(self) -> dict[str, float]:
        return {"gradnorm_loss": self._last_loss}
