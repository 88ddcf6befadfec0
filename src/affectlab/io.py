"""File helpers every layer shares: atomic writes and safe checkpoint loads.

A process killed while writing must never leave a truncated file for the next reader to choke on: each
write goes to a temporary file in the same folder, is flushed to disk, then renamed over the target, which
POSIX makes atomic. Checkpoints load with ``weights_only=True``: tensors, numbers, strings and containers,
never arbitrary pickled objects.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from affectlab.errors import ConfigError


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, content: Any, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(content, indent=indent))


def load_checkpoint(path: str | Path, key: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's contents, loaded with ``weights_only=True``.

    ``key`` is the config key that named ``path``; when given, a missing or unreadable file is a
    ``ConfigError`` naming it (otherwise the underlying error propagates, as Lightning expects).
    """
    import torch

    path = Path(path)
    if key is None:
        return torch.load(path, map_location=map_location, weights_only=True)
    if "$ckpt_dir" in str(path):
        raise ConfigError(f"{key}: {str(path)!r} still holds $ckpt_dir; the CLI resolves it only where a run is given")
    if not path.is_file():
        raise ConfigError(f"{key}: checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # unpickling errors have no common base class
        raise ConfigError(f"{key}: {path} is not a checkpoint readable with weights_only=True ({error})") from None
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{key}: {path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint
