"""Action unit heads (seed 001, FaceFlow): each owns its AU subset, its prediction layer, its loss and its
final activation, and is built once the backbone's channel count is known (a config gives it as a partial:
``class_path`` + ``init_args`` without ``in_channels``).

Per head, on the backbone's last feature map ``[N, C, H, W]``:
    logits = GAP(conv1x1(features))  reshaped to ``[N, A, L]`` (A AUs, L logits per AU)
The activation is applied only to predict (``predict``), never inside ``forward``, so losses get logits.

- ``OccurrenceHead``: L = 1, BCE with logits (optionally with per-AU ``pos_weight`` = negatives / positives of
  the training data), probabilities by sigmoid; the target is ``au`` (0/1).
- ``IntensityHead``: the target is ``au_intensity`` (0-5).
  ``regression``: L = 1, ``5 * sigmoid`` fitted by MSE.
  ``ordinal``: L = ``levels`` (5) bits, bit k set when the intensity exceeds k + 0.5 (so intensity 3 is
  ``1,1,1,0,0``), BCE per bit; the prediction is the number of bits with probability above 0.5. FaceFlow's
  encoding thresholds intensities that were never normalised from 0-5 to 0-1 (a defect): here the
  thresholds are on the 0-5 scale itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.data.contract import ACTION_UNITS

MAX_INTENSITY = 5.0


class AUHead(nn.Module):
    """Shared part of the AU heads: the 1x1 convolution + global average pooling, the AU subset."""

    task = ""

    def __init__(self, in_channels: int, aus: list[int] | None, logits_per_au: int, weight: float) -> None:
        super().__init__()
        self.aus = list(aus or ACTION_UNITS)
        unknown = [au for au in self.aus if au not in ACTION_UNITS]
        if unknown:
            raise ValueError(f"AUs {unknown} are not among the modelled {list(ACTION_UNITS)}")
        self.logits_per_au = logits_per_au
        self.weight = weight
        self.project = nn.Conv2d(in_channels, len(self.aus) * logits_per_au, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.project(features).mean(dim=(2, 3))  # (N, A * L)
        return logits.view(len(logits), len(self.aus), self.logits_per_au)  # (N, A, L)


class OccurrenceHead(AUHead):
    """AU presence (multi-label). Args: in_channels (from the backbone), aus (default: all 12),
    positive_weighting (BCE ``pos_weight`` from the train data's counts), weight (in the total loss)."""

    task = "au"

    def __init__(self, in_channels: int, aus: list[int] | None = None, positive_weighting: bool = True,
                 weight: float = 1.0) -> None:
        super().__init__(in_channels, aus, 1, weight)
        self.positive_weighting = positive_weighting
        self.register_buffer("pos_weight", torch.ones(len(self.aus)))

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.pos_weight if self.positive_weighting else None
        return F.binary_cross_entropy_with_logits(logits[..., 0], target, pos_weight=weight)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[..., 0].sigmoid()  # (N, A) probabilities


class IntensityHead(AUHead):
    """AU intensity 0-5. Args: in_channels, aus, mode (``regression`` or ``ordinal``), levels (ordinal bits),
    weight (in the total loss)."""

    task = "au_intensity"

    def __init__(self, in_channels: int, aus: list[int] | None = None, mode: str = "ordinal", levels: int = 5,
                 weight: float = 1.0) -> None:
        if mode not in ("regression", "ordinal"):
            raise ValueError(f"IntensityHead mode must be 'regression' or 'ordinal', got {mode!r}")
        super().__init__(in_channels, aus, levels if mode == "ordinal" else 1, weight)
        self.mode, self.levels = mode, levels
        # Bit k is on when the intensity exceeds the k-th threshold: 0.5, 1.5, ... on the 0-5 scale.
        self.register_buffer("thresholds", (torch.arange(levels) + 0.5) * MAX_INTENSITY / levels, persistent=False)

    def encode(self, intensity: torch.Tensor) -> torch.Tensor:
        """``[N, A]`` intensities -> ``[N, A, levels]`` ordinal bits."""
        return (intensity[..., None] > self.thresholds).float()

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.mode == "regression":
            return F.mse_loss(MAX_INTENSITY * logits[..., 0].sigmoid(), target)
        return F.binary_cross_entropy_with_logits(logits, self.encode(target))

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "regression":
            return MAX_INTENSITY * logits[..., 0].sigmoid()  # (N, A)
        return (logits.sigmoid() > 0.5).sum(dim=-1).float() * (MAX_INTENSITY / self.levels)  # (N, A)


class EmotionHead(AUHead):
    """Basic emotion beside the AUs, from the same features (FaceFlow's heads list admits any task).
    Args: in_channels, num_classes (7: ``contract.EMOTIONS``), weight (in the total loss). Cross-entropy on
    logits; ``predict`` gives softmax probabilities. ``aus`` is empty: it reads the ``emotion`` target."""

    task = "emotion"

    def __init__(self, in_channels: int, num_classes: int = 7, weight: float = 1.0) -> None:
        nn.Module.__init__(self)
        self.aus: list[int] = []
        self.num_classes, self.logits_per_au, self.weight = num_classes, 1, weight
        self.project = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.project(features).mean(dim=(2, 3))[:, None, :]  # (N, 1, C): one "unit" with C logits

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits[:, 0], target.long())

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, 0].softmax(dim=-1)  # (N, C)
