"""Prediction heads."""

from __future__ import annotations

import torch
from torch import nn


class ClassificationHead(nn.Module):
    """Dropout then a linear layer to class logits ``[B, num_classes]``."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))


class ContextGating(nn.Module):
    """``x * sigmoid(W x + b)``: each feature gated by all of them (Miech et al., arXiv 1706.06905)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.glu(torch.cat([x, self.fc(x)], dim=-1), dim=-1)


class GatedEmbeddingUnit(nn.Module):
    """ConCluGen's per-modality representation head: fc -> ReLU -> context gating -> fc -> ReLU."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, out_features), nn.ReLU(), ContextGating(out_features),
            nn.Linear(out_features, out_features), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ProjectionHead(nn.Module):
    """ConCluGen's shared projection: Linear(d -> h) -> BN -> ReLU -> Linear(-> projection_dim) -> ReLU.

    Returns the projection before L2 normalisation: the cluster head reads it as it is, the contrastive
    loss normalises it.

    The original fixes h = d/8, which is 512 at its d = 4096. At AffectLab's small representation sizes d/8
    is a bottleneck (32 at d = 256), so narrow that three modalities sharing the head stop learning on
    AffectSynth (docs/results.md); ``hidden_dim`` sets h, None keeps d/8.
    """

    def __init__(self, in_features: int, projection_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden = hidden_dim or max(in_features // 8, 1)
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, projection_dim), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ReconstructionHead(nn.Module):
    """Linear -> ReLU -> Linear back to a modality's feature size; a final ReLU when the targets are
    non-negative (post-ReLU backbone features, as in the original)."""

    def __init__(self, in_features: int, hidden: int, out_features: int, non_negative: bool = False) -> None:
        super().__init__()
        layers = [nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features)]
        self.net = nn.Sequential(*layers, nn.ReLU()) if non_negative else nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
