"""The pose mapper of seed 003 (multimodalhugs): each frame's keypoints, flattened, mapped to the model width.

``LayerNorm(K * C) -> Linear(K * C -> d_model) -> Dropout``, frame by frame. Missing keypoints (a hand out of
view, a component the estimator did not produce) are zeroed as *input values* only, so the layer norm and the
linear map see a defined number; whether a frame is real stays in the frame mask, which the encoder's
attention reads. Non-finite coordinates are treated as missing, since pose-format's masked arrays hold
arbitrary values under their mask.
"""

from __future__ import annotations

import torch
from torch import nn


class PoseMapper(nn.Module):
    """Flattened frames ``[B, T, K, C]`` -> ``[B, T, d_model]``.

    Args:
        num_keypoints: K, points per frame.
        num_channels: C, values per point (x, y[, z][, confidence]).
        d_model: width of the sequence model it feeds.
        dropout: after the linear map (the seed's 0.1).
    """

    def __init__(self, num_keypoints: int, num_channels: int, d_model: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.num_channels = num_channels
        self.frame_dim = num_keypoints * num_channels
        self.norm = nn.LayerNorm(self.frame_dim)
        self.linear = nn.Linear(self.frame_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, pose: torch.Tensor, points_mask: torch.Tensor | None = None) -> torch.Tensor:
        if pose.ndim != 4 or pose.shape[2:] != (self.num_keypoints, self.num_channels):
            raise ValueError(f"PoseMapper: pose must be [B, T, {self.num_keypoints}, {self.num_channels}], "
                             f"got {list(pose.shape)}")
        present = torch.isfinite(pose).all(dim=-1)  # (B, T, K)
        if points_mask is not None:
            present = present & points_mask.bool()
        pose = torch.where(present.unsqueeze(-1), pose, torch.zeros((), dtype=pose.dtype, device=pose.device))
        frames = pose.flatten(2)  # (B, T, K * C)
        return self.dropout(self.linear(self.norm(frames)))  # (B, T, d_model)
