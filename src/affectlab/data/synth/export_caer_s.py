"""Write AffectSynth as CAER-S is distributed (``data/readers/caer_s.py``): ``train/<Class>/<nnnn>.png`` and
``test/<Class>/<nnnn>.png``, images numbered per split and class from 0001 as in the authors' archive.

Each clip gives one image, its apex frame (where the expression peaks) placed in a larger scene (the video
exporters' background), as a CAER-S frame shows a person in context. The last ``test_fraction`` of identities
form the test split (identity-disjoint). Byte-for-byte deterministic for a seed (PNG encoding is
deterministic); every file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import AffectSynthArrays
from affectlab.data.synth.export import _identity_splits, scene_video
from affectlab.data.synth.export_expw import apex_frame
from affectlab.io import atomic_write_bytes

SCENE = (96, 80)  # width, height of each frame; the face is upscaled to FACE_SIZE inside it
FACE_SIZE = 64


def export_caer_s(arrays: AffectSynthArrays, out: str | Path, test_fraction: float = 0.2,
                  seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as CAER-S under ``out``; returns images per split."""
    from PIL import Image

    from affectlab.data.readers.caer_s import CAER_S, LABEL_CODES

    folder_of = {emotion: folder for folder, emotion in LABEL_CODES.items()}
    out = Path(out)
    rng = np.random.default_rng(seed)
    split_of = _identity_splits(arrays, {"test": test_fraction})
    numbers: dict[tuple[str, str], int] = {}
    for clip in range(len(arrays)):
        split = split_of[int(arrays.identity[clip])]
        folder = folder_of[EMOTIONS[int(arrays.emotion[clip])]]
        numbers[split, folder] = numbers.get((split, folder), 0) + 1
        frame = scene_video(apex_frame(arrays, clip)[None], rng, scene=SCENE, face_size=FACE_SIZE)[0]
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        atomic_write_bytes(out / CAER_S.splits[split] / folder / f"{numbers[split, folder]:04d}.png", buffer.getvalue())
    return {split: sum(n for (s, _), n in numbers.items() if s == split) for split in CAER_S.splits}
