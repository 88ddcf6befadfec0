"""ExpW, the Expression in-the-Wild database (Zhang et al., "From Facial Expression Recognition to Interpersonal
Relation Prediction", IJCV 2018), read as its authors distribute it: whole photographs, several annotated faces
in each, every face served as a one-frame clip cut at its box.

Layout:

    <root>/image/origin/<image_name>        the photographs, faces not cropped
    <root>/label/label.lst                  one line per face, space-separated, no header:

    <image_name> <face_id_in_image> <face_box_top> <face_box_left> <face_box_right> <face_box_bottom>
        <face_box_cofidence> <expression_label>
    e.g. angry_actor_104.jpg 0 28 113 226 141 22.9362 0

The field order (top, left, right, bottom) is the authors' readme's, and the one CluP and other public loaders
use. Coordinates are pixels of the photograph, right and bottom exclusive as in PIL (``image.crop``);
``face_box_cofidence`` is the face detector's score (``min_confidence`` filters on it). Expression labels
(``LABEL_CODES``): 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral, mapped onto AffectLab's
canonical order (``contract.EMOTIONS``).

Splits: ExpW has no official split. Test and validation are held out once, stratified per emotion and seeded
(``split_seed`` for test, ``split_seed + 1`` for validation), by photograph: all faces of one photograph fall in
the same split, so no test face shares its photograph (and usually its scene and people) with a training face.
CluP's preparation drew its test faces independently of its training faces and so let them overlap
(``/work/shared/METHODS.md``); the grouping is what prevents that here. ``subject`` is -1: ExpW has no ids.

Per sample: the photograph (RGB) -> its face box, which must lie inside the photograph -> grown by ``margin`` x
the box's width and height on each side and clipped to the photograph (as AFE's reader, ``afe.face_region``) ->
resized to ``image_size`` (bilinear) -> ``video`` ``[1, 3, S, S]`` float in [0, 1].

Bad input, under the corrupt-sample policy (``corrupt: skip`` counts and reports, ``raise`` stops at the first):
a malformed line of ``label.lst`` (wrong number of fields, a number that does not parse, an empty or inverted
box, an unknown expression code, a face listed twice) is left out at setup, named by ``file:line``; a missing or
unreadable photograph, or a box that reaches outside its photograph (never clipped into a crop of something
else), is skipped when the face is loaded, named with its line and box. A missing root, image folder or label
file is a ``DataError`` that says what was found and what was expected.

Community re-packagings: ``<root>/<angry|disgust|fear|happy|neutral|sad|surprise>/<image>`` (faces already
cut, ``folders.FOLDER_LAYOUTS["expw"]``) is read too: ``layout: auto`` (the default) takes whichever is there,
``layout: authors|folders`` insists on one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.data.base import BaseDataModule
from affectlab.data.contract import EMOTIONS
from affectlab.data.readers.afe import FaceBoxError, face_region
from affectlab.data.readers.folders import (
    LAYOUTS,
    FolderDataModule,
    FolderImages,
    choose_layout,
    describe_found,
)
from affectlab.data.spec import DatasetSpec
from affectlab.data.splits import stratified_holdout
from affectlab.errors import ConfigError, DataError

EXPW_IMAGES = "image/origin"
EXPW_LABELS = "label/label.lst"
LABEL_CODES: dict[str | int, str | None] = {  # ExpW's expression_label -> canonical emotion (all seven kept)
    0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral",
}
FIELDS = ("image_name", "face_id_in_image", "face_box_top", "face_box_left", "face_box_right", "face_box_bottom",
          "face_box_cofidence", "expression_label")
CHECKED_FIRST_FACES = 20  # photographs looked for at setup: all missing means the image folder is the wrong one
SHOWN_PROBLEMS = 5  # malformed lines named in the setup warning (the check names all)

LAYOUT = (f"{EXPW_IMAGES}/<image_name>\n"
          f"{EXPW_LABELS}   (lines '<image_name> <face_id> <top> <left> <right> <bottom> <confidence> <label 0-6>')")
EXPECTED_LINE = ("expected 8 fields separated by spaces, '" + " ".join(f"<{f}>" for f in FIELDS) + "', with "
                 "pixel coordinates (left < right, top < bottom), a numeric confidence and a label 0-6 ("
                 + ", ".join(f"{code} {name}" for code, name in LABEL_CODES.items()) + ")")


def _tree(root: Path) -> str:
    return "\n".join(f"    {root}/{line}" for line in LAYOUT.splitlines())


# -- the label list ------------------------------------------------------------------------------------------------


@dataclass
class ExpwFaces:
    """Every usable face ``label.lst`` lists, in file order, and what was left out."""

    files: list[Path]
    boxes: np.ndarray  # [N, 4] int64: left, top, right, bottom (PIL's order, converted from ExpW's)
    labels: np.ndarray  # [N] int64, index into EMOTIONS
    confidences: np.ndarray  # [N] float64
    photographs: np.ndarray  # [N] int64: which photograph (index into the sorted names) holds the face
    lines: list[str]  # "<label.lst>:<line>" of each face, for messages
    problems: list[str] = field(default_factory=list)  # malformed lines, left out (corrupt: skip)
    below_confidence: int = 0  # faces under min_confidence, left out


def parse_label_line(text: str, where: str) -> tuple[str, int, tuple[int, int, int, int], float, int]:
    """One line -> (image name, face id, box as left, top, right, bottom, confidence, canonical emotion index);
    anything else is a DataError naming ``where``."""
    fields = text.split()
    if len(fields) != len(FIELDS):
        raise DataError(f"{where}: {len(fields)} field(s); {EXPECTED_LINE}; the line reads {text!r}")
    name, face_id, *coordinates, confidence, label = fields
    numbers = []
    for column, value in zip(FIELDS[1:7], [face_id, *coordinates, confidence]):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{where}: {column} {value!r} is not a number; {EXPECTED_LINE}")
        numbers.append(number)
    face, top, left, right, bottom = (int(v) for v in numbers[:5])
    if left >= right or top >= bottom:
        raise DataError(f"{where}: the face box (top {top}, left {left}, right {right}, bottom {bottom}) is "
                        f"empty or inverted; {EXPECTED_LINE}")
    try:
        code = int(label)
    except ValueError:
        code = -1
    if code not in LABEL_CODES:
        raise DataError(f"{where}: expression_label {label!r} is not one of ExpW's codes; {EXPECTED_LINE}")
    return name, face, (left, top, right, bottom), numbers[5], EMOTIONS.index(LABEL_CODES[code])


def read_label_list(root: str | Path, corrupt: str = "skip", min_confidence: float = 0.0) -> ExpwFaces:
    """Every face of the ExpW copy at ``root``; a malformed line is left out and recorded (``skip``) or raised."""
    root = Path(root)
    images, labels_file = root / EXPW_IMAGES, root / EXPW_LABELS
    if not labels_file.is_file():
        raise DataError(f"expw: label file {labels_file} is missing (found at {root}: {describe_found(root)}); "
                        "expected\n" + _tree(root))
    if not images.is_dir():
        raise DataError(f"expw: image folder {images} is missing (found at {root}: {describe_found(root)}); "
                        "expected\n" + _tree(root))
    rows: list[tuple[str, tuple[int, int, int, int], float, int, str]] = []
    problems: list[str] = []
    seen: dict[tuple[str, int], str] = {}
    below = 0
    with open(labels_file, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{labels_file}:{number}"
            try:
                try:
                    text = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise DataError(f"{where}: not UTF-8 text; {EXPECTED_LINE}") from None
                if not text:
                    continue
                name, face, box, confidence, label = parse_label_line(text, where)
                if (name, face) in seen:
                    raise DataError(f"{where}: face {face} of {name} is listed twice (first at {seen[name, face]})")
            except DataError as error:
                if corrupt == "raise":
                    raise DataError(f"{error}; or set data.init_args.corrupt: skip to leave such lines out") from None
                problems.append(str(error))
                continue
            seen[name, face] = where
            if confidence < min_confidence:
                below += 1
                continue
            rows.append((name, box, confidence, label, where))
    if not rows:
        raise DataError(f"expw: {labels_file} lists no usable face" + (f" ({len(problems)} malformed line(s), the "
                        f"first: {problems[0]})" if problems else "") + "; expected\n" + _tree(root))
    names = sorted({row[0] for row in rows})
    index = {name: k for k, name in enumerate(names)}
    faces = ExpwFaces(
        files=[images / row[0] for row in rows], boxes=np.asarray([row[1] for row in rows], np.int64).reshape(-1, 4),
        labels=np.asarray([row[3] for row in rows], np.int64), confidences=np.asarray([row[2] for row in rows]),
        photographs=np.asarray([index[row[0]] for row in rows], np.int64), lines=[row[4] for row in rows],
        problems=problems, below_confidence=below)
    first = faces.files[:CHECKED_FIRST_FACES]
    if not any(path.is_file() for path in first):  # one missing photograph is skipped; all of them: a wrong folder
        raise DataError(f"expw: none of the first {len(first)} photographs {EXPW_LABELS} lists exists (the first: "
                        f"{faces.lines[0]} names {first[0]}); ExpW's image names are relative to {images}/")
    return faces


def expw_layout(root: str | Path, layout: str) -> str:
    root = Path(root)
    return choose_layout("expw", root, layout, (root / EXPW_LABELS).is_file(), _tree(root))


def grouped_holdout(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a seeded ``fraction`` of the groups (photographs), stratified by each group's first
    face's label: every member of a group is held out with it. ``fraction`` 0 holds out nothing (the shared
    ``stratified_holdout`` keeps at least one of each class)."""
    if fraction <= 0:
        return np.zeros(len(labels), dtype=bool)
    names, first = np.unique(groups, return_index=True)
    held = stratified_holdout(labels[first], fraction, seed)
    return np.isin(groups, names[held])


# -- faces cut at their boxes -------------------------------------------------------------------------------------


def load_boxed_face(path: Path, box: tuple[int, int, int, int], size: int, margin: float = 0.0) -> torch.Tensor:
    """``[1, 3, size, size]`` float in [0, 1]: the face at ``box`` (left, top, right, bottom; it must lie inside
    the photograph, else FaceBoxError) plus ``margin``, the grown region clipped to the photograph."""
    from PIL import Image

    with Image.open(path) as image:
        left, top, right, bottom = box
        if left < 0 or top < 0 or right > image.width or bottom > image.height:
            raise FaceBoxError(f"face box (left {left}, top {top}, right {right}, bottom {bottom}) reaches outside "
                               f"the {image.width}x{image.height} image")
        image = image.convert("RGB")
        region = face_region(box, margin, image.width, image.height)
        face = image.crop(region).resize((size, size), Image.BILINEAR)
        array = np.array(face, dtype=np.uint8)  # [S, S, 3], writable, as torch.from_numpy wants
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255.0).unsqueeze(0)


class FaceCrops(FolderImages):
    """One annotated face per sample, served as ``folders.FolderImages`` serves images, cut at its box; a face
    that cannot be served is skipped (or raised) naming its photograph, annotation line, box and the reason.
    ``regression``: task -> (values ``[N]`` float, mask ``[N]`` bool), extra scalar targets (AffectNet's
    valence and arousal), served with their ``target_mask``."""

    unreadable = "not a readable face"
    remedy = "fix or remove its line, or replace the image"

    def __init__(self, files: list[Path], boxes: np.ndarray, labels: np.ndarray, ids: np.ndarray, lines: list[str],
                 image_size: int, margin: float, corrupt: str,
                 regression: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        super().__init__(files, labels, ids, image_size, corrupt)
        self.boxes, self.lines, self.margin = boxes, lines, margin
        self.regression = regression or {}

    def load(self, item: int) -> torch.Tensor:
        box = tuple(int(v) for v in self.boxes[item])
        return load_boxed_face(self.files[item], box, self.image_size, self.margin)  # (1, 3, S, S)

    def __getitem__(self, item: int) -> dict[str, Any]:
        try:
            frames = self.load(item)
        except Exception as error:  # noqa: BLE001  (PIL raises several unrelated types for missing or foreign files)
            where = f"{self.files[item]} ({self.lines[item]}, box {tuple(int(v) for v in self.boxes[item])})"
            if self.corrupt == "raise":
                raise DataError(f"{where}: {self.unreadable} ({error}); {self.remedy}, or set "
                                "data.init_args.corrupt: skip") from None
            return {"skipped": f"{where}: {error}"}
        targets = {"emotion": torch.tensor(int(self.labels[item]))}
        masks = {"emotion": torch.tensor(True)}
        for task, (values, known) in self.regression.items():
            targets[task] = torch.tensor(float(values[item]), dtype=torch.float32)
            masks[task] = torch.tensor(bool(known[item]))
        return {
            "video": frames, "video_mask": torch.ones(1, dtype=torch.bool), "targets": targets, "target_mask": masks,
            "id": torch.tensor(int(self.ids[item])), "subject": torch.tensor(-1), "domain": torch.tensor(self.domain),
        }


class ExpwDataModule(BaseDataModule):
    """ExpW read as its authors distribute it (module docstring), or its community folder layout.

    Args:
        root: the data set's folder (holding ``image/origin/`` and ``label/label.lst``).
        layout: ``auto`` (whichever is there), ``authors`` or ``folders`` (class folders of cut faces).
        image_size: face crops are resized to this square size.
        margin: grow each face box by this fraction of its width and height on each side (0: the box as annotated).
        min_confidence: leave out faces whose detector confidence is below this (0: keep all).
        val_fraction: of the photographs left after the test hold-out, per emotion, held out for validation.
        test_fraction: of the photographs, per emotion, held out for testing (ExpW has no official split).
        split_seed: seed of those hold-outs.
        corrupt: ``skip`` malformed lines and unreadable faces (counted, named in a warning) or ``raise``.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    def __init__(
        self,
        root: str,
        layout: str = "auto",
        image_size: int = 64,
        margin: float = 0.0,
        min_confidence: float = 0.0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 64,
        num_workers: int = 0,
        max_unreadable_fraction: float | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("emotion",),
                         class_names={"emotion": EMOTIONS}, corrupt=corrupt, name="expw", kind="face",
                         max_unreadable_fraction=max_unreadable_fraction)
        if layout not in LAYOUTS:
            raise ConfigError(f"data.init_args.layout: {layout!r} is not one of {list(LAYOUTS)}")
        if margin < 0:
            raise ConfigError(f"data.init_args.margin: {margin} is negative; give a fraction of the box such as 0.1")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 <= value < 1:
                raise ConfigError(f"data.init_args.{key}: {value} is not in [0, 1)")
        self.root, self.layout, self.image_size, self.margin = root, layout, image_size, margin
        self.min_confidence = min_confidence
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.found_layout: str | None = None
        self.faces: ExpwFaces | None = None
        self.splits: dict[str, tuple[list[Path], np.ndarray | None, np.ndarray, np.ndarray, list[str]]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.found_layout = expw_layout(self.root, self.layout)
        if self.found_layout == "folders":
            folders = FolderDataModule("expw", self.root, image_size=self.image_size, val_fraction=self.val_fraction,
                                       test_fraction=self.test_fraction, split_seed=self.split_seed,
                                       corrupt=self.corrupt)
            folders.setup()
            self.skips.update(folders.skips)
            self.splits = {split: (files, None, labels, ids, [str(p) for p in files])
                           for split, (files, labels, ids) in folders.splits.items()}
            return
        faces = self.faces = read_label_list(self.root, self.corrupt, self.min_confidence)
        if faces.problems:
            shown = "; ".join(faces.problems[:SHOWN_PROBLEMS])
            more = f" and {len(faces.problems) - SHOWN_PROBLEMS} more" if len(faces.problems) > SHOWN_PROBLEMS else ""
            warnings.warn(f"expw: left out {len(faces.problems)} malformed line(s) of {EXPW_LABELS}: {shown}{more} "
                          "(affectlab data check expw names all)", stacklevel=2)
            self.skips.count("malformed_row", len(faces.problems))
        if faces.below_confidence:
            warnings.warn(f"expw: left out {faces.below_confidence} face(s) below min_confidence "
                          f"{self.min_confidence}", stacklevel=2)
        everything = np.arange(len(faces.files))
        test = grouped_holdout(faces.labels, faces.photographs, self.test_fraction, self.split_seed)
        rest = everything[~test]
        val = grouped_holdout(faces.labels[rest], faces.photographs[rest], self.val_fraction, self.split_seed + 1)
        where = {"train": rest[~val], "val": rest[val], "test": everything[test]}
        self.splits = {split: ([faces.files[i] for i in index], faces.boxes[index], faces.labels[index], index,
                               [faces.lines[i] for i in index]) for split, index in where.items()}

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        if task != "emotion":
            raise ValueError(f"class_counts: expw has only the 'emotion' task, not {task!r}")
        self.setup()
        return torch.bincount(torch.from_numpy(self.splits[split][2]), minlength=len(EMOTIONS))

    def dataset(self, split: str) -> FolderImages:
        self.setup()
        files, boxes, labels, ids, lines = self.splits[split]
        if boxes is None:
            return FolderImages(files, labels, ids, self.image_size, self.corrupt)
        return FaceCrops(files, boxes, labels, ids, lines, self.image_size, self.margin, self.corrupt)


def check_faces(report: Any, datasets: list[FaceCrops], decode: bool, name: str) -> None:
    """Add an error to ``report`` for every face that cannot be served: decoded and cut (``decode``), or only
    opened with its box checked against the photograph's size."""
    from PIL import Image
    from rich.progress import track

    items = [(dataset, item) for dataset in datasets for item in range(len(dataset))]
    for dataset, item in track(items, description=f"{'decoding' if decode else 'opening'} {name}", transient=True):
        path, box = dataset.files[item], tuple(int(v) for v in dataset.boxes[item])
        try:
            if decode:
                load_boxed_face(path, box, 8)
            else:
                with Image.open(path) as image:
                    left, top, right, bottom = box
                    if left < 0 or top < 0 or right > image.width or bottom > image.height:
                        raise FaceBoxError(f"face box {box} reaches outside the {image.width}x{image.height} image")
        except Exception as error:  # noqa: BLE001  (PIL raises many types for bad files)
            report.errors.append(f"{path} ({dataset.lines[item]}, box {box}): {type(error).__name__}: {error}")


def check_expw_dataset(name: str, root: str | Path, decode: bool = True) -> Any:
    """``affectlab data check expw``: faces per split (as the reader splits them) and emotion; every malformed
    line, missing or unreadable photograph and box outside its photograph is an error; the community layout
    goes through ``check_folder_dataset``."""
    from affectlab.data.check import CheckReport, check_folder_dataset

    module = ExpwDataModule(str(root), corrupt="skip")
    if expw_layout(root, "auto") == "folders":
        report = check_folder_dataset(name, root, decode)
        report.notes.append(f"read as the community folder-per-class layout (layout: folders), not {EXPW_LABELS}")
        return report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report lists what the setup warnings would
        module.setup()
    faces = module.faces
    counts = {split: [int((labels == c).sum()) for c in range(len(EMOTIONS))]
              for split, (_, _, labels, _, _) in module.splits.items()}
    report = CheckReport(name, counts, title="faces per split and emotion")
    report.errors += faces.problems
    photographs = {split: len(set(faces.photographs[ids].tolist())) for split, (_, _, _, ids, _) in module.splits.items()}
    report.notes.append("no official split: test and val held out per photograph (seeded, stratified); photographs "
                        "per split: " + ", ".join(f"{s} {n}" for s, n in photographs.items()))
    if faces.below_confidence:
        report.warnings.append(f"{faces.below_confidence} face(s) below min_confidence left out")
    check_faces(report, [module.dataset(split) for split in module.splits], decode, name)
    return report


SPEC = DatasetSpec(
    "expw", "ExpW in-the-wild photographs, several faces each cut at their boxes, 7 emotions (no official split)",
    "data/expw", LAYOUT, reader="affectlab.data.ExpwDataModule", check="affectlab.data.readers.expw.check_expw_dataset",
    export="affectlab.data.synth.export_expw.export_expw",
)
