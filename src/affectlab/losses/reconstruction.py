"""Implements ConCluGen's reconstruction loss (https://arxiv.org/abs/2404.10904).

Each modality's representation is decoded back to its frozen backbone feature x_m ``[B, F_m]``; the loss is
the mean squared error per modality, summed over modalities:

    L = sum_m 1/(B F_m) sum_{i,f} (x^_m,if - x_m,if)^2.

Summing (not averaging) keeps each modality's weight independent of how many modalities a variant uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(
    reconstructions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MSE (mean over all elements) per modality, summed over modalities.

    Args:
        reconstructions: modality -> decoded features, any shape.
        targets: modality -> the frozen backbone features of the same shape (a constant: pass them detached if
            they come from a module that trains); must hold every modality of ``reconstructions``.

    Returns:
        ``(total, per_modality)``: the sum and each modality's MSE.
    """
    if not reconstructions:
        raise ValueError("the reconstruction loss needs at least one modality")
    missing = sorted(set(reconstructions) - set(targets))
    if missing:
        raise ValueError(f"no target features for reconstructed modalities {missing}; targets hold {sorted(targets)}")
    for m, x_hat in reconstructions.items():
        if x_hat.shape != targets[m].shape:  # F.mse_loss would broadcast with only a warning
            raise ValueError(f"{m}: reconstruction {tuple(x_hat.shape)} != target {tuple(targets[m].shape)}")
    per_modality = {m: F.mse_loss(x_hat, targets[m]) for m, x_hat in reconstructions.items()}
    return torch.stack(list(per_modality.values())).sum(), per_modality
