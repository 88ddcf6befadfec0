"""RAF-DB's basic set (the single-label subset, seven emotions) read as its authors distribute it, served in the
batch contract as one-frame clips.

Layout (the archive of http://www.whdeng.cn/RAF/model1.html; 15,339 faces, 12,271 train and 3,068 test):

    <root>/basic/EmoLabel/list_patition_label.txt     (sic: the authors' spelling) one line per face:
                                                       'train_00001.jpg 5', 'test_0001.jpg 1'
    <root>/basic/Image/aligned/train_00001_aligned.jpg the aligned faces, 100x100 (read by default)
    <root>/basic/Image/original/train_00001.jpg        the photographs they were cut from (``images: original``)

``root`` may also be the ``basic/`` folder itself (holding ``EmoLabel/`` and ``Image/``); a root holding both
``basic/EmoLabel/`` and ``EmoLabel/`` is ambiguous and refused. Labels 1-7 are 1 surprise, 2 fear, 3 disgust,
4 happiness, 5 sadness, 6 anger, 7 neutral (``LABEL_CODES``), mapped onto AffectLab's canonical order
(``contract.EMOTIONS``). The split is the name's prefix: ``train_`` -> train, ``test_`` -> test; validation is
carved out of train, stratified per emotion and seeded (``splits.stratified_holdout``). RAF-DB ships no subject
ids: ``subject`` is -1. Each face is served as ``folders.FolderImages`` serves an image: RGB, resized bilinear
to ``image_size`` (the aligned faces need no crop; originals are served whole).

Bad input: a line that is not ``<name> <label>`` (a wrong number of fields, a label that is not 1-7, a name
without the train_/test_ prefix or listed twice) and a listed face whose image is missing are skipped and
counted, each named by ``file:line``, in a warning at setup and in ``affectlab data check rafdb``
(``corrupt: skip``, the default), or stop setup with a ``DataError`` naming the file and line (``corrupt:
raise``). When none of the first listed images exists the image folder is wrong (a DataError naming it, and
``images`` where the other folder holds them). Images that cannot be decoded are skipped when met, named and
counted (or raise), as in the folder readers.

The community re-packaging (``train/<1..7>/*.jpg``, ``test/<1..7>/*.jpg``, ``folders.FOLDER_LAYOUTS``) is read
too: ``layout: auto`` (the default) takes the authors' layout where its list file is found and the folders
otherwise; ``layout: authors|folders`` insists on one (``folders.choose_layout``: the error for a wrong layout).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.data.base import BaseDataModule
from affectlab.data.contract import EMOTIONS
from affectlab.data.readers.fer2013 import skipped_summary
from affectlab.data.readers.folders import LAYOUTS, FolderDataModule, FolderImages, choose_layout
from affectlab.data.spec import DatasetSpec
from affectlab.data.splits import stratified_holdout
from affectlab.errors import ConfigError, DataError

# RAF-DB's basic label -> canonical emotion (contract.EMOTIONS); all seven are basic emotions, none is left out.
LABEL_CODES: dict[str | int, str | None] = {
    1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "anger", 7: "neutral"}
LIST_FILE = "EmoLabel/list_patition_label.txt"  # under basic/; "patition" is how the authors spell it
IMAGE_FOLDERS = {"aligned": "Image/aligned", "original": "Image/original"}  # the ``images`` option -> folder
PREFIX_SPLITS = {"train_": "train", "test_": "test"}
CHECKED_FIRST = 20  # listed images looked for at setup: none there means the image folder is wrong

LAYOUT = ("basic/EmoLabel/list_patition_label.txt      lines '<name> <label>': 'train_00001.jpg 5'; labels 1 surprise, "
          "2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral; split by the train_/test_ prefix\n"
          "basic/Image/aligned/train_00001_aligned.jpg  the aligned 100x100 faces (images: aligned, the default)\n"
          "basic/Image/original/train_00001.jpg         the photographs (images: original)")
EXPECTED_LINE = ("expected '<name> <label>' such as 'train_00001.jpg 5': a name starting train_ or test_, and a label "
                 "1-7 (" + ", ".join(f"{k} {e}" for k, e in LABEL_CODES.items()) + ")")


def _tree(root: str | Path) -> str:
    return "\n".join(f"    {root}/{line}" for line in LAYOUT.splitlines())


def find_basic(root: str | Path) -> Path | None:
    """The ``basic/`` folder of the copy at ``root`` (``root/basic`` or ``root`` itself); None where neither
    holds the list file, a DataError where both do."""
    root = Path(root)
    below, itself = root / "basic", root
    found = [base for base in (below, itself) if (base / LIST_FILE).is_file()]
    if len(found) == 2:
        raise DataError(f"rafdb: {root} holds both {below / LIST_FILE} and {itself / LIST_FILE}: point root at "
                        "the folder above basic/ or at basic/ itself, holding one of them")
    return found[0] if found else None


def image_path(base: Path, name: str, images: str) -> Path:
    """Where the image of listed face ``name`` (``train_00001.jpg``) is: ``Image/aligned/train_00001_aligned.jpg``
    or ``Image/original/train_00001.jpg``."""
    if images == "aligned":
        stem, dot, extension = name.rpartition(".")
        return base / IMAGE_FOLDERS["aligned"] / (f"{stem}_aligned.{extension}" if dot else f"{name}_aligned")
    return base / IMAGE_FOLDERS["original"] / name


@dataclass
class RafList:
    """Every face the list file names, in file order, and every line it could not use."""

    names: list[str]
    labels: np.ndarray  # [N] int64, index into EMOTIONS
    splits: list[str]  # "train" or "test" per face
    lines: list[str]  # "<file>:<line>" per face
    skipped: list[str] = field(default_factory=list)  # "<file>:<line>: <why>"


def read_list(path: Path) -> RafList:
    """Parse ``list_patition_label.txt`` (blank lines ignored)."""
    names, labels, splits, lines, skipped = [], [], [], [], []
    seen: dict[str, str] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}:{number}"
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            fields = text.split()
            if len(fields) != 2:
                skipped.append(f"{where}: {len(fields)} field(s) in {text[:60]!r}")
                continue
            name, label = fields
            try:
                code = int(label)
            except ValueError:
                code = -1
            split = next((s for prefix, s in PREFIX_SPLITS.items() if name.startswith(prefix)), None)
            if code not in LABEL_CODES:
                skipped.append(f"{where}: label {label!r} is not one of RAF-DB's basic labels 1-7")
            elif split is None:
                skipped.append(f"{where}: {name!r} starts with neither train_ nor test_, so its split is unknown")
            elif name in seen:
                skipped.append(f"{where}: {name!r} is listed twice (first at {seen[name]})")
            else:
                seen[name] = where
                names.append(name)
                labels.append(EMOTIONS.index(LABEL_CODES[code]))
                splits.append(split)
                lines.append(where)
    return RafList(names, np.asarray(labels, np.int64), splits, lines, skipped)


@dataclass
class RafScan:
    """The faces of each official split whose image is there, and every listed face left out."""

    files: dict[str, list[Path]]  # train, test
    labels: dict[str, np.ndarray]
    lines: dict[str, list[str]]
    skipped: list[str]  # malformed lines and missing images, "<file>:<line>: <why>"
    list_file: Path


def scan(root: str | Path, images: str = "aligned") -> RafScan:
    """The authors' layout at ``root``: each listed face with its image (module docstring: what is skipped)."""
    if images not in IMAGE_FOLDERS:
        raise ConfigError(f"data.init_args.images: {images!r} is not one of {list(IMAGE_FOLDERS)}")
    base = find_basic(root)
    if base is None:
        raise DataError(f"rafdb: no basic/{LIST_FILE} under {root}; expected\n" + _tree(root))
    listed = read_list(base / LIST_FILE)
    if not listed.names:
        raise DataError(f"rafdb: {base / LIST_FILE} lists no usable face ({len(listed.skipped)} line(s) skipped"
                        f"{': ' + skipped_summary(listed.skipped, 2) if listed.skipped else ''}); {EXPECTED_LINE}")
    paths = [image_path(base, name, images) for name in listed.names]
    first = paths[:CHECKED_FIRST]
    if not any(p.is_file() for p in first):  # one missing image is skipped; all of them is a wrong folder
        other = next(o for o in IMAGE_FOLDERS if o != images)
        there = any(image_path(base, n, other).is_file() for n in listed.names[:CHECKED_FIRST])
        hint = f"; {base / IMAGE_FOLDERS[other]} holds them: set data.init_args.images {other}" if there else ""
        raise DataError(f"rafdb: none of the first {len(first)} images {LIST_FILE} lists exists (the first: "
                        f"{listed.lines[0]} names {first[0]}){hint}; expected\n" + _tree(root))
    files = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    lines: dict[str, list[str]] = {"train": [], "test": []}
    skipped = list(listed.skipped)
    for path, label, split, where in zip(paths, listed.labels, listed.splits, listed.lines):
        if not path.is_file():
            skipped.append(f"{where}: its image {path} is missing")
            continue
        files[split].append(path)
        labels[split].append(int(label))
        lines[split].append(where)
    prefix = len(f"{base / LIST_FILE}:")  # every entry starts "<list file>:<line>:": list them in file order
    skipped.sort(key=lambda entry: int(entry[prefix:].split(":", 1)[0]))
    return RafScan(files, {s: np.asarray(v, np.int64) for s, v in labels.items()}, lines, skipped, base / LIST_FILE)


class RafdbDataModule(BaseDataModule):
    """RAF-DB's basic set from the authors' layout (or the community folders), module docstring.

    Args:
        root: the folder holding ``basic/`` (or ``basic/`` itself, or the community ``train/``, ``test/``).
        layout: ``auto`` (the authors' layout where its list file is found, else the folders), ``authors`` or
            ``folders``.
        images: ``aligned`` (``basic/Image/aligned``, 100x100 faces) or ``original`` (the photographs).
        image_size: images are resized to this square size.
        val_fraction: of each emotion of the official train split held out for validation.
        split_seed: seed of that hold-out.
        corrupt: ``skip`` bad lines, missing and unreadable images (counted, named in a warning) or ``raise``.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    def __init__(
        self,
        root: str,
        layout: str = "auto",
        images: str = "aligned",
        image_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 64,
        num_workers: int = 0,
        max_unreadable_fraction: float | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("emotion",),
                         class_names={"emotion": EMOTIONS}, corrupt=corrupt, name="rafdb",
                         max_unreadable_fraction=max_unreadable_fraction)
        if layout not in LAYOUTS:
            raise ConfigError(f"data.init_args.layout: {layout!r} is not one of {list(LAYOUTS)}")
        if images not in IMAGE_FOLDERS:
            raise ConfigError(f"data.init_args.images: {images!r} is not one of {list(IMAGE_FOLDERS)}")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"data.init_args.val_fraction: {val_fraction} is not in [0, 1)")
        self.root, self.layout, self.images, self.image_size = root, layout, images, image_size
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.read_as: str | None = None  # the layout found: authors or folders
        self.skipped_lines: list[str] = []
        self.splits: dict[str, tuple[list[Path], np.ndarray, np.ndarray]] = {}  # files, labels, ids

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        authors = Path(self.root).is_dir() and find_basic(self.root) is not None
        self.read_as = choose_layout("rafdb", self.root, self.layout, authors, _tree(self.root))
        if self.read_as == "folders":
            community = FolderDataModule("rafdb", self.root, self.image_size, self.val_fraction,
                                         split_seed=self.split_seed, corrupt=self.corrupt)
            community.setup()
            self.skips.update(community.skips)
            self.splits = community.splits
            return
        found = scan(self.root, self.images)
        self.skipped_lines = found.skipped
        if found.skipped:
            if self.corrupt == "raise":
                raise DataError(f"{found.skipped[0]}; {EXPECTED_LINE}, its image under {IMAGE_FOLDERS[self.images]}/; "
                                "fix or remove the line, or set data.init_args.corrupt: skip")
            warnings.warn(f"rafdb: skipped {len(found.skipped)} listed face(s): {skipped_summary(found.skipped)}",
                          stacklevel=2)
            self.skips.count("malformed_row", len(found.skipped))
        train, test = found.files["train"], found.files["test"]
        ids = np.arange(len(train) + len(test))  # unique across splits (train first), as probes' caches need
        held_out = stratified_holdout(found.labels["train"], self.val_fraction, self.split_seed)
        for split, index in {"train": np.flatnonzero(~held_out), "val": np.flatnonzero(held_out)}.items():
            self.splits[split] = ([train[i] for i in index], found.labels["train"][index], ids[index])
        self.splits["test"] = (test, found.labels["test"], ids[len(train):])
        for split, (files, _, _) in self.splits.items():
            if not files:
                warnings.warn(f"rafdb: the {split} split is empty", stacklevel=2)

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        if task != "emotion":
            raise ValueError(f"class_counts: rafdb has only the 'emotion' task, not {task!r}")
        self.setup()
        return torch.bincount(torch.from_numpy(self.splits[split][1]), minlength=len(EMOTIONS))

    def dataset(self, split: str) -> FolderImages:
        self.setup()
        files, labels, ids = self.splits[split]
        return FolderImages(files, labels, ids, self.image_size, self.corrupt)


def check_rafdb_dataset(name: str, root: str | Path, decode: bool = True) -> Any:
    """``affectlab data check rafdb``: counts per official split and emotion of the faces whose image is there;
    every skipped line (malformed, or its image missing) and every undecodable image (``--quick``: opened, not
    decoded) an error; an empty split an error. The community folder layout is checked as the folder data sets
    are. Both image folders are checked where both are there (the reader may be told to read either)."""
    from PIL import Image
    from rich.progress import track

    from affectlab.data.check import CheckReport, check_folder_dataset
    from affectlab.data.images import load_image

    authors = Path(root).is_dir() and find_basic(root) is not None
    if choose_layout(name, root, "auto", authors, _tree(root)) == "folders":
        report = check_folder_dataset(name, root, decode)
        report.notes.append(f"read as the community folder layout (no basic/{LIST_FILE} under {root})")
        return report
    base = find_basic(root)
    kinds = [kind for kind in IMAGE_FOLDERS if (base / IMAGE_FOLDERS[kind]).is_dir()] or ["aligned"]
    found = scan(root, kinds[0])
    counts = {split: [int((labels == c).sum()) for c in range(len(EMOTIONS))] for split, labels in found.labels.items()}
    report = CheckReport(name, counts, title=f"faces per split and emotion ({IMAGE_FOLDERS[kinds[0]]})")
    report.notes.append(f"read {found.list_file} (the authors' layout): train_ -> train (val carved out by the "
                        f"reader), test_ -> test; image folders: {', '.join(IMAGE_FOLDERS[k] for k in kinds)}")
    report.errors += [f"skipped {line}" for line in found.skipped]
    for split, files in found.files.items():
        if not files:
            report.errors.append(f"split {split!r} holds no faces ({found.list_file} lists none with an image)")
    for kind in kinds:
        other = found if kind == kinds[0] else scan(root, kind)
        if kind != kinds[0]:
            report.errors += [f"skipped {line}" for line in other.skipped if "is missing" in line]
        files = [p for split in other.files.values() for p in split]
        for path in track(files, description=f"{'decoding' if decode else 'opening'} {name} {kind}", transient=True):
            try:
                if decode:
                    load_image(path, 8)
                else:
                    with Image.open(path):
                        pass
            except Exception as error:  # noqa: BLE001  (PIL raises many types for bad files)
                report.errors.append(f"{path}: unreadable ({type(error).__name__}: {error})")
    return report


SPEC = DatasetSpec(
    "rafdb", "RAF-DB basic expressions: aligned faces, EmoLabel/list_patition_label.txt (labels 1-7)", "data/rafdb",
    LAYOUT, reader="affectlab.data.RafdbDataModule", check="affectlab.data.readers.rafdb.check_rafdb_dataset",
    export="affectlab.data.synth.export_rafdb.export_rafdb",
)
