"""Per-frame feature tables that face-analysis tools write, one CSV per video: OpenFace 2.0
(``FeatureExtraction``) and py-feat (a ``Fex`` data frame saved with ``to_csv``), served as feature sequences.

Layout under ``root``::

    <root>/<video>.csv      one tool output per video (OpenFace separates columns with ", ": both are read)
    <root>/labels.csv       optional: file,emotion[,split][,subject]  (file: the CSV's name; emotion: one of
                            neutral, happy, sad, surprise, fear, disgust, anger; split: train, val or test)

Columns read (those present; anything else, landmarks included, is ignored):

- ``openface``: ``AU01_r ... AU45_r`` (intensities), ``AU01_c ... AU45_c`` (presence), ``gaze_0_x ...
  gaze_angle_y``, ``pose_Rx, pose_Ry, pose_Rz``; rows with ``success`` 0 (face not tracked) are left out.
- ``pyfeat``: ``AU01 ... AU43``, the seven emotion probabilities (``anger ... neutral``), ``Pitch, Roll, Yaw``;
  rows without a face (empty ``FaceScore``) are left out.

A video with several faces (OpenFace's ``face_id``) keeps the face seen in most frames. Each video becomes
one sample: ``video`` ``[T, D]`` (features in the column order above, at most ``max_steps`` rows, evenly
subsampled) with ``video_mask``; its ``emotion`` label comes from ``labels.csv`` (unlabelled without it).
Without a ``split`` column the videos are split 70/15/15, by ``subject`` when given, else by video.

Rows of ``labels.csv`` whose ``file`` is no CSV under ``root``, and tables without a tracked face in any frame,
are what ``affectlab data check`` flags: under ``corrupt: skip`` (the default) they are left out with one
warning each kind, counted and logged to the run (``data/left_out/<reason>``), under ``corrupt: raise`` an error.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.contract import EMOTIONS
from affectlab.data.base import BaseDataModule
from affectlab.data.collate import collate_padded, subsample
from affectlab.data.splits import SPLITS, identity_split
from affectlab.data.spec import DatasetSpec
from affectlab.errors import ConfigError, DataError


@dataclass(frozen=True)
class TableFormat:
    name: str
    feature_patterns: tuple[str, ...]  # regular expressions, in the order features are served
    tracked: str  # the column that says a face was found
    face: str | None  # the column identifying faces, if several can appear


FORMATS = {
    "openface": TableFormat(
        "openface",
        (r"AU\d\d_r", r"AU\d\d_c", r"gaze_\d_[xyz]", r"gaze_angle_[xy]", r"pose_R[xyz]"),
        tracked="success", face="face_id",
    ),
    "pyfeat": TableFormat(
        "pyfeat",
        (r"AU\d\d", r"anger|disgust|fear|happiness|sadness|surprise|neutral", r"Pitch|Roll|Yaw"),
        tracked="FaceScore", face=None,
    ),
}


def feature_columns(header: list[str], table: TableFormat) -> list[str]:
    columns = []
    for pattern in table.feature_patterns:
        columns += [c for c in header if re.fullmatch(pattern, c) and c not in columns]
    return columns


def read_table(path: Path, table: TableFormat) -> tuple[np.ndarray, list[str]]:
    """``(features [T, D] float32, column names)`` of one tool output; a bad value names file, line and column,
    a file that is not text the file."""
    try:
        return _read_rows(path, table)
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a {table.name} CSV table ({error})") from None


def _read_rows(path: Path, table: TableFormat) -> tuple[np.ndarray, list[str]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle, skipinitialspace=True)  # OpenFace writes "frame, face_id, ..."
        header = [h.strip() for h in next(reader, [])]
        columns = feature_columns(header, table)
        if not columns or table.tracked not in header:
            raise DataError(f"{path}: not a {table.name} table: no {table.tracked!r} column or no feature columns "
                            f"({', '.join(table.feature_patterns)}); the header starts {header[:6]}")
        index = [header.index(c) for c in columns]
        tracked = header.index(table.tracked)
        face = header.index(table.face) if table.face in header else None
        rows, faces = [], []
        for number, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{path}, line {number}: {len(row)} values for {len(header)} columns")
            if not _tracked(row[tracked].strip()):
                continue
            try:
                rows.append([float(row[i]) for i in index])
            except ValueError:
                bad = next(columns[j] for j, i in enumerate(index) if not _is_number(row[i]))
                raise DataError(f"{path}, line {number}, column {bad}: {row[header.index(bad)]!r} is not a number") from None
            faces.append(row[face].strip() if face is not None else "0")
    if rows:
        main_face = Counter(faces).most_common(1)[0][0]
        rows = [r for r, f in zip(rows, faces) if f == main_face]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(columns)), columns


def _tracked(flag: str) -> bool:
    """A face was found: OpenFace's success is 1, py-feat's FaceScore is a number (empty or NaN: no face)."""
    try:
        value = float(flag)
    except ValueError:
        return False
    return value == value and value != 0  # not NaN, not 0


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class TableVideos(Dataset):
    def __init__(self, features: list[np.ndarray], labels: np.ndarray, ids: np.ndarray, max_steps: int) -> None:
        self.features, self.labels, self.ids, self.max_steps = features, labels, ids, max_steps

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, item: int) -> dict[str, Any]:
        rows = self.features[item][subsample(np.arange(len(self.features[item])), self.max_steps)]
        label = int(self.labels[item])
        return {
            "video": torch.from_numpy(rows),
            "targets": {"emotion": torch.tensor(max(label, 0))},
            "target_mask": {"emotion": torch.tensor(label >= 0)},
            "id": torch.tensor(int(self.ids[item])),
        }


class FrameTableDataModule(BaseDataModule):
    """Videos as sequences of per-frame features from OpenFace 2.0 or py-feat CSV files (module docstring).

    Args:
        format: ``openface`` or ``pyfeat``.
        root: the folder of CSV files.
        labels_file: name of the labels CSV under ``root`` (absent: every video unlabelled).
        max_steps: frames per video, at most (evenly subsampled).
        split_seed: seed of the split when ``labels.csv`` has no ``split`` column.
        corrupt: ``skip`` label rows without a table and tables without a tracked face (counted, named in a
            warning) or ``raise`` at the first.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
    """

    def __init__(
        self,
        format: str,
        root: str,
        labels_file: str = "labels.csv",
        max_steps: int = 300,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        if format not in FORMATS:
            raise ConfigError(f"data.init_args.format: {format!r} is not one of {list(FORMATS)}")
        self.table = FORMATS[format]
        self.root, self.labels_file, self.max_steps = Path(root), labels_file, max_steps
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("emotion",),
                         class_names={"emotion": EMOTIONS}, corrupt=corrupt, name=format, kind="table")
        self.split_seed = split_seed
        self.columns: list[str] = []
        self.splits: dict[str, np.ndarray] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if not self.root.is_dir():
            raise DataError(f"{self.table.name}: root {self.root} is not a folder of per-video CSV files")
        paths = sorted(p for p in self.root.glob("*.csv") if p.name != self.labels_file)
        if not paths:
            raise DataError(f"{self.table.name}: no per-video .csv files in {self.root}")
        labels_meta = self._labels()
        tables = {path.name for path in paths}
        self.skips.add("label_without_file", [f"{self.root / self.labels_file}: {name}" for name in labels_meta
                                              if name not in tables],
                       f"row(s) of {self.labels_file} naming no table under {self.root}",
                       "fix the row's file name or add the table")
        untracked = []
        features, labels, subjects, given = [], [], [], []
        for path in paths:
            values, columns = read_table(path, self.table)
            if not self.columns:
                self.columns = columns
            elif columns != self.columns:
                raise DataError(f"{path}: feature columns differ from the first file's ({len(columns)} vs {len(self.columns)})")
            if len(values) == 0:
                untracked.append(str(path))
                continue
            meta = labels_meta.get(path.name, {})
            features.append(values)
            labels.append(meta.get("emotion", -1))
            subjects.append(meta.get("subject", path.stem))
            given.append(meta.get("split"))
        self.skips.add("no_tracked_face", untracked, "table(s) without a tracked face in any frame",
                       f"run {self.table.name} on those videos again, or remove the tables")
        self.features, self.labels = features, np.asarray(labels, dtype=np.int64)
        if all(g is not None for g in given):
            self.splits = {s: np.flatnonzero(np.asarray(given) == s) for s in SPLITS}
        else:
            codes = {s: i for i, s in enumerate(dict.fromkeys(subjects))}
            self.splits = identity_split(np.asarray([codes[s] for s in subjects]), seed=self.split_seed)

    def _labels(self) -> dict[str, dict[str, Any]]:
        path = self.root / self.labels_file
        if not path.is_file():
            return {}
        try:
            return self._label_rows(path)
        except (UnicodeDecodeError, csv.Error) as error:
            raise DataError(f"{path}: not a CSV of file,emotion[,split][,subject] rows ({error})") from None

    def _label_rows(self, path: Path) -> dict[str, dict[str, Any]]:
        result = {}
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if "file" not in (reader.fieldnames or []) or "emotion" not in (reader.fieldnames or []):
                raise DataError(f"{path}: needs columns file,emotion (optional split, subject); found {reader.fieldnames}")
            for number, row in enumerate(reader, 2):
                emotion = (row["emotion"] or "").strip().lower()
                if emotion not in EMOTIONS:
                    raise DataError(f"{path}, line {number}: emotion {row['emotion']!r} is not one of {', '.join(EMOTIONS)}")
                entry: dict[str, Any] = {"emotion": EMOTIONS.index(emotion)}
                if row.get("split"):
                    if row["split"] not in SPLITS:
                        raise DataError(f"{path}, line {number}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
                    entry["split"] = row["split"]
                if row.get("subject"):
                    entry["subject"] = row["subject"]
                result[row["file"]] = entry
        return result

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        self.setup()
        labels = self.labels[self.splits[split]]
        return torch.bincount(torch.from_numpy(labels[labels >= 0]), minlength=len(EMOTIONS))

    def dataset(self, split: str) -> TableVideos:
        self.setup()
        index = self.splits[split]
        return TableVideos([self.features[i] for i in index], self.labels[index], index, self.max_steps)

    def collate(self) -> Callable[[list[Any]], Any]:
        return collate_padded


SPECS = (
    DatasetSpec(
        "openface", "OpenFace 2.0 FeatureExtraction output, one CSV per video", "data/openface",
        "<video>.csv   (frame, face_id, timestamp, confidence, success, ..., AU01_r, ..., AU45_c)\n"
        "labels.csv    (file,emotion[,split][,subject])",
        reader="affectlab.data.FrameTableDataModule", init_args={"format": "openface"}, rows_arg="max_steps",
        check="affectlab.data.check.check_reader", prepare="affectlab.data.store.prepare.prepare_features",
        export="affectlab.data.synth.export.export_frame_tables", export_args={"tool": "openface"},
    ),
    DatasetSpec(
        "pyfeat", "py-feat Fex tables saved as CSV, one per video", "data/pyfeat",
        "<video>.csv   (frame, FaceRectX, ..., AU01, ..., anger, ..., neutral, input)\n"
        "labels.csv    (file,emotion[,split][,subject])",
        reader="affectlab.data.FrameTableDataModule", init_args={"format": "pyfeat"}, rows_arg="max_steps",
        check="affectlab.data.check.check_reader", prepare="affectlab.data.store.prepare.prepare_features",
        export="affectlab.data.synth.export.export_frame_tables", export_args={"tool": "pyfeat"},
    ),
)
