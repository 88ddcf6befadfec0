"""Fusion of per-modality vectors into one representation."""

from __future__ import annotations

import torch
from torch import nn


class ConcatFusion(nn.Module):
    """Concatenate the modality vectors in a fixed order, then a linear projection with GELU and dropout.

    Args:
        in_features: size of each modality's vector, by modality name; the order of this dict is the
            concatenation order.
        dim: size of the fused vector.
        dropout: on the fused vector.
    """

    def __init__(self, in_features: dict[str, int], dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.modalities = list(in_features)
        self.project = nn.Sequential(nn.Linear(sum(in_features.values()), dim), nn.GELU(), nn.Dropout(dropout))
        self.num_features = dim

    def forward(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.project(torch.cat([vectors[m] for m in self.modalities], dim=-1))  # (B, dim)


class MeanFusion(nn.Module):
    """Project every modality to ``dim`` and average: robust when a modality is missing at test time."""

    def __init__(self, in_features: dict[str, int], dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in in_features.items()})
        self.out = nn.Sequential(nn.GELU(), nn.Dropout(dropout))
        self.num_features = dim

    def forward(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        projected = torch.stack([self.project[m](v) for m, v in vectors.items()])  # (M, B, dim)
        return self.out(projected.mean(dim=0))


FUSIONS = {"concat": ConcatFusion, "mean": MeanFusion}


def create_fusion(name: str, in_features: dict[str, int], dim: int, dropout: float) -> nn.Module:
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose one of {sorted(FUSIONS)}")
    return FUSIONS[name](in_features, dim, dropout)
