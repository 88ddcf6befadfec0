"""FER2013 read as its authors distribute it: one CSV of 48x48 grey faces, decoded once into a memory-mapped
array and served in the batch contract as one-frame clips.

Layout (the ICML 2013 challenge's file, as Kaggle distributes it):

    <root>/fer2013.csv          header 'emotion,pixels,Usage', one face per line
    <root>/icml_face_data.csv   or Kaggle's later copy, header 'emotion, Usage, pixels' (spaces, other order)

    emotion,pixels,Usage
    0,70 80 82 72 ... 2304 integers 0-255 ...,Training

- ``emotion``: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral (``LABEL_CODES``), mapped onto
  AffectLab's canonical order (``contract.EMOTIONS``);
- ``pixels``: 48x48 = 2304 grey values, row-major, separated by spaces;
- ``Usage``: ``Training`` -> train, ``PublicTest`` -> val, ``PrivateTest`` -> test. This is the usual protocol of
  papers that report FER2013 numbers (train on Training, select on PublicTest, report PrivateTest), so no split
  is carved here and the official test set stays untouched.

Columns are found by their header name with spaces stripped, so both headers read the same. Blank lines are
ignored (as pandas does).

Decoding 35,887 rows of pixel strings takes seconds; an epoch must not pay that. The first ``setup`` decodes the
CSV once into ``<cache>/fer2013-<digest>.npy`` (uint8 ``[N, 48, 48]``) plus ``<cache>/fer2013-<digest>.npz``
(labels, splits, CSV line numbers, skipped rows), both written atomically, the ``.npz`` last (its presence
means the cache is whole). The digest covers the CSV's name, size and modification time and the cache format,
so an edited CSV is decoded again (and the cache of its earlier version removed; other copies' caches are
kept). ``cache`` defaults to ``<root>/affectlab-cache`` (with the copy it belongs to); a read-only root needs
``data.init_args.cache`` pointing somewhere writable.
Every epoch reads the memory map (``np.load(mmap_mode="r")``), never the CSV. Each face is served as
``folders.FolderImages`` serves a 48x48 PNG: grey -> RGB, resized bilinear to ``image_size`` -> ``video``
``[1, 3, S, S]`` float in [0, 1]. FER2013 has no subject ids: ``subject`` is -1.

Bad rows (a wrong number of fields, a pixel string that is not 2304 integers 0-255, an emotion code or Usage
value that FER2013 does not have) are skipped and counted, each named by ``file:line``, in a warning at setup and
in ``affectlab data check fer2013`` (``corrupt: skip``, the default), or stop setup with a ``DataError`` naming
the first one's file and line (``corrupt: raise``). A missing ``emotion``, ``pixels`` or ``Usage`` column is a
``DataError`` naming the header found.

The community re-packaging (``train/<angry|...>/*.png``, ``test/<...>/*.png``, ``folders.FOLDER_LAYOUTS``) is
read too: ``layout: auto`` (the default) takes the CSV where there is one and the folders otherwise;
``layout: authors|folders`` insists on one. A root holding neither is a ``DataError`` naming what it holds, the
layout expected and, where the folders were found with ``layout: authors``, the option that reads them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.contract import EMOTIONS
from affectlab.data.readers.folders import LAYOUTS, FolderDataModule, FolderImages, choose_layout
from affectlab.data.spec import DatasetSpec
from affectlab.data.splits import SPLITS
from affectlab.errors import ConfigError, DataError
from affectlab.io import atomic_write_bytes

# FER2013's emotion code -> canonical emotion (contract.EMOTIONS); all seven are basic emotions, none is left out.
LABEL_CODES: dict[str | int, str | None] = {
    0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}  # Usage -> AffectLab split
SPLIT_USAGES = {split: usage for usage, split in USAGE_SPLITS.items()}
CSV_FILES = ("fer2013.csv", "icml_face_data.csv")  # the challenge's file, then Kaggle's later copy
COLUMNS = ("emotion", "pixels", "Usage")
SIDE = 48  # FER2013's faces are SIDE x SIDE grey
CACHE_FORMAT = 1  # part of the cache digest: bump when the cached arrays change meaning
DEFAULT_CACHE = "affectlab-cache"  # under the root unless data.init_args.cache says otherwise
SHOWN = 5  # skipped rows named in a warning

LAYOUT = ("fer2013.csv          header 'emotion,pixels,Usage'; emotion 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, "
          "5 surprise, 6 neutral; pixels 2304 grey values 0-255; Usage Training|PublicTest|PrivateTest\n"
          "icml_face_data.csv   (instead: Kaggle's copy, header 'emotion, Usage, pixels')")
EXPECTED_ROW = (f"expected the fields {', '.join(COLUMNS)}: emotion an integer 0-6, pixels {SIDE * SIDE} integers 0-255 "
                f"separated by spaces, Usage one of {', '.join(USAGE_SPLITS)}")


# -- the CSV, decoded once ---------------------------------------------------------------------------------------
@dataclass
class Fer2013Rows:
    """Every well-formed row of the CSV, in file order, and what was skipped."""

    pixels: np.ndarray  # [N, 48, 48] uint8 (a memory map once cached)
    labels: np.ndarray  # [N] int64, index into EMOTIONS
    splits: np.ndarray  # [N] int64, index into splits.SPLITS
    lines: np.ndarray  # [N] int64, the row's line in the CSV (the header is line 1)
    skipped: list[str]  # "<csv>:<line>: <why>", one per skipped row


def find_csv(root: str | Path) -> Path | None:
    """The CSV under ``root``: ``fer2013.csv``, else ``icml_face_data.csv``; None where neither is there."""
    for name in CSV_FILES:
        if (Path(root) / name).is_file():
            return Path(root) / name
    return None


def _tree(root: str | Path) -> str:
    return "\n".join(f"    {root}/{line}" for line in LAYOUT.splitlines())


def parse_row(fields: list[str], columns: dict[str, int], width: int) -> tuple[np.ndarray, int, int]:
    """One CSV row -> (pixels [48, 48] uint8, canonical emotion index, split index); a malformed row raises
    ValueError saying what is wrong with it."""
    if len(fields) != width:
        raise ValueError(f"{len(fields)} field(s), the header has {width}")
    emotion = fields[columns["emotion"]].strip()
    try:
        code = int(emotion)
    except ValueError:
        code = -1
    if code not in LABEL_CODES:
        raise ValueError(f"emotion {emotion!r} is not one of FER2013's codes 0-6")
    usage = fields[columns["Usage"]].strip()
    if usage not in USAGE_SPLITS:
        raise ValueError(f"Usage {usage!r} is not one of {', '.join(USAGE_SPLITS)}")
    try:
        values = np.fromstring(fields[columns["pixels"]], dtype=np.int64, sep=" ")  # text mode: fast, exact
    except ValueError:
        raise ValueError("pixels hold something other than integers separated by spaces") from None
    if values.size != SIDE * SIDE:
        raise ValueError(f"pixels hold {values.size} values, not {SIDE * SIDE} ({SIDE}x{SIDE})")
    if values.min() < 0 or values.max() > 255:
        raise ValueError(f"pixels hold values outside 0-255 ({values.min()} to {values.max()})")
    return (values.astype(np.uint8).reshape(SIDE, SIDE), EMOTIONS.index(LABEL_CODES[code]),
            SPLITS.index(USAGE_SPLITS[usage]))


def decode_csv(path: str | Path) -> Fer2013Rows:
    """Parse the whole CSV at ``path``: every well-formed row's face, emotion and split, and every other row
    named in ``skipped``. A header without the three columns is a DataError naming the header found."""
    path = Path(path)
    faces: list[np.ndarray] = []
    labels, splits, lines, skipped = [], [], [], []
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:  # bad bytes: that row is skipped
        reader = csv.reader(handle)
        header = next(reader, None)
        names = [name.strip() for name in header or []]
        missing = [name for name in COLUMNS if name not in names]
        if missing:
            raise DataError(f"{path}:1: the header {','.join(header or [])!r} lacks the column(s) {', '.join(missing)}; "
                            f"FER2013's reads 'emotion,pixels,Usage' (Kaggle's icml_face_data.csv 'emotion, Usage, "
                            "pixels'); Kaggle's train.csv/test.csv hold no Usage and are not the distributed data set")
        columns = {name: names.index(name) for name in COLUMNS}
        start = reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1  # a quoted field may span lines: the row starts at ``line``
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            try:
                face, label, split = parse_row(fields, columns, len(names))
            except ValueError as error:
                skipped.append(f"{path}:{line}: {error}")
                continue
            faces.append(face)
            labels.append(label)
            splits.append(split)
            lines.append(line)
    pixels = np.stack(faces) if faces else np.zeros((0, SIDE, SIDE), np.uint8)
    return Fer2013Rows(pixels, np.asarray(labels, np.int64), np.asarray(splits, np.int64),
                       np.asarray(lines, np.int64), skipped)


def cache_digest(path: Path) -> str:
    """What identifies one version of the CSV: its name, size and modification time, and the cache format."""
    stat = path.stat()
    key = f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}|format {CACHE_FORMAT}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _source_of(meta_file: Path) -> str | None:
    """The CSV a cache was decoded from (None: unreadable, so not known to be this CSV's)."""
    try:
        with np.load(meta_file) as meta:
            return str(meta["source"])
    except (OSError, ValueError, KeyError):
        return None


def cached_rows(path: Path, cache: Path, option: str = "data.init_args.cache") -> Fer2013Rows:
    """The rows of the CSV at ``path``, decoded once into ``cache`` and memory-mapped from there (module
    docstring); a cache folder that cannot be written is a ConfigError naming ``option``."""
    digest = cache_digest(path)
    pixels_file, meta_file = cache / f"fer2013-{digest}.npy", cache / f"fer2013-{digest}.npz"
    if not meta_file.is_file() or not pixels_file.is_file():
        rows = decode_csv(path)
        meta = io.BytesIO()
        source = str(path.resolve())
        np.savez(meta, labels=rows.labels, splits=rows.splits, lines=rows.lines,
                 skipped=np.asarray(rows.skipped, dtype=str), source=np.asarray(source))
        try:
            atomic_write_bytes(pixels_file, _npy_bytes(rows.pixels))
            atomic_write_bytes(meta_file, meta.getvalue())  # last: its presence means the cache is whole
        except OSError as error:
            raise ConfigError(f"{option}: cannot write FER2013's decoded faces to {cache} ({error}); set {option} to a "
                              "writable folder (the CSV is decoded there once, then memory-mapped every epoch)") from None
        for stale in cache.glob("fer2013-*.npz"):  # an earlier version of this CSV (not another copy's cache)
            if stale != meta_file and _source_of(stale) == source:
                stale.unlink(missing_ok=True)
                stale.with_suffix(".npy").unlink(missing_ok=True)
    with np.load(meta_file) as meta:
        labels, splits, lines, skipped = meta["labels"], meta["splits"], meta["lines"], meta["skipped"].tolist()
    return Fer2013Rows(np.load(pixels_file, mmap_mode="r"), labels, splits, lines, skipped)


def skipped_summary(skipped: list[str], limit: int = SHOWN) -> str:
    return "; ".join(skipped[:limit]) + (f"; and {len(skipped) - limit} more" if len(skipped) > limit else "")


# -- serving ---------------------------------------------------------------------------------------------------------
class Fer2013Faces(Dataset):
    """Faces of the memory-mapped array in the batch contract, as ``folders.FolderImages`` serves a 48x48 PNG.

    The map is opened on first use in each process (a loader worker opens its own; nothing is pickled but the
    file's path)."""

    def __init__(self, pixels_file: Path | None, pixels: np.ndarray, rows: np.ndarray, labels: np.ndarray,
                 ids: np.ndarray, image_size: int, domain: int = 0) -> None:
        self.pixels_file, self._pixels = pixels_file, pixels
        self.rows, self.labels, self.ids = rows, labels, ids
        self.image_size, self.domain = image_size, domain

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.pixels_file is not None:
            state["_pixels"] = None  # reopened by the worker
        return state

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = np.load(self.pixels_file, mmap_mode="r")
        return self._pixels

    def __getitem__(self, item: int) -> dict[str, Any]:
        from PIL import Image

        face = np.asarray(self.pixels[self.rows[item]])  # [48, 48] uint8, read from the map
        image = Image.fromarray(face).convert("RGB")  # [48, 48] uint8: mode L
        image = image.resize((self.image_size,) * 2, Image.BILINEAR)
        frames = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div(255.0).unsqueeze(0)
        return {
            "video": frames, "video_mask": torch.ones(1, dtype=torch.bool),  # [1, 3, S, S]: a one-frame clip
            "targets": {"emotion": torch.tensor(int(self.labels[item]))},
            "target_mask": {"emotion": torch.tensor(True)},
            "id": torch.tensor(int(self.ids[item])), "subject": torch.tensor(-1), "domain": torch.tensor(self.domain),
        }


class Fer2013DataModule(BaseDataModule):
    """FER2013 from its CSV (or the community folders), module docstring.

    Args:
        root: the folder holding ``fer2013.csv`` (or ``icml_face_data.csv``, or the community ``train/``, ``test/``).
        layout: ``auto`` (the CSV where there is one, else the folders), ``authors`` (the CSV) or ``folders``.
        cache: where the CSV is decoded to once (default ``<root>/affectlab-cache``); must be writable.
        image_size: faces are resized to this square size.
        val_fraction: folders only (they hold no PublicTest): of each class of train held out for validation.
        split_seed: seed of that hold-out.
        corrupt: ``skip`` malformed rows and unreadable images (counted, named in a warning) or ``raise`` at the first.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    def __init__(
        self,
        root: str,
        layout: str = "auto",
        cache: str | None = None,
        image_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 64,
        num_workers: int = 0,
        max_unreadable_fraction: float | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("emotion",),
                         class_names={"emotion": EMOTIONS}, corrupt=corrupt, name="fer2013",
                         max_unreadable_fraction=max_unreadable_fraction)
        if layout not in LAYOUTS:
            raise ConfigError(f"data.init_args.layout: {layout!r} is not one of {list(LAYOUTS)}")
        self.root, self.layout, self.cache, self.image_size = root, layout, cache, image_size
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.read_as: str | None = None  # the layout found: authors or folders
        self.rows: Fer2013Rows | None = None
        self.pixels_file: Path | None = None
        self.skipped_rows: list[str] = []
        self.splits: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}  # split -> (rows or files, labels, ids)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        path = find_csv(self.root) if Path(self.root).is_dir() else None
        self.read_as = choose_layout("fer2013", self.root, self.layout, path is not None, _tree(self.root))
        if self.read_as == "folders":
            community = FolderDataModule("fer2013", self.root, self.image_size, self.val_fraction,
                                         split_seed=self.split_seed, corrupt=self.corrupt)
            community.setup()
            self.skips.update(community.skips)
            self.splits = community.splits
            return
        cache = Path(self.cache) if self.cache else Path(self.root) / DEFAULT_CACHE
        self.rows = cached_rows(path, cache)
        self.pixels_file = cache / f"fer2013-{cache_digest(path)}.npy"
        self.skipped_rows = list(self.rows.skipped)
        if self.skipped_rows:
            if self.corrupt == "raise":
                raise DataError(f"{self.skipped_rows[0]}; {EXPECTED_ROW}; fix or remove the row, or set "
                                "data.init_args.corrupt: skip")
            warnings.warn(f"fer2013: skipped {len(self.skipped_rows)} malformed row(s): "
                          f"{skipped_summary(self.skipped_rows)}", stacklevel=2)
            self.skips.count("malformed_row", len(self.skipped_rows))
        for index, split in enumerate(SPLITS):
            rows = np.flatnonzero(self.rows.splits == index)
            self.splits[split] = (rows, self.rows.labels[rows], rows)  # ids: the row's place in the array
            if not len(rows):
                warnings.warn(f"fer2013: {path} holds no {split} rows (Usage "
                              f"{SPLIT_USAGES[split]})", stacklevel=2)

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        if task != "emotion":
            raise ValueError(f"class_counts: fer2013 has only the 'emotion' task, not {task!r}")
        self.setup()
        return torch.bincount(torch.from_numpy(np.asarray(self.splits[split][1])), minlength=len(EMOTIONS))

    def dataset(self, split: str) -> Dataset:
        self.setup()
        items, labels, ids = self.splits[split]
        if self.read_as == "folders":
            return FolderImages(items, labels, ids, self.image_size, self.corrupt)
        return Fer2013Faces(self.pixels_file, self.rows.pixels, items, labels, ids, self.image_size)


def check_fer2013_dataset(name: str, root: str | Path, decode: bool = True) -> Any:
    """``affectlab data check fer2013``: counts per split (Usage) and emotion, every skipped row with its file and
    line (errors), an empty split (an error). The CSV is parsed in full (``--quick`` changes nothing: a row is
    checked by decoding it) and nothing is written, so a read-only copy can be checked. The community folder
    layout is checked as the folder data sets are."""
    from affectlab.data.check import CheckReport, check_folder_dataset

    path = find_csv(root) if Path(root).is_dir() else None
    if choose_layout(name, root, "auto", path is not None, _tree(root)) == "folders":
        report = check_folder_dataset(name, root, decode)
        report.notes.append(f"read as the community folder layout (no {' or '.join(CSV_FILES)} under {root})")
        return report
    rows = decode_csv(path)
    counts = {split: [int(((rows.splits == s) & (rows.labels == c)).sum()) for c in range(len(EMOTIONS))]
              for s, split in enumerate(SPLITS)}
    report = CheckReport(name, counts, title="faces per split (Usage) and emotion")
    report.notes.append(f"read {path} (the authors' layout): Usage " +
                        ", ".join(f"{usage} -> {split}" for usage, split in USAGE_SPLITS.items()))
    for split, per_class in counts.items():
        if not sum(per_class):
            report.errors.append(f"split {split!r} is empty: {path} holds no row with Usage "
                                 f"{SPLIT_USAGES[split]}")
    report.errors += [f"skipped row {line}" for line in rows.skipped]
    return report


SPEC = DatasetSpec(
    "fer2013", "FER2013 48x48 grey faces, one CSV (emotion, pixels, Usage), 7 emotions", "data/fer2013", LAYOUT,
    reader="affectlab.data.Fer2013DataModule", check="affectlab.data.readers.fer2013.check_fer2013_dataset",
    export="affectlab.data.synth.export_fer2013.export_fer2013",
)
