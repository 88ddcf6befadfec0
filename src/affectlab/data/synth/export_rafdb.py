"""Write AffectSynth as RAF-DB's basic set is distributed (``data/readers/rafdb.py``).

    <out>/basic/EmoLabel/list_patition_label.txt      '<name> <label 1-7>' per face, sorted by name
    <out>/basic/Image/aligned/<name>_aligned.jpg      the apex frame resized to 100x100, as RAF-DB's aligned faces
    <out>/basic/Image/original/<name>.jpg             the apex frame pasted into a larger scene (a "photograph")

Both image folders are written so that the reader's ``images: aligned|original`` option is tested on files; the
originals are small scenes (the frame 1.5 to 2 times its size in each direction), not RAF-DB's full photographs.
Names follow RAF-DB's: ``train_00001.jpg`` (five digits), ``test_0001.jpg`` (four), numbered in clip order within
each split. The split is decided per identity (the last ``test_fraction`` of identities are test), so train and
test are identity-disjoint here. JPEGs are encoded in memory and written atomically; the bytes depend only on
the arrays and ``seed``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import AffectSynthArrays
from affectlab.data.synth.export import _background, _identity_splits
from affectlab.io import atomic_write_bytes, atomic_write_text

ALIGNED_SIZE = 100  # RAF-DB's aligned faces are 100x100


def rafdb_names(arrays: AffectSynthArrays, test_fraction: float = 0.2) -> list[str]:
    """Each clip's name in the list file (``train_00001.jpg``, ``test_0001.jpg``)."""
    split_of = _identity_splits(arrays, {"test": test_fraction})
    numbers = {"train": 0, "test": 0}
    names = []
    for identity in np.asarray(arrays.identity):
        split = split_of[int(identity)]
        numbers[split] += 1
        names.append(f"train_{numbers[split]:05d}.jpg" if split == "train" else f"test_{numbers[split]:04d}.jpg")
    return names


def _jpeg(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def export_rafdb(arrays: AffectSynthArrays, out: str | Path, test_fraction: float = 0.2, seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as RAF-DB's basic set under ``<out>/basic``; returns faces per split (train, test)."""
    from PIL import Image

    from affectlab.data.readers.rafdb import LABEL_CODES, LIST_FILE, image_path

    code_of = {emotion: code for code, emotion in LABEL_CODES.items()}
    base = Path(out) / "basic"
    rng = np.random.default_rng(seed)
    names = rafdb_names(arrays, test_fraction)
    lines = []
    for clip, name in enumerate(names):
        intensity = np.asarray(arrays.au_intensity[clip]).sum(axis=1)  # (T,)
        frame = np.asarray(arrays.frames[clip, int(intensity.argmax())])  # (h, w, 3) the apex
        aligned = np.asarray(Image.fromarray(frame).resize((ALIGNED_SIZE, ALIGNED_SIZE), Image.BILINEAR))
        atomic_write_bytes(image_path(base, name, "aligned"), _jpeg(aligned))
        size = frame.shape[0]
        width, height = (round(size * rng.uniform(1.5, 2.0)) for _ in range(2))
        left, top = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
        scene = _background(rng, width, height).astype(np.uint8)  # (H, W, 3)
        scene[top:top + size, left:left + size] = frame
        atomic_write_bytes(image_path(base, name, "original"), _jpeg(scene))
        lines.append(f"{name} {code_of[EMOTIONS[int(arrays.emotion[clip])]]}")
    atomic_write_text(base / LIST_FILE, "".join(line + "\n" for line in sorted(lines)))
    return {"train": sum(n.startswith("train_") for n in names), "test": sum(n.startswith("test_") for n in names)}
