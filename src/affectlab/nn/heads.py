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
