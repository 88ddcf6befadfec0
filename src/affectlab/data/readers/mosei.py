"""CMU-MOSEI from the computational sequences of the CMU Multimodal SDK (``.csd``, HDF5), aligned by segment.

Expected under ``root`` (the SDK's file names; any other is set in the config)::

    CMU_MOSEI_VisualFacet42.csd            visual: FACET 4.2 per frame (35)   or CMU_MOSEI_VisualOpenFace2.csd
    CMU_MOSEI_COVAREP.csd                  acoustic: COVAREP per 10 ms frame (74)
    CMU_MOSEI_TimestampedWordVectors.csd   textual: GloVe vector per word (300)
    CMU_MOSEI_Labels.csd                   per segment: sentiment, happy, sad, anger, surprise, disgust, fear
    folds.json (optional)                  the SDK's standard folds, see below

A ``.csd`` file is one HDF5 group named after the sequence, holding ``data/<video id>/features`` ``[T, D]`` and
``data/<video id>/intervals`` ``[T, 2]`` (start and end in seconds) and ``metadata`` (JSON strings). Every
labelled segment (a row of the labels' intervals) is one sample; each modality contributes the feature rows
whose interval overlaps the segment's, at most ``max_steps`` of them (evenly subsampled), padded per batch
with a mask. MOSEI's features hold -inf and NaN (COVAREP especially): they become 0 and are counted.

Targets (label order as in the SDK: sentiment, then happy, sad, anger, surprise, disgust, fear, the order
``MOSEI_EMOTIONS`` keeps, fixing seed 000's defect of reordering the names):
``sentiment`` ``[B]`` in [-3, 3]; ``emotion_presence`` ``[B, 6]`` 0/1 (intensity > 0, the usual
binarisation, multi-label); ``emotion_intensity`` ``[B, 6]`` in [0, 3].

Standard folds: the SDK keeps them in code (``mmsdk.mmdatasdk.cmu_mosei.standard_folds``), not in a file.
Write them once with the SDK installed::

    python -c "import json; from mmsdk.mmdatasdk import cmu_mosei as m; f = m.standard_folds; json.dump({'train':
    f.standard_train_fold, 'valid': f.standard_valid_fold, 'test': f.standard_test_fold}, open('folds.json', 'w'))"

Without ``folds.json`` the videos are split train/val/test (70/15/15) by a seeded draw, video-disjoint, with
a warning that the numbers are then not comparable to published ones.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.collate import collate_padded, subsample
from affectlab.data.splits import check_disjoint
from affectlab.data.spec import DatasetSpec
from affectlab.errors import ConfigError, DataError

MOSEI_EMOTIONS = ("happy", "sad", "anger", "surprise", "disgust", "fear")
DEFAULT_FILES = {
    "video": "CMU_MOSEI_VisualFacet42.csd",
    "audio": "CMU_MOSEI_COVAREP.csd",
    "text": "CMU_MOSEI_TimestampedWordVectors.csd",
}
LABELS_FILE = "CMU_MOSEI_Labels.csd"
FOLDS_FILE = "folds.json"

SPEC = DatasetSpec(
    "mosei", "CMU-MOSEI: computational sequences of the CMU Multimodal SDK (23,453 segments)", "data/mosei",
    "CMU_MOSEI_VisualFacet42.csd (or CMU_MOSEI_VisualOpenFace2.csd)\n"
    "CMU_MOSEI_COVAREP.csd\n"
    "CMU_MOSEI_TimestampedWordVectors.csd\n"
    "CMU_MOSEI_Labels.csd  (sentiment, happy, sad, anger, surprise, disgust, fear)\n"
    "folds.json  (optional: the SDK's standard folds, see affectlab.data.readers.mosei)",
    reader="affectlab.data.MoseiDataModule", rows_arg="max_steps", check="affectlab.data.check.check_reader",
    prepare="affectlab.data.store.prepare.prepare_features", export="affectlab.data.synth.export.export_mosei",
)


# What h5py raises for a damaged file: OSError when it cannot open it, RuntimeError for a broken B-tree or heap
# met while listing groups, KeyError/ValueError for entries that are not what their parent says.
HDF5_DAMAGE = (OSError, RuntimeError, KeyError, ValueError)


class ComputationalSequence:
    """Read access to one ``.csd`` file; opened lazily (also once per loader worker: h5py handles don't fork)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise DataError(f"mosei: {path} is missing; expected the CMU Multimodal SDK's .csd file there")
        self.path = path
        self._file = None
        try:
            with self._open() as handle:
                roots = list(handle.keys())
                if len(roots) != 1 or "data" not in handle[roots[0]]:
                    raise DataError(f"{path}: not a computational sequence (one root group holding 'data'); found {roots}")
                self.root = roots[0]
                self.videos = sorted(handle[self.root]["data"].keys())
                first = handle[self.root]["data"][self.videos[0]]["features"] if self.videos else None
                self.dim = int(first.shape[1]) if first is not None else 0
        except DataError:
            raise
        except HDF5_DAMAGE as error:
            raise DataError(f"{path}: not a readable HDF5 file ({error})") from None

    def _open(self):
        import h5py

        return h5py.File(self.path, "r")

    def _group(self, video: str):
        if self._file is None:
            self._file = self._open()
        group = self._file[self.root]["data"].get(video)
        if group is None:
            raise DataError(f"{self.path}: no entry for video {video!r}")
        return group

    def read(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        """``(features [T, D] float32, intervals [T, 2] float64)`` of one video."""
        try:
            group = self._group(video)
            return np.asarray(group["features"], dtype=np.float32), np.asarray(group["intervals"], dtype=np.float64)
        except DataError:
            raise
        except HDF5_DAMAGE as error:
            raise self._damaged(video, error) from None

    def _damaged(self, video: str, error: Exception) -> DataError:
        return DataError(f"{self.path}: video {video!r} cannot be read ({type(error).__name__}: {error}); the file is "
                         "damaged: download it again")

    def read_segment(self, video: str, start: float, end: float, max_steps: int) -> np.ndarray:
        """The feature rows of ``video`` overlapping ``[start, end]``, at most ``max_steps`` (evenly spaced),
        reading only the span of rows needed from the file. ``[0, D]`` when none overlaps."""
        try:
            return self._read_segment(video, start, end, max_steps)
        except DataError:
            raise
        except HDF5_DAMAGE as error:
            raise self._damaged(video, error) from None

    def _read_segment(self, video: str, start: float, end: float, max_steps: int) -> np.ndarray:
        group = self._group(video)
        rows = subsample(overlapping(np.asarray(group["intervals"]), start, end), max_steps)
        if len(rows) == 0:
            return np.zeros((0, self.dim), np.float32)
        span = np.asarray(group["features"][rows[0] : rows[-1] + 1], dtype=np.float32)
        return span[rows - rows[0]]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}  # an open HDF5 handle does not travel to worker processes


def overlapping(intervals: np.ndarray, start: float, end: float) -> np.ndarray:
    """Indices of the rows of ``intervals`` ``[T, 2]`` that overlap ``[start, end]``."""
    return np.flatnonzero((intervals[:, 0] < end) & (intervals[:, 1] > start))


class MoseiSegments(Dataset):
    """One labelled segment per sample: a feature sequence per modality and the segment's labels."""

    def __init__(self, segments: list[tuple[str, float, float, np.ndarray]], sequences: dict[str, ComputationalSequence],
                 ids: np.ndarray, max_steps: int) -> None:
        self.segments, self.sequences, self.ids, self.max_steps = segments, sequences, ids, max_steps

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, item: int) -> dict[str, Any]:
        video, start, end, label = self.segments[item]
        sample: dict[str, Any] = {}
        non_finite = 0
        for modality, sequence in self.sequences.items():
            values = sequence.read_segment(video, start, end, self.max_steps)
            if len(values) == 0:  # no row overlaps the segment: one zero step, masked like a real one
                values = np.zeros((1, sequence.dim), np.float32)
            bad = ~np.isfinite(values)
            if bad.any():
                non_finite += int(bad.sum())
                values = np.where(bad, 0.0, values).astype(np.float32)
            sample[modality] = torch.from_numpy(values)  # (T_m, D_m)
        emotions = torch.from_numpy(label[1:7].astype(np.float32))
        sample["targets"] = {
            "sentiment": torch.tensor(float(label[0])),
            "emotion_presence": (emotions > 0).float(),
            "emotion_intensity": emotions,
        }
        sample["target_mask"] = {task: torch.tensor(True) for task in sample["targets"]}
        sample["id"] = torch.tensor(int(self.ids[item]))
        sample["non_finite"] = torch.tensor(non_finite)  # counted by the data module, then removed
        return sample


class MoseiDataModule(BaseDataModule):
    """CMU-MOSEI segments with visual, acoustic and textual feature sequences (module docstring: the layout).

    Args:
        root: the folder holding the ``.csd`` files.
        files: modality -> ``.csd`` file name under ``root``; the SDK's names by default.
        labels_file: the labels' ``.csd``.
        modalities: the subset of ``files`` to serve; None serves all.
        max_steps: feature rows per modality and segment, at most.
        folds_file: the standard folds (JSON with ``train``, ``valid``, ``test`` video id lists), under
            ``root``; a missing file falls back to a seeded video-disjoint split.
        split_seed: seed of that fallback split.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
    """

    def __init__(
        self,
        root: str = "data/mosei",
        files: dict[str, str] | None = None,
        labels_file: str = LABELS_FILE,
        modalities: list[str] | None = None,
        max_steps: int = 50,
        folds_file: str = FOLDS_FILE,
        split_seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        self.files = dict(files or DEFAULT_FILES)
        served = list(modalities or self.files)
        unknown = [m for m in served if m not in self.files]
        if unknown:
            raise ConfigError(f"data.init_args.modalities: {unknown} have no file in data.init_args.files {self.files}")
        self.root, self.labels_file, self.max_steps = Path(root), labels_file, max_steps
        self.folds_file, self.split_seed = folds_file, split_seed
        super().__init__(batch_size, num_workers, modalities=served,
                         tasks=("sentiment", "emotion_presence", "emotion_intensity"),
                         class_names={"emotion_presence": MOSEI_EMOTIONS})
        self.segments: list[tuple[str, float, float, np.ndarray]] = []
        self.splits: dict[str, np.ndarray] = {}
        self.non_finite = 0  # feature values that were -inf or NaN, served as 0

    def setup(self, stage: str | None = None) -> None:
        if self.segments:
            return
        if not self.root.is_dir():
            raise DataError(f"mosei: root {self.root} is not a folder; expected {LABELS_FILE} and "
                            f"{', '.join(DEFAULT_FILES.values())} there (see affectlab.data.readers.mosei)")
        self.sequences = {m: ComputationalSequence(self.root / self.files[m]) for m in self.modalities}
        labels = ComputationalSequence(self.root / self.labels_file)
        if labels.dim != 7:
            raise DataError(f"{labels.path}: labels have {labels.dim} columns; MOSEI's have 7 "
                            "(sentiment, happy, sad, anger, surprise, disgust, fear)")
        videos = [v for v in labels.videos if all(v in s.videos for s in self.sequences.values())]
        dropped = len(labels.videos) - len(videos)
        if dropped:
            warnings.warn(f"mosei: {dropped} labelled videos lack features in some modality and are left out", stacklevel=2)
        owner = []
        for video in videos:
            values, intervals = labels.read(video)
            for row in range(len(values)):
                if not np.isfinite(values[row]).all() or not -3 <= values[row, 0] <= 3:
                    raise DataError(f"{labels.path}: video {video!r}, segment {row}: labels {values[row].tolist()} "
                                    "are not a sentiment in [-3, 3] and six finite intensities")
                self.segments.append((video, float(intervals[row, 0]), float(intervals[row, 1]), values[row]))
                owner.append(video)
        self.splits = self._folds(np.asarray(owner), videos)

    def _folds(self, owner: np.ndarray, videos: list[str]) -> dict[str, np.ndarray]:
        path = self.root / self.folds_file
        if path.is_file():
            try:
                folds = json.loads(path.read_text())
                groups = {"train": folds["train"], "val": folds["valid"], "test": folds["test"]}
            except (ValueError, KeyError) as error:
                raise DataError(f"{path}: not a JSON object with 'train', 'valid' and 'test' video id lists ({error})") from None
        else:
            warnings.warn(f"mosei: no {path}; splitting videos 70/15/15 at random (seed {self.split_seed}): numbers "
                          "are not comparable to published ones (see affectlab.data.readers.mosei for the standard folds)",
                          stacklevel=2)
            order = list(np.random.default_rng(self.split_seed).permutation(videos))
            n_val, n_test = max(1, round(0.15 * len(order))), max(1, round(0.15 * len(order)))
            groups = {"train": order[n_val + n_test:], "val": order[:n_val], "test": order[n_val: n_val + n_test]}
        splits = {split: np.flatnonzero(np.isin(owner, list(ids))) for split, ids in groups.items()}
        video_index = {v: i for i, v in enumerate(sorted(set(owner)))}
        check_disjoint(splits, np.asarray([video_index[v] for v in owner]))  # a video in two folds is refused
        return splits

    def class_counts(self, task: str = "emotion_presence", split: str = "train") -> torch.Tensor:
        """``[6, 2]``: per emotion the train segments without (column 0) and with it (column 1)."""
        if task != "emotion_presence":
            raise ValueError(f"class_counts: MOSEI's classification task is 'emotion_presence', not {task!r}")
        self.setup()
        present = np.stack([self.segments[i][3][1:7] > 0 for i in self.splits[split]]).sum(axis=0)
        total = len(self.splits[split])
        return torch.stack([torch.from_numpy(total - present), torch.from_numpy(present)], dim=1)

    def dataset(self, split: str) -> MoseiSegments:
        self.setup()
        index = self.splits[split]
        return MoseiSegments([self.segments[i] for i in index], self.sequences, index, self.max_steps)

    def collate(self) -> Callable[[list[Any]], Any]:
        return collate_padded
    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        self.non_finite += int(batch.pop("non_finite").sum())
        return batch

    def teardown(self, stage: str) -> None:
        if self.non_finite:
            print(f"mosei: {self.non_finite} feature values were -inf or NaN and were served as 0", flush=True)
