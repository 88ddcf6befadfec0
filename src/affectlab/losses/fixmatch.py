"""The pseudo-label loss of FixMatch (Sohn et al., 2020, arXiv 2001.07685) for multi-label outputs, and its
debiased use in DeFixMatch (Schmutz et al., 2022, arXiv 2203.07512).

For one multi-label head with weak-view logits w and strong-view logits s ``[N, A]`` and threshold tau:

    p = sigmoid(w)                                    (no gradient: the pseudo-labels are targets)
    keep_na = [p_na >= tau  or  p_na <= 1 - tau]      (confident either way)
    yhat_na = [p_na >= 0.5]
    L_u = 1 / (N A) sum_na keep_na BCE(s_na, yhat_na)

FixMatch minimises L = L_s + lambda_u L_u over an unlabelled batch. DeFixMatch subtracts the same loss
computed on the *labelled* batch, L_anti (pseudo-labels from its weak view, loss on its strong view), which
removes the bias that confirming its own guesses adds: L = L_s + lambda_u (L_u - L_anti).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pseudo_label_loss(weak_logits: torch.Tensor, strong_logits: torch.Tensor, p_cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_u, fraction of kept entries)`` from ``[N, A]`` weak- and strong-view logits, threshold ``p_cutoff``."""
    p = weak_logits.detach().sigmoid()
    keep = ((p >= p_cutoff) | (p <= 1 - p_cutoff)).float()
    target = (p >= 0.5).float()
    loss = F.binary_cross_entropy_with_logits(strong_logits, target, reduction="none")
    return (loss * keep).mean(), keep.mean()
