"""Encoders over precomputed feature sequences (the feature store, ConCluGen's backbone features)."""

from __future__ import annotations

import torch
from torch import nn

from affectlab.nn.encoders.base import Encoder, register_encoder


@register_encoder
class FeatureSequenceEncoder(Encoder):
    """Project precomputed features ``[B, T, D_in]`` (or pooled ``[B, D_in]``) to ``[B, T, dim]``.

    Args:
        in_features: size of the precomputed feature vectors.
        dim: output size.
        modality: which batch entry this encoder reads (``video``, ``audio``, ``text``, ``pose``).
        dropout: applied to the projected features.
    """

    def __init__(self, in_features: int, dim: int = 128, modality: str = "video", dropout: float = 0.1) -> None:
        super().__init__()
        self.modality = modality
        self.project = nn.Sequential(nn.LayerNorm(in_features), nn.Linear(in_features, dim), nn.GELU(), nn.Dropout(dropout))
        self.num_features = dim

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.ndim == 2:  # one pooled vector per clip: a sequence of length 1
            x = x.unsqueeze(1)
            mask = None
        return self.project(x), mask  # (B, T, dim)
