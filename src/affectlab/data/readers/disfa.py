"""DISFA: 27 subjects filmed by two cameras while watching video clips, 12 action units coded per frame at
intensity 0-5.

As its authors distribute it (every paper's numbers come from this layout)::

    <root>/ActionUnit_Labels/SN001/SN001_au1.txt        one line per video frame: "<frame>,<intensity>", from 1
    <root>/ActionUnit_Labels/SN001/SN001_au2.txt        ... one file per AU: 1 2 4 5 6 9 12 15 17 20 25 26
    <root>/Videos_LeftCamera/LeftVideoSN001_comp.avi    4845 frames at 20 fps (as many as label lines)
    <root>/Videos_RightCamera/RightVideoSN001_comp.avi

Training reads face crops, extracted once from the videos by ``affectlab data prepare disfa --raw <root> --out
<out>`` (``data/store/disfa_prepare.py``: MTCNN and the aligned crop of ``predict``), which writes::

    <out>/ActionUnit_Labels/SN001/SN001_au<n>.txt       the label files, copied
    <out>/Frames_LeftCamera/SN001/000001.png            the crop of video frame 1 (label frame 1), 000002.png ...
    <out>/Frames_RightCamera/SN001/000001.png           with --cameras right|both

``layout``: ``auto`` (default) finds which layout ``root`` holds; ``authors`` is the one above (frames
``000001.png``, ``1.png`` or ``.jpg`` also read); ``csv`` is the community re-packaging seed 001 (FaceFlow)
trains from, one row per image: ``AU1,AU2,...,AU26,filename`` (intensities 0-5; ``filename`` relative to the
CSV's folder; the subject read from an ``SN\\d+`` part of the path). On the videos without frames, the reader
stops with the exact ``data prepare`` command to run.

Alignment: label line ``<n>,<v>`` belongs to video frame n (from 1), and the preparation names that frame's
crop ``<n:06d>.png``. The reader takes every frame listed in the subject's label files (all 12 files must list
the same frames, or it stops naming the two files and their counts), looks up the image of that number, and
reports per subject and camera the labelled frames that have none (``missing``: named with their frame
ranges in one warning, counted, left out and logged to the run as ``data/left_out/frame_without_image``; under
``corrupt: raise`` an error); images without a label line are not served. So a video shorter than its labels
(which ``data prepare`` reports with both counts) shows up here as its missing last frames.

``camera``: ``left`` (default; DISFA's AU codes were made on the left camera's video), ``right``, or ``both``:
every labelled frame is served once from each camera, two samples with the same labels (``domain`` 0 left, 1
right), so ``both`` doubles the data rather than stacking views; the split stays by subject, so the two views
of a frame are always in the same split.

Targets: ``au_intensity`` ``[12]`` (0-5) and ``au`` ``[12]`` (occurrence: intensity >= 2, FACS level B, the
usual DISFA cut). Only the AUs given in ``action_units`` are served, in DISFA order (seed 001 used 11, leaving
out AU25). Splits are subject-disjoint cross-validation folds (3 folds, DISFA's convention; ``data/splits.py``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.contract import ACTION_UNITS, AU_OCCURRENCE_THRESHOLD
from affectlab.data.images import load_image
from affectlab.data.spec import DatasetSpec
from affectlab.data.splits import cross_validation_split
from affectlab.errors import ConfigError, DataError

LABELS = "ActionUnit_Labels"
CAMERAS = ("left", "right")
FRAMES = {"left": "Frames_LeftCamera", "right": "Frames_RightCamera"}
VIDEOS = {"left": ("Videos_LeftCamera", "LeftVideo{}_comp.avi"), "right": ("Videos_RightCamera", "RightVideo{}_comp.avi")}
LAYOUTS = ("auto", "authors", "csv")
CAMERA_CHOICES = ("left", "right", "both")
_SUBJECT = re.compile(r"SN(\d+)")


def read_au_file(path: Path) -> dict[int, float]:
    """``frame -> intensity`` from one DISFA label file; a malformed line is a DataError naming file and line,
    a file that is not text one naming the file."""
    try:
        return _read_au_lines(path)
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text file of '<frame>,<intensity>' lines ({error.reason} at byte "
                        f"{error.start})") from None


def _read_au_lines(path: Path) -> dict[int, float]:
    values: dict[int, float] = {}
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",")
            try:
                if len(parts) != 2:
                    raise ValueError
                frame, intensity = int(parts[0]), float(parts[1])
            except ValueError:
                raise DataError(f"{path}, line {number}: {line!r} is not '<frame>,<intensity>'") from None
            if not 0 <= intensity <= 5:
                raise DataError(f"{path}, line {number}: intensity {parts[1]!r} is not a number from 0 to 5")
            if frame in values:
                raise DataError(f"{path}, line {number}: frame {frame} is labelled twice (also on an earlier line)")
            values[frame] = intensity
    return values


def read_subject_labels(subject_dir: Path, action_units: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """One subject's labelled frame numbers ``[F]`` (sorted) and intensities ``[F, A]``; every AU file must
    list the same frames (a truncated file would otherwise shorten the subject silently)."""
    per_au, first = [], None
    for au in action_units:
        path = subject_dir / f"{subject_dir.name}_au{au}.txt"
        if not path.is_file():
            raise DataError(f"disfa: {path} is missing; every subject needs one label file per AU")
        values = read_au_file(path)
        if first is None:
            first = (path, set(values))
        elif set(values) != first[1]:
            raise DataError(f"disfa: {path} labels {len(values)} frames, {first[0]} labels {len(first[1])} "
                            f"(frames {_ranges(sorted(set(values) ^ first[1]))} are in one only); DISFA's label "
                            "files list the same frames, one line per video frame")
        per_au.append(values)
    frames = np.asarray(sorted(per_au[0]), dtype=np.int64)
    intensity = np.asarray([[values[f] for values in per_au] for f in frames], dtype=np.float32).reshape(len(frames), -1)
    return frames, intensity


def label_subjects(root: Path) -> list[Path]:
    """The subject folders ``ActionUnit_Labels/SN###`` in order."""
    return sorted(p for p in (root / LABELS).iterdir() if p.is_dir() and _SUBJECT.fullmatch(p.name))


def video_path(root: Path, subject: str, camera: str) -> Path:
    folder, name = VIDEOS[camera]
    return root / folder / name.format(subject)


def _ranges(frames: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``: missing frames as a reader can grep them."""
    parts, start = [], None
    for i, frame in enumerate(frames):
        if start is None:
            start = frame
        if i + 1 == len(frames) or frames[i + 1] != frame + 1:
            parts.append(str(start) if start == frame else f"{start}-{frame}")
            start = None
    return ", ".join(parts[:8]) + (f" and {len(parts) - 8} more ranges" if len(parts) > 8 else "")


def prepared_root(root: Path) -> Path:
    """Where the prepare command the reader suggests writes the frames: beside the distributed copy."""
    root = Path(root)
    return root.parent / f"{root.name}_prepared"


def prepare_command(root: Path, cameras: tuple[str, ...] = ("left",)) -> str:
    flag = "" if cameras == ("left",) else f" --cameras {'both' if len(cameras) == 2 else cameras[0]}"
    return f"affectlab data prepare disfa --raw {root} --out {prepared_root(root)}{flag}"


def _views(camera: str) -> tuple[str, ...]:
    return CAMERAS if camera == "both" else (camera,)


def detect_layout(root: Path, layout: str, csv_file: str, camera: str) -> str:
    """``authors`` or ``csv``: the layout ``root`` holds (``layout`` ``auto``) or the one asked for, checked.
    DISFA as distributed (videos, no frames) is a DataError with the prepare command; a wrong layout's error
    names what was found, the tree expected and, for the community CSV, the option that reads it."""
    root = Path(root)
    views = _views(camera)
    has_labels = (root / LABELS).is_dir()
    frames = [c for c in views if (root / FRAMES[c]).is_dir()]
    videos = [c for c in CAMERAS if (root / VIDEOS[c][0]).is_dir()]
    has_csv = (root / csv_file).is_file()
    if layout in ("auto", "authors") and has_labels and frames:
        return "authors"
    if layout in ("auto", "authors") and has_labels and videos:
        wanted = tuple(c for c in views if c in videos) or views
        raise DataError(f"disfa: {root} holds DISFA as distributed ({', '.join(VIDEOS[c][0] for c in videos)}, no "
                        f"{' or '.join(FRAMES[c] for c in views)}); training reads the face crops of its frames, "
                        f"extracted once. Run\n    {prepare_command(root, wanted)}\nthen train with "
                        f"--data.init_args.root {prepared_root(root)}")
    if layout == "csv" and has_csv:
        return "csv"
    if layout == "auto" and has_csv:
        return "csv"
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:12] if root.is_dir() else []
    what = f"found {', '.join(found) or 'nothing'} in {root}" if root.is_dir() else f"{root} does not exist"
    if layout == "csv":
        hint = (f"; {root} holds DISFA's own layout instead: read it with --data.init_args.layout authors"
                if has_labels else "")
        raise DataError(f"disfa: no {root / csv_file} (the FaceFlow CSV: AU1,...,AU26,filename); {what}{hint}")
    hint = (f"; {root / csv_file} is the community CSV layout: read it with --data.init_args.layout csv"
            if has_csv else "")
    if has_labels:
        what = f"{root / LABELS} but no {' or '.join(FRAMES[c] for c in views)} and no videos"
    raise DataError(f"disfa: {root} is not DISFA's layout ({what}); expected, as distributed:\n{SPEC.tree(root)}{hint}")


@dataclass
class DisfaScan:
    """What a DISFA copy holds: one entry per served sample, and what the reader left out."""

    layout: str
    files: list[Path] = field(default_factory=list)
    intensity: list[list[float]] = field(default_factory=list)  # [N][A]
    subjects: list[int] = field(default_factory=list)
    cameras: list[int] = field(default_factory=list)  # 0 left, 1 right
    frames: list[int] = field(default_factory=list)  # the label frame number (CSV: the row's place in its subject)
    labelled: dict[str, int] = field(default_factory=dict)  # subject -> labelled frames
    missing: dict[str, list[int]] = field(default_factory=dict)  # "SN001 left" -> labelled frames without image
    absent: list[str] = field(default_factory=list)  # "SN002 right": a subject without a frames folder

    def arrays(self, action_units: int) -> tuple[np.ndarray, ...]:
        """intensity ``[N, A]``, subjects, cameras, frames ``[N]``."""
        return (np.asarray(self.intensity, np.float32).reshape(len(self.files), action_units),
                *(np.asarray(v, np.int64) for v in (self.subjects, self.cameras, self.frames)))

    def problems(self) -> list[str]:
        """One line per subject and camera with missing frames or none at all."""
        lines = [f"{view}: {len(frames)} of {self.labelled[view.split()[0]]} labelled frames have no image "
                 f"(frames {_ranges(frames)}), left out" for view, frames in self.missing.items() if frames]
        return lines + [f"{view}: no frames folder, left out" for view in self.absent]


def read_authors(root: Path, action_units: tuple[int, ...], camera: str = "left") -> DisfaScan:
    """DISFA's label files with the frames ``data prepare`` extracted (module docstring: how alignment is checked)."""
    scan = DisfaScan("authors")
    for subject_dir in label_subjects(root):
        subject = subject_dir.name
        frames, intensity = read_subject_labels(subject_dir, action_units)
        scan.labelled[subject] = len(frames)
        for view in _views(camera):
            folder = root / FRAMES[view] / subject
            if not folder.is_dir():
                scan.absent.append(f"{subject} {view}")
                continue
            missing = scan.missing.setdefault(f"{subject} {view}", [])
            for frame, values in zip(frames.tolist(), intensity):
                image = _frame_file(folder, frame)
                if image is None:
                    missing.append(frame)
                    continue
                scan.files.append(image)
                scan.intensity.append(values.tolist())
                scan.subjects.append(int(subject[2:]))
                scan.cameras.append(CAMERAS.index(view))
                scan.frames.append(frame)
    if not scan.files:
        raise DataError(f"disfa: no labelled frame under {root} has an image in "
                        f"{' or '.join(FRAMES[v] for v in _views(camera))}/SN###/<frame>.png "
                        f"({'; '.join(scan.problems()[:3]) or 'no subject in ' + str(root / LABELS)})")
    return scan


def _frame_file(folder: Path, frame: int) -> Path | None:
    for stem in (f"{frame:06d}", f"{frame:05d}", f"{frame:04d}", str(frame)):
        for extension in (".png", ".jpg", ".jpeg"):
            path = folder / f"{stem}{extension}"
            if path.is_file():
                return path
    return None


def read_flat_csv(path: Path, action_units: tuple[int, ...]) -> DisfaScan:
    """Seed 001's ``AU1,...,filename`` table; every row's values checked, errors name the line."""
    if not path.is_file():
        raise DataError(f"disfa: {path} is not a file; expected a CSV with columns AU1,AU2,...,filename")
    scan = DisfaScan("csv")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [f"AU{au}" for au in action_units]
        absent = [c for c in [*columns, "filename"] if c not in (reader.fieldnames or [])]
        if absent:
            raise DataError(f"{path}: no column(s) {absent}; the header is {reader.fieldnames}")
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
            subject = f"SN{int(match.group(1)):03d}"
            scan.labelled[subject] = position = scan.labelled.get(subject, 0) + 1
            image = path.parent / row["filename"]
            if not image.is_file():
                scan.missing.setdefault(f"{subject} csv", []).append(position)
                continue
            scan.files.append(image)
            scan.intensity.append(values)
            scan.subjects.append(int(match.group(1)))
            scan.cameras.append(0)
            scan.frames.append(position)
    if not scan.files:
        raise DataError(f"disfa: no rows of {path} point to an existing image")
    return scan


def scan_disfa(root: Path, layout: str, csv_file: str, action_units: tuple[int, ...], camera: str) -> DisfaScan:
    root = Path(root)
    if detect_layout(root, layout, csv_file, camera) == "csv":
        return read_flat_csv(root / csv_file, action_units)
    return read_authors(root, action_units, camera)


class DisfaFrames(Dataset):
    def __init__(self, files: list[Path], intensity: np.ndarray, subjects: np.ndarray, ids: np.ndarray,
                 image_size: int, corrupt: str, cameras: np.ndarray | None = None) -> None:
        self.files, self.intensity, self.subjects, self.ids = files, intensity, subjects, ids
        self.image_size, self.corrupt = image_size, corrupt
        self.cameras = np.zeros(len(files), np.int64) if cameras is None else cameras

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
            "domain": torch.tensor(int(self.cameras[item])),
        }


class DisfaDataModule(BaseDataModule):
    """DISFA frames with per-frame AU intensities (see the module docstring for the layouts).

    Args:
        root: the prepared DISFA folder (``authors``), or the folder of the CSV.
        layout: ``auto`` (found from the files), ``authors`` or ``csv`` (``native``: the old name of ``authors``).
        csv_file: the CSV's name under ``root`` (``csv`` layout).
        camera: ``left``, ``right`` or ``both`` (each frame served from both cameras, two samples).
        action_units: which AUs to serve, a subset of the 12 in DISFA order.
        frame_stride: keep the labelled frames 1, 1 + n, 1 + 2n, ... (DISFA's neighbouring frames are near
            duplicates); the same frames from both cameras.
        split: ``kfold`` (subject-disjoint) or ``loso``; ``fold`` and ``num_folds`` pick the test fold.
        image_size: frames are resized to this square size.
        corrupt: ``skip`` unreadable frames (named, counted) or ``raise``.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
    """

    def __init__(
        self,
        root: str,
        layout: str = "auto",
        csv_file: str = "disfa.csv",
        camera: str = "left",
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
        max_unreadable_fraction: float | None = None,
    ) -> None:
        layout = "authors" if layout == "native" else layout
        if layout not in LAYOUTS:
            raise ConfigError(f"data.init_args.layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
        if camera not in CAMERA_CHOICES:
            raise ConfigError(f"data.init_args.camera: {camera!r} is not one of {', '.join(CAMERA_CHOICES)}")
        self.action_units = tuple(action_units or ACTION_UNITS)
        unknown = [au for au in self.action_units if au not in ACTION_UNITS]
        if unknown:
            raise ConfigError(f"data.init_args.action_units: {unknown} are not DISFA AUs {list(ACTION_UNITS)}")
        if split not in ("kfold", "loso"):
            raise ConfigError(f"data.init_args.split: {split!r}; DISFA is split by subject: 'kfold' or 'loso'")
        if frame_stride < 1:
            raise ConfigError(f"data.init_args.frame_stride: {frame_stride} must be 1 or more")
        self.root, self.layout, self.csv_file, self.camera = Path(root), layout, csv_file, camera
        self.frame_stride = frame_stride
        self.split, self.fold, self.num_folds, self.split_seed = split, fold, num_folds, split_seed
        super().__init__(batch_size, num_workers, modalities=("video",), tasks=("au", "au_intensity"),
                         class_names={"au": tuple(f"AU{au}" for au in self.action_units)}, corrupt=corrupt,
                         name="disfa", max_unreadable_fraction=max_unreadable_fraction)
        self.image_size = image_size
        self.data: tuple[list[Path], np.ndarray, np.ndarray] | None = None
        self.scan: DisfaScan | None = None
        self.sample_cameras = self.sample_frames = np.zeros(0, np.int64)
        self.splits: dict[str, np.ndarray] = {}
        self.missing_images = 0

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        self.scan = scan = scan_disfa(self.root, self.layout, self.csv_file, self.action_units, self.camera)
        self.missing_images = sum(len(frames) for frames in scan.missing.values())
        self.skips.add("frame_without_image", scan.problems(), "subject camera(s) with labelled frames but no image",
                       f"extract them again ({prepare_command(self.root, _views(self.camera))}) or check the videos' "
                       "frame counts against the label files",
                       count=self.missing_images + sum(scan.labelled[view.split()[0]] for view in scan.absent))
        intensity, subjects, cameras, frames = scan.arrays(len(self.action_units))
        keep = np.flatnonzero((frames - 1) % self.frame_stride == 0)
        self.data = ([scan.files[i] for i in keep], intensity[keep], subjects[keep])
        self.sample_cameras, self.sample_frames = cameras[keep], frames[keep]  # per served sample
        try:
            self.splits = self.fold_split(self.fold)
        except DataError as error:
            raise ConfigError(f"data.init_args.split/fold: {error}") from None

    fold_kinds = ("kfold", "loso")

    def fold_samples(self) -> tuple[np.ndarray, None]:
        """Per served frame its subject; DISFA is one corpus, so there is nothing to leave out but subjects."""
        self.setup()
        return self.data[2], None

    def fold_split(self, fold: int) -> dict[str, np.ndarray]:
        return cross_validation_split(self.fold_samples()[0], self.split, fold, self.num_folds, seed=self.split_seed)

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
                           self.corrupt, self.sample_cameras[index])


def check_disfa_dataset(name: str, root: str, decode: bool = True) -> Any:
    """``affectlab data check disfa``: on DISFA as distributed (videos, no frames), per subject its label lines
    and each video's frame count (the container's, not decoded), mismatches as warnings, and the prepare
    command as the error; on the prepared (or CSV) layout, per subject its labelled frames and the images found
    per camera, missing images (warnings: the reader leaves them out), AU base rates, the folds' test subjects,
    and every image decoded (``decode``; unreadable: an error). A malformed label file stops with its file and
    line (exit status 2)."""
    from rich.progress import track

    from affectlab.data.check import CheckReport
    from affectlab.data.media.video import VideoDecodeError, probe
    from affectlab.data.splits import cross_validation_split

    root_path = Path(root)
    views = tuple(c for c in CAMERAS if (root_path / FRAMES[c]).is_dir()) or ("left",)
    camera = "both" if len(views) == 2 else views[0]
    try:
        layout = detect_layout(root_path, "auto", "disfa.csv", camera)
    except DataError as error:
        if not (root_path / LABELS).is_dir() or "as distributed" not in str(error):
            raise
        counts, report = {}, CheckReport(name, {}, columns=("label lines", "left video frames", "right video frames"),
                                         title="DISFA as distributed, per subject", total=False)
        for subject_dir in label_subjects(root_path):
            labelled = len(read_subject_labels(subject_dir, ACTION_UNITS)[0])
            row = [labelled]
            for view in CAMERAS:
                path = video_path(root_path, subject_dir.name, view)
                try:
                    declared = probe(path).declared_frames if path.is_file() else 0
                except VideoDecodeError as problem:
                    report.warnings.append(f"{subject_dir.name} {view}: unreadable video ({problem})")
                    declared = 0
                if path.is_file() and declared and declared != labelled:
                    report.warnings.append(f"{subject_dir.name} {view}: {path.name} declares {declared} frames, its "
                                           f"labels {labelled}; data prepare keeps the common first {min(declared, labelled)}")
                row.append(declared)
            counts[subject_dir.name] = row
        report.counts = counts
        report.errors.append(f"not prepared: {error}")
        report.identities = f"none: DISFA is split by subject ({len(counts)} subjects)"
        return report
    module = DisfaDataModule(str(root_path), layout=layout, camera=camera)
    module.setup()
    scan = module.scan
    intensity, subjects, cameras, _ = scan.arrays(len(ACTION_UNITS))
    columns = ("labelled frames", *(f"{v} images" for v in views)) if layout == "authors" else ("rows", "images")
    counts = {}
    for subject, labelled in scan.labelled.items():
        number = int(subject[2:])
        images = [int(((subjects == number) & (cameras == CAMERAS.index(v))).sum()) for v in views]
        counts[subject] = [labelled, *(images if layout == "authors" else [int((subjects == number).sum())])]
    report = CheckReport(name, counts, columns=columns, title=f"{'frames' if layout == 'authors' else 'CSV rows'} "
                         "per subject", total=False)
    report.warnings += scan.problems()
    labels = intensity[cameras == cameras.min()] if len(intensity) else intensity  # one camera: each frame once
    rates = (labels >= AU_OCCURRENCE_THRESHOLD).mean(axis=0) if len(labels) else np.zeros(len(ACTION_UNITS))
    report.notes.append("AU base rates (intensity >= 2, served frames): "
                        + ", ".join(f"AU{au} {100 * r:.1f}%" for au, r in zip(ACTION_UNITS, rates)))
    for fold in range(module.num_folds):
        try:
            test = cross_validation_split(subjects, "kfold", fold, module.num_folds, seed=module.split_seed)["test"]
        except DataError as error:
            report.warnings.append(f"folds: {error}")
            break
        report.notes.append(f"fold {fold} tests on " + ", ".join(f"SN{s:03d}" for s in np.unique(subjects[test])))
    report.identities = f"none: the {module.num_folds} folds are subject-disjoint ({len(scan.labelled)} subjects)"
    if decode:
        for path in track(scan.files, description=f"decoding {name}", transient=True):
            try:
                load_image(path, 8)
            except Exception as error:  # noqa: BLE001  (PIL raises many types for bad files)
                report.errors.append(f"{path}: unreadable ({type(error).__name__}: {error})")
    return report


SPEC = DatasetSpec(
    "disfa", "DISFA: 27 subjects, 12 AU intensities (0-5) per frame, two cameras", "data/disfa",
    "ActionUnit_Labels/SN001/SN001_au1.txt ... SN001_au26.txt  (<frame>,<intensity>, frames from 1)\n"
    "Videos_LeftCamera/LeftVideoSN001_comp.avi  (and Videos_RightCamera/RightVideoSN001_comp.avi)\n"
    "Frames_LeftCamera/SN001/000001.png  (written from the videos by affectlab data prepare disfa)\n"
    "disfa.csv  (or instead the community CSV: AU1,...,AU26,filename; --data.init_args.layout csv)",
    reader="affectlab.data.DisfaDataModule", check="affectlab.data.readers.disfa.check_disfa_dataset",
    prepare="affectlab.data.store.disfa_prepare.prepare_disfa",
    export="affectlab.data.synth.export_disfa.export_disfa", export_styles=("shaded",), subjects="disjoint",
)
