"""Write AffectSynth as ExpW is distributed (``data/readers/expw.py``): photographs holding one to three faces
each under ``image/origin/``, and ``label/label.lst`` with one line per face
(``<image_name> <face_id_in_image> <top> <left> <right> <bottom> <confidence> <expression_label>``).

Consecutive clips share a photograph (one to three, drawn per photograph): each clip's apex frame (where its
expression peaks) is stretched to a box 1 to 1.5 times the frame's size and pasted side by side into a scene (the
video exporters' background); the label list holds each box exactly (right and bottom exclusive), a detector
confidence drawn in [20, 100) and the clip's emotion in ExpW's codes. Byte-for-byte deterministic for a seed:
the draws come from one seeded generator, JPEG encoding is deterministic, and every file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import AffectSynthArrays
from affectlab.data.synth.export import _background
from affectlab.io import atomic_write_bytes, atomic_write_text

EXPW_KEYWORDS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # ExpW's code order, as names
MAX_FACES_PER_PHOTOGRAPH = 3


def apex_frame(arrays: AffectSynthArrays, clip: int) -> np.ndarray:
    """``[h, w, 3]`` uint8: the frame of ``clip`` where its AU intensities sum highest."""
    intensity = np.asarray(arrays.au_intensity[clip]).sum(axis=1)  # (T,)
    return np.asarray(arrays.frames[clip, int(intensity.argmax())])


def jpeg_bytes(image: np.ndarray, quality: int = 95) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def export_expw(arrays: AffectSynthArrays, out: str | Path, seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as ExpW under ``out``; returns the faces written (``all``: ExpW has no split)."""
    from PIL import Image

    from affectlab.data.readers.expw import EXPW_IMAGES, EXPW_LABELS, LABEL_CODES

    code_of = {emotion: code for code, emotion in LABEL_CODES.items()}
    out = Path(out)
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    clip = 0
    photograph = 0
    while clip < len(arrays):
        count = min(int(rng.integers(1, MAX_FACES_PER_PHOTOGRAPH + 1)), len(arrays) - clip)
        members = range(clip, clip + count)
        faces = [apex_frame(arrays, c) for c in members]
        sizes = [(round(f.shape[1] * rng.uniform(1.0, 1.5)), round(f.shape[0] * rng.uniform(1.0, 1.5)))
                 for f in faces]  # (width, height) of each face box
        gaps = [int(rng.integers(4, 17)) for _ in range(count + 1)]
        width = sum(w for w, _ in sizes) + sum(gaps)
        height = max(h for _, h in sizes) + int(rng.integers(8, 33))
        scene = _background(rng, width, height).astype(np.uint8)  # (H, W, 3)
        code = code_of[EMOTIONS[int(arrays.emotion[clip])]]
        name = f"{EXPW_KEYWORDS[code]}_synth_{photograph:05d}.jpg"  # ExpW names photographs after their query
        left = gaps[0]
        for face_id, (c, frame, (w, h)) in enumerate(zip(members, faces, sizes)):
            top = int(rng.integers(0, height - h + 1))
            scene[top:top + h, left:left + w] = np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR))
            emotion = code_of[EMOTIONS[int(arrays.emotion[c])]]
            confidence = float(rng.uniform(20.0, 100.0))
            lines.append(f"{name} {face_id} {top} {left} {left + w} {top + h} {confidence:.4f} {emotion}")
            left += w + gaps[face_id + 1]
        atomic_write_bytes(out / EXPW_IMAGES / name, jpeg_bytes(scene))
        clip += count
        photograph += 1
    atomic_write_text(out / EXPW_LABELS, "".join(line + "\n" for line in lines))
    return {"all": len(lines)}
