"""Label efficiency: a stratified, seeded subset of the train split keeps its labels; the rest is dropped or masked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectlab.data.splits import stratified_subset
from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.errors import ConfigError
from conftest import TINY_DATA


def _data(tiny_data, **options) -> AffectSynthDataModule:
    data = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA, **options)
    data.setup()
    return data


def _train_emotions(data: AffectSynthDataModule) -> np.ndarray:
    return np.asarray(data.arrays.emotion)[data.dataset("train").indices]


@pytest.mark.parametrize("fraction", [0.1, 0.5, 1.0])
def test_sizes_follow_the_fraction_per_class(tiny_data, fraction):
    full = _train_emotions(_data(tiny_data))
    kept = _train_emotions(_data(tiny_data, label_fraction=fraction))
    for label in np.unique(full):
        n = int((full == label).sum())
        assert (kept == label).sum() == max(1, int(np.floor(fraction * n + 0.5)))  # rounded half up, >= 1
    if fraction == 1.0:
        assert len(kept) == len(full)


def test_every_class_keeps_a_label_and_val_test_are_untouched(tiny_data):
    full, data = _data(tiny_data), _data(tiny_data, label_fraction=0.01)
    assert set(_train_emotions(data)) == set(_train_emotions(full))  # 1 % of a tiny class rounds to 0: kept 1
    for split in ("val", "test"):
        assert np.array_equal(data.dataset(split).indices, full.dataset(split).indices)
    assert data.class_counts("emotion").sum() == len(set(_train_emotions(full)))


def test_the_subset_depends_on_the_seed_only(tiny_data):
    first = _data(tiny_data, label_fraction=0.5, label_seed=3).dataset("train").indices
    again = _data(tiny_data, label_fraction=0.5, label_seed=3).dataset("train").indices
    other = _data(tiny_data, label_fraction=0.5, label_seed=4).dataset("train").indices
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_smaller_fractions_are_nested_in_larger_ones():
    labels = np.random.default_rng(0).integers(0, 5, size=200)
    subsets = [stratified_subset(labels, f, seed=1) for f in (0.1, 0.3, 0.6, 1.0)]
    for small, large in zip(subsets, subsets[1:]):
        assert not (small & ~large).any()
    assert subsets[-1].all()


def test_mask_mode_keeps_samples_and_masks_every_task(tiny_data):
    dropped = _data(tiny_data, label_fraction=0.5)
    masked = _data(tiny_data, label_fraction=0.5, unlabelled="mask")
    dataset = masked.dataset("train")
    assert len(dataset) == len(masked.splits["train"]) > len(dropped.dataset("train"))
    flags = [dataset[i]["target_mask"] for i in range(len(dataset))]
    labelled = {int(dataset.indices[i]) for i, f in enumerate(flags) if f["emotion"]}
    assert all(len(set(f.values())) == 1 for f in flags)  # all tasks masked together
    assert labelled == set(dropped.dataset("train").indices.tolist())  # same subset either way
    batch = next(iter(masked.train_dataloader()))
    assert batch["target_mask"]["emotion"].dtype == torch.bool
    assert masked.class_counts("emotion").sum() == len(labelled)  # counts only the labelled samples


def test_a_subset_smaller_than_a_batch_still_gives_a_batch(tiny_data):
    data = _data(tiny_data, label_fraction=0.1)
    assert len(data.dataset("train")) < TINY_DATA["batch_size"]
    batches = list(data.train_dataloader())
    assert len(batches) == 1 and len(batches[0]["id"]) == len(data.dataset("train"))


def test_class_counts(tiny_data):
    data = _data(tiny_data)
    counts = data.class_counts("emotion")
    assert counts.shape == (7,) and counts.sum() == len(data.splits["train"])
    assert torch.equal(counts, torch.bincount(torch.from_numpy(_train_emotions(data)), minlength=7))
    au = data.class_counts("au")
    assert au.shape == (12, 2) and (au.sum(dim=1) == len(data.splits["train"])).all()
    assert data.class_counts("emotion", split="test").sum() == len(data.splits["test"])
    with pytest.raises(ValueError, match="not a classification task"):
        data.class_counts("sentiment")


@pytest.mark.parametrize(
    "options, key",
    [
        ({"label_fraction": 0.0}, "data.init_args.label_fraction"),
        ({"label_fraction": 1.5}, "data.init_args.label_fraction"),
        ({"label_fraction": -0.2}, "data.init_args.label_fraction"),
        ({"unlabelled": "ignore"}, "data.init_args.unlabelled"),
    ],
)
def test_bad_values_are_rejected(tiny_data, options, key):
    with pytest.raises(ConfigError, match=key):
        AffectSynthDataModule(root=str(tiny_data), **TINY_DATA, **options)
