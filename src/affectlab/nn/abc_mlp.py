"""abcMLP: an MLP in the abc-parametrisation of Yang & Hu, "Feature Learning in Infinite-Width Neural Networks"
(ICML 2021, https://arxiv.org/abs/2011.14522), as seed 002 (wowolo/multi_task_learning@229f6cc,
``core_code/model_lib/abcMLP.py``) builds it.

Layer l maps ``x [B, n_in] -> x A n_in^-a_l + bias``, its weight initialised ``A ~ N(0, 1) n_in^-b_l`` and its
bias ``~ N(0, 1)``; ReLU between layers, none after the last. The exponents choose the parametrisation:

- NTK (the seed's experiment): ``a = [0, 1/2, ..., 1/2]``, ``b = 0``: a layer's output scale is set by the
  multiplier, every weight starts at unit variance;
- muP (the original's defaults): ``a = [-1/2, 0, ..., 0, 1/2]``, ``b = 1/2``.

(Learning rates scale with ``c`` in the paper; the seed trains with one plain SGD rate, ``c = 0``.) The parameters
are drawn layer by layer, weight then bias, from torch's generator, as the original draws them: the same seed
gives the original's initial network (docs/multitask.md, "compositeSine").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

NTK = {"a": [0.0, 0.5, 0.5, 0.5, 0.5, 0.5], "b": [0.0] * 6}
MUP = {"a": [-0.5, 0.0, 0.0, 0.0, 0.0, 0.5], "b": [0.5] * 6}
PARAMETRISATIONS = {"ntk": NTK, "mup": MUP}


class AbcLayer(nn.Module):
    """``x A n_in^-a + bias`` with ``A ~ N(0, 1) n_in^-b`` ``[n_in, n_out]`` and ``bias ~ N(0, 1)`` ``[n_out]``."""

    def __init__(self, in_features: int, out_features: int, a: float, b: float, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features, self.a, self.b = in_features, out_features, float(a), float(b)
        self.A = nn.Parameter(torch.randn(in_features, out_features) * in_features ** (-self.b))
        self.bias = nn.Parameter(torch.randn(out_features)) if bias else None
        self.multiplier = in_features ** (-self.a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.A * self.multiplier  # (B, n_out)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, a={self.a}, b={self.b}, bias={self.bias is not None}"


class AbcMLPTrunk(nn.Module):
    """A multi-task trunk: batch key ``input_key`` ``[B, d_in]`` -> ``[B, out_dim]`` through ``depth`` abc layers.

    In compositeSine the trunk's output is the seven-output vector itself and each task's head reads a slice of
    it (task_0 output 0, task_1 outputs 1-6), as the original's single network does. It declares what a
    multi-task trunk declares (``nn/trunks.py``): ``out_dim``, ``modalities``, ``last_shared_layer``.

    Args:
        in_dim: input features (``d_in``).
        out_dim: outputs of the last layer (``d_out``).
        width: hidden width.
        depth: layers (``depth - 1`` hidden ones); 1 is a single ``in_dim -> out_dim`` layer.
        parametrisation: ``ntk`` or ``mup`` (module docstring), or ``custom`` with ``a`` and ``b``.
        a: per-layer multiplier exponents (``depth`` of them); given, they replace the parametrisation's.
        b: per-layer initialisation exponents (``depth`` of them), likewise.
        bias: each layer has an N(0, 1) bias.
        input_key: the batch key of the input.
    """

    def __init__(self, in_dim: int = 1, out_dim: int = 7, width: int = 2048, depth: int = 6,
                 parametrisation: str = "ntk", a: Sequence[float] | None = None, b: Sequence[float] | None = None,
                 bias: bool = True, input_key: str = "x") -> None:
        super().__init__()
        if parametrisation not in (*PARAMETRISATIONS, "custom"):
            raise ValueError(f"parametrisation must be one of {[*PARAMETRISATIONS, 'custom']}, got {parametrisation!r}")
        if parametrisation == "custom" and (a is None or b is None):
            raise ValueError("parametrisation custom needs both a and b, one exponent per layer")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        preset = PARAMETRISATIONS.get(parametrisation, {})
        a = list(a) if a is not None else _stretch(preset["a"], depth)
        b = list(b) if b is not None else _stretch(preset["b"], depth)
        if len(a) != depth or len(b) != depth:
            raise ValueError(f"a and b need one exponent per layer ({depth}), got {len(a)} and {len(b)}")
        sizes = [in_dim] + [width] * (depth - 1) + [out_dim]
        self.layers = nn.ModuleList(AbcLayer(sizes[i], sizes[i + 1], a[i], b[i], bias) for i in range(depth))
        self.activation = nn.ReLU()
        self.in_dim, self.out_dim, self.input_key = in_dim, out_dim, input_key

    @property
    def modalities(self) -> list[str]:
        """The batch entries read (a multi-task trunk's declaration, ``nn/trunks.py``)."""
        return [self.input_key]

    @property
    def last_shared_layer(self) -> nn.Module:
        """Where GradNorm measures task gradients: the output layer, which every task's slice passes through."""
        return self.layers[-1]

    def frozen_modules(self) -> list[nn.Module]:
        return []

    def forward(self, batch: dict[str, Any] | torch.Tensor) -> torch.Tensor:
        x = batch[self.input_key] if isinstance(batch, dict) else batch  # (B, d_in)
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))  # (B, width)
        return self.layers[-1](x)  # (B, d_out)


def _stretch(exponents: list[float], depth: int) -> list[float]:
    """A preset's exponents for ``depth`` layers: first and last kept, the middle value repeated."""
    if depth == len(exponents):
        return list(exponents)
    if depth == 1:
        return [exponents[0]]
    return [exponents[0]] + [exponents[1]] * (depth - 2) + [exponents[-1]]
