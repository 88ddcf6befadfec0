"""``affectlab data check NAME --root DIR``: validate a data set on disk before hours of training on it.

Reports counts per split and class, unreadable files (every image is decoded), class folders the layout
does not know, stray files, classes left out by the label mapping, and whether identities overlap between
splits (when the data set has identities). Exit status 1 when any hard error is found (an empty split, an
unknown class folder, an unreadable file), 0 otherwise; a missing root or split folder is a data error (2).
The other readers (DISFA, MOSEI, MMSA, OpenFace, py-feat) are opened in full, which checks every label file
and row: a malformed one stops with its file and line (exit status 2); counts per split and class follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

from affectlab.data.contract import EMOTIONS
from affectlab.errors import DataError


@dataclass
class CheckReport:
    name: str
    counts: dict[str, list[int]]  # split -> images per canonical emotion
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    identities: str = "not available: the data set has no subject ids"


def check_folder_dataset(name: str, root: str | Path, decode: bool = True) -> CheckReport:
    from affectlab.data.folders import FOLDER_LAYOUTS, load_image, scan

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


def print_report(report: CheckReport, console: Console) -> None:
    table = Table(title=f"{report.name}: images per split and emotion")
    table.add_column("split")
    for emotion in EMOTIONS:
        table.add_column(emotion, justify="right")
    table.add_column("total", justify="right")
    for split, counts in report.counts.items():
        table.add_row(split, *map(str, counts), str(sum(counts)))
    console.print(table)
    console.print(f"identity overlap between splits: {report.identities}", soft_wrap=True)
    for line in report.warnings:
        console.print(f"[yellow]warning[/]: {line}", soft_wrap=True)
    for line in report.errors:
        console.print(f"[red]error[/]: {line}", soft_wrap=True)  # paths stay whole, for grep
    verdict = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    console.print(f"[bold]{'FAILED' if report.errors else 'OK'}[/]: {verdict}", soft_wrap=True)


def check_reader(name: str, root: str) -> None:
    """Any other reader: open it (a malformed file is a DataError naming it) and print samples per split,
    labelled samples per class, and identity overlap where the data set has subjects."""
    from affectlab.data.splits import SPLITS, check_disjoint

    module = _reader(name, root)
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
    subjects = getattr(module, "data", None)
    if name == "disfa" and subjects is not None:
        check_disjoint(module.splits, subjects[2])  # raises, naming the subject, if one is in two splits
        console.print("identity overlap between splits: none", soft_wrap=True)
    console.print(f"[bold]OK[/]: {name} under {root} reads without errors ({sum(len(module.dataset(s)) for s in SPLITS)} samples)",
                  soft_wrap=True)  # whole lines: paths stay greppable


def _reader(name: str, root: str):
    if name == "disfa":
        from affectlab.data.disfa import DisfaDataModule

        return DisfaDataModule(root)
    from affectlab.data.prepare import feature_datamodule

    return feature_datamodule(name, root)


def check_command(name: str, root: str) -> int:
    from affectlab.data.folders import FOLDER_LAYOUTS
    from affectlab.data.layouts import dataset_layout, layout_error

    layout = dataset_layout(name)  # unknown names: a DataError listing the known ones
    if name in FOLDER_LAYOUTS:
        report = check_folder_dataset(name, root)
        print_report(report, Console())
        return 1 if report.errors else 0
    if layout.reader is None:
        raise layout_error(name, root)
    if name == "synth":
        raise DataError(f"data check: {name} is generated by AffectLab and verified by checksum whenever it is opened")
    check_reader(name, root)  # a hard error is a DataError: exit status 2 with the file and line
    return 0
