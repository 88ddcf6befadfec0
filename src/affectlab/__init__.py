"""AffectLab: train, evaluate and ship models of human affect from video, audio, text and pose.

Layers, each importing only from the ones above it in this list:
``data`` -> ``nn`` -> ``losses`` / ``metrics`` -> ``methods`` -> ``runs`` -> ``experiments`` -> ``api`` / ``cli``.
See docs/architecture.md. From Python: ``affectlab.train(config)`` and ``affectlab.load(run_id)`` (docs/api.md).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["load", "train", "__version__"]


def __getattr__(name: str) -> Any:
    """``affectlab.load`` and ``affectlab.train`` come from ``affectlab.api`` on first use, so that ``import
    affectlab`` (and every ``affectlab`` command) does not pay for torch, Lightning and MLflow up front."""
    if name in ("load", "train"):
        from affectlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'affectlab' has no attribute {name!r}")
