"""Batch collation every reader shares, and the even subsampling of long feature sequences."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from affectlab.data.contract import mask_key


def subsample(rows: np.ndarray, max_steps: int) -> np.ndarray:
    """At most ``max_steps`` of ``rows``, evenly spaced (first and last kept)."""
    if len(rows) <= max_steps:
        return rows
    return rows[np.linspace(0, len(rows) - 1, max_steps).round().astype(int)]


def collate_padded(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples; feature sequences are zero-padded to the batch's longest with a ``<modality>_mask``."""
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], dict):
            batch[key] = {k: torch.stack([v[k] for v in values]) for k in values[0]}
        elif values[0].ndim == 2:  # (T, D) features
            length = max(v.shape[0] for v in values)
            padded = torch.zeros(len(values), length, values[0].shape[1])
            mask = torch.zeros(len(values), length, dtype=torch.bool)
            for i, v in enumerate(values):
                padded[i, : len(v)] = v
                mask[i, : len(v)] = True
            batch[key], batch[mask_key(key)] = padded, mask
        else:
            batch[key] = torch.stack(values)
    return batch


def collate_skipping(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate the readable samples; the paths of unreadable ones travel in ``batch["skipped"]``."""
    skipped = [s["skipped"] for s in samples if "skipped" in s]
    good = [s for s in samples if "skipped" not in s]
    if not good:
        return {"skipped": skipped, "id": torch.zeros(0, dtype=torch.long)}
    batch = default_collate(good)
    batch["skipped"] = skipped
    return batch
