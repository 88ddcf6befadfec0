"""DISFA: 27 subjects filmed while watching video clips, 12 action units coded per frame at intensity 0-5.

Two layouts are read:

1. ``native``: the AU label files as distributed, with the left camera's frames extracted beside them::

       <root>/ActionUnit_Labels/SN001/SN001_au1.txt      one line per frame: "<frame>,<intensity>", frames from 1
       <root>/ActionUnit_Labels/SN001/SN001_au2.txt      ... one file per AU: 1 2 4 5 6 9 12 15 17 20 25 26
       <root>/Frames_LeftCamera/SN001/<frame>.png        frame numbers as in the label files (000001.png or 1.png;
                                                         .jpg also); `affectlab data prepare disfa` writes these
                                                         from Videos_LeftCamera/LeftVideoSN001_comp.avi

2. ``csv``: the flat table seed 001 (FaceFlow) trains from, one row per image: ``AU1,AU2,...,AU26,filename``
   (intensities 0-5; ``filename`` relative to the CSV's folder; the subject is read from an ``SN\\d+`` part of
   the path, as FaceFlow's preparation names its files).

Targets: ``au_intensity`` ``[12]`` (0-5) and ``au`` ``[12]`` (occurrence: intensity >= 2, FACS level B, the
usual DISFA cut). Only the AUs given in ``action_units`` are served, in DISFA order (seed 001 used 11, leaving
out AU25). Splits are subject-disjoint cross-validation folds (3 folds, DISFA's convention; ``data/splits.py``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.contract import ACTION_UNITS, AU_OCCURRENCE_THRESHOLD
from affectlab.data.base import BaseDataModule
from affectlab.data.images import load_image
from affectlab.data.splits import cross_validation_split
from affectlab.data.spec import DatasetSpec
from affectlab.errors import ConfigError, DataError

LABELS, FRAMES = "ActionUnit_Labels", "Frames_LeftCamera"
_SUBJECT = re.compile(r"SN(\d+)")


def read_au_file(path: Path) -> dict[int, float]:
    """``frame -> intensity`` from one DISFA label file; a malformed line is a DataError naming file and line."""
    values: dict[int, float] = {}
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",")
            try:
                frame, intensity = int(parts[0]), float(parts[1])
            except (ValueError, IndexError):
                raise DataError(f"{path}, line {number}: {line!r} is not '<frame>,<intensity>'") from None
            if not 0 <= intensity <= 5 or len(parts) != 2:
                raise DataError(f"{path}, line {number}: intensity {parts[1]!r} is not a number from 0 to 5")
            values[frame] = intensity
    return values


def _frame_file(folder: Path, frame: int) -> Path | None:
    for stem in (f"{frame:06d}", f"{frame:05d}", f"{frame:04d}", str(frame)):
        for extension in (".png", ".jpg", ".jpeg"):
            path = folder / f"{stem}{extension}"
            if path.is_file():
                return path
    return None


def read_native(root: Path, action_units: tuple[int, ...]) -> tuple[list[Path], np.ndarray, np.ndarray, int]:
    """Files, intensities ``[N, A]``, subjects ``[N]`` and the count of labelled frames without an image."""
    labels_root = root / LABELS
    if not labels_root.is_dir():
        raise DataError(f"disfa: {labels_root} is missing; expected {root}/{LABELS}/SN001/SN001_au1.txt ... "
                        f"and {root}/{FRAMES}/SN001/<frame>.png (see affectlab.data.readers.disfa)")
    files, rows, subjects, missing = [], [], [], 0
    for subject_dir in sorted(p for p in labels_root.iterdir() if p.is_dir()):
        match = _SUBJECT.fullmatch(subject_dir.name)
        if match is None:
            continue
        per_au = []
        for au in action_units:
            path = subject_dir / f"{subject_dir.name}_au{au}.txt"
            if not path.is_file():
                raise DataError(f"disfa: {path} is missing; every subject needs one label file per AU")
            per_au.append(read_au_file(path))
        frames_dir = root / FRAMES / subject_dir.name
        if not frames_dir.is_dir():
            raise DataError(f"disfa: {frames_dir} is missing; extract the left camera's frames there "
                            "(affectlab data prepare disfa) named by frame number")
        for frame in sorted(set.intersection(*(set(v) for v in per_au))):
            image = _frame_file(frames_dir, frame)
            if image is None:
                missing += 1
                continue
            files.append(image)
            rows.append([values[frame] for values in per_au])
            subjects.append(int(match.group(1)))
    if not files:
        raise DataError(f"disfa: no labelled frames with images under {root}")
    return files, np.asarray(rows, dtype=np.float32), np.asarray(subjects, dtype=np.int64), missing


def read_flat_csv(path: Path, action_units: tuple[int, ...]) -> tuple[list[Path], np.ndarray, np.ndarray, int]:
    """Seed 001's ``AU1,...,filename`` table; every row's values checked, errors name the line."""
    if not path.is_file():
        raise DataError(f"disfa: {path} is not a file; expected a CSV with columns AU1,AU2,...,filename")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [f"AU{au}" for au in action_units]
        absent = [c for c in [*columns, "filename"] if c not in (reader.fieldnames or [])]
        if absent:
            raise DataError(f"{path}: no column(s) {absent}; the header is {reader.fieldnames}")
        files, rows, subjects, missing = [], [], [], 0
        for number, row in enumerate(reader, 2):
            try:
                values = [float(row[c]) for c in columns]
            except (TypeError, ValueError):
                raise DataError(f"{path}, line {number}: AU values {[row.get(c) for c in columns]} are not numbers") from None
            if not all(0 <= v <= 5 for v in values):
                raise DataError(f"{path}, line {number}: AU intensities {values} are not all in 0-5")
            match = _SUBJECT.search(row["filename"] or "")
            if match is None:
                raise DataError(f"{path}, line {number}: filename {row['filename']!r} names no subject (SN<number>)")
            image = path.parent / row["filename"]
            if not image.is_file():
                missing += 1
                continue
            files.append(image)
            rows.append(values)
            subjects.append(int(match.group(1)))
    if not files:
        raise DataError(f"disfa: no rows of {path} point to an existing image")
    return files, np.asarray(rows, dtype=np.float32), np.asarray(subjects, dtype=np.int64), missing


class DisfaFrames(Dataset):
    def __init__(self, files: list[Path], intensity: np.ndarray, subjects: np.ndarray, ids: np.ndarray,
                 image_size: int, corrupt: str) -> None:
        self.files, self.intensity, self.subjects, self.ids = files, intensity, subjects, ids
        self.image_size, self.corrupt = image_size, corrupt

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: int) -> dict[str, Any]:
        path = self.files[item]
        try:
            frames = load_image(path, self.image_size)  # (1, 3, S, S)
        except Exception as error:  # PIL raises several unrelated types for truncated or foreign files
            if self.corrupt == "raise":
                raise DataError(f"{path}: not a readable image ({error})") from None
            return {"skipped": str(path)}
        intensity = torch.from_numpy(self.intensity[item])  # (A,)
        return {
            "video": frames, "video_mask": torch.ones(1, dtype=torch.bool),
            "targets": {"au_intensity": intensity, "au": (intensity >= AU_OCCURRENCE_THRESHOLD).float()},
            "target_mask": {"au_intensity": torch.tensor(True), "au": torch.tensor(True)},
            "id": torch.tensor(int(self.ids[item])), "subject": torch.tensor(int(self.subjects[item])),
            "domain": torch.tensor(0),
        }


class DisfaDataModule(BaseDataModule):
    """DISFA frames with per-frame AU intensities (see the module docstring for the layouts).

    Args:
        root: the DISFA folder (``native``), or the folder of the CSV.
        layout: ``native`` or ``csv``.
        csv_file: the CSV's name under ``root`` (``csv`` layout).
        action_units: which AUs to serve, a subset of the 12 in DISFA order.
        frame_stride: keep every n-th labelled frame (DISFA's neighbouring frames are near duplicates).
        split: ``kfold`` (subject-disjoint) or ``loso``; ``fold`` and ``num_folds`` pick the test fold.
        image_size: frames are resized to this square size.
        corrupt: ``skip`` unreadable frames (named, counted) or ``raise``.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
    """

    def __init__(
        self,
        root: str,
        layout: str = "native",
        csv_file: str = "disfa.csv",
        action_units: list[int] | None = None,
        frame_stride: int = 1,
        split: str = "kfold",
        fold: int = 0,
        num_folds: int = 3,
        split_seed: int = 0,
        image_size: int = 64,
        corrupt: str = "skip",
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        if layout not in ("native", "csv"):
            raise ConfigError(f"data.init_args.layout: {layout!r} is not 'native' or 'csv'")
        self.action_units = tuple(action_units or ACTION_UNITS)
        unknown = [au for au in self.action_units if au not in ACTION_UNITS]
        if unknown:
            raise ConfigError(f"data.init_args.action_units: {unknown} are not DISFA AUs {list(ACTION_UNITS)}")
        if split not in ("kfold", "loso"):
            raise ConfigError(f"data.init_args.split: {split!r}; DISFA is split by subject: 'kfold' or 'loso'")
        if frame_stride < 1:
            raise ConfigError(f"data.init_args.frame_stride: {frame_stride} must be 1 or more")
        self.root, self.layout, self.csv_file = Path(root), layout, csv_file
        self.frame_stride = frame_stride
        self.split, self.fold, self.num_folds, self.split_seed = split, fold, num_folds, split_seed
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("au", "au_intensity"),
                         class_names={"au": tuple(f"AU{au}" for au in self.action_units)}, corrupt=corrupt,
                         name="disfa")
        self.image_size = image_size
        self.data: tuple[list[Path], np.ndarray, np.ndarray] | None = None
        self.splits: dict[str, np.ndarray] = {}
        self.missing_images = 0

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        if self.layout == "native":
            files, intensity, subjects, missing = read_native(self.root, self.action_units)
        else:
            files, intensity, subjects, missing = read_flat_csv(self.root / self.csv_file, self.action_units)
        if missing:
            print(f"disfa: {missing} labelled frames have no image and are left out", flush=True)
        self.missing_images = missing
        keep = np.arange(0, len(files), self.frame_stride)
        self.data = ([files[i] for i in keep], intensity[keep], subjects[keep])
        try:
            self.splits = cross_validation_split(self.data[2], self.split, self.fold, self.num_folds, seed=self.split_seed)
        except DataError as error:
            raise ConfigError(f"data.init_args.split/fold: {error}") from None

    def class_counts(self, task: str = "au", split: str = "train") -> torch.Tensor:
        """``[A, 2]``: per AU the train frames without (column 0) and with it (column 1)."""
        if task != "au":
            raise ValueError(f"class_counts: DISFA's classification task is 'au', not {task!r}")
        self.setup()
        present = (self.data[1][self.splits[split]] >= AU_OCCURRENCE_THRESHOLD).sum(axis=0)
        return torch.stack([torch.from_numpy(len(self.splits[split]) - present), torch.from_numpy(present)], dim=1)

    def dataset(self, split: str) -> DisfaFrames:
        self.setup()
        index = self.splits[split]
        files, intensity, subjects = self.data
        return DisfaFrames([files[i] for i in index], intensity[index], subjects[index], index, self.image_size,
                           self.corrupt)


SPEC = DatasetSpec(
    "disfa", "DISFA: 27 subjects, 12 AU intensities (0-5) per frame", "data/disfa",
    "ActionUnit_Labels/SN001/SN001_au1.txt ... SN001_au26.txt  (<frame>,<intensity>)\n"
    "Frames_LeftCamera/SN001/<frame>.png   (or a flat disfa.csv: AU1,...,AU26,filename)",
    reader="affectlab.data.DisfaDataModule", check="affectlab.data.check.check_reader",
    export="affectlab.data.synth.export.export_disfa", subjects="disjoint",
)
