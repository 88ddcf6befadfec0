"""Mixup (Zhang et al. 2018, arXiv 1710.09412) with CluP's mix-augmentation term (arXiv 2210.05246).

One lambda per batch, l ~ Beta(alpha, alpha), and one permutation pi of the batch:

    x~ = l x + (1 - l) x[pi]
    L  = l D(f(x~), y) + (1 - l) D(f(x~), y[pi]) + mixaug_alpha D(f(x~), y)

D is the cross-entropy for hard labels ``y`` ``[B]`` and KL(y || softmax f) averaged over the batch for soft
labels ``y`` ``[B, C]`` (CluP's soft-purity). The last term scores the *mixed* input against the *unmixed*
label, as the original's ``mixaug_alpha`` does (0 in its four recipes). alpha = 0 gives l = 0 (x~ = x[pi]), as
the original's; no mixup at all is the caller's choice (not calling ``mix``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mix(x: torch.Tensor, alpha: float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, float, torch.Tensor]:
    """``(x~, l, pi)``: ``x`` ``[B, ...]`` mixed with a permutation of itself by one l ~ Beta(alpha, alpha)."""
    lam = 0.0
    if alpha > 0:
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(x), generator=generator).to(x.device)  # (B,)
    return lam * x + (1 - lam) * x[perm], lam, perm


def divergence(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """D: cross-entropy for ``[B]`` class targets, batch-mean KL(target || softmax(logits)) for ``[B, C]``."""
    if target.ndim == 1:
        return F.cross_entropy(logits, target)
    return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean")


def mixup_loss(logits: torch.Tensor, target: torch.Tensor, lam: float, perm: torch.Tensor,
               mixaug_alpha: float = 0.0) -> torch.Tensor:
    """The module's L for the mixed input's ``logits`` ``[B, C]`` and the unmixed ``target`` (``[B]`` or ``[B, C]``)."""
    loss = lam * divergence(logits, target) + (1 - lam) * divergence(logits, target[perm])
    if mixaug_alpha:
        loss = loss + mixaug_alpha * divergence(logits, target)
    return loss
