"""Where the bundled YAML configs live: ``configs/`` at the repository root (a source checkout), or the
copy shipped inside the wheel as ``affectlab/_configs``."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def config_root() -> Path:
    for candidate in (_PACKAGE / "_configs", _PACKAGE.parents[1] / "configs"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("AffectLab's bundled configs/ folder is missing from this installation")


def config_path(relative: str) -> Path:
    """Path of a bundled config, e.g. ``config_path("experiment/synth/supervised.yaml")``."""
    path = config_root() / relative
    if not path.is_file():
        raise FileNotFoundError(f"no bundled config {relative!r} under {config_root()}")
    return path
