"""The base every data module builds on: what it declares, how it batches, what it does with unreadable files.

A data module declares the modalities it serves, its tasks and their class names (the promise
``contract.check_batch`` holds its batches to), keeps its batch size and loader workers, and implements
``dataset(split)``; Lightning's four loader hooks are served from that by the one ``loaders.split_loader``
(predict runs on the test split). A reader of files whose datasets return ``{"skipped": path}`` for one they
cannot read passes its ``corrupt`` policy (``unreadable.py``): batches are then collated skipping those, each
named once in a warning, and all summed up when a stage ends; a batch in which no sample was readable is left
out and counted (``loaders.SkippingLoader``). Samples the reader's listing leaves out (``self.skips``:
unknown class folders, label rows without a file, labelled frames without an image) follow the same policy.
The counts are logged to the run as metrics (``data/unreadable``, ``data/empty_batches``,
``data/left_out/<reason>``) when a loader is made and when a stage ends.

Cross-validation (``affectlab run --commands kfold``, ``runs/kfold.py``): a data module whose samples have
subjects lists the split kinds of ``data/splits.py`` it serves fold by fold in ``fold_kinds``, takes
``split``, ``fold`` and ``num_folds`` as init args (the keys a k-fold run sets per fold:
``data.init_args.fold``), and implements ``fold_samples`` (what the folds are made of) and ``fold_split``;
``fold_count`` is then the number of folds, every fold checked before the first one trains. A module with
no ``fold_kinds`` is refused by name, not run on one split k times.

``max_unreadable_fraction`` (off by default: it loads every sample once) checks before any batch is served,
when fit asks for its first loader (every split) or another stage for its split: a split whose unreadable
share passes it stops with a DataError naming the files, before training rather than at test. A dataset
may offer ``probe(item) -> problem or None``, a cheaper check than loading the sample (video clips: opened,
not decoded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from affectlab.data.collate import collate_skipping
from affectlab.data.loaders import split_loader
from affectlab.data.splits import fold_count
from affectlab.data.unreadable import (
    SkippedSamples,
    UnreadableFiles,
    check_corrupt_policy,
    shown_items,
)
from affectlab.errors import ConfigError, DataError


class BaseDataModule(LightningDataModule):
    """Args:
        batch_size: samples per batch.
        num_workers: data loader worker processes.
        modalities: the modalities served; None where a subclass declares them itself (as a class attribute or
            a property read from its files).
        tasks: the tasks served; None as for ``modalities``.
        class_names: task -> class names of the classification tasks; None as for ``modalities``.
        corrupt: ``skip`` or ``raise`` unreadable files; None for a data module that reads none.
        name: the data set's name in the unreadable files' messages.
        kind: what one file holds, in those messages (``image``, ``clip``).
        max_unreadable_fraction: None (no check), or the share of a split's samples that may be unreadable
            (module docstring: checked before any batch); ``0.0`` allows none.
    """

    def __init__(self, batch_size: int, num_workers: int = 0, modalities: Sequence[str] | None = None,
                 tasks: Sequence[str] | None = None, class_names: dict[str, Sequence[str]] | None = None,
                 corrupt: str | None = None, name: str = "data", kind: str = "image",
                 max_unreadable_fraction: float | None = None) -> None:
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers
        if modalities is not None:
            self.modalities = tuple(modalities)
        if tasks is not None:
            self.tasks = tuple(tasks)
        if class_names is not None:
            self.class_names = {task: tuple(names) for task, names in class_names.items()}
        self.corrupt = None if corrupt is None else check_corrupt_policy(corrupt)
        self.unreadable = None if corrupt is None else UnreadableFiles(name, kind)
        self.skips = SkippedSamples(name, self.corrupt)
        if max_unreadable_fraction is not None and not 0.0 <= max_unreadable_fraction <= 1.0:
            raise ConfigError(f"data.init_args.max_unreadable_fraction: {max_unreadable_fraction} is not a share "
                              "from 0 to 1 (or null: no check)")
        self.max_unreadable_fraction = max_unreadable_fraction
        self.readable_checked: set[str] = set()

    #: the cross-validation kinds (``data/splits.py``) this module serves fold by fold; see the module docstring.
    fold_kinds: tuple[str, ...] = ()

    def fold_samples(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Per sample, its subject ``[N]`` and its corpus or domain ``[N]`` (None where it has none): what
        ``fold_split`` divides. Only modules with ``fold_kinds`` implement it."""
        raise NotImplementedError(f"{type(self).__name__} declares no cross-validation folds")

    def fold_split(self, fold: int) -> dict[str, np.ndarray]:
        """Sample indices per split (train, val, test) of fold ``fold`` of the configured ``split`` kind."""
        raise NotImplementedError(f"{type(self).__name__} declares no cross-validation folds")

    def fold_count(self) -> int:
        """How many folds the configured split has, once each has been checked to be servable (a fold that
        would leave too few subjects for training is found here, before the first fold trains)."""
        name = type(self).__name__
        if not self.fold_kinds:
            raise ConfigError(f"data: {name} has no cross-validation folds (no data.init_args.split/fold), so kfold "
                              "cannot run on it; use a data module with subject folds (AffectSynthDataModule, "
                              "DisfaDataModule) or drop kfold from --commands")
        split = getattr(self, "split", None)
        if split not in self.fold_kinds:
            raise ConfigError(f"data.init_args.split: {split!r} is not a cross-validation split, so kfold has no folds "
                              f"to run; {name} serves {', '.join(self.fold_kinds)} (e.g. --data.init_args.split kfold)")
        subjects, groups = self.fold_samples()
        try:
            count = fold_count(subjects, split, getattr(self, "num_folds", 3), groups)
            for fold in range(count):
                self.fold_split(fold)
        except DataError as error:
            raise ConfigError(f"data.init_args.split: {split} cannot be served fold by fold: {error}") from None
        return count

    def dataset(self, split: str) -> Dataset:
        raise NotImplementedError(f"{type(self).__name__} serves no dataset(split)")

    def collate(self) -> Callable[[list[Any]], Any] | None:
        """How samples become a batch; None is torch's default collation."""
        return collate_skipping if self.unreadable is not None else None

    def loader(self, split: str) -> DataLoader:
        trainer = self.trainer
        world_size, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        dataset = self.dataset(split)
        if split == "train" and len(dataset) == 0:  # nothing to draw from: torch's sampler would fail with a ValueError
            raise DataError(f"{self.skips.dataset}: the train split holds no samples; affectlab data check "
                            f"{self.skips.dataset} lists what was found")
        if self.max_unreadable_fraction is not None:
            fitting = getattr(getattr(trainer, "state", None), "fn", None) == "fit"
            for name in (("train", "val", "test") if fitting else (split,)):
                self.check_readable(name)
        self.log_data_counts()
        on_empty = self.unreadable.empty if self.unreadable is not None else None
        return split_loader(dataset, split, self.batch_size, self.num_workers, self.collate(), world_size, rank,
                            on_empty=on_empty)

    def check_readable(self, split: str) -> None:
        """Load (or ``probe``) every sample of ``split`` once; an unreadable share above
        ``max_unreadable_fraction`` is a DataError naming the files, a smaller one is named and counted."""
        if split in self.readable_checked:
            return
        self.readable_checked.add(split)
        dataset = self.dataset(split)
        probe = getattr(dataset, "probe", None)
        bad: list[str] = []
        for item in range(len(dataset)):
            if probe is not None:
                problem = probe(item)
            else:
                sample = dataset[item]
                problem = sample.get("skipped") if isinstance(sample, dict) else None
            if problem:
                bad.append(str(problem))
        if not bad:
            return
        share = len(bad) / len(dataset)
        if share > self.max_unreadable_fraction:
            what = self.unreadable.kind if self.unreadable is not None else "sample"
            raise DataError(f"{self.skips.dataset} {split}: {len(bad)} of {len(dataset)} {what}s ({share:.1%}) are "
                            f"unreadable, more than data.init_args.max_unreadable_fraction "
                            f"({self.max_unreadable_fraction}): {shown_items(bad, 10)}; replace or remove them "
                            f"(affectlab data check names them all), or raise that option")
        if self.unreadable is not None:
            self.unreadable.take({"skipped": bad})

    def data_counts(self) -> dict[str, float]:
        """What this data module left out so far, as the run's metrics (module docstring)."""
        counts = {f"data/left_out/{reason}": float(n) for reason, n in self.skips.counts.items()}
        if self.unreadable is not None:
            counts["data/unreadable"] = float(len(self.unreadable.paths))
            counts["data/empty_batches"] = float(self.unreadable.empty_batches)
        return counts

    def log_data_counts(self) -> None:
        """Log ``data_counts`` to the trainer's loggers (the run store's MLflow run); nothing without a trainer."""
        trainer = self.trainer
        counts = self.data_counts()
        if trainer is None or not counts:
            return
        for logger in getattr(trainer, "loggers", ()):  # none on a stand-in trainer (a test's world size and rank)
            logger.log_metrics(counts, step=trainer.global_step)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.unreadable is not None:
            return self.unreadable.take(batch)
        return batch

    def teardown(self, stage: str) -> None:
        self.log_data_counts()
        report = self.unreadable.report() if self.unreadable is not None else None
        if report:
            print(report, flush=True)
