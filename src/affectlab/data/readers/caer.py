"""CAER (Lee et al. 2019, "Context-Aware Emotion Recognition Networks", https://caer-dataset.github.io): clips of
TV shows, each in the folder of its emotion, in three official splits.

Expected under ``root`` (as distributed)::

    train/<Anger|Disgust|Fear|Happy|Neutral|Sad|Surprise>/<clip>.avi
    validation/<Anger|...|Surprise>/<clip>.avi
    test/<Anger|...|Surprise>/<clip>.avi

Splits: the official train / validation (served as ``val``) / test. CAER has no subject ids: ``subject`` is
-1, and splits cannot be checked for identity leakage. Target: ``emotion`` ``[B]`` long, CAER's seven folders
mapped onto AffectLab's canonical order (``contract.EMOTIONS``; the names match one to one). Files of another
video format (``.mp4``, ...) are read as well, so a re-encoded copy works; other files are ignored and
reported by ``affectlab data check caer``, as are folders that are no emotion of CAER's.

Per sample (``modalities``, default both): ``video``, the clip's ``num_frames`` frames, evenly spaced, whole frames
resized (CAER's point is the context around the face); ``audio``, the clip's audio track at 16 kHz mono, at most
``audio_seconds`` (``data/media/video_clips.py``); a clip without an audio track is served with ``audio``
masked and counted. CAER has no transcripts. Face crops and log-mel spectrograms, or frozen backbones' features
of them, come from ``affectlab data prepare caer``.
"""

from __future__ import annotations

from pathlib import Path

from affectlab.data.contract import EMOTIONS
from affectlab.data.media.video import VIDEO_SUFFIXES
from affectlab.data.media.video_clips import VideoClip, VideoClipDataModule, VideoScan
from affectlab.data.spec import DatasetSpec
from affectlab.errors import DataError

CAER_CLASSES = {"Anger": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happy", "Neutral": "neutral",
                "Sad": "sad", "Surprise": "surprise"}
CAER_SPLITS = {"train": "train", "val": "validation", "test": "test"}  # AffectLab split -> folder


SPEC = DatasetSpec(
    "caer", "CAER: TV-show clips in 7 emotion folders per split (13,175 clips)", "data/caer",
    "\n".join(f"{folder}/<{'|'.join(CAER_CLASSES)}>/<clip>.avi" for folder in CAER_SPLITS.values()),
    reader="affectlab.data.CaerDataModule", check="affectlab.data.check.check_video_dataset",
    prepare="affectlab.data.store.video_prepare.prepare_clips", export="affectlab.data.synth.export.export_caer",
    export_styles=("shaded",),  # the style MTCNN finds most reliably, so the exported clips can be prepared
)


def layout_tree(root: Path) -> str:
    return SPEC.tree(root)


def scan_caer(root: str | Path) -> VideoScan:
    """Every clip of every split with its emotion; folders that are no CAER emotion are errors (a mislabelled
    copy), files that are no video are ignored (listed)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"caer: root {root} is not a folder; expected CAER's clips there:\n{layout_tree(root)}")
    found = VideoScan([])
    for split, folder in CAER_SPLITS.items():
        base = root / folder
        if not base.is_dir():
            raise DataError(f"caer: split folder {base} is missing; expected\n{layout_tree(root)}")
        for entry in sorted(base.iterdir()):
            if not entry.is_dir():
                found.ignored.append(str(entry))
                continue
            if entry.name not in CAER_CLASSES:
                found.errors.append(f"caer: {entry} is not an emotion folder of CAER (expected one of "
                                    f"{', '.join(CAER_CLASSES)})")
                continue
            label = EMOTIONS.index(CAER_CLASSES[entry.name])
            for path in sorted(entry.iterdir()):
                if path.suffix.lower() not in VIDEO_SUFFIXES:
                    found.ignored.append(str(path))
                    continue
                found.clips.append(VideoClip(path, split, {"emotion": label}, -1, f"{folder}/{entry.name}/{path.name}"))
    if not found.clips and not found.errors:
        found.errors.append(f"caer: no clips under {root}; expected\n{layout_tree(root)}")
    return found


class CaerDataModule(VideoClipDataModule):
    """CAER's clips with their emotion, official splits (module docstring: the layout).

    Args:
        root: CAER's folder, laid out as distributed.
        num_frames: frames per clip, evenly spaced over it.
        image_size: frames are resized to this square size.
        corrupt: ``skip`` unreadable clips (counted, named in a warning) or ``raise`` at the first.
        batch_size: clips per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
        modalities: which of ``video``, ``audio`` to serve; None serves both.
        audio_seconds: audio per clip at most (16 kHz mono).
    """

    name = "caer"
    tasks = ("emotion",)
    task_dtypes = {"emotion": "int64"}
    class_names = {"emotion": EMOTIONS}
    available_modalities = ("video", "audio")

    def __init__(self, root: str = "data/caer", num_frames: int = 8, image_size: int = 64, corrupt: str = "skip",
                 batch_size: int = 16, num_workers: int = 0, modalities: list[str] | None = None,
                 audio_seconds: float = 10.0, max_unreadable_fraction: float | None = None) -> None:
        super().__init__(root, num_frames, image_size, corrupt, batch_size, num_workers, modalities, audio_seconds,
                         max_unreadable_fraction=max_unreadable_fraction)

    def scan(self) -> VideoScan:
        return scan_caer(self.root)
