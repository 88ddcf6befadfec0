"""CMU-MOSEI (or MOSI, SIMS) as the aligned or unaligned feature pickles of the MMSA toolkit
(``aligned_50.pkl``, ``unaligned_50.pkl``), which many researchers already hold.

The pickle is a dict ``{"train" | "valid" | "test": split}``, each split a dict of arrays over its N samples:
``vision`` ``[N, T_v, D_v]``, ``audio`` ``[N, T_a, D_a]``, ``text`` ``[N, T_t, D_t]`` (or ``text_bert``
``[N, 3, T_t]``, token ids, mask and segment ids: read as ``text`` ids), ``regression_labels`` ``[N]`` (sentiment
in [-3, 3]), optionally ``vision_lengths`` / ``audio_lengths`` (the unaligned pickles' real lengths; aligned
pickles have none: every step counts) and ``id``. Served as the batch contract's ``video``, ``audio``, ``text``
feature sequences with masks and the ``sentiment`` target; MOSEI's -inf audio values become 0.

Every split is validated when the pickle is opened (``validate``), and every problem found is reported at once
(``affectlab data check mmsa`` lists them; opening the reader stops with a DataError naming the first few):
labels must be numbers (not strings), finite (no NaN or inf) and in [-3, 3]; each modality's features an
array ``[N, T, D]`` of numbers (or N arrays ``[T, D]``), with the same D in every split; lengths whole numbers
from 0 to T. So no NaN label reaches a training loss or a prepared store.

Pickles can run arbitrary code when loaded. This reader's unpickler accepts only what such a file needs
(dicts, lists, strings, numbers and NumPy arrays) and refuses anything else, naming it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.collate import collate_padded
from affectlab.data.spec import DatasetSpec
from affectlab.errors import ConfigError, DataError

SPLIT_KEYS = {"train": "train", "val": "valid", "test": "test"}
LABEL_RANGE = (-3.0, 3.0)  # MOSI/MOSEI sentiment; SIMS' [-1, 1] lies inside
SHOWN = 5  # problems named in the reader's error (data check lists all)
MODALITY_KEYS = {"video": "vision", "audio": "audio", "text": "text"}
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"), ("builtins", "slice"),
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a class or function outside the allowed set."""


class ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler for data files: NumPy arrays and built-in containers only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise RefusedGlobal(f"refusing to load {module}.{name}: a feature pickle holds arrays only")


def load_feature_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return ArraysOnlyUnpickler(handle, encoding="latin1").load()
    except RefusedGlobal as error:
        raise DataError(f"{path}: {error}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001  (a damaged pickle fails in many ways: EOF, bad opcodes, memory, ...)
        raise DataError(f"{path}: not a readable feature pickle ({type(error).__name__}: {error})") from None


def _positions(bad: np.ndarray, limit: int = 3) -> str:
    where = np.flatnonzero(bad)
    return ", ".join(map(str, where[:limit])) + (f" and {len(where) - limit} more" if len(where) > limit else "")


def _features(values: Any, name: str) -> tuple[np.ndarray | list[np.ndarray] | None, str | None]:
    """``values`` as ``[N, T, D]`` numbers (or a list of N ``[T, D]``), or a problem in words."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged: NumPy refuses to stack
        array = None
    if array is not None and array.dtype != object:
        if array.ndim != 3:
            return None, f"{name} has shape {list(array.shape)}, expected [samples, steps, features]"
        if not np.issubdtype(array.dtype, np.number):
            return None, f"{name} holds {array.dtype} values, not numbers"
        return array, None
    rows = []
    for i, row in enumerate(values):
        try:
            row = np.asarray(row, dtype=np.float32)
        except (TypeError, ValueError):
            return None, f"{name}[{i}] is not an array of numbers"
        if row.ndim != 2:
            return None, f"{name}[{i}] has shape {list(row.shape)}, expected [steps, features]"
        rows.append(row)
    dims = sorted({row.shape[1] for row in rows})
    if len(dims) > 1:
        return None, f"{name}'s samples have {dims} features per step; all must have the same"
    return rows, None


def validate(data: Any, modalities: tuple[str, ...]) -> list[str]:
    """Every problem of an MMSA pickle's contents, one line each (module docstring: what is checked); prepares
    each split in place (``text`` from ``text_bert``)."""
    if not isinstance(data, dict):
        return [f"holds a {type(data).__name__}, not a dict of splits 'train', 'valid', 'test'"]
    missing = [k for k in SPLIT_KEYS.values() if k not in data]
    if missing:
        return [f"no split(s) {missing}; an MMSA pickle holds 'train', 'valid' and 'test' (it holds {sorted(map(str, data))})"]
    problems: list[str] = []
    dims: dict[str, tuple[str, int]] = {}
    for key in SPLIT_KEYS.values():
        part = data[key]
        if not isinstance(part, dict):
            problems.append(f"split {key!r} is a {type(part).__name__}, not a dict of arrays")
            continue
        if "text" not in part and "text_bert" in part:
            bert = np.asarray(part["text_bert"])
            if bert.ndim != 3 or bert.shape[1] != 3:
                problems.append(f"split {key!r}: text_bert has shape {list(bert.shape)}, expected [samples, 3, steps]")
                continue
            part["text"] = bert[:, 0, :, None]  # (N, T, 1) token ids
        needed = [MODALITY_KEYS[m] for m in modalities] + ["regression_labels"]
        absent = [k for k in needed if k not in part]
        if absent:
            problems.append(f"split {key!r} has no {absent}; it holds {sorted(map(str, part))}")
            continue
        sizes = {k: len(part[k]) for k in needed}
        if len(set(sizes.values())) != 1:
            problems.append(f"split {key!r} arrays disagree on the number of samples: {sizes}")
            continue
        labels = np.asarray(part["regression_labels"])
        if labels.dtype == object or not np.issubdtype(labels.dtype, np.number):
            try:
                labels = labels.astype(np.float64)
            except (TypeError, ValueError):
                strings = np.asarray([not isinstance(v, (int, float, np.number)) for v in labels.reshape(-1)])
                problems.append(f"split {key!r}: regression_labels holds values that are not numbers (samples "
                                f"{_positions(strings)}, e.g. {labels.reshape(-1)[np.flatnonzero(strings)[0]]!r})")
                labels = None
        if labels is not None:
            labels = labels.reshape(len(labels), -1)[:, 0] if labels.ndim > 1 else labels
            finite = np.isfinite(labels)
            if not finite.all():
                problems.append(f"split {key!r}: regression_labels is NaN or infinite at samples {_positions(~finite)}")
            outside = finite & ((labels < LABEL_RANGE[0]) | (labels > LABEL_RANGE[1]))
            if outside.any():
                problems.append(f"split {key!r}: regression_labels outside [{LABEL_RANGE[0]:g}, {LABEL_RANGE[1]:g}] at "
                                f"samples {_positions(outside)} (e.g. {labels[outside][0]:g})")
            part["regression_labels"] = labels.astype(np.float32)
        for modality in modalities:
            name = MODALITY_KEYS[modality]
            values, problem = _features(part[name], f"split {key!r}: {name}")
            if problem:
                problems.append(problem)
                continue
            part[name] = values
            dim = int(values.shape[-1]) if isinstance(values, np.ndarray) else int(values[0].shape[1]) if values else 0
            if name in dims and dims[name][1] != dim:
                problems.append(f"split {key!r}: {name} has {dim} features per step, split {dims[name][0]!r} has "
                                f"{dims[name][1]}")
            dims.setdefault(name, (key, dim))
            lengths = part.get(f"{name}_lengths")
            if lengths is not None:
                steps = values.shape[1] if isinstance(values, np.ndarray) else max((len(r) for r in values), default=0)
                lengths = np.asarray(lengths)
                if (lengths.dtype == object or not np.issubdtype(lengths.dtype, np.number)
                        or len(lengths) != sizes[name] or not np.isfinite(lengths.astype(float)).all()
                        or (lengths.astype(float) % 1 != 0).any() or (lengths < 0).any() or (lengths > steps).any()):
                    problems.append(f"split {key!r}: {name}_lengths must be {sizes[name]} whole numbers from 0 to "
                                    f"{steps}")
    return problems


class MmsaSamples(Dataset):
    def __init__(self, split: dict[str, Any], modalities: tuple[str, ...], index: np.ndarray, ids: np.ndarray) -> None:
        self.split, self.modalities, self.index, self.ids = split, modalities, index, ids

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, Any]:
        i = int(self.index[item])
        sample: dict[str, Any] = {}
        for modality in self.modalities:
            values = np.asarray(self.split[MODALITY_KEYS[modality]][i], dtype=np.float32)  # (T, D), validated
            length = self.split.get(f"{MODALITY_KEYS[modality]}_lengths")
            steps = int(length[i]) if length is not None else len(values)
            values = np.nan_to_num(values[: max(steps, 1)], nan=0.0, posinf=0.0, neginf=0.0)
            sample[modality] = torch.from_numpy(values)
        sample["targets"] = {"sentiment": torch.tensor(float(self.split["regression_labels"][i]))}
        sample["target_mask"] = {"sentiment": torch.tensor(True)}
        sample["id"] = torch.tensor(int(self.ids[item]))
        return sample


class MmsaDataModule(BaseDataModule):
    """MMSA feature pickles (module docstring: the format) in the batch contract.

    Args:
        path: the pickle file.
        modalities: which of video, audio, text to serve; None serves all three.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
    """

    def __init__(self, path: str, modalities: list[str] | None = None, batch_size: int = 32, num_workers: int = 0) -> None:
        served = tuple(modalities or MODALITY_KEYS)
        unknown = [m for m in served if m not in MODALITY_KEYS]
        if unknown:
            raise ConfigError(f"data.init_args.modalities: {unknown} are not among {list(MODALITY_KEYS)}")
        super().__init__(batch_size, num_workers, modalities=served, tasks=("sentiment",), class_names={})
        self.path = Path(path)
        self.data: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        if not self.path.is_file():
            raise DataError(f"mmsa: {self.path} is not a file; expected an MMSA pickle such as aligned_50.pkl")
        data = load_feature_pickle(self.path)
        if isinstance(data, dict):
            data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}  # validate fills in copies
        self.problems = validate(data, self.modalities)
        if self.problems:
            more = f" and {len(self.problems) - SHOWN} more" if len(self.problems) > SHOWN else ""
            raise DataError(f"{self.path}: " + "; ".join(self.problems[:SHOWN]) + more
                            + f" (affectlab data check mmsa --root {self.path} lists every problem)")
        data = {split: data[key] for split, key in SPLIT_KEYS.items()}
        self.data = data
        self.offsets = {"train": 0, "val": len(self.data["train"]["regression_labels"])}
        self.offsets["test"] = self.offsets["val"] + len(self.data["val"]["regression_labels"])

    def dataset(self, split: str) -> MmsaSamples:
        self.setup()
        n = len(self.data[split]["regression_labels"])
        index = np.arange(n)
        return MmsaSamples(self.data[split], self.modalities, index, index + self.offsets[split])

    def collate(self) -> Callable[[list[Any]], Any]:
        return collate_padded


def check_mmsa_dataset(name: str, root: str, decode: bool = True) -> Any:
    """``affectlab data check mmsa --root PICKLE``: samples per split and every problem ``validate`` finds
    (each an error: exit status 1); an unreadable or refused pickle is a DataError (exit status 2)."""
    from affectlab.data.check import CheckReport

    path = Path(root)
    if not path.is_file():
        raise DataError(f"mmsa: {path} is not a file; expected an MMSA pickle such as aligned_50.pkl")
    data = load_feature_pickle(path)
    if isinstance(data, dict):
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    problems = validate(data, tuple(MODALITY_KEYS))
    counts = {split: [len(data[key]["regression_labels"]) if isinstance(data, dict) and isinstance(data.get(key), dict)
                      and "regression_labels" in data[key] else 0] for split, key in SPLIT_KEYS.items()}
    return CheckReport(name, counts, errors=[f"{path}: {problem}" for problem in problems], columns=("samples",),
                       title="samples per split", total=False)


SPEC = DatasetSpec(
    "mmsa", "MMSA's aligned or unaligned feature pickle of CMU-MOSEI, MOSI or SIMS", "data/mmsa",
    "aligned_50.pkl   ({'train'|'valid'|'test': {'vision', 'audio', 'text', 'regression_labels', ...}})",
    reader="affectlab.data.MmsaDataModule", root_arg="path", check="affectlab.data.readers.mmsa.check_mmsa_dataset",
    prepare="affectlab.data.store.prepare.prepare_features", export="affectlab.data.synth.export.export_mmsa",
)
