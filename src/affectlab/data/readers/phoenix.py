"""RWTH-PHOENIX-Weather 2014T with ``.pose`` files: ``--data phoenix``, ``affectlab data check phoenix``.

PHOENIX-2014T ships frames, not poses: the poses are the user's own (``affectlab pose estimate``, or seed
003's MediaPipe pipeline), one ``.pose`` file per sentence. Two annotation layouts are read (``annotations``):

``corpus``: the release's ``|``-separated CSVs, ``name|video|start|end|speaker|orth|translation``::

    <root>/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv   (or under <root>/PHOENIX-2014-T/)
    <root>/<pose_dir>/{train,dev,test}/<name>.pose                       (or <root>/<pose_dir>/<name>.pose)

``tsv``: multimodalhugs' TSVs, ``signal, signal_start, signal_end, encoder_prompt, decoder_prompt, output``::

    <root>/<tsv_dir>/{train,dev,test}.tsv   (signal: a .pose path, absolute, or relative to <root> or the TSV's
                                             folder; signal_start/signal_end in milliseconds, 0/0 = whole file)

``auto`` takes the corpus CSVs when they are there, else the TSVs. ``dev`` is the val split. ``speaker`` gives
the signers, served as identities (``subject``; the official splits share them); a TSV row takes its signer
and glosses from the corpus CSVs when a row there has its file's name, else signer ``unknown`` and no glosses.
``translation`` (or ``output``) is the target, served untokenised; ``orth`` the glosses.

Poses are preprocessed by ``data/pose.py`` (pose-format's own operations, each an option); a file from another
estimator, or with only some components, is served with what it lacks masked. A row whose ``.pose`` file is
missing is left out by the listing's policy (``unreadable.SkippedSamples``: ``corrupt: raise`` stops,
``skip`` warns and counts); an unreadable file is skipped at load and counted (``UnreadableFiles``).
Sequences longer than ``max_frames`` keep their first ``max_frames`` frames (a log line at the first one).
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.pose import (CHANNELS, PoseOptions, collate_pose, components, holistic_layout, layout_of,
                                 pose_arrays, pose_sample, preprocess, read_pose)
from affectlab.data.spec import DatasetSpec
from affectlab.data.splits import SPLITS
from affectlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PHOENIX_SPLIT = {"train": "train", "val": "dev", "test": "test"}  # our split -> PHOENIX's
CORPUS_COLUMNS = ("name", "video", "start", "end", "speaker", "orth", "translation")
TSV_COLUMNS = ("signal", "signal_start", "signal_end", "encoder_prompt", "decoder_prompt", "output")
ANNOTATIONS = ("auto", "corpus", "tsv")
CORPUS_DIRS = ("annotations/manual", "PHOENIX-2014-T/annotations/manual")


@dataclass
class PhoenixRow:
    """One sentence: where its pose is, its time window (ms; 0/0 whole), signer, glosses and translation."""

    name: str
    split: str
    pose: Path
    start: int
    end: int
    speaker: str
    gloss: str
    translation: str
    line: str  # file:line, for messages
    index: int = -1  # position among the rows with a pose file (the sample's ``id``)


@dataclass
class PhoenixListing:
    rows: list[PhoenixRow]
    annotations: str  # corpus or tsv
    missing: list[PhoenixRow] = field(default_factory=list)


def _corpus_dir(root: Path) -> Path | None:
    return next((root / d for d in CORPUS_DIRS if (root / d / "PHOENIX-2014-T.train.corpus.csv").is_file()), None)


def _read_csv(path: Path, delimiter: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:len(columns)]] != list(columns):
                raise DataError(f"{path}: header {header} is not {delimiter.join(columns)!r}")
            rows = []
            for number, fields in enumerate(reader, start=2):
                if not fields or not "".join(fields).strip():
                    continue
                if len(fields) != len(header):
                    raise DataError(f"{path}:{number}: {len(fields)} fields, the header has {len(header)} "
                                    f"({delimiter.join(columns)})")
                rows.append((number, dict(zip(header, fields))))
            return rows
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error})") from None
    except UnicodeDecodeError as error:  # the corpus files are UTF-8 (umlauts in the German sentences)
        raise DataError(f"{path}: byte {error.start} is not UTF-8; the file is damaged or in another encoding "
                        "(re-save it as UTF-8, or fetch it again)") from None


def _pose_path(root: Path, pose_dir: str, split: str, name: str) -> Path:
    base = Path(pose_dir) if Path(pose_dir).is_absolute() else root / pose_dir
    nested = base / split / f"{name}.pose"
    return nested if nested.is_file() else base / f"{name}.pose" if (base / f"{name}.pose").is_file() else nested


def _tsv_file(folder: Path, split: str) -> Path | None:
    names = (f"{split}.tsv", "validation.tsv", "val.tsv") if split == "dev" else (f"{split}.tsv",)
    return next((folder / n for n in names if (folder / n).is_file()), None)


def scan(root: str | Path, annotations: str = "auto", pose_dir: str = "poses",
         tsv_dir: str = "multimodalhugs") -> PhoenixListing:
    """Every row of every split, its pose file resolved (module docstring); rows whose file is missing apart."""
    root = Path(root)
    if annotations not in ANNOTATIONS:
        raise ConfigError(f"data.init_args.annotations: {annotations!r} is not one of {list(ANNOTATIONS)}")
    if not root.is_dir():
        raise DataError(f"phoenix: {root} is not a folder; expected\n{SPEC.tree(root)}")
    corpus = _corpus_dir(root)
    tsv_folder = Path(tsv_dir) if Path(tsv_dir).is_absolute() else root / tsv_dir
    if annotations == "auto":
        annotations = "corpus" if corpus is not None else "tsv" if _tsv_file(tsv_folder, "train") else ""
        if not annotations:
            raise DataError(f"phoenix: neither the corpus CSVs nor multimodalhugs TSVs under {root}; expected\n"
                            f"{SPEC.tree(root)}")
    known: dict[str, dict[str, str]] = {}  # name -> corpus row (TSV rows take speaker and glosses from it)
    if corpus is not None:
        for split in PHOENIX_SPLIT.values():
            path = corpus / f"PHOENIX-2014-T.{split}.corpus.csv"
            if path.is_file():
                known.update({row["name"]: row for _, row in _read_csv(path, "|", CORPUS_COLUMNS)})
    rows: list[PhoenixRow] = []
    for ours, split in PHOENIX_SPLIT.items():
        if annotations == "corpus":
            if corpus is None:
                raise DataError(f"phoenix: no {CORPUS_DIRS[0]}/PHOENIX-2014-T.train.corpus.csv under {root}")
            path = corpus / f"PHOENIX-2014-T.{split}.corpus.csv"
            if not path.is_file():
                raise DataError(f"phoenix: {path} is missing (the {split} split's corpus CSV)")
            for number, row in _read_csv(path, "|", CORPUS_COLUMNS):
                rows.append(PhoenixRow(row["name"], ours, _pose_path(root, pose_dir, split, row["name"]), 0, 0,
                                       row["speaker"], row["orth"].strip(), row["translation"].strip(),
                                       f"{path}:{number}"))
        else:
            path = _tsv_file(tsv_folder, split)
            if path is None:
                raise DataError(f"phoenix: {tsv_folder}/{split}.tsv is missing (the {split} split's TSV)")
            for number, row in _read_csv(path, "\t", TSV_COLUMNS):
                signal = Path(row["signal"])
                if not signal.is_absolute():
                    signal = root / signal if (root / signal).is_file() else path.parent / signal
                try:
                    start, end = int(float(row["signal_start"] or 0)), int(float(row["signal_end"] or 0))
                except ValueError:
                    raise DataError(f"{path}:{number}: signal_start/signal_end {row['signal_start']!r}/"
                                    f"{row['signal_end']!r} are not milliseconds") from None
                if end and end <= start:
                    raise DataError(f"{path}:{number}: signal_end {end} is not after signal_start {start} (0/0 is the "
                                    "whole file)")
                match = known.get(signal.stem, {})
                rows.append(PhoenixRow(signal.stem, ours, signal, start, end, match.get("speaker", "unknown"),
                                       match.get("orth", "").strip(), row["output"].strip(), f"{path}:{number}"))
    present = [r for r in rows if r.pose.is_file()]
    for index, row in enumerate(present):
        row.index = index
    return PhoenixListing(present, annotations, [r for r in rows if not r.pose.is_file()])


class PhoenixDataset(Dataset):
    """The rows of one split, each pose read and preprocessed on load (``{"skipped": path}`` when unreadable)."""

    def __init__(self, module: PhoenixDataModule, rows: list[PhoenixRow]) -> None:
        self.module, self.rows = module, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int) -> dict[str, Any]:
        row = self.rows[item]
        try:
            arrays = self.module.load(row)
        except DataError as error:
            if self.module.corrupt == "raise":
                raise
            return {"skipped": f"{row.pose} ({error})"}
        return pose_sample(arrays.data, arrays.frame_mask, arrays.points_mask, row.translation, row.gloss,
                           self.module.signer_ids[row.speaker], row.index)


class PhoenixDataModule(BaseDataModule):
    """PHOENIX-2014T's sentences as poses (module docstring), in the pose-translation contract.

    Args:
        root: the data set's folder.
        annotations: ``auto``, ``corpus`` (the release's CSVs) or ``tsv`` (multimodalhugs' TSVs).
        pose_dir: the folder of the ``.pose`` files (relative to ``root``, or absolute).
        tsv_dir: the folder of the TSVs (relative to ``root``, or absolute).
        max_frames: frames per sequence at most (the first ones are kept; 300 as seed 003).
        hide_legs, reduce_holistic, normalize: pose-format's preprocessing operations (``data/pose.py``).
        keypoints: ``holistic`` (reduced MediaPipe Holistic, what a file lacks masked) or ``file`` (the first
            train file's own keypoints after preprocessing).
        corrupt: ``skip`` or ``raise`` missing and unreadable poses.
        max_unreadable_fraction: see ``BaseDataModule``.
        batch_size, num_workers: the loaders'.
    """

    modalities = ("pose",)
    tasks = ("translation",)
    class_names: dict[str, tuple[str, ...]] = {}
    num_channels = CHANNELS

    def __init__(self, root: str = "data/phoenix", annotations: str = "auto", pose_dir: str = "poses",
                 tsv_dir: str = "multimodalhugs", max_frames: int = 300, hide_legs: bool = True,
                 reduce_holistic: bool = True, normalize: bool = True, keypoints: str = "holistic",
                 corrupt: str = "skip", max_unreadable_fraction: float | None = None, batch_size: int = 8,
                 num_workers: int = 0) -> None:
        super().__init__(batch_size, num_workers, corrupt=corrupt, name="phoenix", kind="pose file",
                         max_unreadable_fraction=max_unreadable_fraction)
        if annotations not in ANNOTATIONS:
            raise ConfigError(f"data.init_args.annotations: {annotations!r} is not one of {list(ANNOTATIONS)}")
        if max_frames < 1:
            raise ConfigError(f"data.init_args.max_frames: {max_frames}; at least 1")
        self.root, self.annotations, self.pose_dir, self.tsv_dir = Path(root), annotations, pose_dir, tsv_dir
        self.max_frames = max_frames
        self.options = PoseOptions(hide_legs, reduce_holistic, normalize, keypoints)
        self.listing: PhoenixListing | None = None
        self.layout: list[tuple[str, str]] | None = None
        self.cut = 0  # sequences cut to max_frames so far

    def setup(self, stage: str | None = None) -> None:
        if self.listing is not None:
            return
        listing = scan(self.root, self.annotations, self.pose_dir, self.tsv_dir)
        self.skips.add("missing_pose", [f"{r.pose} ({r.line})" for r in listing.missing], "rows whose .pose file is missing",
                       "write them with affectlab pose estimate, or point data.init_args.pose_dir at them")
        self.listing = listing
        self.signers = sorted({r.speaker for r in listing.rows})
        self.signer_ids = {name: i for i, name in enumerate(self.signers)}
        if self.options.layout == "holistic":
            self.layout = holistic_layout(self.options)
        else:
            first = next((r for r in listing.rows if r.split == "train"), None)
            if first is None:
                raise DataError(f"phoenix: no train row with a .pose file under {self.root}")
            done, _ = preprocess(read_pose(first.pose), self.options)
            self.layout = layout_of(done.header)

    def rows(self, split: str) -> list[PhoenixRow]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.setup()
        return [r for r in self.listing.rows if r.split == split]

    def load(self, row: PhoenixRow) -> Any:
        """``row``'s preprocessed pose, cut to ``max_frames`` (DataError when its file cannot be read)."""
        arrays = pose_arrays(read_pose(row.pose, row.start, row.end), self.options, self.layout)
        if len(arrays.data) > self.max_frames:
            if not self.cut:
                log.warning("phoenix: %s has %d frames; sequences longer than max_frames=%d are cut to their first "
                            "%d (affectlab data check phoenix counts them)", row.name, len(arrays.data),
                            self.max_frames, self.max_frames)
            self.cut += 1
            arrays.data, arrays.frame_mask = arrays.data[:self.max_frames], arrays.frame_mask[:self.max_frames]
            arrays.points_mask = arrays.points_mask[:self.max_frames]
        if not arrays.frame_mask.any():
            raise DataError(f"{row.pose}: no keypoint in any frame")
        return arrays

    @property
    def num_keypoints(self) -> int:
        self.setup()
        return len(self.layout)

    @property
    def frame_size(self) -> int:
        """Values per frame once flattened (``K x C``: 534 for reduced holistic), the mapper's input width."""
        return self.num_keypoints * CHANNELS

    def dataset(self, split: str) -> PhoenixDataset:
        return PhoenixDataset(self, self.rows(split))

    def sentences(self, split: str) -> list[str]:
        """The translations of ``split``'s rows that have a pose (the tokenizer trains on ``train``'s)."""
        return [r.translation for r in self.rows(split)]

    def collate(self) -> Any:
        return collate_pose


def _frames_of(path: Path, start: int, end: int, decode: bool) -> tuple[dict[str, int], int, list[str], Any]:
    """A pose file's components, frames, preprocessing notes and its read ``Pose`` (None with ``decode`` off:
    only the header and the frame count are read)."""
    if decode:
        pose = read_pose(path, start, end)
        arrays = pose_arrays(pose, PoseOptions())
        return arrays.components, len(arrays.data), arrays.notes, pose
    from pose_format.pose_header import PoseHeader
    from pose_format.utils.reader import BufferReader, ConstStructs

    try:
        reader = BufferReader(path.read_bytes())
        header = PoseHeader.read(reader)
        if header.version < 0.2:
            raise ValueError(f"version {header.version}: its frame count needs a full read (drop --quick)")
        reader.unpack(ConstStructs.float)  # fps
        frames = int(reader.unpack(ConstStructs.uint))
    except Exception as error:  # struct.error and friends on a foreign or truncated file
        raise DataError(f"{path}: not a readable .pose file ({type(error).__name__}: {error})") from None
    return components(header), frames, [], None


def check_phoenix(name: str, root: str, decode: bool = True) -> Any:
    """Rows, frames, glosses and tokens per split, missing and unreadable poses, and each file's components."""
    from rich.progress import track

    from affectlab.data.check import CheckReport

    listing = scan(root)  # a missing root or CSV, a malformed row: DataError (exit status 2)
    columns = ("rows", "frames", "glosses", "tokens", "missing", "unreadable")
    counts = {split: [0] * len(columns) for split in SPLITS}  # shown under PHOENIX's names (dev = val)
    report = CheckReport(name, {}, columns=columns, title=f"per split ({listing.annotations} layout)", total=False)
    signatures: dict[tuple, list[str]] = {}
    over, notes = 0, Counter()
    vocab = {split: (set(), set()) for split in SPLITS}
    for row in listing.missing:
        counts[row.split][4] += 1
    for row in track(listing.rows, description=f"{'reading' if decode else 'opening'} {name}", transient=True):
        c = counts[row.split]
        c[0] += 1
        c[2] += len(row.gloss.split())
        c[3] += len(row.translation.split())
        vocab[row.split][0].update(row.gloss.split())
        vocab[row.split][1].update(row.translation.split())
        try:
            found, frames, file_notes, _ = _frames_of(row.pose, row.start, row.end, decode)
        except DataError as error:
            c[5] += 1
            report.errors.append(f"unreadable: {error} ({row.line})")
            continue
        c[1] += frames
        over += frames > 300
        notes.update(file_notes)
        signatures.setdefault(tuple(found.items()), []).append(row.pose.name)
    for signature, files in sorted(signatures.items(), key=lambda item: -len(item[1])):
        parts = ", ".join(f"{c} ({n})" for c, n in signature)
        shown = ", ".join(files[:3]) + (" ..." if len(files) > 3 else "")
        report.notes.append(f"components {parts}: {len(files)} file(s) ({shown})")
    report.counts = {PHOENIX_SPLIT[split]: counts[split] for split in SPLITS}
    for split in SPLITS:
        report.notes.append(f"{PHOENIX_SPLIT[split]}: {len(vocab[split][0])} distinct glosses, "
                            f"{len(vocab[split][1])} distinct tokens")
    if over:
        report.notes.append(f"{over} sequence(s) longer than 300 frames (max_frames' default): cut to their first 300")
    for note, n in notes.items():
        report.warnings.append(f"{n} file(s): {note}")
    if listing.missing:
        shown = ", ".join(str(r.pose) for r in listing.missing[:10])
        report.warnings.append(f"{len(listing.missing)} row(s) without their .pose file, left out by the reader: {shown}"
                               f"{' ...' if len(listing.missing) > 10 else ''}")
    if all(r.gloss == "" for r in listing.rows):
        report.warnings.append("no glosses (multimodalhugs TSVs without the corpus CSVs beside them)")
    speakers = {split: {r.speaker for r in listing.rows if r.split == split} for split in SPLITS}
    shared = sorted(speakers["train"] & (speakers["val"] | speakers["test"]))
    report.identities = (f"signers in more than one split (PHOENIX's official splits share them): {', '.join(shared)}"
                         if shared else f"none ({len(set().union(*speakers.values()))} signers)")
    for split in SPLITS:
        if not counts[split][0]:
            report.errors.append(f"split {split!r} ({PHOENIX_SPLIT[split]}) has no row with a readable .pose file")
    return report


SPEC = DatasetSpec(
    "phoenix", "RWTH-PHOENIX-Weather 2014T sentences as .pose files (German sign language to German text)",
    "data/phoenix",
    "\n".join([*(f"annotations/manual/PHOENIX-2014-T.{s}.corpus.csv" for s in PHOENIX_SPLIT.values()),
               "poses/{train,dev,test}/<name>.pose",
               "or multimodalhugs/{train,dev,test}.tsv (signal, signal_start, signal_end, encoder_prompt, "
               "decoder_prompt, output)"]),
    reader="affectlab.data.PhoenixDataModule", check="affectlab.data.readers.phoenix.check_phoenix",
    export="affectlab.data.synth.export_sign.export_sign", subjects="shared",
)
