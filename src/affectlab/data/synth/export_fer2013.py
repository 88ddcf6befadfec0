"""Write AffectSynth as FER2013 is distributed (``data/readers/fer2013.py``): one CSV, ``emotion,pixels,Usage``.

One face per clip, its apex frame (where the expression peaks, as the folder exporters take it) turned grey and
resized to 48x48 (bilinear, as ``export.export_folder_dataset`` writes FER2013's PNGs), its pixels written as
2304 integers separated by spaces, in clip order. Usage is decided per identity, so the three official splits
are identity-disjoint here: the last identities are PrivateTest, the ones before PublicTest, the rest Training
(at least one identity each). The bytes depend only on the arrays: the same AffectSynth gives the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import AffectSynthArrays
from affectlab.data.synth.export import _identity_splits
from affectlab.io import atomic_write_text

# The two headers distributed: the challenge's fer2013.csv and Kaggle's later icml_face_data.csv.
VARIANTS = {"fer2013": ("fer2013.csv", ("emotion", "pixels", "Usage"), ","),
            "icml": ("icml_face_data.csv", ("emotion", "Usage", "pixels"), ", ")}


def fer2013_faces(arrays: AffectSynthArrays) -> np.ndarray:
    """``[N, 48, 48]`` uint8: each clip's apex frame as FER2013 holds a face (grey, 48x48)."""
    from PIL import Image

    from affectlab.data.readers.fer2013 import SIDE

    faces = np.empty((len(arrays), SIDE, SIDE), np.uint8)
    for clip in range(len(arrays)):
        intensity = np.asarray(arrays.au_intensity[clip]).sum(axis=1)  # (T,)
        frame = np.asarray(arrays.frames[clip, int(intensity.argmax())])  # (H, W, 3) the apex
        faces[clip] = np.asarray(Image.fromarray(frame).convert("L").resize((SIDE, SIDE), Image.BILINEAR))
    return faces


def fer2013_usages(arrays: AffectSynthArrays, val_fraction: float = 0.15, test_fraction: float = 0.15) -> list[str]:
    """Each clip's Usage (``Training``, ``PublicTest``, ``PrivateTest``), decided by its identity."""
    split_of = _identity_splits(arrays, {"PublicTest": val_fraction, "PrivateTest": test_fraction})
    return [{"train": "Training"}.get(split_of[int(i)], split_of[int(i)]) for i in np.asarray(arrays.identity)]


def export_fer2013(arrays: AffectSynthArrays, out: str | Path, val_fraction: float = 0.15, test_fraction: float = 0.15,
                   variant: str = "fer2013") -> dict[str, int]:
    """Write ``arrays`` as ``<out>/fer2013.csv`` (``variant="icml"``: ``icml_face_data.csv`` with Kaggle's header
    ``emotion, Usage, pixels``); returns faces per AffectLab split (train, val, test)."""
    from affectlab.data.readers.fer2013 import LABEL_CODES, USAGE_SPLITS

    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {list(VARIANTS)}")
    file_name, columns, separator = VARIANTS[variant]
    code_of = {emotion: code for code, emotion in LABEL_CODES.items()}
    faces, usages = fer2013_faces(arrays), fer2013_usages(arrays, val_fraction, test_fraction)
    lines = [separator.join(columns)]
    for clip in range(len(arrays)):
        fields = {"emotion": str(code_of[EMOTIONS[int(arrays.emotion[clip])]]), "Usage": usages[clip],
                  "pixels": " ".join(map(str, faces[clip].reshape(-1).tolist()))}
        lines.append(",".join(fields[column] for column in columns))
    atomic_write_text(Path(out) / file_name, "\n".join(lines) + "\n")
    return {split: usages.count(usage) for usage, split in USAGE_SPLITS.items()}
