"""Samplers whose order is a pure function of (seed, epoch).

A resumed run must see the same batches as an uninterrupted one. torch's RandomSampler draws its
permutation from the global RNG, whose state a resumed process does not share; this one derives it from
the seed and the epoch that Lightning hands to ``set_epoch``. Under DDP Lightning swaps it for a
DistributedSampler (it subclasses RandomSampler), which is epoch-seeded in the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized

import os

import numpy as np
import torch
from torch.utils.data import RandomSampler, Sampler


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


class IdentityBatchSampler(Sampler[list[int]]):
    """Batches made of several clips of each of a few identities, the order a pure function of (seed, epoch).

    Self-supervised cross-modal matching on randomly drawn batches can be solved by identity alone (each clip
    is the only one of its person, and a face goes with its voice): that does not carry over to new people.
    With ``clips_per_identity`` clips of every identity in a batch, identity no longer tells them apart and
    what the modalities share beyond it (the affect) has to.

    Args:
        subjects: identity of every item of the dataset, in dataset order.
        batch_size: items per batch; a multiple of ``clips_per_identity``.
        clips_per_identity: items of one identity per batch.
        seed: with the epoch, decides the order.
    """

    def __init__(self, subjects: Sequence[int], batch_size: int, clips_per_identity: int, seed: int = 0) -> None:
        if clips_per_identity < 1 or batch_size % clips_per_identity:
            raise ValueError(f"batch_size {batch_size} must be a multiple of clips_per_identity {clips_per_identity}")
        self.subjects = np.asarray(subjects)
        self.batch_size, self.per_identity = batch_size, clips_per_identity
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _groups(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = []
        for subject in np.unique(self.subjects):
            items = rng.permutation(np.flatnonzero(self.subjects == subject))
            usable = len(items) - len(items) % self.per_identity
            groups += list(items[:usable].reshape(-1, self.per_identity))  # (K,) each
        return [groups[i] for i in rng.permutation(len(groups))]

    def __iter__(self) -> Iterator[list[int]]:
        groups, per_batch = self._groups(), self.batch_size // self.per_identity
        for start in range(0, len(groups) - per_batch + 1, per_batch):
            yield np.concatenate(groups[start : start + per_batch]).tolist()

    def __len__(self) -> int:
        counts = np.unique(self.subjects, return_counts=True)[1]
        return int((counts // self.per_identity).sum()) // (self.batch_size // self.per_identity)
