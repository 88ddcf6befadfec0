"""The uniform interface every encoder has, and the registry that builds encoders by name.

Every encoder maps one modality's input and mask to
- ``forward_features(x, mask) -> (features [B, T', D], mask [B, T'])``: a sequence, for methods that
  need time (translation, temporal heads);
- ``forward(x, mask) -> [B, D]``: one pooled vector per sample, for classification and SSL heads;
and exposes ``num_features`` (D) and ``feature_info`` (``num_chs`` and ``reduction``, the temporal or
spatial stride of the output), as timm models do.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from affectlab.nn.pooling import POOLINGS

_ENCODERS: dict[str, Callable[..., "Encoder"]] = {}


def register_encoder(fn: Callable[..., "Encoder"]) -> Callable[..., "Encoder"]:
    """Record ``fn`` (a class or factory) under its ``__name__`` so ``create_encoder`` can build it by name."""
    name = fn.__name__
    if name in _ENCODERS:
        raise ValueError(f"encoder {name!r} is registered twice")
    _ENCODERS[name] = fn
    return fn


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


def create_encoder(name: str, **kwargs) -> "Encoder":
    """Build a registered encoder; an unknown name raises and lists the known ones."""
    if name not in _ENCODERS:
        raise KeyError(f"unknown encoder {name!r}; registered encoders: {', '.join(list_encoders())}")
    return _ENCODERS[name](**kwargs)


class Encoder(nn.Module):
    """Base of all encoders: subclasses set ``modality`` and ``num_features`` and implement ``forward_features``."""

    modality: str = ""
    num_features: int = 0
    reduction: int = 1
    pooling: str = "mean"  # over time in ``forward``: "mean" or "max"

    @property
    def feature_info(self) -> list[dict]:
        return [{"num_chs": self.num_features, "reduction": self.reduction, "module": ""}]

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        features, mask = self.forward_features(x, mask)  # (B, T', D), (B, T')
        return POOLINGS[self.pooling](features, mask)  # (B, D)
