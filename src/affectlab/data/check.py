"""``affectlab data check NAME --root DIR``: validate a data set on disk before hours of training on it.

Reports counts per split and class, unreadable files (every image is decoded), class folders the layout
does not know, stray files, classes left out by the label mapping, and whether identities overlap between
splits (when the data set has identities). Exit status 1 when any hard error is found (an empty split, an
unknown class folder, an unreadable file), 0 otherwise; a missing root or split folder is a data error (2).
The video data sets (MELD, CAER, VoxCeleb2) are listed as their readers list them and every clip is decoded
(``--quick``: only opened): counts per split and class (VoxCeleb2: clips, speakers and videos), every malformed
CSV row with its file and line, unknown class folders, unreadable or truncated clips (all errors: exit 1),
clips the CSV lists that are missing (left out by the reader: warnings), and speakers shared between splits
(MELD's official splits share them: a warning; VoxCeleb2's dev and test must not: an error). A missing root,
CSV file or split folder is a data error (2).
AFE is listed as its reader lists it (a malformed CSV line stops with its file and line: exit status 2); counts
per official split and emotion follow, and every listed image is decoded and cropped at its box (``--quick``:
opened, its box checked against its size): a missing or unreadable image, or a box outside it, is an error.
DISFA's check is its reader's (``readers/disfa.py: check_disfa_dataset``: frames per subject, AU base rates;
on the bare videos, the prepare command).
Modalities: for MELD and CAER, how many clips have each modality the reader serves (video: decodable; audio:
an audio stream with decodable samples, ``--quick``: a stream; text: an utterance with at least one word) and
how many lack it (a missing modality is a warning, not an error: the reader serves it masked), with the first
clips lacking each; for MOSEI, per computational sequence, how many labelled segments have feature rows that
overlap them and how many have none (their video absent from the ``.csd``, or no row in the segment's span).
The other readers (MOSEI, OpenFace, py-feat) are opened in full, which checks every label file
and row: a malformed one stops with its file and line (exit status 2); counts per split and class follow, and
what the reader leaves out (label rows naming no table, tables without a tracked face) as warnings. MMSA's
check is its reader's (``readers/mmsa.py: check_mmsa_dataset``): every label and shape problem, each an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from affectlab.data.contract import EMOTIONS
from affectlab.errors import DataError


@dataclass
class CheckReport:
    name: str
    counts: dict[str, list[int]]  # split -> one count per column (images per canonical emotion by default)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    identities: str = "not available: the data set has no subject ids"
    columns: tuple[str, ...] = EMOTIONS  # what each count counts
    title: str = "images per split and emotion"
    total: bool = True  # the columns are classes: add their sum
    notes: list[str] = field(default_factory=list)  # lines printed under the table
    modalities: dict[str, list[int]] = field(default_factory=dict)  # modality -> [samples with it, without it]
    lacking: dict[str, list[str]] = field(default_factory=dict)  # modality -> the samples without it (names)


def modality_lines(counts: dict[str, list[int]], lacking: dict[str, list[str]], unit: str = "clips") -> list[str]:
    """One line per modality: how many samples have it, how many lack it, and the first few that do."""
    lines = []
    for modality, (present, absent) in counts.items():
        line = f"modality {modality}: {present} {unit} have it, {absent} lack it"
        names = lacking.get(modality, [])
        if names:
            line += f" ({', '.join(names[:5])}{' and more' if len(names) > 5 else ''})"
        lines.append(line)
    return lines


def check_folder_dataset(name: str, root: str | Path, decode: bool = True) -> CheckReport:
    from affectlab.data.images import load_image
    from affectlab.data.readers.folders import FOLDER_LAYOUTS, scan

    layout = FOLDER_LAYOUTS[name]
    found = scan(layout, root)
    counts = {split: [int((labels == c).sum()) for c in range(len(EMOTIONS))] for split, labels in found.labels.items()}
    report = CheckReport(name, counts)
    for split, files in found.files.items():
        if not files:
            report.errors.append(f"split {split!r} ({Path(root) / layout.splits[split]}) holds no images")
    for folder in found.unknown_folders:
        report.errors.append(f"{folder}: not a class folder of {name} (expected one of {', '.join(layout.classes)})")
    for path in found.other_files[:20]:
        report.warnings.append(f"{path}: not an image file, ignored")
    for folder, count in sorted(found.left_out.items()):
        report.warnings.append(f"class folder {folder!r}: {count} images left out (not one of the seven basic emotions)")
    if decode:
        files = [p for split in found.files.values() for p in split]
        for path in track(files, description=f"decoding {name}", transient=True):
            try:
                load_image(path, 8)
            except Exception as error:  # noqa: BLE001  (PIL raises many types for bad files)
                report.errors.append(f"{path}: unreadable ({type(error).__name__}: {error})")
    return report


def check_afe_dataset(root: str | Path, decode: bool = True, name: str = "afe") -> CheckReport:
    from PIL import Image

    from affectlab.data.readers.afe import face_region, load_face, scan

    found = scan(root)  # a missing file or folder, or a malformed line: DataError (exit status 2)
    counts = {split: [int((faces.labels == c).sum()) for c in range(len(EMOTIONS))] for split, faces in found.items()}
    report = CheckReport(name, counts, title="faces per split and emotion")
    faces = [(path, tuple(map(int, box)), line) for split in found.values()
             for path, box, line in zip(split.files, split.boxes, split.lines)]
    for path, box, line in track(faces, description=f"{'decoding' if decode else 'opening'} {name}", transient=True):
        try:
            if decode:
                load_face(path, box, 8)
            else:
                with Image.open(path) as image:
                    face_region(box, 0.0, image.width, image.height)
        except Exception as error:  # noqa: BLE001  (PIL raises many types for bad files)
            report.errors.append(f"{path} ({line}): unreadable ({type(error).__name__}: {error})")
    return report


def print_report(report: CheckReport, console: Console) -> None:
    table = Table(title=f"{report.name}: {report.title}")
    table.add_column("split")
    for column in report.columns:
        table.add_column(column, justify="right")
    if report.total:
        table.add_column("total", justify="right")
    for split, counts in report.counts.items():
        table.add_row(split, *map(str, counts), *([str(sum(counts))] if report.total else []))
    console.print(table)
    for line in report.notes:
        console.print(line, soft_wrap=True)
    for line in modality_lines(report.modalities, report.lacking):
        console.print(line, soft_wrap=True)
    console.print(f"identity overlap between splits: {report.identities}", soft_wrap=True)
    for line in report.warnings:
        console.print(f"[yellow]warning[/]: {line}", soft_wrap=True)
    for line in report.errors:
        console.print(f"[red]error[/]: {line}", soft_wrap=True)  # paths stay whole, for grep
    verdict = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    console.print(f"[bold]{'FAILED' if report.errors else 'OK'}[/]: {verdict}", soft_wrap=True)


def check_reader(name: str, root: str, decode: bool = True) -> None:
    """Any other reader: open it (a malformed file is a DataError naming it) and print samples per split,
    labelled samples per class, and identity overlap where the data set has subjects. ``decode`` changes
    nothing: these readers hold no media to decode."""
    from affectlab.data.registry import get_dataset
    from affectlab.data.splits import SPLITS, check_disjoint

    spec = get_dataset(name)
    module = spec.open(root)
    module.setup()
    table = Table(title=f"{name}: samples per split")
    table.add_column("split")
    table.add_column("samples", justify="right")
    for split in SPLITS:
        table.add_row(split, str(len(module.dataset(split))))
    console = Console()
    console.print(table)
    if hasattr(module, "class_counts"):
        console.print(f"train labels per class: {module.class_counts(split='train').tolist()}", soft_wrap=True)
    if name == "mosei":
        counts, lacking = mosei_modality_counts(module)
        for line in modality_lines(counts, lacking, unit="segments"):
            console.print(line, soft_wrap=True)
    subjects = getattr(module, "data", None)
    if spec.subjects == "disjoint" and subjects is not None:
        check_disjoint(module.splits, subjects[2])  # raises, naming the subject, if one is in two splits
        console.print("identity overlap between splits: none", soft_wrap=True)
    for line in module.skips.messages:  # left out by the reader (an error under corrupt: raise)
        console.print(f"[yellow]warning[/]: {line}", soft_wrap=True)
    console.print(f"[bold]OK[/]: {name} under {root} reads without errors ({sum(len(module.dataset(s)) for s in SPLITS)} samples)",
                  soft_wrap=True)  # whole lines: paths stay greppable


def mosei_modality_counts(module) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """Per computational sequence of an opened MOSEI reader: labelled segments with feature rows overlapping
    them, and without (``[with, without]``), counted over every labelled video of the labels' ``.csd``, also
    those the reader leaves out because a sequence lacks them; and the segments without (``video[row]``)."""
    from affectlab.data.readers.mosei import ComputationalSequence, overlapping

    labels = ComputationalSequence(module.root / module.labels_file)
    counts = {m: [0, 0] for m in module.sequences}
    lacking: dict[str, list[str]] = {m: [] for m in module.sequences}
    for video in labels.videos:
        _, segments = labels.read(video)
        for modality, sequence in module.sequences.items():
            intervals = sequence.read(video)[1] if video in sequence.videos else np.zeros((0, 2))
            for row, (start, end) in enumerate(segments):
                if len(overlapping(intervals, float(start), float(end))):
                    counts[modality][0] += 1
                else:
                    counts[modality][1] += 1
                    lacking[modality].append(f"{video}[{row}]")
    return counts, lacking


def check_generated(name: str, root: str, decode: bool = True) -> None:
    raise DataError(f"data check: {name} is generated by AffectLab and verified by checksum whenever it is opened")


def check_video_dataset(name: str, root: str | Path, decode: bool = True) -> CheckReport:
    """MELD, CAER or VoxCeleb2 as its reader lists it (module docstring: what is an error, what a warning)."""
    from affectlab.data.media.audio import has_audio, read_audio
    from affectlab.data.media.video import VideoDecodeError, VideoReader, probe
    from affectlab.data.media.video_clips import words
    from affectlab.data.registry import get_dataset
    from affectlab.data.splits import SPLITS

    spec = get_dataset(name)
    module = spec.open(root)
    found = module.scan()  # a missing root, CSV file or split folder: DataError (exit status 2)
    clips = found.clips
    if module.tasks:
        counts = {split: [sum(1 for c in clips if c.split == split and c.targets["emotion"] == k)
                          for k in range(len(EMOTIONS))] for split in SPLITS}
        report = CheckReport(name, counts, title="clips per split and emotion")
    else:
        counts = {split: [sum(1 for c in clips if c.split == split), len({c.subject for c in clips if c.split == split}),
                          len({c.path.parent for c in clips if c.split == split})] for split in SPLITS}
        report = CheckReport(name, counts, columns=("clips", "speakers", "videos"),
                             title="clips, speakers, videos", total=False)
    if "sentiment_class" in module.tasks:
        from affectlab.data.readers.meld import SENTIMENTS

        for split in SPLITS:
            per_class = [sum(1 for c in clips if c.split == split and c.targets["sentiment_class"] == k)
                         for k in range(len(SENTIMENTS))]
            report.notes.append(f"{split} sentiment: " + ", ".join(f"{n} {s}" for n, s in zip(per_class, SENTIMENTS)))
    report.errors += found.errors
    for split in SPLITS:
        if not any(c.split == split for c in clips):
            report.warnings.append(f"split {split!r} holds no clips")
    if found.missing:
        shown = ", ".join(found.missing[:20]) + (f" and {len(found.missing) - 20} more" if len(found.missing) > 20 else "")
        report.warnings.append(f"{len(found.missing)} clip(s) listed but missing, left out by the reader: {shown}")
    for path in found.ignored[:20]:
        report.warnings.append(f"{path}: not part of {name}'s layout, ignored")
    if len(found.ignored) > 20:
        report.warnings.append(f"... and {len(found.ignored) - 20} more files or folders outside the layout")
    report.identities = _speaker_overlap(name, spec.subjects, clips, found.subject_names, report)
    served = tuple(module.available_modalities)
    report.modalities = {m: [0, 0] for m in served}
    report.lacking = {m: [] for m in served}

    def count(modality: str, present: bool, clip) -> None:
        report.modalities[modality][0 if present else 1] += 1
        if not present:
            report.lacking[modality].append(clip.name or str(clip.path))

    for clip in track(clips, description=f"{'decoding' if decode else 'opening'} {name}", transient=True):
        if "text" in served:
            count("text", bool(words(clip.text or "")), clip)
        try:
            if not decode:
                probe(clip.path)
                count("video", True, clip)
                if "audio" in served:
                    count("audio", has_audio(clip.path), clip)
                continue
            reader = VideoReader(clip.path, every=1 << 30)  # decodes every frame, converts only the first
            for _ in reader:
                pass
            track_ = read_audio(clip.path) if "audio" in served else None
        except VideoDecodeError as error:
            report.errors.append(f"unreadable: {error}")
            count("video", False, clip)
            if "audio" in served:
                count("audio", False, clip)
            continue
        count("video", reader.decoded > 0, clip)
        if reader.problem:
            report.errors.append(f"damaged: {reader.problem}")
        if "audio" in served:
            count("audio", track_ is not None and len(track_.waveform) > 0, clip)
            if track_ is not None and track_.problem:
                report.errors.append(f"damaged audio: {track_.problem}")
    for modality, (present, absent) in report.modalities.items():
        if absent and modality != "video":  # an undecodable clip is already an error
            report.warnings.append(f"{absent} of {present + absent} clips lack {modality}; the reader serves it "
                                   "masked (a missing modality)")
    return report


def _speaker_overlap(name: str, subjects: str, clips: list, names: dict[int, str], report: CheckReport) -> str:
    """The identity-overlap line; shared speakers are a warning where the official splits share them (MELD),
    an error where they must not (VoxCeleb2: its scan already named each one)."""
    from affectlab.data.splits import SPLITS

    if subjects == "none":
        return f"not available: {name.upper()} has no subject ids"
    speakers = {split: {c.subject for c in clips if c.split == split} for split in SPLITS}
    pairs = [(a, b, sorted(speakers[a] & speakers[b])) for i, a in enumerate(SPLITS) for b in SPLITS[i + 1:]]
    shared = [(a, b, ids) for a, b, ids in pairs if ids]
    if not shared:
        return f"none ({len(set().union(*speakers.values()))} speakers)"
    text = "; ".join(f"{a} & {b}: {len(ids)} ({', '.join(names.get(i, str(i)) for i in ids[:6])}"
                     f"{', ...' if len(ids) > 6 else ''})" for a, b, ids in shared)
    if subjects == "shared":
        report.warnings.append(f"{name.upper()}'s official splits share speakers (the main cast speaks in all three): results "
                               "on them are not speaker-independent")
        return f"speakers in more than one split: {text}"
    # VoxCeleb2: the reader's scan already named each speaker found in both dev and test (an error each).
    return f"OVERLAP, where {name}'s splits must be speaker-disjoint: {text}"
