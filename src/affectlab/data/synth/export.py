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


def export_disfa(arrays: AffectSynthArrays, out: str | Path, layout: str = "native") -> int:
    """Write ``arrays`` as DISFA: each identity a subject (SN001, ...), its clips' frames one sequence.

    ``native``: ``ActionUnit_Labels/SN001/SN001_au<n>.txt`` ("<frame>,<intensity>", integers 0-5, frames from 1)
    and ``Frames_LeftCamera/SN001/<frame:06d>.png``. ``csv``: seed 001's ``disfa.csv`` (``AU1,...,filename``)
    with the images under ``frames/SN001/``. Returns the number of frames written.
    """
    from PIL import Image

    from affectlab.data.contract import ACTION_UNITS

    out = Path(out)
    rows = []
    written = 0
    for identity in np.unique(arrays.identity):
        subject = f"SN{int(identity) + 1:03d}"
        clips = np.flatnonzero(np.asarray(arrays.identity) == identity)
        frames = np.concatenate([np.asarray(arrays.frames[c]) for c in clips])  # (F, H, W, 3)
        intensity = np.rint(np.concatenate([np.asarray(arrays.au_intensity[c]) for c in clips])).astype(int)  # (F, 12)
        image_dir = out / ("Frames_LeftCamera" if layout == "native" else "frames") / subject
        image_dir.mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(frames, 1):
            name = f"{index:06d}.png"
            Image.fromarray(frame).save(image_dir / name)
            if layout == "csv":
                rows.append([*intensity[index - 1].tolist(), f"frames/{subject}/{name}"])
        if layout == "native":
            labels = out / "ActionUnit_Labels" / subject
            labels.mkdir(parents=True, exist_ok=True)
            for column, au in enumerate(ACTION_UNITS):
                lines = [f"{index},{value}" for index, value in enumerate(intensity[:, column], 1)]
                (labels / f"{subject}_au{au}.txt").write_text("\n".join(lines) + "\n")
        written += len(frames)
    if layout == "csv":
        header = ",".join([*(f"AU{au}" for au in ACTION_UNITS), "filename"])
        (out / "disfa.csv").write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return written
