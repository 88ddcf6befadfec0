"""The data loaders every reader serves its splits with: the train split in an order that depends only on the
experiment seed and the epoch (resume-proof), the others in index order, each with a private generator
(``data/samplers.py`` says why)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader, Dataset

from affectlab.data.samplers import EpochSeededRandomSampler, experiment_seed, loader_generator


def split_loader(dataset: Dataset, split: str, batch_size: int, num_workers: int = 0,
                 collate_fn: Callable[[list[Any]], Any] | None = None) -> DataLoader:
    train = split == "train"
    return DataLoader(
        dataset, batch_size=batch_size, collate_fn=collate_fn,
        sampler=EpochSeededRandomSampler(dataset, seed=experiment_seed()) if train else None,
        drop_last=train and len(dataset) > batch_size,  # a last batch of one sample breaks BatchNorm
        num_workers=num_workers, persistent_workers=num_workers > 0, generator=loader_generator(),
    )


class SplitLoaders:
    """Lightning's four loader hooks from one ``loader(split)`` method; predict runs on the test split."""

    def loader(self, split: str) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.loader("test")
