"""The base every data module builds on: what it declares, how it batches, what it does with unreadable files.

A data module declares the modalities it serves, its tasks and their class names (the promise
``contract.check_batch`` holds its batches to), keeps its batch size and loader workers, and implements
``dataset(split)``; Lightning's four loader hooks are served from that by the one ``loaders.split_loader``
(predict runs on the test split). A reader of files whose datasets return ``{"skipped": path}`` for one they
cannot read passes its ``corrupt`` policy (``unreadable.py``): batches are then collated skipping those, each
named once in a warning, and all summed up when a stage ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from affectlab.data.collate import collate_skipping
from affectlab.data.loaders import split_loader
from affectlab.data.unreadable import UnreadableFiles, check_corrupt_policy


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
    """

    def __init__(self, batch_size: int, num_workers: int = 0, modalities: Sequence[str] | None = None,
                 tasks: Sequence[str] | None = None, class_names: dict[str, Sequence[str]] | None = None,
                 corrupt: str | None = None, name: str = "data", kind: str = "image") -> None:
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

    def dataset(self, split: str) -> Dataset:
        raise NotImplementedError(f"{type(self).__name__} serves no dataset(split)")

    def collate(self) -> Callable[[list[Any]], Any] | None:
        """How samples become a batch; None is torch's default collation."""
        return collate_skipping if self.unreadable is not None else None

    def loader(self, split: str) -> DataLoader:
        trainer = self.trainer
        world_size, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        return split_loader(self.dataset(split), split, self.batch_size, self.num_workers, self.collate(),
                            world_size, rank)

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
        report = self.unreadable.report() if self.unreadable is not None else None
        if report:
            print(report, flush=True)
