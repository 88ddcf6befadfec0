"""Checkpoint I/O: atomic writes, loads restricted to tensors and plain data (``weights_only=True``), and the
checkpoint callbacks every run gets.

A run killed while writing must never leave a truncated ``last.ckpt`` for the resume to choke on: the
checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over the
target, which POSIX makes atomic. Loading never unpickles arbitrary objects.

``best.ckpt`` is the epoch with the best monitored metric; ``last.ckpt`` is the state at the end of every
training epoch, whether it improved or not, so a resume re-trains nothing that finished (Lightning's
``save_last`` only copies the state when a top-k checkpoint was saved, which made ``last.ckpt`` a copy of
``best.ckpt``). For long epochs ``checkpoint_every_n_steps`` also writes ``last.ckpt`` every N optimiser
steps; a resume from such a mid-epoch state re-enters the epoch where Lightning can (exact only for loaders
that restore their position), while epoch-end states resume exactly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from affectlab.io import atomic_write_bytes, load_checkpoint

__all__ = ["AtomicCheckpointIO", "atomic_write_bytes", "checkpoint_callbacks", "load_checkpoint"]

BEST, LAST = "best.ckpt", "last.ckpt"


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


def checkpoint_callbacks(dirpath: Path, monitor: str | None, mode: str,
                         every_n_steps: int | None = None) -> list[ModelCheckpoint]:
    """``best.ckpt`` (top 1 by ``monitor``), ``last.ckpt`` at every epoch end and, with ``every_n_steps``,
    also every N training steps. Each is a plain ModelCheckpoint, so Lightning saves and restores their
    state (best score, paths) across a resume."""
    common = {"dirpath": dirpath, "auto_insert_metric_name": False, "enable_version_counter": False,
              "save_last": False}
    callbacks = [
        ModelCheckpoint(filename=Path(BEST).stem, monitor=monitor, mode=mode, save_top_k=1, **common),
        # monitor=None, top 1: the newest state replaces the previous one under the same name
        ModelCheckpoint(filename=Path(LAST).stem, monitor=None, save_top_k=1, every_n_epochs=1, **common),
    ]
    if every_n_steps:
        callbacks.append(ModelCheckpoint(filename=Path(LAST).stem, monitor=None, save_top_k=1,
                                         every_n_train_steps=every_n_steps, **common))
    return callbacks
