"""The one data loader every data module serves its splits with.

The train split comes in an order that depends only on the experiment seed and the epoch (resume-proof), the
others in index order, each loader with a private generator (``data/samplers.py`` says why). Under DDP each
evaluation sample goes to exactly one process: Lightning's default ``DistributedSampler`` pads the last
processes' shares with repeated samples, which the reduced validation and test metrics would then count twice.

A batch in which every sample was unreadable (the corrupt-sample policy's ``skip``: the collate function then
returns no sample, only the skipped paths) never reaches a method: ``SkippingLoader`` hands it to its
``on_empty`` callback (which counts it and names the files) and goes on to the next one; a pass over a split in
which no batch had a readable sample is a DataError naming files, not a crash in the method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset

from affectlab.data.samplers import (
    EpochSeededRandomSampler,
    experiment_seed,
    loader_generator,
)
from affectlab.errors import DataError


def empty_batch(batch: Any) -> bool:
    """Whether ``batch`` holds no sample: the collation of only unreadable ones (``{"skipped": [...], "id": []}``)."""
    return isinstance(batch, dict) and "skipped" in batch and "id" in batch and len(batch["id"]) == 0


class ResumableLoader(DataLoader):
    """A DataLoader that can start an epoch part-way, so that a run preempted mid-epoch resumes exactly.

    Its position (batches served in the current epoch) goes into checkpoints through Lightning's stateful-loader
    interface (``state_dict``/``load_state_dict``); Lightning loads it back only when resuming mid-epoch. The
    next epoch then starts by passing over that many batches of the same order, which the epoch-seeded samplers
    make the order of the interrupted epoch. Without workers the indices are passed over without loading
    anything; with workers (which prefetch indices as soon as the iterator exists) the batches are loaded and
    dropped. The skip happens at the first batch, after Lightning has set the sampler's epoch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._served, self._resume_at = 0, 0

    def state_dict(self) -> dict[str, int]:
        return {"batches_served": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume_at = int(state.get("batches_served", 0))

    def _raw_batches(self) -> Iterator[Any]:
        skip, self._resume_at = self._resume_at, 0
        iterator = super().__iter__()
        sampler_iterator = getattr(iterator, "_sampler_iter", None)
        for _ in range(skip):
            if self.num_workers == 0 and sampler_iterator is not None:
                next(sampler_iterator)  # the indices of a batch already trained on: nothing is loaded
            else:
                next(iterator)
        self._served = skip
        for batch in iterator:
            self._served += 1
            yield batch

    def __iter__(self) -> Iterator[Any]:
        return self._raw_batches()


class SkippingLoader(ResumableLoader):
    """A DataLoader that leaves out batches without a readable sample (module docstring).

    Args:
        on_empty: called with each such batch (its ``skipped`` paths) before it is left out.
        split: the split's name, in the error when none of its batches had a readable sample.
        *args, **kwargs: DataLoader's (Lightning rebuilds the loader with them under DDP, ``on_empty`` included).
    """

    def __init__(self, *args: Any, on_empty: Callable[[Any], None] | None = None, split: str = "data",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_empty, self.split = on_empty, split

    def __iter__(self) -> Iterator[Any]:
        served, skipped = 0, []
        for batch in self._raw_batches():
            if empty_batch(batch):
                skipped += list(batch["skipped"])
                if self.on_empty is not None:
                    self.on_empty(batch)
                continue
            served += 1
            yield batch
        if not served and skipped:
            shown = ", ".join(map(str, skipped[:5])) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            raise DataError(f"split {self.split!r}: no batch held a readable sample ({len(skipped)} unreadable: "
                            f"{shown}); replace or remove those files (affectlab data check lists them all)")


def split_loader(dataset: Dataset, split: str, batch_size: int, num_workers: int = 0,
                 collate_fn: Callable[[list[Any]], Any] | None = None, world_size: int = 1,
                 rank: int = 0, on_empty: Callable[[Any], None] | None = None) -> DataLoader:
    """The loader of ``split``; ``world_size`` and ``rank`` are the trainer's (1 and 0 without DDP);
    ``on_empty`` given, a ``SkippingLoader`` that leaves out batches without a readable sample."""
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
    skipping = {} if on_empty is None else {"on_empty": on_empty, "split": split}
    return (SkippingLoader if on_empty is not None else ResumableLoader if train else DataLoader)(
        dataset, batch_size=batch_size, collate_fn=collate_fn, sampler=sampler,
        # A last batch of one sample breaks BatchNorm; a train split of at most one batch is served whole.
        drop_last=train and len(dataset) > batch_size,
        num_workers=num_workers, persistent_workers=num_workers > 0, generator=loader_generator(),
        **skipping,
    )
