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


@register_encoder
class PrecomputedFeatures(Encoder):
    """Backbone features computed beforehand, passed through unchanged: ``[B, D]`` or ``[B, T, D]`` (pooled).

    ConCluGen's original set-up: a frozen backbone's pooled vector per clip and modality (ResNet-152 +
    ResNet3D-101 video 4096, ResDAVEnet audio 1024, DistilRoBERTa text 768), on which only the heads train.

    Args:
        in_features: size of the feature vectors (D).
        modality: which batch entry this encoder reads.
        pooling: over time when given sequences ``[B, T, D]``: ``mean`` or ``max``.
    """

    def __init__(self, in_features: int, modality: str = "video", pooling: str = "mean") -> None:
        super().__init__()
        self.modality = modality
        self.num_features = in_features
        self.pooling = pooling

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.ndim == 2:  # already pooled: a sequence of length 1
            return x.unsqueeze(1), None
        return x, mask  # (B, T, D)
