"""Facial expression image data sets laid out as one folder per class: CAER-S as its authors distribute it
(``readers/caer_s.py`` checks its layout first), and the community re-packagings of RAF-DB, FER2013, ExpW and
AffectNet, which their own readers (``rafdb.py``, ``fer2013.py``, ``expw.py``, ``affectnet.py``) fall back to
(``layout: folders``, or found by ``layout: auto``); served in the batch contract as one-frame clips.

Each data set's layout (``FOLDER_LAYOUTS``):

    rafdb      <root>/train/<1..7>/*.jpg, <root>/test/<1..7>/*.jpg
               1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral (RAF-DB's label ids)
    fer2013    <root>/train/<angry|disgust|fear|happy|neutral|sad|surprise>/*.png, <root>/test/<same>/*.png
    expw       <root>/<angry|disgust|fear|happy|neutral|sad|surprise>/*.jpg   (no official split)
    affectnet  <root>/train_set/<0..7>/*.jpg, <root>/val_set/<0..7>/*.jpg      (val_set is the test set)
               0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt (not one of the
               seven basic emotions: left out and counted)
    caer_s     <root>/train/<Anger|Disgust|Fear|Happy|Neutral|Sad|Surprise>/*.png, <root>/test/<same>/*.png

Labels are mapped onto AffectLab's canonical order (``contract.EMOTIONS``). The official splits are kept;
validation is carved out of train (stratified, seeded), and a data set without splits is split
train/val/test the same way. These are in-the-wild images without subject ids, so splits cannot be
subject-disjoint: ``subject`` is -1 in every batch.

Unreadable images never stop a run: ``corrupt: skip`` (the default) drops them from their batch, warns once
per file with its path, counts them (``unreadable``) and sums them up when the stage ends; ``corrupt: raise``
stops at the first with the file's path. ``affectlab data check <name> --root DIR`` decodes everything up front.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.contract import EMOTIONS
from affectlab.data.images import IMAGE_EXTENSIONS, load_image
from affectlab.data.splits import stratified_holdout
from affectlab.errors import ConfigError, DataError



@dataclass(frozen=True)
class FolderLayout:
    """Where a folder-per-class data set keeps its splits and what its class folders mean."""

    name: str
    splits: dict[str, str]  # AffectLab split ("train", "test") -> folder under the root ("" : the root itself)
    classes: dict[str, str | None]  # class folder -> canonical emotion, None: not a basic emotion (left out)

    def describe(self) -> str:
        folders = "|".join(self.classes)
        return "\n".join(f"{folder + '/' if folder else ''}<{folders}>/<image>" for folder in self.splits.values())


_BASIC = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
          "sad": "sad", "surprise": "surprise"}

FOLDER_LAYOUTS: dict[str, FolderLayout] = {
    "rafdb": FolderLayout("rafdb", {"train": "train", "test": "test"}, {
        "1": "surprise", "2": "fear", "3": "disgust", "4": "happy", "5": "sad", "6": "anger", "7": "neutral"}),
    "fer2013": FolderLayout("fer2013", {"train": "train", "test": "test"}, _BASIC),
    "expw": FolderLayout("expw", {"all": ""}, _BASIC),
    "affectnet": FolderLayout("affectnet", {"train": "train_set", "test": "val_set"}, {
        "0": "neutral", "1": "happy", "2": "sad", "3": "surprise", "4": "fear", "5": "disgust", "6": "anger",
        "7": None}),
    "caer_s": FolderLayout("caer_s", {"train": "train", "test": "test"}, {
        "Anger": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happy", "Neutral": "neutral",
        "Sad": "sad", "Surprise": "surprise"}),
}



LAYOUTS = ("auto", "authors", "folders")  # the layout option of the readers that fall back to these


# -- the authors' layout or a community re-packaging: which one a reader reads --------------------------------------------------------------
def describe_found(root: Path, limit: int = 10) -> str:
    """What ``root`` holds, for an error message: its first entries, folders marked with a slash."""
    entries = sorted(root.iterdir()) if root.is_dir() else []
    if not entries:
        return "an empty folder"
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:limit])
    return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")


def community_layout_found(name: str, root: Path) -> bool:
    """Whether ``root`` holds data set ``name`` as the community folder-per-class re-packaging
    (``FOLDER_LAYOUTS``): every split folder there, at least one class folder in one of them."""
    folder_layout = FOLDER_LAYOUTS[name]
    bases = [root / folder for folder in folder_layout.splits.values()]
    return all(base.is_dir() for base in bases) and any(
        (base / label).is_dir() for base in bases for label in folder_layout.classes)


def choose_layout(name: str, root: str | Path, layout: str, authors_found: bool, authors_tree: str) -> str:
    """``authors`` or ``folders``: the layout to read ``root`` as, for the ``layout`` option (``auto``: the
    authors' where found, else the community folders). Neither found, or not the one asked for: a DataError
    naming what ``root`` holds, the layout expected and the option that reads what was found."""
    if layout not in LAYOUTS:
        raise ConfigError(f"data.init_args.layout: {layout!r} is not one of {list(LAYOUTS)} (auto: the authors' "
                          "layout where found, else the community folder layout)")
    root = Path(root)
    folder_layout = FOLDER_LAYOUTS[name]
    folder_tree = "\n".join(f"    {root}/{line}" for line in folder_layout.describe().splitlines())
    if not root.is_dir():
        raise DataError(f"{name}: root {root} is not a folder; expected the authors' layout:\n{authors_tree}\n"
                        f"or the community folder layout (--data.init_args.layout folders):\n{folder_tree}")
    community = community_layout_found(name, root)
    if layout == "auto" and (authors_found or community):
        return "authors" if authors_found else "folders"
    if layout == "authors" and authors_found:
        return "authors"
    if layout == "folders" and community:
        return "folders"
    found = describe_found(root)
    if layout == "folders":
        hint = (" The authors' layout is there: read it with --data.init_args.layout authors (or auto)."
                if authors_found else "")
        raise DataError(f"{name}: {root} does not hold the community folder layout (layout: folders); it holds "
                        f"{found}; expected:\n{folder_tree}\n{hint.strip()}".rstrip())
    if community:
        hint = (f"It holds the community folder layout ({', '.join(f + '/' for f in folder_layout.splits.values())} "
                "with class folders): read it with --data.init_args.layout folders (or auto).")
    else:
        hint = f"(The community folder layout, --data.init_args.layout folders, is not there either:\n{folder_tree})"
    raise DataError(f"{name}: {root} does not hold the authors' layout; it holds {found}; expected:\n{authors_tree}\n"
                    + hint)



@dataclass
class FolderScan:
    """What is on disk: per split the image paths and their canonical labels, and what was left out."""

    files: dict[str, list[Path]]
    labels: dict[str, np.ndarray]
    left_out: Counter  # class folder -> images whose class is not one of the seven
    unknown_folders: list[Path]  # folders that are no class of the layout
    other_files: list[Path]  # files in class folders that are no image


def scan(layout: FolderLayout, root: str | Path) -> FolderScan:
    """List every image of ``layout`` under ``root``; a missing root or split folder is a DataError naming it."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{layout.name}: root {root} is not a folder; expected\n" + _tree(layout, root))
    files: dict[str, list[Path]] = {}
    labels: dict[str, np.ndarray] = {}
    left_out: Counter = Counter()
    unknown: list[Path] = []
    other: list[Path] = []
    for split, folder in layout.splits.items():
        base = root / folder
        if not base.is_dir():
            raise DataError(f"{layout.name}: split folder {base} is missing; expected\n" + _tree(layout, root))
        split_files, split_labels = [], []
        for entry in sorted(base.iterdir()):
            if not entry.is_dir() or (folder == "" and entry.name in layout.splits.values()):
                continue
            if entry.name not in layout.classes:
                if not (folder == "" and entry.name.startswith(".")):
                    unknown.append(entry)
                continue
            emotion = layout.classes[entry.name]
            for path in sorted(entry.iterdir()):
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    if path.is_file():
                        other.append(path)
                    continue
                if emotion is None:
                    left_out[entry.name] += 1
                    continue
                split_files.append(path)
                split_labels.append(EMOTIONS.index(emotion))
        files[split] = split_files
        labels[split] = np.asarray(split_labels, dtype=np.int64)
    if not any(files.values()):
        raise DataError(f"{layout.name}: no images under {root}; expected\n" + _tree(layout, root))
    return FolderScan(files, labels, left_out, unknown, other)


def unknown_folder_names(folders: list[Path], classes: list[str] | tuple[str, ...]) -> list[str]:
    """Each folder's path, with the class it differs from only in case (``Happy`` for ``happy``) named."""
    lower = {c.lower(): c for c in classes}
    return [f"{folder}" + (f" (did you mean {lower[folder.name.lower()]!r}?)" if folder.name.lower() in lower else "")
            for folder in folders]


def images_in(folders: list[Path]) -> int:
    return sum(1 for folder in folders for path in folder.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS)


def _tree(layout: FolderLayout, root: Path) -> str:
    return "\n".join(f"    {root}/{line}" for line in layout.describe().splitlines())


class FolderImages(Dataset):
    """One image per sample in the batch contract: ``video`` ``[1, 3, S, S]`` (a one-frame clip); an unreadable
    one becomes ``{"skipped": "<path>"}`` (``corrupt: skip``) or stops the run (``raise``). A reader whose
    images need more than a resize (AFE's face boxes) overrides ``load``."""

    unreadable = "not a readable image"  # the start of the ``corrupt: raise`` message, after the path
    remedy = "remove or replace it"

    def __init__(self, files: list[Path], labels: np.ndarray, ids: np.ndarray, image_size: int,
                 corrupt: str, domain: int = 0) -> None:
        self.files, self.labels, self.ids = files, labels, ids
        self.image_size, self.corrupt, self.domain = image_size, corrupt, domain

    def __len__(self) -> int:
        return len(self.files)

    def load(self, item: int) -> torch.Tensor:
        return load_image(self.files[item], self.image_size)  # (1, 3, S, S)

    def __getitem__(self, item: int) -> dict[str, Any] | None:
        path = self.files[item]
        try:
            frames = self.load(item)
        except Exception as error:  # PIL raises several unrelated types for truncated or foreign files
            if self.corrupt == "raise":
                raise DataError(f"{path}: {self.unreadable} ({error}); {self.remedy}, or set "
                                "data.init_args.corrupt: skip") from None
            return {"skipped": str(path)}
        return {
            "video": frames, "video_mask": torch.ones(1, dtype=torch.bool),
            "targets": {"emotion": torch.tensor(int(self.labels[item]))},
            "target_mask": {"emotion": torch.tensor(True)},
            "id": torch.tensor(int(self.ids[item])), "subject": torch.tensor(-1), "domain": torch.tensor(self.domain),
        }


class FolderDataModule(BaseDataModule):
    """A folder-per-class facial expression data set (see the module docstring for each layout).

    Args:
        name: ``rafdb``, ``fer2013``, ``expw``, ``affectnet`` or ``caer_s``.
        root: the data set's folder, laid out as distributed.
        image_size: images are resized to this square size.
        val_fraction: of each class of the train split held out for validation.
        test_fraction: of each class held out for testing, for data sets without an official test split.
        split_seed: seed of those hold-outs.
        corrupt: ``skip`` unreadable images (counted, named in a warning) or ``raise`` at the first.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    def __init__(
        self,
        name: str,
        root: str,
        image_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 64,
        num_workers: int = 0,
        max_unreadable_fraction: float | None = None,
    ) -> None:
        if name not in FOLDER_LAYOUTS:
            raise ConfigError(f"data.init_args.name: {name!r} is not one of {list(FOLDER_LAYOUTS)}")
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("emotion",),
                         class_names={"emotion": EMOTIONS}, corrupt=corrupt, name=name,
                         max_unreadable_fraction=max_unreadable_fraction)
        self.layout = FOLDER_LAYOUTS[name]
        self.root = root
        self.image_size = image_size
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.splits: dict[str, tuple[list[Path], np.ndarray, np.ndarray]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        found = scan(self.layout, self.root)
        self.skips.add("unknown_class_folder", unknown_folder_names(found.unknown_folders, list(self.layout.classes)),
                       f"folder(s) that are no class folder of {self.layout.name} (images in them are not served)",
                       f"rename each to one of {', '.join(self.layout.classes)} (names are case-sensitive)",
                       count=images_in(found.unknown_folders))
        if found.left_out:
            left = ", ".join(f"{n} in folder {c!r}" for c, n in sorted(found.left_out.items()))
            warnings.warn(f"{self.layout.name}: left out {left}: not one of the seven basic emotions", stacklevel=2)
        files = [p for split in found.files.values() for p in split]
        labels = np.concatenate(list(found.labels.values()))
        ids = np.arange(len(files))  # unique across splits, as probes' caches need
        offsets = np.cumsum([0, *[len(v) for v in found.files.values()]])
        where = {split: np.arange(offsets[i], offsets[i + 1]) for i, split in enumerate(found.files)}
        if "test" not in where:  # no official split: carve the test split first
            test = stratified_holdout(labels, self.test_fraction, self.split_seed)
            where = {"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}
        train = where["train"]
        val = stratified_holdout(labels[train], self.val_fraction, self.split_seed + 1)
        where = {"train": train[~val], "val": train[val], "test": where["test"]}
        self.splits = {split: ([files[i] for i in index], labels[index], ids[index]) for split, index in where.items()}

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        if task != "emotion":
            raise ValueError(f"class_counts: {self.layout.name} has only the 'emotion' task, not {task!r}")
        self.setup()
        return torch.bincount(torch.from_numpy(self.splits[split][1]), minlength=len(EMOTIONS))

    def dataset(self, split: str) -> FolderImages:
        self.setup()
        files, labels, ids = self.splits[split]
        return FolderImages(files, labels, ids, self.image_size, self.corrupt)