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

Audio (``modalities`` holding ``audio``; MELD, CAER): the clip's audio track decoded, mixed to mono and
resampled to 16 kHz (``data/media/audio.py``), at most ``audio_seconds``: ``audio`` ``[S]`` float in [-1, 1]
with ``audio_mask`` ``[S]``, padded per batch to the longest clip (``collate_clips``). Text (``text``; MELD): the
utterance's words (lower case, ``words``) as ids of a vocabulary built from the train split's utterances
(``build_vocabulary``: ``<pad>`` 0, ``<unk>`` 1, then the words by falling count, ties alphabetical, at most
``vocab_size`` entries, so val and test words unseen in training are ``<unk>``), at most ``text_length``:
``text`` ``[L]`` long with ``text_mask``; the same ids the AffectSynth data module serves its text as (0 =
padding), for ``TextTransformerEncoder`` with ``vocab_size`` at least the data's. A clip without an audio
stream, or an utterance without a word, is a missing modality, not a damaged clip: one zero step, masked
(``<modality>_mask`` all False), and counted per modality (``missing_modalities``, summed up when a stage
ends; ``affectlab data check`` counts them up front).

Damage: a file FFmpeg cannot open, or one without a single decodable frame, is skipped (``corrupt: skip``:
named once in a warning, counted, summed up when the stage ends) or stops the run (``corrupt: raise``). A
truncated file serves the frames before the damage; the steps it lacks are zero with ``video_mask`` False.
``affectlab data check NAME --root DIR`` decodes every clip up front and lists what is damaged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from affectlab.data.base import BaseDataModule
from affectlab.data.contract import mask_key
from affectlab.data.media.audio import SAMPLE_RATE, read_audio
from affectlab.data.media.video import VideoDecodeError, VideoFrame, VideoReader, probe
from affectlab.data.splits import SPLITS, check_disjoint
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
    text: str | None = None  # what is said in it (MELD's Utterance), None where the data set has no text


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


PAD, UNK = 0, 1  # as AffectSynth's text (data/synth/text.py)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """An utterance's words: lower case, letters and digits with an inner apostrophe ("don't"), punctuation
    dropped; AffectSynth's utterances come back as the words they were written from."""
    return _WORD.findall(text.lower())


def build_vocabulary(texts: Iterable[str], size: int) -> tuple[str, ...]:
    """``<pad>``, ``<unk>``, then the words of ``texts`` by falling count (ties alphabetical), ``size`` entries
    at most: a pure function of the training utterances, so every split and every run gets the same ids."""
    counts = Counter(word for text in texts for word in words(text))
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return ("<pad>", "<unk>", *ranked[: max(0, size - 2)])


def encode_text(text: str, index: dict[str, int], length: int) -> np.ndarray:
    """``[L]`` int64 ids (``L <= length``) of ``text``'s words; words outside ``index`` are ``UNK``."""
    return np.asarray([index.get(word, UNK) for word in words(text)][:length], dtype=np.int64)


class VideoClips(Dataset):
    """One clip per sample: ``video`` ``[num_frames, 3, S, S]`` with ``video_mask``, ``audio`` ``[S]`` and
    ``text`` ``[L]`` with theirs (those ``modalities`` asks for), its targets, its speaker."""

    def __init__(self, clips: list[VideoClip], ids: np.ndarray, num_frames: int, image_size: int,
                 corrupt: str, tasks: tuple[str, ...], task_dtypes: dict[str, str],
                 modalities: tuple[str, ...] = ("video",), audio_seconds: float = 10.0,
                 vocabulary: tuple[str, ...] = (), text_length: int = 48) -> None:
        self.clips, self.ids, self.num_frames, self.image_size = clips, ids, num_frames, image_size
        self.corrupt, self.tasks, self.task_dtypes = corrupt, tasks, task_dtypes
        self.modalities, self.audio_seconds, self.text_length = modalities, audio_seconds, text_length
        self.index = {word: i for i, word in enumerate(vocabulary)}

    def __len__(self) -> int:
        return len(self.clips)

    def _unreadable(self, clip: VideoClip, why: str) -> dict[str, Any]:
        if self.corrupt == "raise":
            raise DataError(f"{why}; remove or replace {clip.path}, or set data.init_args.corrupt: skip")
        return {"skipped": str(clip.path)}

    def probe(self, item: int) -> str | None:
        """The clip's path if FFmpeg cannot open it as a video, else None (``max_unreadable_fraction``'s check:
        opening every clip before training, without decoding, as ``data check --quick``)."""
        try:
            probe(self.clips[item].path)
        except VideoDecodeError:
            return str(self.clips[item].path)
        return None

    def __getitem__(self, item: int) -> dict[str, Any]:
        clip = self.clips[item]
        sample: dict[str, Any] = {}
        missing: list[str] = []
        if "video" in self.modalities:
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
            sample["video"], sample["video_mask"] = video, mask
        if "audio" in self.modalities:
            try:
                track = read_audio(clip.path, SAMPLE_RATE, self.audio_seconds)
            except VideoDecodeError as error:
                return self._unreadable(clip, str(error))
            waveform = track.waveform if track is not None else np.zeros(0, np.float32)
            if len(waveform) == 0:
                missing.append("audio")
            sample["audio"], sample["audio_mask"] = _masked(torch.from_numpy(np.ascontiguousarray(waveform)))
        if "text" in self.modalities:
            ids = encode_text(clip.text or "", self.index, self.text_length)
            if len(ids) == 0:
                missing.append("text")
            sample["text"], sample["text_mask"] = _masked(torch.from_numpy(ids))
        dtypes = {"int64": torch.long, "float32": torch.float32}
        sample.update({
            "targets": {t: torch.tensor(clip.targets[t], dtype=dtypes[self.task_dtypes[t]]) for t in self.tasks},
            "target_mask": {t: torch.tensor(True) for t in self.tasks},
            "id": torch.tensor(int(self.ids[item])), "subject": torch.tensor(clip.subject), "domain": torch.tensor(0),
            "missing": missing,
        })
        return sample


def _masked(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``values`` ``[S]`` with its mask; an empty one becomes one zero step, masked out (a missing modality)."""
    if len(values) == 0:
        return torch.zeros(1, dtype=values.dtype), torch.zeros(1, dtype=torch.bool)
    return values, torch.ones(len(values), dtype=torch.bool)


SEQUENCES = ("audio", "text")  # one value per step, of a length that varies by clip: padded per batch


def collate_clips(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate the readable clips (unreadable ones' paths in ``batch["skipped"]``, as ``collate_skipping``):
    ``audio`` and ``text`` zero-padded to the batch's longest with their masks False on padding, each clip's
    missing modalities listed in ``batch["missing"]`` (clip id, modality), the rest stacked."""
    skipped = [s["skipped"] for s in samples if "skipped" in s]
    good = [s for s in samples if "skipped" not in s]
    if not good:
        return {"skipped": skipped, "missing": [], "id": torch.zeros(0, dtype=torch.long)}
    batch: dict[str, Any] = {}
    for key in SEQUENCES:
        if key in good[0]:
            length = max(len(s[key]) for s in good)
            values = torch.zeros(len(good), length, dtype=good[0][key].dtype)
            mask = torch.zeros(len(good), length, dtype=torch.bool)
            for i, s in enumerate(good):
                values[i, : len(s[key])], mask[i, : len(s[key])] = s[key], s[mask_key(key)]
            batch[key], batch[mask_key(key)] = values, mask
    rest = [{k: v for k, v in s.items() if k not in batch and k != "missing"} for s in good]
    batch.update(default_collate(rest))
    batch["skipped"] = skipped
    batch["missing"] = [(int(s["id"]), modality) for s in good for modality in s["missing"]]
    return batch


class VideoClipDataModule(BaseDataModule):
    """The part of a video reader that does not depend on its layout; a reader implements ``scan``.

    A subclass sets ``name``, ``tasks``, ``task_dtypes`` (task -> ``int64`` for classes, ``float32`` for
    scores), ``class_names`` and ``disjoint_subjects`` (whether the official splits must not share an identity:
    checked, a shared one stops with its id).

    ``available_modalities`` are those the data set has (``video`` for VoxCeleb2's readers so far; MELD adds
    ``audio`` and ``text``, CAER ``audio``); ``modalities`` serves a subset (a two-modality variant's data config).

    Args:
        root: the data set's folder, laid out as distributed.
        num_frames: frames per clip, evenly spaced over it.
        image_size: frames are resized to this square size.
        corrupt: ``skip`` unreadable clips (counted, named in a warning) or ``raise`` at the first.
        batch_size: clips per batch.
        num_workers: data loader worker processes (decoding is the slow part: use several).
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
        modalities: the modalities to serve, among ``available_modalities``; None serves them all.
        audio_seconds: audio per clip at most (16 kHz mono).
        text_length: words per utterance at most.
        vocab_size: entries of the vocabulary built from the train split (padding and unknown included).
    """

    name = "video"
    tasks: tuple[str, ...] = ()
    task_dtypes: dict[str, str] = {}
    class_names: dict[str, tuple[str, ...]] = {}
    disjoint_subjects = False
    available_modalities: tuple[str, ...] = ("video",)

    def __init__(self, root: str, num_frames: int = 8, image_size: int = 64, corrupt: str = "skip",
                 batch_size: int = 16, num_workers: int = 0, modalities: list[str] | None = None,
                 audio_seconds: float = 10.0, text_length: int = 48, vocab_size: int = 512,
                 max_unreadable_fraction: float | None = None) -> None:
        chosen = tuple(modalities) if modalities else self.available_modalities
        unknown = [m for m in chosen if m not in self.available_modalities]
        if unknown or len(set(chosen)) != len(chosen):
            raise ConfigError(f"data.init_args.modalities: {list(chosen)}; {self.name} has "
                              f"{list(self.available_modalities)} (each at most once)")
        super().__init__(batch_size, num_workers, modalities=chosen, corrupt=corrupt, name=self.name, kind="clip",
                         max_unreadable_fraction=max_unreadable_fraction)
        if num_frames < 1 or image_size < 8:
            raise ConfigError(f"data.init_args: num_frames ({num_frames}) must be at least 1 and image_size "
                              f"({image_size}) at least 8")
        if audio_seconds <= 0 or text_length < 1 or vocab_size < 3:
            raise ConfigError(f"data.init_args: audio_seconds ({audio_seconds}) must be positive, text_length "
                              f"({text_length}) at least 1 and vocab_size ({vocab_size}) at least 3")
        self.root = Path(root)
        self.num_frames, self.image_size = num_frames, image_size
        self.audio_seconds, self.text_length, self.vocab_size = audio_seconds, text_length, vocab_size
        self.clips: list[VideoClip] = []
        self.splits: dict[str, np.ndarray] = {}
        self.missing: list[str] = []  # clips the layout lists but the disk lacks (left out)
        self.vocabulary: tuple[str, ...] = ()  # text: built from the train split in setup
        self.missing_modalities: dict[str, set[int]] = {}  # modality -> ids of clips served without it

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
        self.skips.add("listed_clip_missing", list(self.missing), "listed clip(s) are missing on disk",
                       "restore them, or remove their rows", strict=False)  # MELD's own train set lacks one
        # Train, val, test, each in listing order: the order ids, stores and reports follow.
        self.clips = [c for split in SPLITS for c in clips if c.split == split]
        if not self.clips:
            raise DataError(f"{self.name}: no clips found under {self.root}")
        splits = np.asarray([c.split for c in self.clips])
        self.splits = {split: np.flatnonzero(splits == split) for split in SPLITS}
        if self.disjoint_subjects:
            check_disjoint(self.splits, self.subjects())
        if "text" in self.modalities:
            self.vocabulary = build_vocabulary((self.clips[i].text or "" for i in self.splits["train"]),
                                               self.vocab_size)

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
                          self.tasks, self.task_dtypes, self.modalities, self.audio_seconds, self.vocabulary,
                          self.text_length)

    def collate(self):
        return collate_clips

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        for clip, modality in batch.pop("missing", []):
            self.missing_modalities.setdefault(modality, set()).add(clip)
        return super().on_after_batch_transfer(batch, dataloader_idx)

    def missing_report(self) -> str | None:
        """How many clips were served without each modality (masked), or None when none lacked one."""
        if not any(self.missing_modalities.values()):
            return None
        parts = [f"{len(ids)} without {modality}" for modality, ids in sorted(self.missing_modalities.items()) if ids]
        return (f"{self.name}: clips served with a modality missing (zero step, masked): {', '.join(parts)}; "
                f"'affectlab data check {self.name} --root {self.root}' lists them")

    def teardown(self, stage: str) -> None:
        super().teardown(stage)
        report = self.missing_report()
        if report:
            print(report, flush=True)
