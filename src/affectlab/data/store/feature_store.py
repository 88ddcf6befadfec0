"""The feature store: precomputed features of a whole data set as memory-mapped, contiguous, sharded arrays.

Training on precomputed features reads thousands of small samples per second; HDF5 files, CSV tables and
pickles cannot serve that. ``affectlab data prepare`` converts a data set once into this layout::

    <store>/index.json                      what is stored (written last, atomically: its presence = complete)
    <store>/progress.json                   how far an unfinished preparation got (removed when complete)
    <store>/progress_records/shard_00000.json
                                            an unfinished preparation's records of one finished shard: per
                                            sample id, split, targets, rows (removed when complete)
    <store>/<modality>/shard_00000.npy      float16 rows [R, D_m], samples' rows contiguous, R <= shard_rows
    <store>/samples.npz                     per sample: id, split, for each modality (shard, start, length),
                                            and each task's target (+ mask)

A sample's rows for one modality are one contiguous slice of one memory-mapped shard: reading it touches
only those bytes. A modality whose steps are pictures (face crops of prepared videos) is stored one flattened
picture per row; ``index.json`` then records its step shape (``shapes``, e.g. ``video: [3, 64, 64]``) and the
data module serves it as ``[B, T, 3, 64, 64]`` again. ``index.json`` may also hold the class names of its
classification tasks (``class_names``), which the data module serves when the config names none. A modality
stored as token ids, one id per row (``[L, 1]``, exact in float16 up to 2048), is listed in ``token_ids``
and served as ``[B, L]`` long, as the batch contract wants text ids. With ``views: K`` (``affectlab data
prepare ... --views K``), each sample's slice of a modality holds K views of equal length one after the other;
the train split serves one view per sample drawn at random whenever the sample is loaded (once per epoch),
val and test serve view 0. With ``pair_views: true`` (SimCLR on features: two augmented views of each
sample) every sample is served twice over, as ``<modality>`` and ``<modality>_view2`` (``second_view_key``):
two distinct views drawn at random in the train split, views 0 and 1 in val and test; a store of fewer than
two views is refused with the ``--views`` to prepare. A sample stored without rows of a modality (a clip without an audio track) is
served as one zero step, masked out.

Writing is resumable: samples are written in a fixed order; each finished shard's per-sample records (id,
split, targets, rows) go to their own file in ``progress_records/``, then the shard is recorded in
``progress.json`` (replaced atomically; it holds each finished shard's sample count and whatever bookkeeping
the caller saves beside it, no per-sample records, so it stays small however many samples are written), and a
restarted preparation continues after the last shard ``progress.json`` lists (a records file of a later shard,
from a try killed before it recorded that shard, is ignored and rewritten); a preparation whose
``index.json`` exists is complete and re-running it does nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.collate import collate_padded
from affectlab.data.splits import SPLITS
from affectlab.errors import ConfigError, DataError
from affectlab.io import atomic_write_bytes, atomic_write_json

INDEX, PROGRESS, SAMPLES, RECORDS = "index.json", "progress.json", "samples.npz", "progress_records"
STORE_VERSION = 1


def second_view_key(modality: str) -> str:
    """The batch key of a sample's second stored view of ``modality`` (``pair_views``; its mask:
    ``<modality>_view2_mask``)."""
    return f"{modality}_view2"


@dataclass
class StoreSample:
    """One sample to store: ``features`` modality -> ``[T, D]``, ``targets`` task -> value (or None: unlabelled)."""

    id: int
    split: str
    features: dict[str, np.ndarray]
    targets: dict[str, Any] = field(default_factory=dict)


class FeatureStoreWriter:
    """Writes samples shard by shard; ``write`` resumes after the last finished shard of an earlier try.

    Args:
        path: the store's folder.
        dims: modality -> feature size.
        tasks: task -> target shape (``()`` for a scalar, ``(6,)`` for a vector).
        task_dtypes: task -> ``int64`` (class indices) or ``float32`` (the default: scores, multi-label).
        shard_samples: samples per shard (a shard is flushed and recorded when full).
        source: a description kept in the index (data set, files, options).
        shapes: modality -> the shape each row unflattens to (``(3, 64, 64)`` for face crops); the product must
            equal the modality's size in ``dims``. Modalities not named are plain feature vectors.
        class_names: task -> class names, kept in the index for the data module.
        token_ids: modalities whose rows are token ids ``[L, 1]`` (served as ``[B, L]`` long).
        views: views per sample, stored one after the other in each sample's slice (module docstring).
    """

    def __init__(self, path: str | Path, dims: dict[str, int], tasks: dict[str, tuple[int, ...]],
                 shard_samples: int = 4096, source: dict[str, Any] | None = None,
                 task_dtypes: dict[str, str] | None = None, shapes: dict[str, tuple[int, ...]] | None = None,
                 class_names: dict[str, list[str]] | None = None, token_ids: tuple[str, ...] = (),
                 views: int = 1) -> None:
        self.path, self.dims, self.tasks = Path(path), dims, tasks
        self.task_dtypes = {t: (task_dtypes or {}).get(t, "float32") for t in tasks}
        self.shard_samples, self.source = shard_samples, source or {}
        self.shapes = {m: tuple(int(v) for v in shape) for m, shape in (shapes or {}).items()}
        for modality, shape in self.shapes.items():
            if modality not in dims or int(np.prod(shape)) != dims[modality]:
                raise ValueError(f"shapes[{modality!r}] = {shape} does not flatten to dims[{modality!r}] = "
                                 f"{dims.get(modality)}")
        self.class_names = {t: list(names) for t, names in (class_names or {}).items()}
        unknown = [m for m in token_ids if dims.get(m) != 1]
        if unknown or views < 1:
            raise ValueError(f"token_ids {unknown} must be modalities of one value per row; views ({views}) >= 1")
        self.token_ids, self.views = tuple(token_ids), views

    @property
    def complete(self) -> bool:
        return (self.path / INDEX).is_file()

    def _progress(self) -> dict[str, Any] | None:
        path = self.path / PROGRESS
        return json.loads(path.read_text()) if path.is_file() else None

    def _records_file(self, shard: int) -> Path:
        return self.path / RECORDS / f"shard_{shard:05d}.json"

    def _recorded(self, progress: dict[str, Any]) -> list[dict[str, Any]]:
        """The records of the shards ``progress`` lists, in order; records files of later shards are ignored."""
        if "records" in progress:  # an earlier AffectLab kept every record in progress.json itself
            return list(progress["records"])
        records: list[dict[str, Any]] = []
        for shard in range(len(progress["shards"])):
            records += json.loads(self._records_file(shard).read_text())["records"]
        return records

    def done(self) -> int:
        """Samples written by earlier tries (whole shards only): where a resumed preparation starts."""
        progress = self._progress()
        return 0 if progress is None else sum(s["count"] for s in progress["shards"])

    def written_ids(self) -> list[int]:
        """Ids of the samples written by earlier tries (whole shards only), in the order written."""
        progress = self._progress()
        return [] if progress is None else [r["id"] for r in self._recorded(progress)]

    def saved_state(self) -> dict[str, Any] | None:
        """What ``write``'s ``state()`` returned when the last finished shard was recorded (None: no shard yet)."""
        progress = self._progress()
        return None if progress is None else progress.get("caller")

    def write(self, samples: Iterable[StoreSample], total: int | None, progress: Any = None,
              state: Callable[[], dict[str, Any]] | None = None) -> None:
        """Store ``samples``: the data set's samples from position ``done()`` on, always in the same order
        (``total`` in all; None when the count is only known at the end, as when unreadable videos are
        skipped). ``progress(done, total)`` is called after each shard. ``state()``, if given, is saved with
        each finished shard, in the same atomic write, so a resumed caller gets back exactly the bookkeeping
        (counts, skipped files) of the samples already stored (``saved_state``)."""
        if self.complete:
            return
        (self.path / RECORDS).mkdir(parents=True, exist_ok=True)
        progress_state = self._progress() or {"shards": []}
        records = self._recorded(progress_state)
        if "records" in progress_state:  # an earlier AffectLab's progress.json: its records move to their files
            del progress_state["records"]
            start = 0
            for shard, entry in enumerate(progress_state["shards"]):
                atomic_write_json(self._records_file(shard), {"records": records[start : start + entry["count"]]})
                start += entry["count"]
            atomic_write_json(self.path / PROGRESS, progress_state)
        buffer: list[StoreSample] = []
        for sample in samples:
            buffer.append(sample)
            if len(buffer) == self.shard_samples:
                shard = len(progress_state["shards"])
                shard_records = self._flush(buffer, shard)
                atomic_write_json(self._records_file(shard), {"records": shard_records})  # before progress.json lists it
                records += shard_records
                progress_state["shards"].append({"count": len(buffer)})
                if state is not None:
                    progress_state["caller"] = state()
                atomic_write_json(self.path / PROGRESS, progress_state)
                buffer = []
                if progress:
                    progress(len(records), total)
        if buffer:
            records += self._flush(buffer, len(progress_state["shards"]))
            progress_state["shards"].append({"count": len(buffer)})
        if total is not None and len(records) != total:
            raise DataError(f"{self.path}: {len(records)} samples written, {total} expected; the source changed "
                            "between tries: delete the folder and prepare again")
        self._finish(records, len(progress_state["shards"]))
        if progress:
            progress(len(records), total)

    def _flush(self, samples: list[StoreSample], shard: int) -> list[dict[str, Any]]:
        records = [{"id": s.id, "split": s.split, "targets": _jsonable(s.targets), "rows": {}} for s in samples]
        for modality, dim in self.dims.items():
            lengths = [len(s.features[modality]) for s in samples]
            folder = self.path / modality
            folder.mkdir(exist_ok=True)
            target = folder / f"shard_{shard:05d}.npy"
            partial = folder / f"shard_{shard:05d}.partial.npy"
            array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=(sum(lengths), dim))
            start = 0
            for record, sample, length in zip(records, samples, lengths):
                values = np.asarray(sample.features[modality], dtype=np.float32)
                if values.ndim != 2 or values.shape[1] != dim:
                    raise DataError(f"sample {sample.id}: {modality} features of shape {values.shape}, the store holds "
                                    f"[T, {dim}]")
                if length % self.views:
                    raise DataError(f"sample {sample.id}: {length} {modality} rows do not split into {self.views} "
                                    "views of equal length")
                array[start : start + length] = np.clip(values, -65504, 65504)  # float16's range
                record["rows"][modality] = [shard, start, length]
                start += length
            array.flush()
            del array
            os.replace(partial, target)  # a shard exists whole or not at all
        return records

    def _finish(self, records: list[dict[str, Any]], shards: int) -> None:
        n = len(records)
        arrays: dict[str, np.ndarray] = {
            "id": np.asarray([r["id"] for r in records], dtype=np.int64),
            "split": np.asarray([SPLITS.index(r["split"]) for r in records], dtype=np.int8),
        }
        for modality in self.dims:
            arrays[f"rows/{modality}"] = np.asarray([r["rows"][modality] for r in records], dtype=np.int64).reshape(n, 3)
        for task, shape in self.tasks.items():
            values = np.zeros((n, *shape), dtype=self.task_dtypes[task])
            mask = np.zeros(n, dtype=bool)
            for i, record in enumerate(records):
                value = record["targets"].get(task)
                if value is not None:
                    values[i], mask[i] = value, True
            arrays[f"target/{task}"], arrays[f"mask/{task}"] = values, mask
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.path / SAMPLES, buffer.getvalue())
        index = {"version": STORE_VERSION, "samples": n, "shards": shards, "dims": self.dims,
                 "tasks": {t: list(s) for t, s in self.tasks.items()}, "task_dtypes": self.task_dtypes,
                 "source": self.source}
        if self.shapes:
            index["shapes"] = {m: list(s) for m, s in self.shapes.items()}
        if self.class_names:
            index["class_names"] = self.class_names
        if self.token_ids:
            index["token_ids"] = list(self.token_ids)
        if self.views > 1:
            index["views"] = self.views
        atomic_write_json(self.path / INDEX, index)
        (self.path / PROGRESS).unlink(missing_ok=True)
        shutil.rmtree(self.path / RECORDS, ignore_errors=True)


def option_differences(saved: dict[str, Any] | None, given: dict[str, Any]) -> str:
    """The options that differ between a store's ``saved`` ones and the ``given`` ones: "size 16 (not size 24)"."""
    saved = saved or {}
    keys = [k for k in {**saved, **given} if saved.get(k) != given.get(k)]
    was = ", ".join(f"{k} {saved.get(k)!r}" for k in keys)
    return f"{was} (not {', '.join(f'{k} {given.get(k)!r}' for k in keys)})"


def _jsonable(targets: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v is None else np.asarray(v, dtype=np.float32).tolist()) for k, v in targets.items()}


class FeatureStore:
    """Read access: ``store.features(i, modality)`` is sample i's ``[T, D]`` float32 rows (one memory read)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / INDEX).is_file():
            hint = " (an unfinished preparation: run it again to complete it)" if (self.path / PROGRESS).is_file() else ""
            raise DataError(f"{self.path}: no feature store here, {INDEX} is missing{hint}; "
                            "write one with 'affectlab data prepare NAME --raw DIR --out DIR'")
        self.index = json.loads((self.path / INDEX).read_text())
        if self.index.get("version") != STORE_VERSION:
            raise DataError(f"{self.path}: feature store version {self.index.get('version')}, this AffectLab reads "
                            f"{STORE_VERSION}; prepare it again")
        with np.load(self.path / SAMPLES) as samples:
            self.samples = {key: samples[key] for key in samples.files}
        self.dims: dict[str, int] = self.index["dims"]
        self.tasks: dict[str, tuple[int, ...]] = {t: tuple(s) for t, s in self.index["tasks"].items()}
        self.shapes: dict[str, tuple[int, ...]] = {m: tuple(s) for m, s in self.index.get("shapes", {}).items()}
        self.token_ids: tuple[str, ...] = tuple(self.index.get("token_ids", ()))
        self.views = int(self.index.get("views", 1))
        self._shards: dict[tuple[str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.index["samples"])

    def split_indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.samples["split"] == SPLITS.index(split))

    def features(self, i: int, modality: str, max_steps: int | None = None, view: int = 0) -> np.ndarray:
        """Sample ``i``'s ``[T, D]`` rows of view ``view`` as float32; with ``max_steps``, at most that many,
        evenly spaced."""
        shard, start, length = self.samples[f"rows/{modality}"][i]
        if not 0 <= view < self.views:
            raise ValueError(f"view {view}: {self.path} holds {self.views} view(s) per sample")
        length //= self.views
        start += view * length
        key = (modality, int(shard))
        if key not in self._shards:  # opened once per process (also in each loader worker)
            self._shards[key] = np.load(self.path / modality / f"shard_{int(shard):05d}.npy", mmap_mode="r")
        rows = self._shards[key][start : start + length]
        if max_steps is not None and length > max_steps:
            rows = rows[np.linspace(0, length - 1, max_steps).round().astype(int)]
        return rows.astype(np.float32)  # only the rows served are converted from float16

    def target(self, i: int, task: str) -> tuple[np.ndarray, bool]:
        return self.samples[f"target/{task}"][i], bool(self.samples[f"mask/{task}"][i])

    def target_tensors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """task -> (targets [N, ...], masks [N]) as tensors, indexed per sample without copies."""
        if not hasattr(self, "_targets"):
            self._targets = {t: (torch.from_numpy(self.samples[f"target/{t}"]), torch.from_numpy(self.samples[f"mask/{t}"]))
                             for t in self.tasks}
        return self._targets

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "_shards": {}}  # memory maps are reopened in worker processes
        state.pop("_targets", None)
        return state


class StoreSamples(Dataset):
    """Samples of one split; ``draw_views``: one of the store's views at random per load (the train split).
    ``pair_views``: two distinct views per sample, the second under ``second_view_key`` (drawn at random with
    ``draw_views``, else views 0 and 1)."""

    def __init__(self, store: FeatureStore, index: np.ndarray, modalities: tuple[str, ...], max_steps: int,
                 draw_views: bool = False, pair_views: bool = False) -> None:
        self.store, self.index, self.modalities, self.max_steps = store, index, modalities, max_steps
        self.draw_views = draw_views and store.views > 1
        if pair_views and store.views < 2:
            raise ValueError(f"pair_views: {store.path} holds {store.views} view(s) per sample, two are needed")
        self.pair_views = pair_views

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, Any]:
        i = int(self.index[item])
        if self.pair_views:  # two distinct views, the same two for every modality
            first, second = torch.randperm(self.store.views)[:2].tolist() if self.draw_views else (0, 1)
        else:
            first = int(torch.randint(self.store.views, ())) if self.draw_views else 0  # one view for every modality
        sample: dict[str, Any] = {m: torch.from_numpy(self.store.features(i, m, self.max_steps, first))
                                  for m in self.modalities}
        if self.pair_views:
            sample |= {second_view_key(m): torch.from_numpy(self.store.features(i, m, self.max_steps, second))
                       for m in self.modalities}
        targets = self.store.target_tensors()
        sample["targets"] = {task: values[i] for task, (values, _) in targets.items()}
        sample["target_mask"] = {task: masks[i] for task, (_, masks) in targets.items()}
        sample["id"] = torch.tensor(int(self.store.samples["id"][i]))
        return sample


class FeatureStoreDataModule(BaseDataModule):
    """Serves a prepared feature store in the batch contract: feature sequences with masks, the stored targets.

    Args:
        root: the store's folder (``affectlab data prepare ... --out``).
        modalities: which stored modalities to serve; None serves all.
        max_steps: rows per modality and sample, at most (evenly subsampled).
        class_names: task -> class names, for classification tasks (e.g. MOSEI's six emotions); None serves
            the names the store was prepared with, if any.
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        pair_views: serve two distinct stored views of every sample (``<modality>`` and ``<modality>_view2``,
            module docstring), for SimCLR's two augmented views; needs a store prepared with ``--views`` >= 2.
    """

    def __init__(self, root: str, modalities: list[str] | None = None, max_steps: int = 50,
                 class_names: dict[str, list[str]] | None = None, batch_size: int = 32, num_workers: int = 0,
                 pair_views: bool = False) -> None:
        super().__init__(batch_size, num_workers)  # modalities, tasks and class names: read from the store
        self.root, self.max_steps, self.pair_views = root, max_steps, pair_views
        self.requested = modalities
        self.configured_class_names = {k: tuple(v) for k, v in (class_names or {}).items()}
        self.store: FeatureStore | None = None

    @property
    def class_names(self) -> dict[str, tuple[str, ...]]:
        if self.configured_class_names:
            return self.configured_class_names
        return {k: tuple(v) for k, v in self._open().index.get("class_names", {}).items()}

    def _open(self) -> FeatureStore:
        if self.store is None:
            self.store = FeatureStore(self.root)
            stored = list(self.store.dims)
            unknown = [m for m in (self.requested or []) if m not in stored]
            if unknown:
                raise ConfigError(f"data.init_args.modalities: {unknown} are not in the store {self.root} ({stored})")
            if self.pair_views and self.store.views < 2:
                source = self.store.index.get("source", {})
                raise ConfigError(
                    f"data.init_args.pair_views: the store {self.root} holds {self.store.views} view per sample, and two "
                    "distinct views of each are needed (SimCLR's two augmented views); prepare a store of several with\n  "
                    f"{views_command(source, self.root)}\n(the original drew from 10 views; any N >= 2 serves)"
                )
        return self.store

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.requested or self._open().dims)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self._open().tasks)

    def setup(self, stage: str | None = None) -> None:
        self._open()

    def class_counts(self, task: str, split: str = "train") -> torch.Tensor:
        """Multi-label tasks: ``[L, 2]`` (without, with each label) over the labelled samples of ``split``."""
        store = self._open()
        index = store.split_indices(split)
        values = store.samples[f"target/{task}"][index][store.samples[f"mask/{task}"][index]]
        if values.ndim == 2:
            present = (values > 0).sum(axis=0)
            return torch.stack([torch.from_numpy(len(values) - present), torch.from_numpy(present)], dim=1)
        return torch.bincount(torch.from_numpy(values.astype(np.int64)))

    def dataset(self, split: str) -> StoreSamples:
        store = self._open()
        return StoreSamples(store, store.split_indices(split), self.modalities, self.max_steps,
                            draw_views=split == "train", pair_views=self.pair_views)

    def collate(self) -> Callable[[list[Any]], Any]:
        store = self._open()
        served = [*self.modalities, *(second_view_key(m) for m in self.modalities if self.pair_views)]
        base = {second_view_key(m): m for m in self.modalities} | {m: m for m in self.modalities}
        return UnflattenSteps({key: store.shapes[base[key]] for key in served if base[key] in store.shapes},
                              tuple(key for key in served if base[key] in store.token_ids), tuple(served))


def views_command(source: dict[str, Any], store: str | Path) -> str:
    """The ``affectlab data prepare`` of a store like the one ``source`` describes, with 10 views per sample."""
    name, raw = source.get("name", "NAME"), source.get("raw", "DIR")
    return f"affectlab data prepare {name} --raw {raw} --out {str(store).rstrip('/')}-views10 --views 10 (and its other options)"


class UnflattenSteps:
    """Collate as ``collate_padded`` (rows padded per batch, with masks), then give modalities stored as
    flattened pictures their step shape back: ``[B, T, D]`` -> ``[B, T, *shape]`` (e.g. ``[B, T, 3, S, S]``),
    token ids their form (``[B, L, 1]`` float -> ``[B, L]`` long), and a modality no sample of the batch has
    rows of (clips without audio) one zero step, masked out. A class, not a closure, so loader worker
    processes can unpickle it."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], token_ids: tuple[str, ...] = (),
                 modalities: tuple[str, ...] = ()) -> None:
        self.shapes, self.token_ids, self.modalities = shapes, token_ids, modalities

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate_padded(samples)
        for modality in self.modalities:
            rows = batch[modality]
            if rows.shape[1] == 0:  # (B, 0, D): encoders cannot pool over nothing
                batch[modality] = rows.new_zeros(rows.shape[0], 1, rows.shape[2])
                batch[f"{modality}_mask"] = torch.zeros(rows.shape[0], 1, dtype=torch.bool)
        for modality in self.token_ids:
            batch[modality] = batch[modality][..., 0].round().long()  # (B, L)
        for modality, shape in self.shapes.items():
            rows = batch[modality]  # (B, T, D)
            batch[modality] = rows.view(*rows.shape[:2], *shape)  # (B, T, *shape)
        return batch
