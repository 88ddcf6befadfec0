"""MultiTaskMethod: masked task losses, a head without labels in a batch gets no gradient, per-task optimisers add
up instead of wiping each other's gradients, heads reading dimensions of a shared output, and
MultiTaskDataModule's batches made of one data module per task."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_DATA
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader

from affectlab.errors import ConfigError
from affectlab.methods.multitask import MultiTaskMethod
from affectlab.methods.optim import NamedOptimizer
from affectlab.nn.trunks import MLPTrunk

TASKS = ["cls", "reg"]


def method(**kwargs) -> MultiTaskMethod:
    torch.manual_seed(0)
    defaults = dict(trunk=MLPTrunk(in_dim=3, width=8, depth=2), tasks=TASKS,
                    heads={"kind": {"cls": "classification", "reg": "regression"}, "num_outputs": {"cls": 4, "reg": 2}})
    return MultiTaskMethod(**{**defaults, **kwargs})


def batch(n: int = 6, cls_mask=None, reg_mask=None) -> dict:
    generator = torch.Generator().manual_seed(1)
    return {
        "x": torch.randn(n, 3, generator=generator),
        "targets": {"cls": torch.randint(0, 4, (n,), generator=generator), "reg": torch.randn(n, 2, generator=generator)},
        "target_mask": {"cls": torch.ones(n, dtype=torch.bool) if cls_mask is None else torch.tensor(cls_mask),
                        "reg": torch.ones(n, dtype=torch.bool) if reg_mask is None else torch.tensor(reg_mask)},
    }


def test_a_task_loss_reads_only_the_samples_that_carry_its_label():
    model = method()
    data = batch(cls_mask=[True, False, True, False, False, True], reg_mask=[False, True, True, True, False, False])
    outputs = model(data)
    losses, counts = model.task_losses(outputs, data)
    assert counts == {"cls": 3, "reg": 3}
    m = data["target_mask"]
    assert torch.allclose(losses["cls"], F.cross_entropy(outputs["cls"][m["cls"]], data["targets"]["cls"][m["cls"]]))
    assert torch.allclose(losses["reg"], F.mse_loss(outputs["reg"][m["reg"]], data["targets"]["reg"][m["reg"]]))
    predicted = model.predict_step({**data, "id": torch.arange(6)}, 0)  # predictions.csv's columns
    assert sorted(predicted) == ["cls_prediction", "id", "reg_0", "reg_1"]
    assert torch.equal(predicted["cls_prediction"], outputs["cls"].argmax(-1))
    changed = copy.deepcopy(data)  # the targets of unlabelled samples change nothing
    changed["targets"]["cls"][~m["cls"]] = 3 - changed["targets"]["cls"][~m["cls"]]
    changed["targets"]["reg"][~m["reg"]] += 100.0
    again, _ = model.task_losses(model(changed), changed)
    assert torch.equal(again["cls"], losses["cls"]) and torch.equal(again["reg"], losses["reg"])


def test_a_batch_without_a_task_gives_its_head_no_gradient():
    model = method()
    data = batch(cls_mask=[False] * 6)
    losses, _ = model.task_losses(model(data), data)
    assert float(losses["cls"]) == 0.0
    model.balancing.combine(losses).backward()
    assert all(float(p.grad.abs().max()) == 0.0 for p in model.heads["cls"].parameters())
    assert all(float(p.grad.abs().max()) > 0.0 for p in model.heads["reg"].parameters())
    assert float(model.trunk.net[0].weight.grad.abs().max()) > 0.0


def test_heads_reading_dimensions_of_a_shared_output_with_seed_002s_summed_squared_errors():
    trunk = MLPTrunk(in_dim=3, width=8, depth=1, output_dim=7)  # one output vector, seven values
    model = MultiTaskMethod(trunk, ["task_0", "task_1"], {"kind": "regression", "reduction": "sum",
                                                          "outputs": {"task_0": [0], "task_1": [1, 2, 3, 4, 5, 6]}})
    assert not list(model.heads.parameters())  # the heads are the output's dimensions, no layers of their own
    x = torch.randn(5, 3)
    data = {"x": x, "targets": {"task_0": torch.randn(5), "task_1": torch.randn(5, 6)},
            "target_mask": {"task_0": torch.tensor([True, True, False, False, False]),
                            "task_1": torch.tensor([False, False, True, True, True])}}
    losses, _ = model.task_losses(model(data), data)
    y = trunk({"x": x})
    assert torch.allclose(losses["task_0"], ((y[:2, 0] - data["targets"]["task_0"][:2]) ** 2).sum())
    assert torch.allclose(losses["task_1"], ((y[2:, 1:] - data["targets"]["task_1"][2:]) ** 2).sum())


def test_per_task_values_build_each_head():
    model = method(heads={"kind": {"cls": "classification", "reg": "regression"}, "num_outputs": {"cls": 4, "reg": 2},
                          "hidden": {"cls": 5, "reg": None}, "weight": {"cls": 2.0, "reg": 0.5}, "lr": {"cls": 0.1, "reg": None}})
    assert [m.out_features for m in model.heads["cls"].layers if isinstance(m, torch.nn.Linear)] == [5, 4]
    assert [m.out_features for m in model.heads["reg"].layers if isinstance(m, torch.nn.Linear)] == [2]
    assert model.loss_weights == {"cls": 2.0, "reg": 0.5}
    (optimizer,), _ = model.configure_optimizers()
    rates = {len(g["params"]): g["lr"] for g in optimizer.param_groups}
    assert rates[4] == 0.1 and len(optimizer.param_groups) == 2  # the cls head's 4 tensors at its own rate
    with pytest.raises(ConfigError, match=r"model.init_args.heads: unknown keys \['widht'\]"):
        method(heads={"widht": 3})
    with pytest.raises(ConfigError, match=r"model.init_args.heads.num_outputs: unknown task \['emotion'\]"):
        method(heads={"num_outputs": {"cls": 4, "emotion": 2}})
    with pytest.raises(ConfigError, match=r"model.init_args.heads.num_outputs \(task 'cls'\)|a classification head needs"):
        method(heads={"kind": {"cls": "classification", "reg": "regression"}})


def loader(data: dict) -> DataLoader:
    samples = [{"x": data["x"][i], "targets": {t: v[i] for t, v in data["targets"].items()},
                "target_mask": {t: v[i] for t, v in data["target_mask"].items()}} for i in range(len(data["x"]))]
    return DataLoader(samples, batch_size=len(samples))


def sgd(lr: float):
    return functools.partial(torch.optim.SGD, lr=lr)  # what a class_path to torch.optim.SGD becomes


def test_per_task_optimisers_add_up_and_never_wipe_each_others_gradients():
    """One optimiser per head and one for the trunk, plain SGD: after one step the trunk moved by
    -lr (grad L_cls + grad L_reg), both tasks' gradients, not only the last task's (seed 002's zero_grad)."""
    lr = 0.1
    optimizers = [NamedOptimizer(sgd(lr), "cls", ["heads.cls"]), NamedOptimizer(sgd(lr), "reg", ["heads.reg"]),
                  NamedOptimizer(sgd(lr), "trunk", ["trunk"])]
    model = method(optimizer_init=optimizers)
    assert not model.automatic_optimization
    data = batch()
    reference = copy.deepcopy(model)
    outputs = reference(data)
    losses, _ = reference.task_losses(outputs, data)
    trunk_params = list(reference.trunk.parameters())
    grads = {t: torch.autograd.grad(losses[t], trunk_params, retain_graph=True) for t in TASKS}
    before = [p.detach().clone() for p in trunk_params]

    Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, limit_val_batches=0).fit(model, loader(data))
    for after, start, g_cls, g_reg in zip(model.trunk.parameters(), before, grads["cls"], grads["reg"]):
        assert torch.allclose(after.detach(), start - lr * (g_cls + g_reg), atol=1e-6)
        # the defect this rules out: a task's zero_grad before its own backward leaves only the last task's
        assert not torch.allclose(after.detach(), start - lr * g_reg, atol=1e-6) or bool((g_cls == 0).all())
    head_grad = torch.autograd.grad(losses["cls"], list(reference.heads["cls"].parameters()), retain_graph=True)
    for after, start, g in zip(model.heads["cls"].parameters(), reference.heads["cls"].parameters(), head_grad):
        assert torch.allclose(after.detach(), start.detach() - lr * g, atol=1e-6)


@pytest.mark.parametrize("balancing", ["upgrad", "gradnorm", "dwa", "uncertainty"])
def test_every_kind_of_balancing_trains_through_lightning(balancing):
    model = method(balancing=balancing, optimizer_init=sgd(0.05))
    before = [p.detach().clone() for p in model.trunk.parameters()]
    trainer = Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, loader(batch(n=8, cls_mask=[True, False] * 4)))
    assert any(not torch.equal(a, b) for a, b in zip(model.trunk.parameters(), before))
    weights = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/weight_")}
    assert set(weights) == {"train/weight_cls", "train/weight_reg"}
    if balancing == "gradnorm":
        assert sum(weights.values()) == pytest.approx(2.0, rel=1e-4)
    if balancing == "upgrad":
        assert "train/grad_cosine" in trainer.callback_metrics


@pytest.fixture(scope="module")
def multitask_data(tmp_path_factory):
    from affectlab.data.multitask import MultiTaskDataModule
    from affectlab.data.synth.datamodule import AffectSynthDataModule

    root = tmp_path_factory.mktemp("affectsynth-mtl")
    tiny = {**TINY_DATA, "modalities": ["audio", "text"]}
    members = {"emotion": AffectSynthDataModule(root=str(root), **{**tiny, "batch_size": 4}),
               "au": AffectSynthDataModule(root=str(root), **{**tiny, "batch_size": 6})}
    data = MultiTaskDataModule(members, tasks={"emotion": ["emotion", "sentiment"]})
    data.prepare_data()
    data.setup("fit")
    return data


def test_one_data_module_per_task_makes_one_batch(multitask_data):
    data = multitask_data
    assert data.tasks == ("emotion", "sentiment", "au") and data.modalities == ("audio", "text")
    combined = next(iter(data.train_dataloader()))
    merged = data.on_before_batch_transfer(combined[0] if isinstance(combined, tuple) else combined, 0)
    mask = merged["target_mask"]
    assert merged["audio"].shape[0] == 10  # 4 samples of the emotion corpus, then 6 of the AU corpus
    assert mask["emotion"].tolist() == [True] * 4 + [False] * 6 and mask["sentiment"].tolist() == mask["emotion"].tolist()
    assert mask["au"].tolist() == [False] * 4 + [True] * 6
    assert merged["targets"]["au"].shape == (10, 12) and bool((merged["targets"]["au"][:4] == 0).all())
    evaluation = list(data.val_dataloader())  # the members one after another, each batch one member's
    assert len(evaluation) == len(data.val_dataloader())
    assert {tuple(b["target_mask"]["au"].unique().tolist()) for b in evaluation} == {(False,), (True,)}


def test_a_member_must_serve_the_tasks_it_is_given(multitask_data):
    from affectlab.data.multitask import MultiTaskDataModule

    members = multitask_data.members
    with pytest.raises(ConfigError, match=r"data.init_args.datasets.valence: .*not \['valence'\]"):
        MultiTaskDataModule({"valence": members["emotion"]})
    with pytest.raises(ConfigError, match=r"data.init_args.tasks: \['faces'\] name no member"):
        MultiTaskDataModule(members, tasks={"faces": ["au"]})
    with pytest.raises(ConfigError, match="data.init_args.mode: 'sequential'"):
        MultiTaskDataModule(members, mode="sequential")
