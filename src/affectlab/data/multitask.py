"""MultiTaskDataModule: one data module per task, their batches served as one multi-task batch.

A researcher's corpora rarely carry every label: one data set has emotions, another action units. Each member
data module here serves its own tasks (by default the task its name says: ``datasets: {emotion: ..., au:
...}``), and every batch this module serves holds the targets of the union of the members' tasks, with
``target_mask[task]`` True only on the samples of a member that serves ``task`` (and, within it, where the
member's own mask says so: members may carry partial labels themselves). A task's target a member lacks is
filled with zeros of the task's shape, masked out.

Training: the members' train loaders are combined with Lightning's ``CombinedLoader`` (``mode``:
``max_size_cycle``, an epoch is the largest member's pass with the others cycling; ``min_size``, the smallest's;
``max_size``, the largest's with the exhausted members left out), and each step's member batches are
concatenated along the batch dimension into one batch (``on_before_batch_transfer``), so the trunk runs once
and each task's loss reads its own samples. Each member keeps its batch size, so a step's share of each task
is the ratio of those sizes. Lightning has no ``sequential`` mode for training; evaluation always goes
through the members one after another (each batch one member's), from the members' own loaders, so their
sharding under DDP and their unreadable-file accounting stay theirs.

Members must serve batches that concatenate: the modalities of every member (the module serves those all of
them have) with equal shapes after the batch dimension; a mismatch is a DataError naming the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import torch
from lightning.pytorch.utilities import CombinedLoader

from affectlab.data.base import BaseDataModule
from affectlab.errors import ConfigError, DataError

TRAIN_MODES = ("max_size_cycle", "min_size", "max_size")
META_KEYS = ("id", "subject", "domain")


class _Chained:
    """The members' loaders one after another, each batch completed to the union of tasks."""

    def __init__(self, owner: MultiTaskDataModule, loaders: dict[str, Any]) -> None:
        self.owner, self.loaders = owner, loaders

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for name, loader in self.loaders.items():
            for batch in loader:
                yield self.owner.complete(name, batch)

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())


class MultiTaskDataModule(BaseDataModule):
    """Args:
        datasets: the member data modules by name; by default a member serves the task its name is.
        tasks: member name -> the tasks whose labels it serves, for members serving other or several tasks
            (``{faces: [au, au_intensity]}``); a member not named here serves the task named like it.
        mode: how the members' train loaders combine (module docstring).
        batch_size: of nothing: each member batches with its own size (the argument exists for the tuner and
            messages; None reads the first member's).
        num_workers: of nothing either: each member's loaders use their own.
    """

    def __init__(
        self,
        datasets: dict[str, BaseDataModule],
        tasks: dict[str, list[str]] | None = None,
        mode: Literal["max_size_cycle", "min_size", "max_size"] = "max_size_cycle",
        batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        if not datasets:
            raise ConfigError("data.init_args.datasets: no member data modules; give one per task, e.g. "
                              "{emotion: {class_path: ...}, au: {class_path: ...}}")
        if mode not in TRAIN_MODES:
            raise ConfigError(f"data.init_args.mode: {mode!r} is not one of {list(TRAIN_MODES)} (Lightning trains on "
                              "no sequential mode; evaluation always runs the members one after another)")
        tasks = dict(tasks or {})
        unknown = [name for name in tasks if name not in datasets]
        if unknown:
            raise ConfigError(f"data.init_args.tasks: {unknown} name no member of data.init_args.datasets "
                              f"{list(datasets)}")
        self.members = dict(datasets)
        self.member_tasks: dict[str, list[str]] = {}
        for name, member in self.members.items():
            served = list(getattr(member, "tasks", ()) or ())
            wanted = list(tasks.get(name, [name]))
            missing = [t for t in wanted if t not in served]
            if missing:
                key = f"data.init_args.tasks.{name}" if name in tasks else f"data.init_args.datasets.{name}"
                raise ConfigError(f"{key}: member {name!r} ({type(member).__name__}) serves tasks {served}, not "
                                  f"{missing}; name the tasks it serves in data.init_args.tasks.{name}")
            self.member_tasks[name] = wanted
        union = list(dict.fromkeys(t for wanted in self.member_tasks.values() for t in wanted))
        first = next(iter(self.members.values()))
        modalities = [m for m in first.modalities if all(m in member.modalities for member in self.members.values())]
        if not modalities:
            raise ConfigError(f"data.init_args.datasets: the members share no modality ({ {n: list(m.modalities) for n, m in self.members.items()} })")
        class_names = {}
        for name, member in self.members.items():
            for task in self.member_tasks[name]:
                names = getattr(member, "class_names", {}).get(task)
                if names is not None:
                    if task in class_names and tuple(class_names[task]) != tuple(names):
                        raise ConfigError(f"data.init_args.datasets.{name}: its {task!r} classes {list(names)} differ "
                                          f"from another member's {list(class_names[task])}")
                    class_names[task] = names
        super().__init__(batch_size or first.batch_size, num_workers, modalities=modalities, tasks=union,
                         class_names=class_names)
        self.mode = mode
        self.templates: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}

    # -- the members' lifecycle ---------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        for member in self.members.values():
            member.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        for member in self.members.values():
            member.trainer = self.trainer  # their loaders read the trainer (world size, rank, stage)
            member.setup(stage)
        self._find_templates()

    def teardown(self, stage: str) -> None:
        for member in self.members.values():
            member.teardown(stage)

    def _find_templates(self) -> None:
        """Each task's per-sample target shape and dtype, from a sample of a member that serves it."""
        for name, member in self.members.items():
            for task in self.member_tasks[name]:
                if task in self.templates:
                    continue
                for split in ("train", "val", "test"):
                    dataset = member.dataset(split)
                    sample = next((dataset[i] for i in range(min(len(dataset), 8))
                                   if "targets" in dataset[i]), None)
                    if sample is not None:
                        value = torch.as_tensor(sample["targets"][task])
                        self.templates[task] = (tuple(value.shape), value.dtype)
                        break

    # -- batches ------------------------------------------------------------------------------------------------
    def complete(self, name: str, batch: dict[str, Any]) -> dict[str, Any]:
        """A member's batch with the targets and masks of every task: the member's own tasks as it masks
        them, the others zeros and masked out; only the shared modalities and their masks kept."""
        batch = self.members[name].on_after_batch_transfer(batch, 0)  # a member's unreadable-file accounting
        size = len(batch["target_mask"][next(iter(batch["target_mask"]))]) if batch.get("target_mask") else None
        if size is None:
            size = len(batch[self.modalities[0]])
        out = {k: v for k, v in batch.items() if k in self.modalities or k in META_KEYS
               or any(k == f"{m}_mask" for m in self.modalities)}
        targets, masks = {}, {}
        for task in self.tasks:
            if task in self.member_tasks[name]:
                targets[task] = batch["targets"][task]
                masks[task] = batch["target_mask"][task].bool()
            else:
                shape, dtype = self.templates[task]
                targets[task] = torch.zeros((size, *shape), dtype=dtype)
                masks[task] = torch.zeros(size, dtype=torch.bool)
        out["targets"], out["target_mask"] = targets, masks
        return out

    def concatenate(self, batches: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
        """The members' completed batches of one training step as one batch (``[B_1 + B_2 + ..., ...]``)."""
        parts = [self.complete(name, b) for name, b in batches.items() if b is not None]
        if len(parts) == 1:
            return parts[0]

        def cat(values: list[Any], key: str) -> Any:
            if isinstance(values[0], dict):
                return {k: cat([v[k] for v in values], f"{key}.{k}") for k in values[0]}
            shapes = {tuple(v.shape[1:]) for v in values}
            if len(shapes) > 1:
                raise DataError(f"data.init_args.datasets: the members' {key!r} entries have shapes {sorted(shapes)} "
                                "after the batch dimension and cannot form one batch; make them agree (frame size, "
                                "sequence length) or train the tasks separately")
            return torch.cat(values)

        keys = [k for k in parts[0] if all(k in p for p in parts)]
        return {k: cat([p[k] for p in parts], k) for k in keys}

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and batch and set(batch) <= set(self.members) and "targets" not in batch:
            return self.concatenate(batch)
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch  # each member's accounting ran in complete()

    def train_dataloader(self) -> CombinedLoader:
        self.setup()
        return CombinedLoader({name: member.train_dataloader() for name, member in self.members.items()}, self.mode)

    def _evaluation(self, split: str) -> _Chained:
        self.setup()
        return _Chained(self, {name: getattr(member, f"{split}_dataloader")() for name, member in self.members.items()})

    def val_dataloader(self) -> _Chained:
        return self._evaluation("val")

    def test_dataloader(self) -> _Chained:
        return self._evaluation("test")

    def predict_dataloader(self) -> _Chained:
        return self._evaluation("test")

    def data_counts(self) -> dict[str, float]:
        counts: dict[str, float] = {}
        for member in self.members.values():
            for key, value in member.data_counts().items():
                counts[key] = counts.get(key, 0.0) + value
        return counts
