"""AffectNet (Mollahosseini et al., "AffectNet: A Database for Facial Expression, Valence, and Arousal Computing
in the Wild", IEEE TAC 2017), manually annotated part, read as its authors distribute it: photographs with a
face box, an expression code, valence and arousal per row of two CSV lists.

Layout (the lists may also sit at the root, as some unpacked copies have them):

    <root>/Manually_Annotated_Images/<subDirectory>/<file>       the photographs
    <root>/Manually_Annotated_file_lists/training.csv             the training split
    <root>/Manually_Annotated_file_lists/validation.csv           the validation split (the test split here:
                                                                  AffectNet's test set is not public)

Columns (comma-separated; ``training.csv`` starts with this header line, ``validation.csv`` is read with or
without it, as copies differ):

    subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal
    e.g. 689/737db2483489148d783ef278f43f486c.jpg,134,134,899,899,181.64;530.91;...,1,0.785714,-0.055556

- ``subDirectory_filePath``: relative to ``Manually_Annotated_Images/``;
- ``face_x, face_y, face_width, face_height``: the face box in pixels (left, top, width, height);
- ``facial_landmarks``: 68 points as ``x;y;x;y;...`` (not used here);
- ``expression`` (``LABEL_CODES``): 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger,
  7 contempt, 8 none, 9 uncertain, 10 no-face. ``classes: 7`` serves the seven basic emotions in AffectLab's
  canonical order (``contract.EMOTIONS``) and leaves contempt out (counted); ``classes: 8`` appends contempt as
  an eighth class. 8-10 are no expression of a face: always left out, counted per code;
- ``valence``, ``arousal``: floats in [-1, 1], served as the regression tasks ``valence`` and ``arousal``;
  AffectNet writes -2 where a row has none: that sample's ``target_mask`` is False for the task.

Splits: training.csv trains, with validation carved out of it once (stratified per class, seeded);
validation.csv is the test split. ``subject`` is -1: AffectNet has no identities.

Per sample: the photograph (RGB) -> its face box, which must lie inside it -> grown by ``margin`` x its size on
each side, clipped to the photograph (as AFE's and ExpW's readers) -> resized to ``image_size`` -> ``video``
``[1, 3, S, S]`` float in [0, 1].

Bad input, under the corrupt-sample policy (``corrupt: skip`` counts and reports, ``raise`` stops at the first):
a malformed row (wrong column count, a number that does not parse, an empty box, an expression code outside
0-10, a valence or arousal outside [-1, 1] other than -2) is left out at setup, named by ``file:line``; a
missing or unreadable photograph, or a box reaching outside it, is skipped when loaded, named with its row.
A missing root, image folder or list is a ``DataError`` saying what was found and what was expected.

Community re-packaging: ``<root>/train_set/<0..7>/<image>`` and ``<root>/val_set/<0..7>/<image>`` (faces already
cut, no valence or arousal: their masks are False) is read with ``layout: folders`` or found by ``auto``.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.data.base import BaseDataModule
from affectlab.data.contract import EMOTIONS
from affectlab.data.images import IMAGE_EXTENSIONS
from affectlab.data.readers.expw import (
    SHOWN_PROBLEMS,
    FaceCrops,
    check_faces,
)
from affectlab.data.readers.folders import FOLDER_LAYOUTS, FolderImages, choose_layout, describe_found, images_in
from affectlab.data.spec import DatasetSpec
from affectlab.data.splits import stratified_holdout
from affectlab.errors import ConfigError, DataError

AFFECTNET_IMAGES = "Manually_Annotated_Images"
AFFECTNET_LISTS = "Manually_Annotated_file_lists"
AFFECTNET_SPLIT_FILES = {"train": "training.csv", "test": "validation.csv"}  # AffectLab split -> list
COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
           "expression", "valence", "arousal")
LABEL_CODES: dict[str | int, str | None] = {  # AffectNet's expression -> canonical emotion
    0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger",
    7: None,  # contempt: not one of the seven basic emotions; classes: 8 serves it as an eighth class
    8: None,  # none: an expression outside the eleven categories
    9: None,  # uncertain: the annotator could not tell
    10: None,  # no-face: the box holds no face
}
CODE_NAMES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt", "none", "uncertain",
              "no-face")  # AffectNet's own name of each code, for messages
CONTEMPT = 7
NO_VALUE = -2.0  # AffectNet's valence/arousal where a row has none
CLASS_COUNTS = (7, 8)
CHECKED_FIRST_ROWS = 20

LAYOUT = (f"{AFFECTNET_IMAGES}/<subDirectory>/<file>\n"
          f"{AFFECTNET_LISTS}/training.csv     ({','.join(COLUMNS)})\n"
          f"{AFFECTNET_LISTS}/validation.csv   (expression 0-10: 0-6 basic, 7 contempt, 8-10 left out)")
EXPECTED_ROW = (f"expected {len(COLUMNS)} comma-separated columns ({','.join(COLUMNS)}): a path relative to "
                f"{AFFECTNET_IMAGES}/, a face box in pixels with positive width and height, an expression code "
                "0-10 and valence and arousal in [-1, 1] (-2: none)")


def _tree(root: Path) -> str:
    return "\n".join(f"    {root}/{line}" for line in LAYOUT.splitlines())


def class_names(classes: int) -> tuple[str, ...]:
    return EMOTIONS + (("contempt",) if classes == 8 else ())


def label_of(code: int, classes: int) -> int | None:
    """AffectNet ``code`` -> index into ``class_names(classes)``; None: left out."""
    if code == CONTEMPT and classes == 8:
        return len(EMOTIONS)
    emotion = LABEL_CODES.get(code)
    return None if emotion is None else EMOTIONS.index(emotion)


@dataclass
class AffectNetRows:
    """One list's usable rows, in file order, and what was left out."""

    files: list[Path]
    boxes: np.ndarray  # [N, 4] int64: left, top, right, bottom
    labels: np.ndarray  # [N] int64, index into class_names(classes)
    valence: np.ndarray  # [N] float32 (0 where unknown)
    arousal: np.ndarray
    valence_known: np.ndarray  # [N] bool
    arousal_known: np.ndarray
    lines: list[str]
    problems: list[str] = field(default_factory=list)
    left_out: Counter = field(default_factory=Counter)  # AffectNet code -> rows left out


def parse_row(row: list[str], where: str) -> tuple[str, tuple[int, int, int, int], int, float, float]:
    """One CSV row -> (path, box as left, top, right, bottom, expression code, valence, arousal)."""
    if len(row) != len(COLUMNS):
        raise DataError(f"{where}: {len(row)} column(s); {EXPECTED_ROW}")
    numbers = {}
    for column, value in zip(COLUMNS, row):
        if column in ("subDirectory_filePath", "facial_landmarks"):
            continue
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{where}: {column} {value!r} is not a number; {EXPECTED_ROW}")
        numbers[column] = number
    x, y, width, height = (int(numbers[c]) for c in ("face_x", "face_y", "face_width", "face_height"))
    if width <= 0 or height <= 0:
        raise DataError(f"{where}: the face box (x {x}, y {y}, width {width}, height {height}) is empty; {EXPECTED_ROW}")
    code = numbers["expression"]
    if code != int(code) or int(code) not in LABEL_CODES:
        raise DataError(f"{where}: expression {row[6]!r} is not one of AffectNet's codes 0-10; {EXPECTED_ROW}")
    for column in ("valence", "arousal"):
        if numbers[column] != NO_VALUE and not -1.0 <= numbers[column] <= 1.0:
            raise DataError(f"{where}: {column} {row[COLUMNS.index(column)]!r} is outside [-1, 1] (and not -2, "
                            f"AffectNet's 'none'); {EXPECTED_ROW}")
    if not row[0].strip():
        raise DataError(f"{where}: subDirectory_filePath is empty; {EXPECTED_ROW}")
    return row[0].strip(), (x, y, x + width, y + height), int(code), numbers["valence"], numbers["arousal"]


def find_list(root: Path, name: str) -> Path | None:
    for path in (root / AFFECTNET_LISTS / name, root / name):
        if path.is_file():
            return path
    return None


class _HeaderError(DataError):
    """A first line that names columns other than AffectNet's."""


def read_list(path: Path, images: Path, classes: int, corrupt: str) -> AffectNetRows:
    files, boxes, labels, valence, arousal, lines = [], [], [], [], [], []
    problems: list[str] = []
    left_out: Counter = Counter()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}:{number}"
            try:
                # Line by line, not one csv.reader over the file: a stray quote must not swallow the rows after it.
                try:
                    text = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise DataError(f"{where}: not UTF-8 text; {EXPECTED_ROW}") from None
                if not text:
                    continue
                try:
                    row = next(csv.reader([text], strict=True))
                except csv.Error as error:
                    raise DataError(f"{where}: not a CSV row ({error}); {EXPECTED_ROW}") from None
                if number == 1 and row[0].strip() == COLUMNS[0]:
                    if [c.strip() for c in row] != list(COLUMNS):
                        raise _HeaderError(f"{where}: the header reads {text!r}; {EXPECTED_ROW}")
                    continue
                name, box, code, v, a = parse_row(row, where)
            except _HeaderError:
                raise  # the list is not AffectNet's: no row of it can be trusted
            except DataError as error:
                if corrupt == "raise":
                    raise DataError(f"{error}; or set data.init_args.corrupt: skip to leave such rows out") from None
                problems.append(str(error))
                continue
            label = label_of(code, classes)
            if label is None:
                left_out[code] += 1
                continue
            files.append(images / name)
            boxes.append(box)
            labels.append(label)
            valence.append(v)
            arousal.append(a)
            lines.append(where)
    valence_array, arousal_array = np.asarray(valence, np.float32), np.asarray(arousal, np.float32)
    valence_known, arousal_known = valence_array != NO_VALUE, arousal_array != NO_VALUE
    return AffectNetRows(files, np.asarray(boxes, np.int64).reshape(-1, 4), np.asarray(labels, np.int64),
                         np.where(valence_known, valence_array, 0).astype(np.float32),
                         np.where(arousal_known, arousal_array, 0).astype(np.float32),
                         valence_known, arousal_known, lines, problems, left_out)


def scan(root: str | Path, classes: int = 7, corrupt: str = "skip") -> dict[str, AffectNetRows]:
    """Both lists of the AffectNet copy at ``root``; missing folders or lists are DataErrors naming them."""
    root = Path(root)
    images = root / AFFECTNET_IMAGES
    if not images.is_dir():
        raise DataError(f"affectnet: image folder {images} is missing (found at {root}: {describe_found(root)}); "
                        "expected\n" + _tree(root))
    found = {}
    for split, name in AFFECTNET_SPLIT_FILES.items():
        path = find_list(root, name)
        if path is None:
            raise DataError(f"affectnet: {name} is in neither {root / AFFECTNET_LISTS} nor {root} (found at {root}: "
                            f"{describe_found(root)}); expected\n" + _tree(root))
        rows = found[split] = read_list(path, images, classes, corrupt)
        if not rows.files:
            raise DataError(f"affectnet: {path} lists no usable face ({len(rows.problems)} malformed row(s), "
                            f"{sum(rows.left_out.values())} left out by their code); expected\n" + _tree(root))
        first = rows.files[:CHECKED_FIRST_ROWS]
        if not any(p.is_file() for p in first):
            raise DataError(f"affectnet: none of the first {len(first)} photographs {name} lists exists (the first: "
                            f"{rows.lines[0]} names {first[0]}); AffectNet's paths are relative to {images}/")
    return found


def affectnet_layout(root: str | Path, layout: str) -> str:
    root = Path(root)
    present = (root / AFFECTNET_IMAGES).is_dir() and find_list(root, "training.csv") is not None
    return choose_layout("affectnet", root, layout, present, _tree(root))


def scan_folders(root: str | Path, classes: int,
                 unknown: list[Path] | None = None) -> dict[str, tuple[list[Path], np.ndarray, Counter]]:
    """The community layout's splits: per split its images, labels and the codes left out (folder name = code);
    folders that are no AffectNet code are appended to ``unknown``."""
    layout = FOLDER_LAYOUTS["affectnet"]
    found = {}
    for split, folder in layout.splits.items():
        files, labels, left_out = [], [], Counter()
        for entry in sorted((Path(root) / folder).iterdir()):
            if not entry.is_dir():
                continue
            if not entry.name.isdigit() or int(entry.name) not in LABEL_CODES:
                if unknown is not None and not entry.name.startswith("."):
                    unknown.append(entry)
                continue
            label = label_of(int(entry.name), classes)
            for path in sorted(entry.iterdir()):
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                if label is None:
                    left_out[int(entry.name)] += 1
                    continue
                files.append(path)
                labels.append(label)
        found[split] = (files, np.asarray(labels, np.int64), left_out)
    return found


def describe_left_out(left_out: Counter) -> str:
    return ", ".join(f"{n} {CODE_NAMES[code]} (code {code})" for code, n in sorted(left_out.items()))


class AffectNetDataModule(BaseDataModule):
    """AffectNet read as its authors distribute it (module docstring), or its community folder layout.

    Args:
        root: the data set's folder (holding ``Manually_Annotated_Images/`` and the two lists).
        layout: ``auto`` (whichever is there), ``authors`` or ``folders`` (``train_set/``, ``val_set/``).
        classes: 7 (the basic emotions; contempt left out) or 8 (contempt appended as an eighth class).
        valence_arousal: also serve the ``valence`` and ``arousal`` regression tasks.
        image_size: face crops are resized to this square size.
        margin: grow each face box by this fraction of its width and height on each side (0: the box as annotated).
        val_fraction: of each class of training.csv held out for validation.
        split_seed: seed of that hold-out.
        corrupt: ``skip`` malformed rows and unreadable faces (counted, named in a warning) or ``raise``.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    def __init__(
        self,
        root: str,
        layout: str = "auto",
        classes: int = 7,
        valence_arousal: bool = True,
        image_size: int = 64,
        margin: float = 0.0,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 64,
        num_workers: int = 0,
        max_unreadable_fraction: float | None = None,
    ) -> None:
        if classes not in CLASS_COUNTS:
            raise ConfigError(f"data.init_args.classes: {classes} is not 7 (the basic emotions) or 8 (with contempt)")
        tasks = ("emotion", "valence", "arousal") if valence_arousal else ("emotion",)
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=tasks,
                         class_names={"emotion": class_names(classes)}, corrupt=corrupt, name="affectnet", kind="face",
                         max_unreadable_fraction=max_unreadable_fraction)
        if margin < 0:
            raise ConfigError(f"data.init_args.margin: {margin} is negative; give a fraction of the box such as 0.1")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"data.init_args.val_fraction: {val_fraction} is not in [0, 1)")
        self.root, self.layout, self.classes, self.valence_arousal = root, layout, classes, valence_arousal
        self.image_size, self.margin, self.val_fraction, self.split_seed = image_size, margin, val_fraction, split_seed
        self.found_layout: str | None = None
        self.rows: dict[str, AffectNetRows] = {}
        self.left_out: Counter = Counter()
        self.splits: dict[str, dict[str, Any]] = {}  # split -> files, boxes, labels, ids, lines, regression

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.found_layout = affectnet_layout(self.root, self.layout)
        if self.found_layout == "folders":
            self._setup_folders()
            return
        rows = self.rows = scan(self.root, self.classes, self.corrupt)
        problems = [p for split in rows.values() for p in split.problems]
        if problems:
            more = f" and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
            warnings.warn(f"affectnet: left out {len(problems)} malformed row(s): {'; '.join(problems[:SHOWN_PROBLEMS])}"
                          f"{more} (affectlab data check affectnet names all)", stacklevel=2)
            self.skips.count("malformed_row", len(problems))
        self.left_out = sum((split.left_out for split in rows.values()), Counter())
        if self.left_out:
            warnings.warn(f"affectnet: left out {describe_left_out(self.left_out)}: not among the {self.classes} "
                          "classes served", stacklevel=2)
        train, test = rows["train"], rows["test"]
        ids = np.arange(len(train.files) + len(test.files))  # unique across splits (training.csv first)
        held = stratified_holdout(train.labels, self.val_fraction, self.split_seed)
        where = {"train": (train, np.flatnonzero(~held), ids[:len(train.files)]),
                 "val": (train, np.flatnonzero(held), ids[:len(train.files)]),
                 "test": (test, np.arange(len(test.files)), ids[len(train.files):])}
        for split, (source, index, source_ids) in where.items():
            self.splits[split] = {
                "files": [source.files[i] for i in index], "boxes": source.boxes[index], "labels": source.labels[index],
                "ids": source_ids[index], "lines": [source.lines[i] for i in index],
                "regression": {"valence": (source.valence[index], source.valence_known[index]),
                               "arousal": (source.arousal[index], source.arousal_known[index])}}

    def _setup_folders(self) -> None:
        unknown: list[Path] = []
        found = scan_folders(self.root, self.classes, unknown)
        self.skips.add("unknown_class_folder", [str(folder) for folder in unknown],
                       "folder(s) that are no AffectNet expression code (images in them are not served)",
                       f"rename each to its code, one of {', '.join(map(str, sorted(LABEL_CODES)))}",
                       count=images_in(unknown))
        self.left_out = sum((left for _, _, left in found.values()), Counter())
        if self.left_out:
            warnings.warn(f"affectnet: left out {describe_left_out(self.left_out)}: not among the {self.classes} "
                          "classes served", stacklevel=2)
        if self.valence_arousal:
            warnings.warn("affectnet: the community folder layout holds no valence or arousal: their target_mask is "
                          "False for every face (set data.init_args.valence_arousal: false to serve emotion only)",
                          stacklevel=2)
        (train_files, train_labels, _), (test_files, test_labels, _) = found["train"], found["test"]
        if not train_files or not test_files:
            raise DataError(f"affectnet: no images in {Path(self.root) / 'train_set'} or {Path(self.root) / 'val_set'}")
        ids = np.arange(len(train_files) + len(test_files))
        held = stratified_holdout(train_labels, self.val_fraction, self.split_seed)
        for split, files, labels, index, offset in (
                ("train", train_files, train_labels, np.flatnonzero(~held), 0),
                ("val", train_files, train_labels, np.flatnonzero(held), 0),
                ("test", test_files, test_labels, np.arange(len(test_files)), len(train_files))):
            unknown = (np.zeros(len(index), np.float32), np.zeros(len(index), bool))
            self.splits[split] = {"files": [files[i] for i in index], "boxes": None, "labels": labels[index],
                                  "ids": ids[offset + index], "lines": [str(files[i]) for i in index],
                                  "regression": {"valence": unknown, "arousal": unknown}}

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        if task != "emotion":
            raise ValueError(f"class_counts: affectnet counts classes of 'emotion' only, not {task!r}")
        self.setup()
        return torch.bincount(torch.from_numpy(self.splits[split]["labels"]), minlength=self.classes)

    def dataset(self, split: str) -> FolderImages:
        self.setup()
        part = self.splits[split]
        regression = part["regression"] if self.valence_arousal else None
        if part["boxes"] is None:
            return _FolderFaces(part["files"], part["labels"], part["ids"], self.image_size, self.corrupt, regression)
        return FaceCrops(part["files"], part["boxes"], part["labels"], part["ids"], part["lines"], self.image_size,
                         self.margin, self.corrupt, regression)


class _FolderFaces(FolderImages):
    """The community layout's cut faces, with valence and arousal masked out (the layout holds none)."""

    def __init__(self, files: list[Path], labels: np.ndarray, ids: np.ndarray, image_size: int, corrupt: str,
                 regression: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> None:
        super().__init__(files, labels, ids, image_size, corrupt)
        self.regression = regression or {}

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = super().__getitem__(item)
        if "skipped" not in sample:
            for task, (values, known) in self.regression.items():
                sample["targets"][task] = torch.tensor(float(values[item]), dtype=torch.float32)
                sample["target_mask"][task] = torch.tensor(bool(known[item]))
        return sample


def check_affectnet_dataset(name: str, root: str | Path, decode: bool = True) -> Any:
    """``affectlab data check affectnet``: faces per split (as the reader splits them) and emotion, the codes
    left out, how many rows carry valence and arousal; every malformed row, missing or unreadable photograph and
    box outside its photograph is an error. The community layout goes through ``check_folder_dataset``."""
    from affectlab.data.check import CheckReport, check_folder_dataset

    if affectnet_layout(root, "auto") == "folders":
        report = check_folder_dataset(name, root, decode)
        report.notes.append("read as the community folder-per-class layout (layout: folders): no valence or arousal")
        return report
    module = AffectNetDataModule(str(root), corrupt="skip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report lists what the setup warnings would
        module.setup()
    counts = {split: [int((part["labels"] == c).sum()) for c in range(len(EMOTIONS))]
              for split, part in module.splits.items()}
    report = CheckReport(name, counts, title="faces per split and emotion")
    for split, rows in module.rows.items():
        report.errors += rows.problems
        if rows.left_out:
            report.warnings.append(f"{AFFECTNET_SPLIT_FILES[split]}: left out {describe_left_out(rows.left_out)} "
                                   "(contempt is served with data.init_args.classes: 8)")
        report.notes.append(f"{AFFECTNET_SPLIT_FILES[split]}: valence on {int(rows.valence_known.sum())}, arousal on "
                            f"{int(rows.arousal_known.sum())} of {len(rows.files)} faces (-2: none, masked)")
    report.notes.append("test is validation.csv (AffectNet's test set is not public); val is carved out of training.csv")
    check_faces(report, [module.dataset(split) for split in module.splits], decode, name)
    return report


SPEC = DatasetSpec(
    "affectnet", "AffectNet (manually annotated): photographs, face boxes, 7 or 8 emotions, valence and arousal",
    "data/affectnet", LAYOUT, reader="affectlab.data.AffectNetDataModule",
    check="affectlab.data.readers.affectnet.check_affectnet_dataset",
    export="affectlab.data.synth.export_affectnet.export_affectnet",
)
