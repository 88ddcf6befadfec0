"""The on-disk cache: one ``.npy`` per array plus ``manifest.json``, and its verification on load.

The manifest is written last, after every array is complete and hashed, so a directory with a manifest whose
checksums match is a complete cache. ``load`` never hands out an array it has not checked: a missing,
truncated, resized or tampered file raises ``AffectSynthCacheError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectlab.data.synth.config import SynthConfig, array_layout

FORMAT_VERSION = 1
GENERATOR_VERSION = "affectsynth-1.0"
MANIFEST = "manifest.json"


class AffectSynthCacheError(RuntimeError):
    """An AffectSynth cache is missing, incomplete, corrupt or not a cache at all."""


@dataclass(frozen=True)
class AffectSynthArrays:
    """A verified cache: read-only memory maps of every array, plus the config and manifest they came from.

    Emotions index ``EMOTIONS``, domains ``RENDER_STYLES``, AU columns follow ``ACTION_UNITS``.
    """

    path: Path
    config: SynthConfig
    manifest: dict[str, Any]
    frames: np.ndarray  # (N, T, H, W, 3) uint8 RGB
    audio: np.ndarray  # (N, S) int16, waveform times 32767
    text: np.ndarray  # (N, L) int32 token ids into VOCAB, 0 = padding
    text_len: np.ndarray  # (N,) int32 tokens before the padding
    emotion: np.ndarray  # (N,) int64
    au_intensity: np.ndarray  # (N, T, 12) float32 in [0, 5]
    sentiment: np.ndarray  # (N,) float32 in [-3, 3]
    valence: np.ndarray  # (N,) float32 in [-1, 1]
    arousal: np.ndarray  # (N,) float32 in [-1, 1]
    identity: np.ndarray  # (N,) int64
    domain: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return self.config.num_clips

    def __getitem__(self, name: str) -> np.ndarray:
        """The array called ``name`` (a key of ``array_layout``)."""
        if name not in array_layout(self.config):
            raise KeyError(name)
        return getattr(self, name)


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks so memory stays flat for any size."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, config: SynthConfig) -> dict[str, Any]:
    """Hashes every array of a freshly written cache and writes ``manifest.json`` (the commit point)."""
    files = {
        name: {"sha256": sha256(directory / f"{name}.npy"), "shape": list(shape), "dtype": dtype.str}
        for name, (shape, dtype) in array_layout(config).items()
    }
    manifest = {"format_version": FORMAT_VERSION, "generator_version": GENERATOR_VERSION,
                "config": config.to_dict(), "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the cache at ``path``, checked for format version and a readable config."""
    file = path / MANIFEST
    if not file.is_file():
        raise AffectSynthCacheError(f"{file} is missing: {path} is not a complete AffectSynth cache")
    try:
        manifest = json.loads(file.read_text())
        if manifest["format_version"] != FORMAT_VERSION:
            raise AffectSynthCacheError(
                f"{file}: format version {manifest['format_version']}, this AffectLab reads {FORMAT_VERSION}")
        SynthConfig.from_dict(manifest["config"])
        manifest["files"].items()
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise AffectSynthCacheError(f"{file} is unreadable or incomplete: {err!r}") from err
    return manifest


def _check_file(file: Path, shape: tuple[int, ...], dtype: np.dtype, digest: str | None) -> None:
    """Raises ``AffectSynthCacheError`` unless ``file`` is a whole ``.npy`` of ``shape``/``dtype`` and ``digest``."""
    if not file.is_file():
        raise AffectSynthCacheError(f"{file.name} is missing from {file.parent}")
    try:
        with open(file, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version}")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            header_shape, fortran, header_dtype = read_header(f)
            offset = f.tell()
    except (ValueError, OSError, SyntaxError) as err:
        raise AffectSynthCacheError(f"{file.name} has no valid .npy header: {err}") from err
    if header_shape != shape or header_dtype != dtype or fortran:
        raise AffectSynthCacheError(f"{file.name} holds {header_dtype}{list(header_shape)}, the manifest says "
                                    f"{dtype}{list(shape)}")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = file.stat().st_size
    if size != expected:
        what = "truncated" if size < expected else "too long"
        raise AffectSynthCacheError(f"{file.name} is {what}: {size} bytes, expected {expected}")
    if digest is not None and sha256(file) != digest:
        raise AffectSynthCacheError(f"{file.name} fails its checksum: the file was modified after generation")


def load(path: str | Path, verify: bool = True) -> AffectSynthArrays:
    """Opens a cache written by ``generate``, checking every file against the manifest.

    Args:
        path: the cache directory.
        verify: also compare every file's SHA-256 with the manifest (reads all bytes once). Shape, dtype and
            size are always checked.

    Raises:
        AffectSynthCacheError: naming the file that is missing, truncated, resized or fails its checksum.
    """
    path = Path(path)
    manifest = read_manifest(path)
    config = SynthConfig.from_dict(manifest["config"])
    files = manifest["files"]
    arrays = {}
    for name, (shape, dtype) in array_layout(config).items():
        entry = files.get(name)
        if entry is None or tuple(entry["shape"]) != shape or np.dtype(entry["dtype"]) != dtype:
            raise AffectSynthCacheError(f"{path / MANIFEST} does not describe {name}.npy as {dtype}{list(shape)}")
        _check_file(path / f"{name}.npy", shape, dtype, entry["sha256"] if verify else None)
        arrays[name] = np.load(path / f"{name}.npy", mmap_mode="r")
    return AffectSynthArrays(path=path, config=config, manifest=manifest, **arrays)
