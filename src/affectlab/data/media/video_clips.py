"""Video data sets read clip by clip: what the MELD, CAER and VoxCeleb2 readers share.

A reader lists its clips from its native layout (``VideoClip``: file, split, labels, speaker) and this module
turns each into a sample of the batch contract, on the fly:

    clip file --decode (data/media/video.py)--> N frames, evenly spaced over the clip
              --resize--> video [N, 3, S, S] float in [0, 1], video_mask [N]

Whole frames are served, resized to S x S (the aspect ratio is not kept): CAER's premise is that the scene
carries part of the emotion, and detecting faces in a data loader would cost an MTCNN pass per frame per
epoch. For face crops, prepare the data set once (``affectlab data prepare NAME``, ``data/store/video_prepare.py``)
and train from the feature store.

Frame sampling (``sample_frames``): N frames evenly spaced over the clip's frame count (what the container
declares, else its duration times its rate, else counted by a first decoding pass), each moved down onto a
stride of k frames (k = the spacing, rounded down) so that only the kept frames are converted to RGB;
decoding itself runs through every frame in order (never seeks), so its cost per frame does not grow with
the clip's length.
Or, with ``fps``, the first frame at or after each multiple of 1 / fps seconds.

Damage: a file FFmpeg cannot open, or one without a single decodable frame, is skipped (``corrupt: skip``:
named once in a warning, counted, summed up when the stage ends) or stops the run (``corrupt: raise``). A
truncated file serves the frames before the damage; the steps it lacks are zero with ``video_mask`` False.
``affectlab data check NAME --root DIR`` decodes every clip up front and lists what is damaged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.splits import SPLITS, check_disjoint
from affectlab.data.media.video import VideoDecodeError, VideoFrame, VideoReader
from affectlab.errors import ConfigError, DataError

CORRUPT_POLICIES = ("skip", "raise")


@dataclass(frozen=True)
class VideoClip:
    """One clip of a video data set, as its reader found it on disk."""

    path: Path
    split: str  # train, val or test (AffectLab's names for the data set's official splits)
    targets: dict[str, int | float] = field(default_factory=dict)  # task -> label (classes: index)
    subject: int = -1  # identity (speaker) index, -1: unknown
    name: str = ""  # how the data set refers to the clip (MELD: dia3_utt1), for reports


@dataclass
class VideoScan:
    """What a reader found under its root, before any clip is decoded."""

    clips: list[VideoClip]
    errors: list[str] = field(default_factory=list)  # rows or folders the reader refuses (check lists them all)
    missing: list[str] = field(default_factory=list)  # clips the layout lists that the disk lacks (left out)
    ignored: list[str] = field(default_factory=list)  # files or folders outside the layout (ignored)
    subject_names: dict[int, str] = field(default_factory=dict)  # subject index -> the data set's name for it


@dataclass
class SampledFrames:
    frames: list[VideoFrame]  # in time order
    decoded: int  # frames decoded to reach them
    problem: str | None  # what went wrong at the end of the stream (truncation), else None


def frame_count(reader: VideoReader) -> int:
    """The clip's frame count: declared by the container, else duration x rate, else 0 (unknown)."""
    info = reader.info
    if info.declared_frames:
        return info.declared_frames
    duration = getattr(info, "duration", 0.0) or 0.0  # containers without a frame count (some AVI, WebM)
    return int(round(duration * info.fps)) if duration and info.fps else 0


def evenly_spaced(total: int, count: int) -> tuple[int, list[int]]:
    """``(stride, indices)``: ``count`` frame indices evenly spaced over ``total`` frames, each moved down to a
    multiple of ``stride`` (the spacing rounded down, at least 1), distinct, first frame included; fewer when
    the clip is shorter than ``count`` frames."""
    if total <= count:
        return 1, list(range(total))
    if count == 1:
        return 1, [total // 2]  # one frame: the middle, where an utterance's expression usually is
    spacing = (total - 1) / (count - 1)
    stride = max(1, int(spacing))
    # Each target j * spacing moved down onto a multiple of the stride: targets are at least one stride apart,
    # so they stay distinct, and none passes the last frame.
    return stride, [int(j * spacing / stride + 1e-9) * stride for j in range(count)]


def sample_frames(path: str | Path, num_frames: int | None = 8, fps: float | None = None,
                  max_frames: int | None = None) -> SampledFrames:
    """Frames of one clip: ``num_frames`` evenly spaced, or (``fps`` given) ``fps`` per second, at most
    ``max_frames``. Raises ``VideoDecodeError`` naming the file when it cannot be opened."""
    if fps is not None:
        reader = VideoReader(path, fps=fps, max_frames=max_frames)
        frames = list(reader)
        return SampledFrames(frames, reader.decoded, reader.problem)
    if num_frames is None or num_frames < 1:
        raise ValueError(f"num_frames must be at least 1 (or give fps), got {num_frames}")
    total = frame_count(VideoReader(path))
    if total == 0:  # nothing declared: count by decoding once (only the first frame is converted to RGB)
        counter = VideoReader(path, every=1 << 30)
        for _ in counter:
            pass
        total = counter.decoded
    stride, wanted = evenly_spaced(total, num_frames)
    reader = VideoReader(path, every=stride)
    wanted_set, frames = set(wanted), []
    for frame in reader:
        if frame.index in wanted_set:
            frames.append(frame)
            if len(frames) == len(wanted):
                break  # stop decoding: the rest of the clip is not needed
    # A stream that ends early is reported by the reader (truncation); one frame fewer than declared is not:
    # containers often count one more frame than they hold, and the clip is then served one step shorter.
    return SampledFrames(frames, reader.decoded, reader.problem)


def resize_frames(frames: list[np.ndarray], size: int) -> np.ndarray:
    """``[T, size, size, 3]`` uint8: whole frames resized (bilinear), aspect ratio not kept."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames])


class VideoClips(Dataset):
    """One clip per sample: ``video`` ``[num_frames, 3, S, S]`` with ``video_mask``, its targets, its speaker."""

    def __init__(self, clips: list[VideoClip], ids: np.ndarray, num_frames: int, image_size: int,
                 corrupt: str, tasks: tuple[str, ...], task_dtypes: dict[str, str]) -> None:
        self.clips, self.ids, self.num_frames, self.image_size = clips, ids, num_frames, image_size
        self.corrupt, self.tasks, self.task_dtypes = corrupt, tasks, task_dtypes

    def __len__(self) -> int:
        return len(self.clips)

    def _unreadable(self, clip: VideoClip, why: str) -> dict[str, Any]:
        if self.corrupt == "raise":
            raise DataError(f"{why}; remove or replace {clip.path}, or set data.init_args.corrupt: skip")
        return {"skipped": str(clip.path)}

    def __getitem__(self, item: int) -> dict[str, Any]:
        clip = self.clips[item]
        try:
            sampled = sample_frames(clip.path, self.num_frames)
        except VideoDecodeError as error:
            return self._unreadable(clip, str(error))
        if not sampled.frames:
            return self._unreadable(clip, sampled.problem or f"{clip.path}: no frame could be decoded")
        frames = resize_frames([f.image for f in sampled.frames], self.image_size)  # (T', S, S, 3)
        video = torch.zeros(self.num_frames, 3, self.image_size, self.image_size)
        video[: len(frames)] = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)  # (T', 3, S, S)
        mask = torch.zeros(self.num_frames, dtype=torch.bool)
        mask[: len(frames)] = True  # a truncated clip's missing steps stay masked out
        dtypes = {"int64": torch.long, "float32": torch.float32}
        return {
            "video": video, "video_mask": mask,
            "targets": {t: torch.tensor(clip.targets[t], dtype=dtypes[self.task_dtypes[t]]) for t in self.tasks},
            "target_mask": {t: torch.tensor(True) for t in self.tasks},
            "id": torch.tensor(int(self.ids[item])), "subject": torch.tensor(clip.subject), "domain": torch.tensor(0),
        }


class VideoClipDataModule(BaseDataModule):
    """The part of a video reader that does not depend on its layout; a reader implements ``scan``.

    A subclass sets ``name``, ``tasks``, ``task_dtypes`` (task -> ``int64`` for classes, ``float32`` for
    scores), ``class_names`` and ``disjoint_subjects`` (whether the official splits must not share an identity:
    checked, a shared one stops with its id).

    Args:
        root: the data set's folder, laid out as distributed.
        num_frames: frames per clip, evenly spaced over it.
        image_size: frames are resized to this square size.
        corrupt: ``skip`` unreadable clips (counted, named in a warning) or ``raise`` at the first.
        batch_size: clips per batch.
        num_workers: data loader worker processes (decoding is the slow part: use several).
    """

    name = "video"
    tasks: tuple[str, ...] = ()
    task_dtypes: dict[str, str] = {}
    class_names: dict[str, tuple[str, ...]] = {}
    disjoint_subjects = False

    def __init__(self, root: str, num_frames: int = 8, image_size: int = 64, corrupt: str = "skip",
                 batch_size: int = 16, num_workers: int = 0) -> None:
        super().__init__(batch_size, num_workers, modalities=("video",), corrupt=corrupt, name=self.name, kind="clip")
        if num_frames < 1 or image_size < 8:
            raise ConfigError(f"data.init_args: num_frames ({num_frames}) must be at least 1 and image_size "
                              f"({image_size}) at least 8")
        self.root = Path(root)
        self.num_frames, self.image_size = num_frames, image_size
        self.clips: list[VideoClip] = []
        self.splits: dict[str, np.ndarray] = {}
        self.missing: list[str] = []  # clips the layout lists but the disk lacks (left out)

    def scan(self) -> VideoScan:
        """Every clip of the data set in a fixed order, and what is wrong with the layout; a missing root or
        index file is a DataError naming it and the layout expected."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.clips:
            return
        found = self.scan()
        if found.errors:
            more = f" (and {len(found.errors) - 1} more)" if len(found.errors) > 1 else ""
            raise DataError(f"{found.errors[0]}{more}; 'affectlab data check {self.name} --root {self.root}' "
                            "lists every problem")
        clips, self.missing = found.clips, found.missing
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else "")
            warnings.warn(f"{self.name}: {len(self.missing)} listed clip(s) are missing on disk and left out: {shown}",
                          stacklevel=2)
        # Train, val, test, each in listing order: the order ids, stores and reports follow.
        self.clips = [c for split in SPLITS for c in clips if c.split == split]
        if not self.clips:
            raise DataError(f"{self.name}: no clips found under {self.root}")
        splits = np.asarray([c.split for c in self.clips])
        self.splits = {split: np.flatnonzero(splits == split) for split in SPLITS}
        if self.disjoint_subjects:
            check_disjoint(self.splits, self.subjects())

    def subjects(self) -> np.ndarray:
        return np.asarray([c.subject for c in self.clips], dtype=np.int64)

    def labels(self, task: str, split: str) -> np.ndarray:
        self.setup()
        return np.asarray([self.clips[i].targets[task] for i in self.splits[split]])

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        if task not in self.class_names:
            raise ValueError(f"class_counts: {self.name}'s classification tasks are {list(self.class_names)}, not {task!r}")
        labels = torch.from_numpy(self.labels(task, split).astype(np.int64))
        return torch.bincount(labels, minlength=len(self.class_names[task]))

    def dataset(self, split: str) -> VideoClips:
        self.setup()
        index = self.splits[split]
        return VideoClips([self.clips[i] for i in index], index, self.num_frames, self.image_size, self.corrupt,
                          self.tasks, self.task_dtypes)
