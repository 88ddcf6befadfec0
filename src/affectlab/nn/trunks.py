"""Shared trunks of multi-task models: the part every task's head reads (``methods/multitask.py``).

A trunk maps a batch (the batch contract's dict) to one shared representation ``[B, D]`` and declares:

- ``out_dim``: ``D``, what every head's input size is built from;
- ``modalities``: the batch entries it reads, checked against the data module's (``BaseMethod.setup``);
- ``last_shared_layer``: the module whose weights GradNorm measures the task gradients on (Chen et al. 2018
  use the last shared layer: cheap, and what every head's gradient passes through);
- ``frozen_modules()``: parts that never train (frozen encoders).

``MultimodalTrunk`` is the spine's encoders and fusion (as ``SupervisedClassifier`` has them); ``MLPTrunk``
reads tabular inputs (batch key ``x`` ``[B, d_in]``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from affectlab.data.contract import mask_key
from affectlab.nn.fusion import create_fusion

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MultimodalTrunk(nn.Module):
    """One encoder per modality, pooled, then fused: ``z = F([E_m(x_m, mask_m)]_m)`` ``[B, fusion_dim]``.

    Args:
        encoders: one encoder per modality, keyed by the batch entry it reads (``video``, ``audio``, ``text``).
        modalities: the subset of ``encoders`` to use; None uses them all.
        fusion: ``concat`` or ``mean`` (``nn/fusion.py``).
        fusion_dim: size of the shared representation (``out_dim``).
        dropout: on the fused vector.
        freeze_encoders: keep the encoders' weights fixed and in eval mode (only fusion and heads train).
    """

    def __init__(
        self,
        encoders: dict[str, nn.Module],
        modalities: list[str] | None = None,
        fusion: str = "concat",
        fusion_dim: int = 256,
        dropout: float = 0.1,
        freeze_encoders: bool = False,
    ) -> None:
        super().__init__()
        used = list(encoders) if modalities is None else list(modalities)
        unknown = [m for m in used if m not in encoders]
        if unknown or not used:
            raise ValueError(f"trunk modalities {used} must be a non-empty subset of the encoders {list(encoders)}")
        self.encoders = nn.ModuleDict({m: encoders[m] for m in used})
        self.fusion = create_fusion(fusion, {m: e.num_features for m, e in self.encoders.items()}, fusion_dim, dropout)
        self.out_dim = fusion_dim
        self.freeze_encoders = freeze_encoders
        if freeze_encoders:
            self.encoders.requires_grad_(False)

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    @property
    def last_shared_layer(self) -> nn.Module:
        """The fusion's last linear layer: every head's gradient passes through it."""
        return [m for m in self.fusion.modules() if isinstance(m, nn.Linear)][-1]

    def frozen_modules(self) -> list[nn.Module]:
        return [self.encoders] if self.freeze_encoders else []

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Each modality's pooled vector ``[B, D_m]``."""
        return {m: encoder(batch[m], batch.get(mask_key(m))) for m, encoder in self.encoders.items()}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.fusion(self.encode(batch))  # (B, fusion_dim)


class MLPTrunk(nn.Module):
    """A plain MLP on tabular inputs: ``depth`` hidden layers of ``width`` with ``activation``, then an optional
    linear output layer (``output_dim``, no activation: the shared output vector whose dimensions regression
    heads select, as seed 002's one network with seven outputs).

    Args:
        in_dim: input size ``d_in`` (batch key ``input_key`` ``[B, d_in]``).
        width: hidden width.
        depth: hidden layers (at least 1).
        activation: ``relu``, ``gelu``, ``tanh`` or ``silu``.
        output_dim: size of a final linear layer, or None to end at the last hidden layer (``out_dim = width``).
        input_key: the batch entry read.
        dropout: after every hidden activation.
    """

    def __init__(
        self,
        in_dim: int,
        width: int = 64,
        depth: int = 2,
        activation: Literal["relu", "gelu", "tanh", "silu"] = "relu",
        output_dim: int | None = None,
        input_key: str = "x",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MLPTrunk depth must be at least 1, got {depth}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLPTrunk activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        size = in_dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            size = width
        if output_dim is not None:
            layers.append(nn.Linear(width, output_dim))
        self.net = nn.Sequential(*layers)
        self.input_key = input_key
        self.out_dim = output_dim if output_dim is not None else width

    @property
    def modalities(self) -> list[str]:
        return [self.input_key]

    @property
    def last_shared_layer(self) -> nn.Module:
        return [m for m in self.net if isinstance(m, nn.Linear)][-1]

    def frozen_modules(self) -> list[nn.Module]:
        return []

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        x = batch[self.input_key].float()
        return self.net(x.reshape(x.shape[0], -1))  # (B, out_dim)


def last_shared_layer(trunk: nn.Module) -> nn.Module:
    """``trunk.last_shared_layer`` where it declares one, else its last submodule holding parameters of its own
    (a trunk written elsewhere need not declare it)."""
    declared = getattr(trunk, "last_shared_layer", None)
    if isinstance(declared, nn.Module):
        return declared
    owning = [m for m in trunk.modules() if any(True for _ in m.parameters(recurse=False))]
    if not owning:
        raise ValueError(f"{type(trunk).__name__} has no parameters to measure task gradients on")
    return owning[-1]
