"""CAER-S, the static-image part of CAER (Lee et al., "Context-Aware Emotion Recognition Networks", ICCV 2019),
read as its authors distribute it: frames of TV shows, one folder per emotion, served as one-frame clips of the
whole frame (faces are not cut: CAER-S ships no face boxes; context is what it is about).

Layout (the authors' archive unpacks to a folder ``CAER-S/`` holding the two splits; point ``root`` at it):

    <root>/train/<Anger|Disgust|Fear|Happy|Neutral|Sad|Surprise>/<nnnn>.png     e.g. train/Anger/0001.png
    <root>/test/<Anger|Disgust|Fear|Happy|Neutral|Sad|Surprise>/<nnnn>.png

Images are numbered per split and class from 0001. The class folders (``LABEL_CODES``) map onto AffectLab's
canonical emotions; the official train/test split is kept and validation is carved out of train (stratified,
seeded), as ``folders.FolderDataModule`` does for every folder-per-class set. CAER-S's folder layout *is* the
authors' layout, so there is no ``layout`` option: the reader is the folder reader with CAER-S's checks in front.

Bad input: a root that is not CAER-S (the archive's parent folder, ``Train``/``Test`` in other case, no split
folders) is a ``DataError`` saying what was found, what was expected and how to fix it; a class folder CAER-S
does not have (``Angry`` in some re-uploads) is named in a warning, its images left out, and an error of
``affectlab data check caer_s``; unreadable images are skipped and counted (``corrupt: skip``) or raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectlab.data.readers.folders import FOLDER_LAYOUTS, FolderDataModule, describe_found
from affectlab.data.spec import DatasetSpec
from affectlab.errors import DataError

LABEL_CODES: dict[str | int, str | None] = {  # CAER-S's class folder -> canonical emotion (all seven kept)
    "Anger": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happy", "Neutral": "neutral", "Sad": "sad",
    "Surprise": "surprise",
}
CAER_S = FOLDER_LAYOUTS["caer_s"]
CLASSES = "|".join(LABEL_CODES)
LAYOUT = f"train/<{CLASSES}>/<nnnn>.png\ntest/<{CLASSES}>/<nnnn>.png"


def _tree(root: Path) -> str:
    return "\n".join(f"    {root}/{line}" for line in LAYOUT.splitlines())


def check_layout(root: str | Path) -> None:
    """Nothing if ``root`` holds CAER-S's two split folders; else a DataError with what was found and the fix."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"caer_s: root {root} is not a folder; expected CAER-S as its authors distribute it:\n"
                        + _tree(root))
    missing = [split for split in CAER_S.splits.values() if not (root / split).is_dir()]
    if not missing:
        return
    hints = []
    nested = [entry for entry in (root.iterdir()) if entry.is_dir() and (entry / "train").is_dir()]
    if nested:
        hints.append(f"{nested[0]} holds a train/ folder: point --data.init_args.root at {nested[0]}")
    cased = [entry.name for entry in root.iterdir() if entry.is_dir() and entry.name.lower() in missing
             and entry.name not in missing]
    if cased:
        hints.append(f"the split folders are {', '.join(s + '/' for s in missing)} in lower case; rename "
                     f"{', '.join(c + '/' for c in cased)}")
    if any((root / folder).is_dir() for folder in LABEL_CODES):
        hints.append("class folders lie directly under the root: CAER-S keeps them under train/ and test/")
    hint = "".join(f"\n{line}" for line in hints)
    raise DataError(f"caer_s: no {', '.join(s + '/' for s in missing)} folder at {root} (found: {describe_found(root)}); "
                    f"expected CAER-S as its authors distribute it:\n{_tree(root)}{hint}")


class CaerSDataModule(FolderDataModule):
    """CAER-S read as its authors distribute it (module docstring).

    Args:
        root: the data set's folder (the archive's ``CAER-S/``, holding ``train/`` and ``test/``).
        image_size: frames are resized to this square size.
        val_fraction: of each class of the train split held out for validation.
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
        val_fraction: float = 0.1,
        split_seed: int = 0,
        corrupt: str = "skip",
        batch_size: int = 64,
        num_workers: int = 0,
        max_unreadable_fraction: float | None = None,
    ) -> None:
        super().__init__("caer_s", root, image_size=image_size, val_fraction=val_fraction, split_seed=split_seed,
                         corrupt=corrupt, batch_size=batch_size, num_workers=num_workers,
                         max_unreadable_fraction=max_unreadable_fraction)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        check_layout(self.root)
        super().setup(stage)  # unknown class folders: FolderDataModule's skips (an error under corrupt: raise)


def check_caer_s_dataset(name: str, root: str | Path, decode: bool = True) -> Any:
    """``affectlab data check caer_s``: the layout checked first (a wrong root says how to fix it), then images per
    split and class, unknown class folders and unreadable images (``check.check_folder_dataset``)."""
    from affectlab.data.check import check_folder_dataset

    check_layout(root)
    return check_folder_dataset(name, root, decode)


SPEC = DatasetSpec(
    "caer_s", "CAER-S static frames of TV shows, 7 emotions (whole frames: no face boxes)", "data/caer_s", LAYOUT,
    reader="affectlab.data.CaerSDataModule", check="affectlab.data.readers.caer_s.check_caer_s_dataset",
    export="affectlab.data.synth.export_caer_s.export_caer_s",
)
