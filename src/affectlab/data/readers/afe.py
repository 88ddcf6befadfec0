"""AFE, the Asian Facial Expression database (CluP's source data set, seed 004), read in its native layout and
served in the batch contract as one-frame clips of the annotated face.

Layout (as CluP's data preparation reads it: ``src/datasets/emotions.py``, class ``AFE``, in altndrr/clup):

    <root>/src/image/<path>                 the photographs, faces not cropped (sub-folders allowed in <path>)
    <root>/annos/TrainTest/Train.csv        the official train split, one face per line
    <root>/annos/TrainTest/Test.csv         the official test split

Each line of the two CSV files (despite the extension, separated by spaces; no header line):

    <path> <left> <top> <right> <bottom> <emotion>
    e.g.   0001/IMG_0042.jpg 112 64 301 290 3

- ``path``: relative to ``<root>/src/image/`` (CluP joins the two);
- ``left top right bottom``: the face box in pixels of the photograph, PIL's convention (``left``/``top``
  inclusive, ``right``/``bottom`` exclusive, so ``left < right`` and ``top < bottom``); CluP converts each
  with ``int()``, so decimals are accepted and truncated as there;
- ``emotion``: an integer 0-6, ``AFE_CODES``' order: 0 anger, 1 disgust, 2 fear, 3 happy, 4 neutral, 5 sad,
  6 surprise (CluP's ``emotion_labels=[6, 2, 1, 3, 5, 0, 4]`` for its classes Surprise, Fear, Disgust,
  Happiness, Sadness, Anger, Neutral), mapped onto AffectLab's canonical order (``contract.EMOTIONS``).

Not established from CluP's code, the most plausible reading taken: paths hold no spaces (CluP's reader, pandas
split on single spaces, could not read them either; here runs of spaces or tabs separate fields), and blank
lines are ignored (as pandas does).

Splits: the official Train/Test; validation is carved out of Train, stratified per emotion and seeded
(``folders.stratified_holdout``). AFE ships no subject ids here, so ``subject`` is -1 in every batch.

Per sample: open the photograph (RGB) -> take its face box, grown by ``margin`` x the box's width and height
on each side and clipped to the photograph (CluP's crop pads with black instead; a margin never adds black
borders here) -> resize to ``image_size`` x ``image_size`` (bilinear; CluP resized to 160) -> ``video``
``[1, 3, S, S]`` float in [0, 1], a one-frame clip exactly as the folder readers (``data/readers/folders.py``) serve it.

Bad input: a missing root, image folder or CSV file, or a malformed line (wrong number of fields, a coordinate
that is no finite number, an inverted or empty box, an emotion that is not an integer 0-6) stops with a
``DataError`` naming ``file:line`` and what was expected there. Images that cannot be read (missing, damaged,
or whose box lies outside the photograph) are skipped, named once and counted (``corrupt: skip``) or stop the
run (``corrupt: raise``), as in the folder readers. ``affectlab data check afe --root DIR`` reads everything up
front.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from affectlab.data.contract import EMOTIONS
from affectlab.data.base import BaseDataModule
from affectlab.data.readers.folders import FolderImages
from affectlab.data.splits import stratified_holdout
from affectlab.data.spec import DatasetSpec
from affectlab.errors import ConfigError, DataError

AFE_CODES = ("anger", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # AFE's integer -> canonical name
LABEL_CODES: dict[str | int, str | None] = dict(enumerate(AFE_CODES))  # all seven kept (data/labels.py's table)
AFE_IMAGES = "src/image"
AFE_ANNOTATIONS = "annos/TrainTest"
AFE_SPLIT_FILES = {"train": "Train.csv", "test": "Test.csv"}  # AffectLab split -> file under AFE_ANNOTATIONS
COLUMNS = ("path", "left", "top", "right", "bottom", "emotion")
CHECKED_FIRST_ROWS = 20  # images looked for at setup: all missing means the paths' base is wrong

LAYOUT = (f"{AFE_IMAGES}/<path>\n"
          f"{AFE_ANNOTATIONS}/Train.csv  (lines '<path> <left> <top> <right> <bottom> <emotion 0-6>', no header)\n"
          f"{AFE_ANNOTATIONS}/Test.csv")
EXPECTED_LINE = ("expected 6 fields separated by spaces, '<path> <left> <top> <right> <bottom> <emotion>' (no "
                 "header), with <path> relative to src/image/, pixel coordinates with left < right and top < bottom, "
                 "and <emotion> an integer 0-6 (" + ", ".join(f"{k} {e}" for k, e in enumerate(AFE_CODES)) + ")")


def _tree(root: Path) -> str:
    return "\n".join(f"    {root}/{line}" for line in LAYOUT.splitlines())


@dataclass
class AfeSplit:
    """One official split as its CSV lists it: per face its image, box and canonical emotion, in file order."""

    files: list[Path]
    boxes: np.ndarray  # [N, 4] int64: left, top, right, bottom
    labels: np.ndarray  # [N] int64, index into EMOTIONS
    lines: list[str]  # "<csv>:<line>" of each face, for messages


def parse_line(text: str, where: str) -> tuple[str, tuple[int, int, int, int], int]:
    """One CSV line -> (path, box, canonical emotion index); anything else is a DataError naming ``where``."""
    fields = text.split()
    if len(fields) != len(COLUMNS):
        commas = " (it holds commas: AFE's files are separated by spaces)" if "," in text else ""
        raise DataError(f"{where}: {len(fields)} field(s){commas}; {EXPECTED_LINE}; the line reads {text!r}")
    path, *coordinates, emotion = fields
    box = []
    for name, value in zip(COLUMNS[1:5], coordinates):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{where}: {name} {value!r} is not a number; {EXPECTED_LINE}")
        box.append(int(number))  # truncated, as CluP's int() does
    left, top, right, bottom = box
    if left >= right or top >= bottom:
        raise DataError(f"{where}: the box (left {left}, top {top}, right {right}, bottom {bottom}) is inverted or "
                        f"empty; {EXPECTED_LINE}")
    try:
        code = int(emotion)
    except ValueError:
        code = -1
    if not 0 <= code < len(AFE_CODES):
        raise DataError(f"{where}: emotion {emotion!r} is not one of AFE's; {EXPECTED_LINE}")
    return path, (left, top, right, bottom), EMOTIONS.index(AFE_CODES[code])


def read_split_file(csv: Path, images: Path) -> AfeSplit:
    """Every face that ``csv`` lists (blank lines ignored), its image path resolved under ``images``."""
    if not csv.is_file():
        raise DataError(f"afe: annotation file {csv} is missing; expected\n" + _tree(csv.parents[2]))
    files, boxes, labels, lines = [], [], [], []
    with open(csv, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{csv}:{number}"
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise DataError(f"{where}: not UTF-8 text; {EXPECTED_LINE}") from None
            if not text:
                continue
            path, box, label = parse_line(text, where)
            files.append(images / path)
            boxes.append(box)
            labels.append(label)
            lines.append(where)
    return AfeSplit(files, np.asarray(boxes, np.int64).reshape(-1, 4), np.asarray(labels, np.int64), lines)


def scan(root: str | Path) -> dict[str, AfeSplit]:
    """Both official splits of the AFE copy at ``root``; missing folders or files are DataErrors naming them."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"afe: root {root} is not a folder; expected\n" + _tree(root))
    images = root / AFE_IMAGES
    if not images.is_dir():
        raise DataError(f"afe: image folder {images} is missing; expected\n" + _tree(root))
    splits = {split: read_split_file(root / AFE_ANNOTATIONS / name, images) for split, name in AFE_SPLIT_FILES.items()}
    for split, found in splits.items():
        if not found.files:
            raise DataError(f"afe: {root / AFE_ANNOTATIONS / AFE_SPLIT_FILES[split]} lists no faces; expected\n"
                            + _tree(root))
        first = found.files[:CHECKED_FIRST_ROWS]
        if not any(path.is_file() for path in first):  # one missing image is skipped; all of them is a wrong base
            raise DataError(f"afe: none of the first {len(first)} images {AFE_SPLIT_FILES[split]} lists exists (the "
                            f"first: {found.lines[0]} names {first[0]}); AFE's paths are relative to {images}/")
    return splits


class FaceBoxError(ValueError):
    """The face box lies outside the photograph."""


def face_region(box: tuple[int, int, int, int], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` x its width and height on each side, clipped to a ``width`` x ``height`` image."""
    left, top, right, bottom = box
    grow_x, grow_y = margin * (right - left), margin * (bottom - top)
    region = (max(0, round(left - grow_x)), max(0, round(top - grow_y)),
              min(width, round(right + grow_x)), min(height, round(bottom + grow_y)))
    if region[0] >= region[2] or region[1] >= region[3]:
        raise FaceBoxError(f"face box {tuple(box)} lies outside the {width}x{height} image")
    return region


def load_face(path: Path, box: tuple[int, int, int, int], size: int, margin: float = 0.0) -> torch.Tensor:
    """``[1, 3, size, size]`` float in [0, 1]: the face at ``box`` (plus ``margin``) of the photograph at ``path``."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        region = face_region(box, margin, image.width, image.height)
        face = image.crop(region).resize((size, size), Image.BILINEAR)
        array = np.array(face, dtype=np.uint8)  # [S, S, 3], a writable copy as torch.from_numpy wants
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255.0).unsqueeze(0)


class AfeFaces(FolderImages):
    """One face per sample, served as ``folders.FolderImages`` serves images, cut at its annotated box."""

    unreadable = "not a readable face"
    remedy = "remove its line or replace the image"

    def __init__(self, files: list[Path], boxes: np.ndarray, labels: np.ndarray, ids: np.ndarray, image_size: int,
                 margin: float, corrupt: str) -> None:
        super().__init__(files, labels, ids, image_size, corrupt)
        self.boxes, self.margin = boxes, margin

    def load(self, item: int) -> torch.Tensor:
        box = tuple(int(v) for v in self.boxes[item])
        return load_face(self.files[item], box, self.image_size, self.margin)  # (1, 3, S, S)


class AfeDataModule(BaseDataModule):
    """AFE, the Asian Facial Expression database, read from its native layout (module docstring).

    Args:
        root: the data set's folder (holding ``src/image/`` and ``annos/TrainTest/``).
        image_size: face crops are resized to this square size.
        margin: grow each face box by this fraction of its width and height on each side (0: the box as annotated).
        val_fraction: of each emotion of the official train split held out for validation.
        split_seed: seed of that hold-out.
        corrupt: ``skip`` unreadable images (counted, named in a warning) or ``raise`` at the first.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        margin: float = 0.0,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 64,
        num_workers: int = 0,
        max_unreadable_fraction: float | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("emotion",),
                         class_names={"emotion": EMOTIONS}, corrupt=corrupt, name="afe",
                         max_unreadable_fraction=max_unreadable_fraction)
        if margin < 0:
            raise ConfigError(f"data.init_args.margin: {margin} is negative; give a fraction of the box such as 0.1")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"data.init_args.val_fraction: {val_fraction} is not in [0, 1)")
        self.root, self.image_size, self.margin = root, image_size, margin
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.splits: dict[str, tuple[list[Path], np.ndarray, np.ndarray, np.ndarray]] = {}  # files, boxes, labels, ids

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        found = scan(self.root)
        train, test = found["train"], found["test"]
        ids = np.arange(len(train.files) + len(test.files))  # unique across splits (Train.csv first), as caches need
        held_out = stratified_holdout(train.labels, self.val_fraction, self.split_seed)
        where = {"train": np.flatnonzero(~held_out), "val": np.flatnonzero(held_out)}
        for split, index in where.items():
            self.splits[split] = ([train.files[i] for i in index], train.boxes[index], train.labels[index], ids[index])
        self.splits["test"] = (test.files, test.boxes, test.labels, ids[len(train.files):])
        if not len(self.splits["val"][0]):
            warnings.warn(f"afe: the validation split is empty (val_fraction {self.val_fraction})", stacklevel=2)

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        if task != "emotion":
            raise ValueError(f"class_counts: afe has only the 'emotion' task, not {task!r}")
        self.setup()
        return torch.bincount(torch.from_numpy(self.splits[split][2]), minlength=len(EMOTIONS))

    def dataset(self, split: str) -> AfeFaces:
        self.setup()
        files, boxes, labels, ids = self.splits[split]
        return AfeFaces(files, boxes, labels, ids, self.image_size, self.margin, self.corrupt)


SPEC = DatasetSpec(
    "afe", "AFE, the Asian Facial Expression database: photographs, face boxes, 7 emotions (CluP's source)",
    "data/afe",
    "src/image/<path>\n"
    "annos/TrainTest/Train.csv   (lines '<path> <left> <top> <right> <bottom> <emotion 0-6>', no header)\n"
    "annos/TrainTest/Test.csv    (0 anger, 1 disgust, 2 fear, 3 happy, 4 neutral, 5 sad, 6 surprise)",
    reader="affectlab.data.AfeDataModule", check="affectlab.data.check.check_afe_dataset",
    export="affectlab.data.synth.export.export_afe",
)
