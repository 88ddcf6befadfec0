"""Write AffectSynth as DISFA (``data/readers/disfa.py``): ``affectlab data export disfa --out DIR``.

Each AffectSynth identity is a subject (SN001, SN002, ...) and its clips, one after another, are the subject's
one recording; frame numbers run from 1 as in DISFA's label files. Three layouts:

- ``authors`` (the default, DISFA as distributed): per subject ``Videos_LeftCamera/LeftVideoSN001_comp.avi``
  and ``Videos_RightCamera/RightVideoSN001_comp.avi`` (MPEG-4 part 2 in AVI; each frame the AffectSynth face
  upscaled into a scene, as ``export.scene_video`` does for the other video sets, so that MTCNN finds it; the
  right camera sees the face at another place over another background) and the 12 label files
  ``ActionUnit_Labels/SN001/SN001_au<n>.txt``, one ``<frame>,<intensity>`` line per video frame;
- ``frames``: what ``affectlab data prepare disfa`` makes of it, the label files with the left camera's frames
  ``Frames_LeftCamera/SN001/<frame:06d>.png`` written directly (no MTCNN, for the tests of the reader alone);
- ``csv``: seed 001's (FaceFlow's) ``disfa.csv`` (``AU1,...,AU26,filename``) with the images under
  ``frames/SN001/``.

Intensities are AffectSynth's rounded to DISFA's integers 0-5. Deterministic for a seed: the label files, PNGs
and CSV are the same bytes every time; the videos decode to the same frames (their encoder is FFmpeg's).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from affectlab.data.contract import ACTION_UNITS
from affectlab.data.synth.cache import AffectSynthArrays
from affectlab.io import atomic_write_bytes, atomic_write_text

LAYOUTS = ("authors", "frames", "csv")
CAMERAS = ("left", "right")
DISFA_FPS = 20.0  # DISFA's cameras film at 20 frames per second


def subject_name(identity: int) -> str:
    """AffectSynth identity 0 -> ``SN001``, DISFA's subject naming."""
    return f"SN{int(identity) + 1:03d}"


def subject_recordings(arrays: AffectSynthArrays) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per subject in identity order: its name, frames ``[F, H, W, 3]`` uint8 and intensities ``[F, 12]`` int."""
    recordings = []
    for identity in np.unique(arrays.identity):
        clips = np.flatnonzero(np.asarray(arrays.identity) == identity)
        frames = np.concatenate([np.asarray(arrays.frames[c]) for c in clips])  # (F, H, W, 3)
        intensity = np.rint(np.concatenate([np.asarray(arrays.au_intensity[c]) for c in clips])).astype(int)  # (F, 12)
        recordings.append((subject_name(identity), frames, np.clip(intensity, 0, 5)))
    return recordings


def write_labels(out: Path, subject: str, intensity: np.ndarray) -> None:
    """The 12 label files of ``subject``: ``<frame>,<intensity>`` per line, frames from 1."""
    for column, au in enumerate(ACTION_UNITS):
        lines = "".join(f"{frame},{value}\n" for frame, value in enumerate(intensity[:, column], 1))
        atomic_write_text(out / "ActionUnit_Labels" / subject / f"{subject}_au{au}.txt", lines)


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def export_disfa(arrays: AffectSynthArrays, out: str | Path, layout: str = "authors",
                 cameras: tuple[str, ...] = CAMERAS, fps: float = DISFA_FPS, seed: int = 0) -> int:
    """Write ``arrays`` as DISFA in ``layout`` (module docstring) under ``out``; returns the frames per camera
    written (the labelled frames). ``cameras``: which videos the ``authors`` layout holds."""
    from affectlab.data.media.video import write_video
    from affectlab.data.synth.export import scene_video

    if layout not in LAYOUTS:
        raise ValueError(f"export_disfa: layout {layout!r} is not one of {LAYOUTS}")
    unknown = [c for c in cameras if c not in CAMERAS]
    if unknown or not cameras:
        raise ValueError(f"export_disfa: cameras {list(cameras)} must be some of {CAMERAS}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    rows, written = [], 0
    for subject, frames, intensity in subject_recordings(arrays):
        if layout == "authors":
            for camera in CAMERAS:  # both drawn always, so the left video is the same with or without the right
                scene = scene_video(frames, rng)  # (F, 128, 160, 3): the face placed at its own place per camera
                if camera in cameras:
                    folder = "Videos_LeftCamera" if camera == "left" else "Videos_RightCamera"
                    prefix = "LeftVideo" if camera == "left" else "RightVideo"
                    write_video(out / folder / f"{prefix}{subject}_comp.avi", scene, fps=fps, codec="mpeg4")
        else:
            folder = out / ("Frames_LeftCamera" if layout == "frames" else "frames") / subject
            for frame_number, frame in enumerate(frames, 1):
                atomic_write_bytes(folder / f"{frame_number:06d}.png", _png(frame))
                if layout == "csv":
                    rows.append([*intensity[frame_number - 1].tolist(), f"frames/{subject}/{frame_number:06d}.png"])
        if layout != "csv":
            write_labels(out, subject, intensity)
        written += len(frames)
    if layout == "csv":
        header = ",".join([*(f"AU{au}" for au in ACTION_UNITS), "filename"])
        atomic_write_text(out / "disfa.csv", header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return written


def export_disfa_frames(arrays: AffectSynthArrays, out: str | Path) -> int:
    """The ``frames`` layout: DISFA as ``data prepare disfa`` leaves it, for tests of the reader alone."""
    return export_disfa(arrays, out, layout="frames")
