"""Write AffectSynth in the native layout of a real data set, so every reader is tested on files laid out
exactly as the real ones (DESIGN.md section 4). ``affectlab data export NAME --out DIR``.

Folder-per-class image sets get one image per clip (its apex frame, where the expression peaks), in the
data set's split folders and class folder names, in its file format (FER2013: 48x48 greyscale PNG). Official
splits are identity-disjoint here: the test split holds the clips of the last ``test_fraction`` of identities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import AffectSynthArrays

_FORMATS = {"rafdb": ("jpg", None), "fer2013": ("png", 48), "expw": ("jpg", None), "affectnet": ("jpg", None),
            "caer_s": ("png", None)}


def export_folder_dataset(arrays: AffectSynthArrays, name: str, out: str | Path, test_fraction: float = 0.2) -> dict[str, int]:
    """Write ``arrays`` as the folder-per-class data set ``name`` under ``out``; returns images per split."""
    from PIL import Image

    from affectlab.data.folders import FOLDER_LAYOUTS

    layout = FOLDER_LAYOUTS[name]
    folder_of = {emotion: folder for folder, emotion in layout.classes.items() if emotion is not None}
    extension, size = _FORMATS[name]
    identities = np.unique(arrays.identity)
    test_ids = identities[len(identities) - max(1, round(test_fraction * len(identities))):]
    counts: dict[str, int] = {}
    out = Path(out)
    for clip in range(len(arrays)):
        if "test" in layout.splits:
            split = "test" if arrays.identity[clip] in test_ids else "train"
        else:
            split = "all"
        intensity = np.asarray(arrays.au_intensity[clip]).sum(axis=1)  # (T,)
        frame = np.asarray(arrays.frames[clip, int(intensity.argmax())])  # (H, W, 3) the apex
        image = Image.fromarray(frame)
        if size is not None:
            image = image.convert("L").resize((size, size), Image.BILINEAR)
        folder = out / layout.splits[split] / folder_of[EMOTIONS[int(arrays.emotion[clip])]]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{name}_{clip:06d}.{extension}")
        counts[split] = counts.get(split, 0) + 1
    return counts
