"""compositeSine: seed 002's two-task regression problem (wowolo/multi_task_learning@229f6cc), reproduced exactly.

One input ``x``, ``s = sin(-3 pi x)`` and seven outputs of ``s`` (``composite_sine``); ``task_0`` learns output 0
from 256 evenly spaced points on [-2, 0], ``task_1`` outputs 1-6 from 512 on [-2, 2]. Training outputs carry
noise ``N(0, 1) * 0.2`` (all seven drawn, as the original does, so the stream of draws is the same); validation
is 2048 evenly spaced, noise-free points on [-2, 2] per task. The original has no test set; the test split here
is the validation grid again.

The noise is drawn as the original draws it: numpy's legacy ``RandomState(seed)`` (what ``np.random.seed`` seeds),
one ``normal(size=(n_task, 7))`` per task in task order, float64, then stored as float32 (the original's
``torch.tensor(..., dtype=torch.float)``). ``noise_draw`` picks which draw of that stream is used: the original
calls its generator twice after seeding (once for its logging callback's plots, once for the data it trains
on), so ``noise_draw: 1`` is the data the original trained on and ``0`` the points its plots showed instead
(docs/multitask.md, "compositeSine", has the cross-check against the original's own code).

Batches: the original splits each batch of 64 into fixed per-task parts, giving the remainder always to
``task_0`` (22 and 42 instead of 21.3 and 42.7: its ``np.argmax`` of a ``dict_values`` is always 0). Here a
batch takes each task's samples in proportion to the tasks' sizes (``ProportionalTaskBatchSampler``: 21 or 22
of task_0 and 42 or 43 of task_1, every sample once per epoch).

Not in the data set registry (``data/registry.py`` lists data sets read from a root in a layout; this one has
neither): ``--data composite_sine`` finds ``configs/data/composite_sine.yaml`` as every bundled name does.

A batch: ``x`` ``[B, 1]`` float, ``targets[task]`` ``[B, len(outputs[task])]`` float (zeros where the sample
belongs to another task), ``target_mask[task]`` ``[B]`` bool (the original's ``task_activity``), ``id`` ``[B]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from affectlab.data.base import BaseDataModule
from affectlab.data.loaders import ResumableLoader
from affectlab.data.samplers import experiment_seed, loader_generator
from affectlab.data.splits import SPLITS
from affectlab.errors import ConfigError

NUM_OUTPUTS = 7
OUTPUT_NAMES = ("oneKink(s)", "|s-0.4|+0.5", "s^2-0.5", "step(s)", "s^3", "sin(pi s)", "0.7357 e^s - 1")
BATCHINGS = ("proportional", "random")

# The seed's experiment (experiments/compositeSine/configs.py of the original).
SEED_TRAIN_SIZES = {"task_0": 256, "task_1": 512}
SEED_TRAIN_RANGES = {"task_0": (-2.0, 0.0), "task_1": (-2.0, 2.0)}
SEED_OUTPUTS = {"task_0": [0], "task_1": [1, 2, 3, 4, 5, 6]}


def composite_sine(x: np.ndarray) -> np.ndarray:
    """The seven outputs of ``s = sin(-3 pi x)``, ``x`` ``[N]`` -> ``[N, 7]`` float64.

    Written operation for operation as the original's ``function_library`` (``scaledSine`` with p = [.4, 1, 2, -3],
    then ``oneKink``, ``abs``, ``squared``, ``negToPos``, ``cubed``, ``sine``, ``exp``), so the floats agree to
    the last bit:
    ``oneKink(s) = 2 [s < .4] (s - .4) + 1 - 3 [s > .4] (s - .4)``, ``|s - .4| + .5``, ``s^2 - .5``,
    ``2 [s > 0] - 1``, ``s^3``, ``sin(pi s)``, ``.7357 e^s - 1``.
    """
    x = np.asarray(x, dtype=np.float64)
    s = np.sin(np.pi * -3.0 * x)  # (N,)
    return np.array([
        2.0 * (s < 0.4) * (s - 0.4) + 1.0 + -3.0 * (s > 0.4) * (s - 0.4),
        np.abs(s - 0.4) + 0.5,
        s**2 - 0.5,
        2.0 * (s > 0) - 1,
        s**3,
        np.sin(np.pi * s),
        np.exp(s) * 0.7357 - 1,
    ]).T  # (N, 7)


def composite_sine_split(sizes: Mapping[str, int], ranges: Mapping[str, Sequence[float]], noise_scale: float = 0.0,
                         rng: np.random.RandomState | None = None) -> dict[str, np.ndarray]:
    """One split, the tasks' samples one after another in ``sizes``' order.

    Returns:
        ``x`` ``[N]`` float64 (``linspace`` per task), ``y`` ``[N, 7]`` float64, ``task`` ``[N]`` int64 (position
        of the sample's task in ``sizes``). With ``noise_scale`` > 0 (training), ``rng`` draws
        ``normal(size=(n, 7))`` per task, in task order.
    """
    xs, ys, tasks = [], [], []
    for index, (task, n) in enumerate(sizes.items()):
        low, high = ranges[task]
        x = np.linspace(low, high, n)  # (n,) evenly spaced, both ends included
        y = composite_sine(x)
        if noise_scale:
            y = y + rng.normal(scale=1, size=(n, NUM_OUTPUTS)) * noise_scale
        xs.append(x)
        ys.append(y)
        tasks.append(np.full(n, index, dtype=np.int64))
    return {"x": np.concatenate(xs), "y": np.concatenate(ys).reshape(-1, NUM_OUTPUTS), "task": np.concatenate(tasks)}


class CompositeSineDataset(Dataset):
    """One point of one task per item: ``x`` ``[1]``, every task's target (its outputs; zeros but for the
    sample's own task) and ``target_mask`` True for its own task only."""

    def __init__(self, arrays: dict[str, np.ndarray], outputs: Mapping[str, Sequence[int]]) -> None:
        self.x = torch.from_numpy(arrays["x"].astype(np.float32)).unsqueeze(1)  # (N, 1)
        self.y = torch.from_numpy(arrays["y"].astype(np.float32))  # (N, 7)
        self.task = torch.from_numpy(arrays["task"])  # (N,)
        self.names = list(outputs)
        self.outputs = {name: list(dims) for name, dims in outputs.items()}

    def __len__(self) -> int:
        return len(self.task)

    def __getitem__(self, item: int) -> dict[str, Any]:
        own = self.names[int(self.task[item])]
        return {
            "x": self.x[item],
            "x_mask": torch.ones(1, dtype=torch.bool),
            "targets": {name: self.y[item, dims] if name == own else torch.zeros(len(dims))
                        for name, dims in self.outputs.items()},
            "target_mask": {name: name == own for name in self.names},
            "id": item,
        }


class _EpochCounter:
    """What Lightning calls ``set_epoch`` on: it looks for it on ``batch_sampler.sampler``."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class ProportionalTaskBatchSampler(Sampler[list[int]]):
    """Batches whose share of each task is that task's share of the data, every sample once per epoch.

    Each task's samples are shuffled (seeded by ``seed`` and the epoch, so a resumed run sees the same batches)
    and placed at evenly spaced positions ``(i + 1/2) / n_k`` of the epoch; merging all tasks by position and
    cutting every ``batch_size`` gives batches holding ``batch_size * n_k / N`` samples of task k, rounded up or
    down, never the whole remainder on one task (the original's defect, module docstring).

    Args:
        task: the task index of every item ``[N]``.
        batch_size: items per batch (the last one may be smaller).
        shuffle: draw a new order per epoch (train); False keeps each task's items in order.
        seed: with the epoch, decides the order.
    """

    def __init__(self, task: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0) -> None:
        self.task = np.asarray(task)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.sampler = _EpochCounter()

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def order(self) -> np.ndarray:
        """Every item once, in the order batches are cut from, ``[N]``."""
        rng = np.random.default_rng([self.seed, self.sampler.epoch])
        items, positions = [], []
        for k in np.unique(self.task):
            members = np.flatnonzero(self.task == k)
            if self.shuffle:
                members = rng.permutation(members)
            items.append(members)
            positions.append((np.arange(len(members)) + 0.5) / len(members))
        merged = np.argsort(np.concatenate(positions), kind="stable")  # ties: the lower task index first
        return np.concatenate(items)[merged]

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order()
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-len(self.task) // self.batch_size)


class CompositeSineDataModule(BaseDataModule):
    """compositeSine (module docstring); the defaults are the seed's experiment.

    Args:
        train_sizes: task -> training points (evenly spaced on its ``train_ranges`` interval); the tasks, in order.
        train_ranges: task -> ``[low, high]`` of its training points.
        outputs: task -> the outputs (of the seven) it learns; its target is ``y[:, outputs]``.
        val_size: validation points per task, evenly spaced on ``val_range``, noise-free (the test split too).
        val_range: ``[low, high]`` of the validation points.
        noise_scale: standard deviation of the Gaussian noise on the training outputs.
        seed: of the noise (the original's ``seed_everything(77)``), independent of the training seed.
        noise_draw: which draw of the seeded noise stream (module docstring): 1 is what the original trained on.
        batching: ``proportional`` (``ProportionalTaskBatchSampler``) or ``random`` (plain shuffled batches of the
            pooled tasks, the original's ``data_stochastic``).
        batch_size: points per batch.
        num_workers: data loader worker processes.
    """

    def __init__(
        self,
        train_sizes: dict[str, int] | None = None,
        train_ranges: dict[str, tuple[float, float]] | None = None,
        outputs: dict[str, list[int]] | None = None,
        val_size: int = 2048,
        val_range: tuple[float, float] = (-2.0, 2.0),
        noise_scale: float = 0.2,
        seed: int = 77,
        noise_draw: int = 0,
        batching: str = "proportional",
        batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        sizes = dict(SEED_TRAIN_SIZES if train_sizes is None else train_sizes)
        ranges = dict(SEED_TRAIN_RANGES if train_ranges is None else train_ranges)
        dims = dict(SEED_OUTPUTS if outputs is None else outputs)
        for key, given in (("train_ranges", ranges), ("outputs", dims)):
            if set(given) != set(sizes):
                raise ConfigError(f"data.init_args.{key}: tasks {sorted(given)} differ from train_sizes' "
                                  f"{sorted(sizes)}; give every task one value")
        for task, n in sizes.items():
            if not isinstance(n, int) or n < 1:
                raise ConfigError(f"data.init_args.train_sizes.{task}: {n!r} is not a positive number of points")
            if len(ranges[task]) != 2 or not ranges[task][0] < ranges[task][1]:
                raise ConfigError(f"data.init_args.train_ranges.{task}: {list(ranges[task])} is not [low, high] "
                                  "with low < high")
            bad = [d for d in dims[task] if not 0 <= d < NUM_OUTPUTS]
            if bad or not dims[task]:
                raise ConfigError(f"data.init_args.outputs.{task}: {dims[task]} must be a non-empty list of outputs "
                                  f"0..{NUM_OUTPUTS - 1} ({', '.join(OUTPUT_NAMES)})")
        if batching not in BATCHINGS:
            raise ConfigError(f"data.init_args.batching: {batching!r} is not one of {list(BATCHINGS)}")
        if noise_draw < 0:
            raise ConfigError(f"data.init_args.noise_draw: {noise_draw} is not a draw number (0, 1, ...)")
        if val_size < 1:
            raise ConfigError(f"data.init_args.val_size: {val_size} is not a positive number of points")
        super().__init__(batch_size, num_workers, modalities=("x",), tasks=tuple(sizes), class_names={})
        # Every per-task mapping in train_sizes' order: a sample's task index is its task's position there.
        self.train_sizes = sizes
        self.train_ranges = {task: ranges[task] for task in sizes}
        self.outputs = {task: list(dims[task]) for task in sizes}
        self.val_size, self.val_range = val_size, tuple(val_range)
        self.noise_scale, self.seed, self.noise_draw = noise_scale, seed, noise_draw
        self.batching = batching
        self.arrays: dict[str, dict[str, np.ndarray]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.arrays:
            return
        rng = np.random.RandomState(self.seed)
        for _ in range(self.noise_draw + 1):  # the same draws, in the same order, as the original's calls
            train = composite_sine_split(self.train_sizes, self.train_ranges, self.noise_scale, rng)
        grid = composite_sine_split({task: self.val_size for task in self.train_sizes},
                                    {task: self.val_range for task in self.train_sizes})
        self.arrays = {"train": train, "val": grid, "test": grid}

    def dataset(self, split: str) -> CompositeSineDataset:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.setup()
        return CompositeSineDataset(self.arrays[split], self.outputs)

    def task_points(self, split: str = "train") -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Task -> its points of ``split``: ``x`` ``[n]`` and its targets ``[n, len(outputs)]``, float32 as trained
        on (what the fit pictures plot: the very points of the training data, not another noise draw)."""
        self.setup()
        arrays = self.arrays[split]
        points = {}
        for index, (task, dims) in enumerate(self.outputs.items()):
            mine = arrays["task"] == index
            points[task] = (arrays["x"][mine].astype(np.float32), arrays["y"][mine][:, dims].astype(np.float32))
        return points

    def output_names(self) -> dict[str, list[str]]:
        """Task -> the names of its outputs (``output 1: |s-0.4|+0.5``), for pictures."""
        return {task: [f"output {d}: {OUTPUT_NAMES[d]}" for d in dims] for task, dims in self.outputs.items()}

    def loader(self, split: str) -> DataLoader:
        if split != "train" or self.batching != "proportional":
            return super().loader(split)
        dataset = self.dataset(split)
        batches = ProportionalTaskBatchSampler(self.arrays["train"]["task"], self.batch_size, seed=experiment_seed())
        return ResumableLoader(dataset, batch_sampler=batches, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, generator=loader_generator())
