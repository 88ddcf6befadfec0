"""VoxCeleb2 (Chung et al. 2018, https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html): unlabelled clips
of talking faces from YouTube, for self-supervised pretraining.

Expected under ``root`` (the video release as distributed, archives extracted in place)::

    dev/mp4/<speaker id>/<video id>/<clip>.mp4      speaker id: id<digits> (id00012); clip: 00001.mp4, ...
    test/mp4/<speaker id>/<video id>/<clip>.mp4     optional: pretraining needs dev only

Splits: ``dev`` is served as ``train``, minus ``val_fraction`` of its speakers (a seeded draw of whole
speakers) held out as ``val``; ``test`` as ``test``. The official dev and test sets are speaker-disjoint: a
speaker in both stops the reader with its id (a mixed-up copy), and ``affectlab data check voxceleb2``
reports it as an error. ``subject`` is the speaker id's number (id00012 -> 12), so subject-aware samplers
and splits work on it. No labels: ``tasks`` is empty and batches carry empty ``targets``.

Per sample: the clip's ``num_frames`` frames, evenly spaced, whole frames resized (``data/media/video_clips.py``;
VoxCeleb2's clips are already face-centred); ``affectlab data prepare voxceleb2`` stores aligned face crops.
Folders that are no speaker id and files that are no video are ignored and listed by ``data check``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from affectlab.data.media.video import VIDEO_SUFFIXES
from affectlab.data.media.video_clips import VideoClip, VideoClipDataModule, VideoScan
from affectlab.data.spec import DatasetSpec
from affectlab.errors import ConfigError, DataError

VOX_SPLITS = ("dev", "test")
SPEAKER_ID = re.compile(r"^id(\d+)$")


SPEC = DatasetSpec(
    "voxceleb2", "VoxCeleb2: unlabelled talking-face clips for self-supervised pretraining", "data/voxceleb2",
    f"<{'|'.join(VOX_SPLITS)}>/mp4/<speaker id>/<video id>/<clip>.mp4", labelled=False,
    reader="affectlab.data.VoxCeleb2DataModule", check="affectlab.data.check.check_video_dataset",
    prepare="affectlab.data.store.video_prepare.prepare_clips", export="affectlab.data.synth.export.export_voxceleb2",
    export_styles=("shaded",), subjects="disjoint",
)


def layout_tree(root: Path) -> str:
    return SPEC.tree(root)


def _sorted_dirs(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:  # scandir: a million clips are listed without a stat call each
        return sorted(entries, key=lambda e: e.name)


def scan_voxceleb2(root: str | Path, val_fraction: float = 0.05, split_seed: int = 0) -> VideoScan:
    """Every clip of dev and test, dev's held-out speakers marked ``val``; a speaker in both official sets is
    an error."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"voxceleb2: root {root} is not a folder; expected VoxCeleb2's clips there:\n{layout_tree(root)}")
    if not (root / "dev" / "mp4").is_dir():
        raise DataError(f"voxceleb2: {root / 'dev' / 'mp4'} is missing; expected\n{layout_tree(root)}")
    found = VideoScan([])
    by_split: dict[str, list[tuple[int, Path, str]]] = {}
    for split in VOX_SPLITS:
        base = root / split / "mp4"
        by_split[split] = []
        if not base.is_dir():
            continue  # test is optional
        for speaker in _sorted_dirs(base):
            match = SPEAKER_ID.match(speaker.name)
            if not speaker.is_dir() or match is None:
                found.ignored.append(speaker.path)
                continue
            subject = int(match.group(1))
            found.subject_names[subject] = speaker.name
            for video in _sorted_dirs(Path(speaker.path)):
                if not video.is_dir():
                    found.ignored.append(video.path)
                    continue
                for clip in _sorted_dirs(Path(video.path)):
                    if Path(clip.name).suffix.lower() not in VIDEO_SUFFIXES:
                        found.ignored.append(clip.path)
                        continue
                    by_split[split].append((subject, Path(clip.path), f"{split}/{speaker.name}/{video.name}/{clip.name}"))
    dev_speakers = sorted({s for s, _, _ in by_split["dev"]})
    shared = sorted(set(dev_speakers) & {s for s, _, _ in by_split["test"]})
    for subject in shared:
        found.errors.append(f"voxceleb2: speaker {found.subject_names[subject]} has clips in both "
                            f"{root / 'dev' / 'mp4'} and {root / 'test' / 'mp4'}; VoxCeleb2's dev and test sets are "
                            "speaker-disjoint (a mixed-up copy?)")
    # Whole dev speakers held out for validation, so val measures generalisation to new people.
    held = max(1, round(val_fraction * len(dev_speakers))) if val_fraction > 0 and len(dev_speakers) >= 2 else 0
    val_speakers = set(np.random.default_rng(split_seed).permutation(dev_speakers)[:held].tolist())
    for subject, path, name in by_split["dev"]:
        found.clips.append(VideoClip(path, "val" if subject in val_speakers else "train", {}, subject, name))
    found.clips += [VideoClip(path, "test", {}, subject, name) for subject, path, name in by_split["test"]]
    if not found.clips:
        found.errors.append(f"voxceleb2: no clips under {root}; expected\n{layout_tree(root)}")
    return found


class VoxCeleb2DataModule(VideoClipDataModule):
    """VoxCeleb2's unlabelled clips by speaker, for self-supervised pretraining (module docstring: the layout).

    Args:
        root: VoxCeleb2's folder, laid out as distributed.
        val_fraction: of dev's speakers held out as the val split (at least one when dev has two or more).
        split_seed: seed of that hold-out.
        num_frames: frames per clip, evenly spaced over it.
        image_size: frames are resized to this square size.
        corrupt: ``skip`` unreadable clips (counted, named in a warning) or ``raise`` at the first.
        batch_size: clips per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    name = "voxceleb2"
    disjoint_subjects = True  # official dev/test, and the val speakers carved out of dev

    def __init__(self, root: str = "data/voxceleb2", val_fraction: float = 0.05, split_seed: int = 0,
                 num_frames: int = 8, image_size: int = 64, corrupt: str = "skip", batch_size: int = 16,
                 num_workers: int = 0, max_unreadable_fraction: float | None = None) -> None:
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"data.init_args.val_fraction: {val_fraction} is not a fraction in [0, 1)")
        super().__init__(root, num_frames, image_size, corrupt, batch_size, num_workers,
                         max_unreadable_fraction=max_unreadable_fraction)
        self.val_fraction, self.split_seed = val_fraction, split_seed

    def scan(self) -> VideoScan:
        return scan_voxceleb2(self.root, self.val_fraction, self.split_seed)
