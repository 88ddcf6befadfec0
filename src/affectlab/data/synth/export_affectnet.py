"""Write AffectSynth as AffectNet's manually annotated part is distributed (``data/readers/affectnet.py``):
``Manually_Annotated_Images/<subDirectory>/<file>.jpg`` and ``Manually_Annotated_file_lists/training.csv`` and
``validation.csv`` (subDirectory_filePath, face box, 68 landmarks, expression, valence, arousal).

Each clip's apex frame is stretched to a face box 1 to 1.5 times its size and pasted at a random place into a
scene (the video exporters' background); the row holds that box exactly, 68 landmarks drawn inside it, the clip's
emotion in AffectNet's codes and its valence and arousal (AffectSynth's, in [-1, 1]). Photographs are filed in
sub-directories by identity and named by a hash, as AffectNet's are. The last ``test_fraction`` of identities
form validation.csv (identity-disjoint). training.csv has the header line; validation.csv has none, as public
loaders of the real lists expect (they skip a first row in training.csv only). Byte-for-byte deterministic for
a seed; every file is written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import AffectSynthArrays
from affectlab.data.synth.export import _background, _identity_splits
from affectlab.data.synth.export_expw import apex_frame, jpeg_bytes
from affectlab.io import atomic_write_bytes, atomic_write_text

LANDMARKS = 68


def export_affectnet(arrays: AffectSynthArrays, out: str | Path, test_fraction: float = 0.2,
                     seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as AffectNet under ``out``; returns faces per split (train: training.csv, test:
    validation.csv)."""
    from PIL import Image

    from affectlab.data.readers.affectnet import (
        AFFECTNET_IMAGES,
        AFFECTNET_LISTS,
        COLUMNS,
        LABEL_CODES,
    )

    code_of = {emotion: code for code, emotion in LABEL_CODES.items() if emotion is not None}
    out = Path(out)
    rng = np.random.default_rng(seed)
    split_of = _identity_splits(arrays, {"test": test_fraction})
    rows: dict[str, list[str]] = {"train": [], "test": []}
    for clip in range(len(arrays)):
        frame = apex_frame(arrays, clip)
        size = frame.shape[0]
        face_w, face_h = (round(size * rng.uniform(1.0, 1.5)) for _ in range(2))
        width, height = face_w + int(rng.integers(8, size + 1)), face_h + int(rng.integers(8, size + 1))
        left, top = int(rng.integers(0, width - face_w + 1)), int(rng.integers(0, height - face_h + 1))
        scene = _background(rng, width, height).astype(np.uint8)  # (H, W, 3)
        scene[top:top + face_h, left:left + face_w] = np.asarray(
            Image.fromarray(frame).resize((face_w, face_h), Image.BILINEAR))
        identity = int(arrays.identity[clip])
        name = hashlib.sha224(f"affectsynth-{seed}-{clip}".encode()).hexdigest()
        path = f"{identity + 1}/{name}.jpg"
        atomic_write_bytes(out / AFFECTNET_IMAGES / path, jpeg_bytes(scene))
        points = np.stack([rng.uniform(left, left + face_w, LANDMARKS), rng.uniform(top, top + face_h, LANDMARKS)], 1)
        landmarks = ";".join(f"{v:.2f}" for v in points.reshape(-1))  # x;y;x;y;...
        code = code_of[EMOTIONS[int(arrays.emotion[clip])]]
        valence = float(np.clip(arrays.valence[clip], -1, 1))
        arousal = float(np.clip(arrays.arousal[clip], -1, 1))
        rows[split_of[identity]].append(f"{path},{left},{top},{face_w},{face_h},{landmarks},{code},{valence:.6f},"
                                        f"{arousal:.6f}")
    lists = out / AFFECTNET_LISTS
    atomic_write_text(lists / "training.csv", ",".join(COLUMNS) + "\n" + "".join(r + "\n" for r in rows["train"]))
    atomic_write_text(lists / "validation.csv", "".join(r + "\n" for r in rows["test"]))
    return {split: len(found) for split, found in rows.items()}
