"""CMU-MOSEI (or MOSI, SIMS) as the aligned or unaligned feature pickles of the MMSA toolkit
(``aligned_50.pkl``, ``unaligned_50.pkl``), which many researchers already hold.

The pickle is a dict ``{"train" | "valid" | "test": split}``, each split a dict of arrays over its N samples:
``vision`` ``[N, T_v, D_v]``, ``audio`` ``[N, T_a, D_a]``, ``text`` ``[N, T_t, D_t]`` (or ``text_bert``
``[N, 3, T_t]``, token ids, mask and segment ids: read as ``text`` ids), ``regression_labels`` ``[N]`` (sentiment
in [-3, 3]), optionally ``vision_lengths`` / ``audio_lengths`` (the unaligned pickles' real lengths; aligned
pickles have none: every step counts) and ``id``. Served as the batch contract's ``video``, ``audio``, ``text``
feature sequences with masks and the ``sentiment`` target; MOSEI's -inf audio values become 0.

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
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DataError(f"{path}: not a readable feature pickle ({type(error).__name__}: {error})") from None


class MmsaSamples(Dataset):
    def __init__(self, split: dict[str, Any], modalities: tuple[str, ...], index: np.ndarray, ids: np.ndarray) -> None:
        self.split, self.modalities, self.index, self.ids = split, modalities, index, ids

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, Any]:
        i = int(self.index[item])
        sample: dict[str, Any] = {}
        for modality in self.modalities:
            values = np.asarray(self.split[MODALITY_KEYS[modality]][i], dtype=np.float32)
            if modality == "text" and values.ndim == 1:  # token ids of text_bert
                values = values[:, None]
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

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        if not self.path.is_file():
            raise DataError(f"mmsa: {self.path} is not a file; expected an MMSA pickle such as aligned_50.pkl")
        data = load_feature_pickle(self.path)
        missing = [k for k in SPLIT_KEYS.values() if not isinstance(data, dict) or k not in data]
        if missing:
            raise DataError(f"{self.path}: no split(s) {missing}; an MMSA pickle holds 'train', 'valid' and 'test'")
        for split, key in SPLIT_KEYS.items():
            part = dict(data[key])
            if "text" not in part and "text_bert" in part:
                part["text"] = np.asarray(part["text_bert"])[:, 0, :]  # (N, T) token ids
            needed = [MODALITY_KEYS[m] for m in self.modalities] + ["regression_labels"]
            absent = [k for k in needed if k not in part]
            if absent:
                raise DataError(f"{self.path}: split {key!r} has no {absent}; it holds {sorted(part)}")
            sizes = {k: len(part[k]) for k in needed}
            if len(set(sizes.values())) != 1:
                raise DataError(f"{self.path}: split {key!r} arrays disagree on the number of samples: {sizes}")
            self.data[split] = part
        self.offsets = {"train": 0, "val": len(self.data["train"]["regression_labels"])}
        self.offsets["test"] = self.offsets["val"] + len(self.data["val"]["regression_labels"])

    def dataset(self, split: str) -> MmsaSamples:
        self.setup()
        n = len(self.data[split]["regression_labels"])
        index = np.arange(n)
        return MmsaSamples(self.data[split], self.modalities, index, index + self.offsets[split])

    def collate(self) -> Callable[[list[Any]], Any]:
        return collate_padded


SPEC = DatasetSpec(
    "mmsa", "MMSA's aligned or unaligned feature pickle of CMU-MOSEI, MOSI or SIMS", "data/mmsa",
    "aligned_50.pkl   ({'train'|'valid'|'test': {'vision', 'audio', 'text', 'regression_labels', ...}})",
    reader="affectlab.data.MmsaDataModule", root_arg="path", check="affectlab.data.check.check_reader",
    prepare="affectlab.data.store.prepare.prepare_features", export="affectlab.data.synth.export.export_mmsa",
)
