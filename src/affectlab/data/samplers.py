"""Samplers whose order is a pure function of (seed, epoch).

A resumed run must see the same batches as an uninterrupted one. torch's RandomSampler draws its
permutation from the global RNG, whose state a resumed process does not share; this one derives it from
the seed and the epoch that Lightning hands to ``set_epoch``. Under DDP Lightning swaps it for a
DistributedSampler (it subclasses RandomSampler), which is epoch-seeded in the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import os

import torch
from torch.utils.data import RandomSampler


def experiment_seed() -> int:
    """The seed Lightning's ``seed_everything`` set for this run (0 when none was set)."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def loader_generator(seed: int | None = None) -> torch.Generator:
    """A private generator for a DataLoader.

    Creating a DataLoader iterator draws a base seed from its generator, or from the global RNG when it has
    none. Lightning creates iterators at slightly different moments in a fresh and in a resumed run, so a
    draw from the global RNG would shift every later dropout mask of the resumed run.
    """
    return torch.Generator().manual_seed(experiment_seed() if seed is None else seed)


class EpochSeededRandomSampler(RandomSampler):
    def __init__(self, data_source: Sized, seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()
