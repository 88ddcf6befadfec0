"""compositeSine against seed 002's formulas (METHODS.md, "Seed 002"): evenly spaced x, s = sin(-3 pi x), the
seven outputs, the tasks' sizes and intervals, noise on the training outputs only, and batches that take each
task in proportion to its size (the original gave task_0 the whole remainder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectlab.data.synth.composite_sine import (
    CompositeSineDataModule,
    ProportionalTaskBatchSampler,
    composite_sine,
)
from affectlab.errors import ConfigError


def seed_formulas(x: np.ndarray) -> np.ndarray:
    """The seven outputs as METHODS.md writes them, written independently of the module (np.where, not its
    operation order)."""
    s = np.sin(-3 * np.pi * x)
    one_kink = np.where(s < 0.4, 2 * (s - 0.4), 0.0) + 1 - np.where(s > 0.4, 3 * (s - 0.4), 0.0)
    step = np.where(s > 0, 1.0, -1.0)
    return np.stack([one_kink, np.abs(s - 0.4) + 0.5, s**2 - 0.5, step, s**3, np.sin(np.pi * s),
                     0.7357 * np.exp(s) - 1], axis=1)


@pytest.fixture(scope="module")
def data():
    module = CompositeSineDataModule()
    module.setup()
    return module


def test_the_seven_outputs_are_the_seed_s_formulas():
    x = np.linspace(-2, 2, 1001)
    np.testing.assert_allclose(composite_sine(x), seed_formulas(x), rtol=0, atol=1e-12)
    # By hand: x = 0 gives s = 0; x = -1/6 gives s = sin(pi / 2) = 1.
    np.testing.assert_allclose(composite_sine(np.array([0.0]))[0], [0.2, 0.9, -0.5, -1, 0, 0, 0.7357 - 1], atol=1e-12)
    np.testing.assert_allclose(composite_sine(np.array([-1 / 6]))[0],
                               [-0.8, 1.1, 0.5, 1, 1, 0, 0.7357 * np.e - 1], atol=1e-12)


def test_the_tasks_points_are_evenly_spaced_on_the_seed_s_intervals(data):
    train = data.task_points("train")
    assert {task: len(x) for task, (x, _) in train.items()} == {"task_0": 256, "task_1": 512}
    np.testing.assert_allclose(train["task_0"][0], np.linspace(-2, 0, 256), atol=1e-7)
    np.testing.assert_allclose(train["task_1"][0], np.linspace(-2, 2, 512), atol=1e-7)
    assert train["task_0"][1].shape == (256, 1) and train["task_1"][1].shape == (512, 6)
    val = data.task_points("val")
    for task, dims in (("task_0", [0]), ("task_1", [1, 2, 3, 4, 5, 6])):
        x, y = val[task]
        np.testing.assert_allclose(x, np.linspace(-2, 2, 2048), atol=1e-7)
        np.testing.assert_allclose(y, seed_formulas(np.linspace(-2, 2, 2048))[:, dims], atol=1e-6)  # noise-free


def test_training_outputs_carry_the_seeded_noise_draw_by_draw(data):
    y = data.arrays["train"]["y"]  # (768, 7) float64, all seven outputs as the original draws them
    noise = y - composite_sine(data.arrays["train"]["x"])
    rng = np.random.RandomState(77)
    first = np.concatenate([rng.normal(size=(256, 7)), rng.normal(size=(512, 7))]) * 0.2
    np.testing.assert_allclose(noise, first, atol=1e-12)
    assert abs(noise.std() - 0.2) < 0.01
    second = CompositeSineDataModule(noise_draw=1)
    second.setup()
    rng_next = np.concatenate([rng.normal(size=(256, 7)), rng.normal(size=(512, 7))]) * 0.2
    np.testing.assert_allclose(second.arrays["train"]["y"] - composite_sine(second.arrays["train"]["x"]), rng_next,
                               atol=1e-12)


def test_a_batch_keeps_the_keys_and_masks_each_sample_to_its_task(data):
    batch = next(iter(data.train_dataloader()))
    assert batch["x"].shape == (64, 1) and batch["x"].dtype == torch.float32
    assert batch["targets"]["task_0"].shape == (64, 1) and batch["targets"]["task_1"].shape == (64, 6)
    own_0, own_1 = batch["target_mask"]["task_0"], batch["target_mask"]["task_1"]
    assert own_0.dtype == torch.bool and bool((own_0 ^ own_1).all())  # every point belongs to exactly one task
    train = data.dataset("train")
    ids = batch["id"]
    np.testing.assert_array_equal(batch["targets"]["task_1"][own_1].numpy(), train.y[ids[own_1]][:, 1:].numpy())
    assert not batch["targets"]["task_0"][~own_0].any()  # another task's slot holds zeros, masked


def test_each_batch_takes_the_tasks_in_proportion_and_every_point_once():
    task = np.array([0] * 256 + [1] * 512)
    sampler = ProportionalTaskBatchSampler(task, 64, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 12
    assert sorted(i for b in batches for i in b) == list(range(768))
    assert [int((task[b] == 0).sum()) for b in batches] == [21, 22, 21] * 4  # 64 / 3 = 21.3; never the original's 22 always
    again = ProportionalTaskBatchSampler(task, 64, seed=3)
    assert [b for b in again] == batches  # a pure function of (seed, epoch): a resumed run sees the same batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_tasks_keep_train_sizes_order_whatever_the_order_of_the_other_mappings():
    data = CompositeSineDataModule(outputs={"task_1": [1, 2, 3, 4, 5, 6], "task_0": [0]},
                                   train_ranges={"task_1": (-2.0, 2.0), "task_0": (-2.0, 0.0)}, val_size=8)
    points = data.task_points("train")
    assert len(points["task_0"][0]) == 256 and points["task_0"][1].shape == (256, 1)
    sample = data.dataset("train")[0]  # the first point is task_0's
    assert sample["target_mask"] == {"task_0": True, "task_1": False} and sample["targets"]["task_1"].shape == (6,)


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match=r"train_ranges: tasks \['task_0'\] differ"):
        CompositeSineDataModule(train_ranges={"task_0": (-2, 0)})
    with pytest.raises(ConfigError, match=r"outputs.task_1: \[7\] must be"):
        CompositeSineDataModule(outputs={"task_0": [0], "task_1": [7]})
    with pytest.raises(ConfigError, match="batching: 'fixed' is not one of"):
        CompositeSineDataModule(batching="fixed")


def test_the_fit_pictures_plot_the_very_points_trained_on(data):
    from affectlab.methods.multitask_plots import fit_figure
    from affectlab.plots import plt

    train, val = data.task_points("train"), data.task_points("val")
    fits = {task: np.zeros_like(y) for task, (_, y) in val.items()}
    figure = fit_figure(train, val, [(0, fits)], names=data.output_names())
    trained = data.dataset("train")
    first = figure.axes[0].lines[0]  # task_0, output 0: the training points
    np.testing.assert_array_equal(first.get_xdata(), trained.x[trained.task == 0, 0].numpy())
    np.testing.assert_array_equal(first.get_ydata(), trained.y[trained.task == 0, 0].numpy())
    last = figure.axes[6].lines[0]  # task_1, output 6
    np.testing.assert_array_equal(last.get_ydata(), trained.y[trained.task == 1, 6].numpy())
    assert figure.axes[6].get_title() == "task_1: output 6: 0.7357 e^s - 1"
    plt.close(figure)
