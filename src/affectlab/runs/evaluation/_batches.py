"""Helpers the evaluation functions share: a stage's data loader, moving batches, a frame to show."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from affectlab.errors import ConfigError

_SETUP_STAGE = {"train": "fit", "val": "validate", "test": "test", "predict": "predict"}


def stage_loader(datamodule: Any, stage: str) -> Any:
    if stage not in _SETUP_STAGE:
        raise ConfigError(f"eval.stage: {stage!r} is not one of {sorted(_SETUP_STAGE)}")
    datamodule.setup(_SETUP_STAGE[stage])
    return getattr(datamodule, f"{stage}_dataloader")()


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def frame_image(video: torch.Tensor, index: int | None = None) -> np.ndarray | None:
    """One ``[H, W, C]`` frame in [0, 1] from a sample's ``[T, C, H, W]`` frames (the middle one by default)."""
    if video.ndim == 3:  # a single image [C, H, W]
        video = video.unsqueeze(0)
    if video.ndim != 4:
        return None  # features, not frames
    frame = video[video.shape[0] // 2 if index is None else index]
    return frame.permute(1, 2, 0).float().clamp(0, 1).cpu().numpy()
