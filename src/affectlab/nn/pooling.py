"""Masked pooling over time: padded steps (mask False) never contribute."""

from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the time axis of ``x`` ``[B, T, D]`` counting only steps where ``mask`` ``[B, T]`` is True.

    A sample whose mask is all False pools to zeros rather than NaN, so a missing modality
    contributes nothing instead of poisoning the batch.
    """
    if mask is None:
        return x.mean(dim=1)
    weights = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
    total = (x * weights).sum(dim=1)  # (B, D)
    count = weights.sum(dim=1).clamp_min(1.0)  # (B, 1)
    return total / count


def downsample_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    """Shrink a ``[B, T]`` mask to ``[B, length]`` after a strided layer: a step is real if any input step was."""
    if mask.shape[1] == length:
        return mask
    pooled = torch.nn.functional.adaptive_max_pool1d(mask.unsqueeze(1).float(), length)  # (B, 1, length)
    return pooled.squeeze(1) > 0


def masked_max(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Maximum over the time axis of ``x`` ``[B, T, D]`` over real steps; an all-padding sample gives zeros.

    Max keeps the apex of a transient event (an expression's peak frame) that a mean over the clip dilutes.
    """
    if mask is None:
        return x.amax(dim=1)
    filled = x.masked_fill(~mask.unsqueeze(-1), float("-inf"))  # (B, T, D)
    pooled = filled.amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))


POOLINGS = {"mean": masked_mean, "max": masked_max}
