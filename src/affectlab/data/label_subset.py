"""What one run of a recipe sees of a labelled data set's train labels: all of them, a seeded fraction, or none.

The recipes (``affectlab recipe VARIANT mosei|meld|caer``) pretrain on a data set's own train split with its
labels never read, and probe at 1 / 10 / 100 % of them. The readers serve every label they have; this wrapper
around any of them (``data`` is a data module config) serves the same samples with

- ``serve_labels: false``: no ``targets`` and no ``target_mask`` at all, and no tasks declared, so a method that
  reads a label fails instead of quietly learning from it (pretraining);
- ``label_fraction: f < 1``: the train split's samples all, but only a seeded draw of them keeps the label of
  ``task`` (its ``target_mask`` stays True, the others' turns False). Single-label tasks are drawn per class
  (``round(f * n_c)``, at least one of each class present), as AffectSynth's own ``label_fraction``; multi-label
  tasks (``[L]`` 0/1 vectors, MOSEI's six emotions) per label set, the same way. Validation and test keep all.

``class_counts`` counts the labelled train samples only, so a probe's inverse-frequency class weights (or BCE
``pos_weight``) come from the labels it may read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.errors import ConfigError


class _Unlabelled(Dataset):
    """The samples of ``dataset`` without their labels."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = dict(self.dataset[item])
        sample.pop("targets", None)
        sample.pop("target_mask", None)
        return sample


class _Masked(Dataset):
    """The samples of ``dataset``; only those at positions in ``keep`` carry ``task``'s label."""

    def __init__(self, dataset: Dataset, task: str, keep: set[int]) -> None:
        self.dataset, self.task, self.keep = dataset, task, keep

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = dict(self.dataset[item])
        if "target_mask" in sample:
            sample["target_mask"] = {**sample["target_mask"], self.task: sample["target_mask"][self.task] & (item in self.keep)}
        return sample


class LabelSubsetDataModule(BaseDataModule):
    """A data module serving another's samples with all, a fraction, or none of its train labels (module doc).

    Args:
        data: the data module whose samples are served (any reader, e.g. ``configs/data/mosei.yaml``).
        label_fraction: fraction of the train split's samples that keep ``task``'s label, in (0, 1].
        label_seed: seed of that draw.
        task: the task the fraction applies to; None: the data module's first classification task.
        serve_labels: False serves no labels at all (self-supervised pretraining).
    """

    def __init__(self, data: BaseDataModule, label_fraction: float = 1.0, label_seed: int = 0,
                 task: str | None = None, serve_labels: bool = True) -> None:
        if not 0.0 < float(label_fraction) <= 1.0:
            raise ConfigError(f"data.init_args.label_fraction: {label_fraction!r} is not a fraction in (0, 1]; "
                              "e.g. 0.1 keeps the labels of a tenth of the train samples")
        super().__init__(data.batch_size, data.num_workers)
        self.data, self.label_fraction, self.label_seed = data, float(label_fraction), label_seed
        self.task_name, self.serve_labels = task, serve_labels
        self._keep: set[int] | None = None
        self._train_targets: list[tuple[torch.Tensor, bool]] | None = None

    # -- what it declares ---------------------------------------------------------------------------------------
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.data.modalities)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.data.tasks) if self.serve_labels else ()

    @property
    def class_names(self) -> dict[str, tuple[str, ...]]:
        return dict(getattr(self.data, "class_names", {})) if self.serve_labels else {}

    @property
    def task(self) -> str:
        if self.task_name is not None:
            if self.task_name not in self.data.tasks:
                raise ConfigError(f"data.init_args.task: {self.task_name!r} is not a task of {type(self.data).__name__} "
                                  f"({list(self.data.tasks)})")
            return self.task_name
        names = getattr(self.data, "class_names", {})
        if not names:
            raise ConfigError(f"data.init_args.task: {type(self.data).__name__} names no classification task; name one "
                              f"of {list(self.data.tasks)}")
        return next(iter(names))

    # -- samples ------------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.data.prepare_data()  # e.g. AffectSynth's generation on first use

    def setup(self, stage: str | None = None) -> None:
        self.data.setup(stage)

    def dataset(self, split: str) -> Dataset:
        dataset = self.data.dataset(split)
        if not self.serve_labels:
            return _Unlabelled(dataset)
        if split != "train" or self.label_fraction >= 1.0:
            return dataset
        return _Masked(dataset, self.task, self.kept())

    def _targets(self) -> list[tuple[torch.Tensor, bool]]:
        """``(target, labelled)`` of ``task`` for each train sample, read once (features are read with them)."""
        if self._train_targets is None:
            dataset, task = self.data.dataset("train"), self.task
            self._train_targets = []
            for item in range(len(dataset)):
                sample = dataset[item]
                self._train_targets.append((torch.as_tensor(sample["targets"][task]), bool(sample["target_mask"][task])))
        return self._train_targets

    def kept(self) -> set[int]:
        """Positions in the train split whose label is served: per class (or label set), a seeded draw."""
        if self._keep is None:
            groups: dict[Any, list[int]] = defaultdict(list)
            multi = False
            for item, (target, labelled) in enumerate(self._targets()):
                multi = multi or bool(target.ndim)
                if labelled:
                    groups[tuple((target > 0).int().tolist()) if target.ndim else int(target)].append(item)
            rng = np.random.default_rng(self.label_seed)
            keep: set[int] = set()
            for key in sorted(groups):
                members = groups[key]
                count = max(1, round(self.label_fraction * len(members)))
                keep.update(int(i) for i in rng.choice(members, size=count, replace=False))
            self._keep = keep
            labelled = sum(len(m) for m in groups.values())
            print(f"label_fraction {self.label_fraction:g}: {len(keep)} of {labelled} labelled train samples keep their "
                  f"{self.task!r} label ({len(groups)} {'label sets' if multi else 'classes'}, at least one of each)",
                  flush=True)
        return self._keep

    def class_counts(self, task: str, split: str = "train") -> torch.Tensor:
        """Counts over the labelled samples of ``split``: ``[C]`` per class, or ``[L, 2]`` (without, with each
        label) for a multi-label task; only the kept train labels when ``label_fraction`` < 1."""
        if task != self.task or split != "train" or self.label_fraction >= 1.0:
            if hasattr(self.data, "class_counts"):
                return self.data.class_counts(task, split)
            raise ConfigError(f"{type(self.data).__name__} has no class_counts(task); set model.init_args.class_weighting: false")
        keep = self.kept()
        targets = torch.stack([t for i, (t, _) in enumerate(self._targets()) if i in keep])
        if targets.ndim == 2:
            present = (targets > 0).sum(dim=0)
            return torch.stack([len(targets) - present, present], dim=1)
        names = self.class_names.get(task)
        return torch.bincount(targets.long(), minlength=len(names) if names else 0)

    def collate(self) -> Callable[[list[Any]], Any] | None:
        return self.data.collate()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.data.on_after_batch_transfer(batch, dataloader_idx)

    def teardown(self, stage: str) -> None:
        self.data.teardown(stage)
