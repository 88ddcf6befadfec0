"""Checkpoint I/O: atomic writes, and loads restricted to tensors and plain data (``weights_only=True``).

A run killed while writing must never leave a truncated ``last.ckpt`` for the resume to choke on: the
checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over the
target, which POSIX makes atomic. Loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from affectlab.io import atomic_write_bytes, load_checkpoint

__all__ = ["AtomicCheckpointIO", "atomic_write_bytes", "load_checkpoint"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint plugin: atomic local saves, ``weights_only=True`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote stores: Lightning's fsspec transaction is their atomic write
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if weights_only is False:
            raise ValueError("AffectLab loads checkpoints with weights_only=True only; re-save the checkpoint as tensors")
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        return load_checkpoint(path, map_location=map_location or "cpu")
