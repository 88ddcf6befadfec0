"""The one data loader every data module serves its splits with.

The train split comes in an order that depends only on the experiment seed and the epoch (resume-proof), the
others in index order, each loader with a private generator (``data/samplers.py`` says why). Under DDP each
evaluation sample goes to exactly one process: Lightning's default ``DistributedSampler`` pads the last
processes' shares with repeated samples, which the reduced validation and test metrics would then count twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader, Dataset

from affectlab.data.samplers import EpochSeededRandomSampler, experiment_seed, loader_generator


def split_loader(dataset: Dataset, split: str, batch_size: int, num_workers: int = 0,
                 collate_fn: Callable[[list[Any]], Any] | None = None, world_size: int = 1,
                 rank: int = 0) -> DataLoader:
    """The loader of ``split``; ``world_size`` and ``rank`` are the trainer's (1 and 0 without DDP)."""
    train = split == "train"
    if train:
        # Under DDP Lightning wraps this sampler in a DistributedSamplerWrapper, itself epoch-seeded.
        sampler = EpochSeededRandomSampler(dataset, seed=experiment_seed())
    elif world_size > 1:
        # A DistributedSampler subclass, so Lightning keeps it instead of putting its padding one in.
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

        sampler = UnrepeatedDistributedSampler(dataset, world_size, rank, shuffle=False)
    else:
        sampler = None
    return DataLoader(
        dataset, batch_size=batch_size, collate_fn=collate_fn, sampler=sampler,
        # A last batch of one sample breaks BatchNorm; a train split of at most one batch is served whole.
        drop_last=train and len(dataset) > batch_size,
        num_workers=num_workers, persistent_workers=num_workers > 0, generator=loader_generator(),
    )
