"""Samplers whose order is a pure function of (seed, epoch).

A resumed run must see the same batches as an uninterrupted one. torch's RandomSampler draws its
permutation from the global RNG, whose state a resumed process does not share; this one derives it from
the seed and the epoch that Lightning hands to ``set_epoch``. Under DDP Lightning swaps it for a
DistributedSampler (it subclasses RandomSampler), which is epoch-seeded in the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import RandomSampler


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
