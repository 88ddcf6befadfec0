"""Optimisers and schedulers from config: seed 000's pairing rules and clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from affectlab.errors import ConfigError
from affectlab.methods.optim import build_optimizers, parse_optimizers, parse_schedulers


class TwoPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)


def _sgd(name=None, params=None, lr=0.1):
    spec = {"class_path": "torch.optim.SGD", "init_args": {"lr": lr}}
    if name:
        spec["name"] = name
    if params:
        spec["params"] = params
    return spec


def _step(name=None, step_size=1):
    spec = {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": step_size}}
    if name:
        spec["optimizer_name"] = name
    return spec


def test_one_optimiser_one_scheduler():
    optimizers = parse_optimizers(_sgd())
    assert parse_schedulers(_step(), optimizers)[0][0] == 0


def test_one_scheduler_is_copied_to_every_optimiser():
    optimizers = parse_optimizers([_sgd(params=["encoder"]), _sgd()])
    assert [i for i, _ in parse_schedulers(_step(), optimizers)] == [0, 1]


def test_equal_counts_pair_in_order_and_names_pair_out_of_order():
    optimizers = parse_optimizers([_sgd("a", ["encoder"]), _sgd("b")])
    assert [(i, s.init_args["step_size"]) for i, s in parse_schedulers([_step(step_size=5), _step(step_size=3)], optimizers)] == [(0, 5), (1, 3)]
    named = parse_schedulers([_step("b", 5), _step("a", 3)], optimizers)
    assert [(i, s.init_args["step_size"]) for i, s in named] == [(1, 5), (0, 3)]


def test_ambiguous_counts_need_names():
    optimizers = parse_optimizers([_sgd("a", ["encoder"]), _sgd("b", ["head"]), _sgd("c")])
    with pytest.raises(ConfigError, match="ambiguous"):
        parse_schedulers([_step(), _step()], optimizers)
    with pytest.raises(ConfigError, match="optimizer_name: 'z' names no optimiser"):
        parse_schedulers([_step("z")], optimizers)


def test_parameters_are_partitioned_by_prefix():
    model = TwoPart()
    encoder_opt, rest_opt = build_optimizers(model, parse_optimizers([_sgd(params=["encoder"], lr=0.5), _sgd(lr=0.1)]))
    assert {id(p) for p in encoder_opt.param_groups[0]["params"]} == {id(p) for p in model.encoder.parameters()}
    assert {id(p) for p in rest_opt.param_groups[0]["params"]} == {id(p) for p in model.head.parameters()}


def test_bad_specs_name_the_key():
    with pytest.raises(ConfigError, match=r"optimizer_init\.init_args\.lrr: SGD has no argument 'lrr'"):
        parse_optimizers({"class_path": "torch.optim.SGD", "init_args": {"lrr": 1}})
    with pytest.raises(ConfigError, match="cannot import .torch.optim.NoSuchOptimizer"):
        parse_optimizers({"class_path": "torch.optim.NoSuchOptimizer"})
    with pytest.raises(ConfigError, match=r"\[1\]: unknown keys \['parms'\]"):
        parse_optimizers([_sgd(params=["encoder"]), {"class_path": "torch.optim.SGD", "parms": ["head"]}])
    with pytest.raises(ConfigError, match="only one optimiser may leave out 'params'"):
        parse_optimizers([_sgd(), _sgd()])


def test_short_names_and_timm_classes_resolve():
    assert parse_optimizers({"class_path": "AdamW"})[0].label == "AdamW"
    optimizers = parse_optimizers({"class_path": "timm.optim.Lamb", "init_args": {"lr": 1e-3}})
    (_, spec), = parse_schedulers({"class_path": "CosineLRScheduler", "init_args": {"t_initial": 10}}, optimizers)
    assert spec.cls.__name__ == "CosineLRScheduler"


def _cosine_horizon(model_scheduler: dict, **trainer_args) -> object:
    from lightning.pytorch import Trainer

    from affectlab.methods import SupervisedClassifier
    from affectlab.nn.encoders import AudioConvEncoder

    model = SupervisedClassifier({"audio": AudioConvEncoder(channels=8)}, fusion_dim=8, lr_scheduler_init=model_scheduler)
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, **trainer_args)
    model.trainer = trainer
    _, schedulers = model.configure_optimizers()
    return schedulers[0]["scheduler"]


@pytest.mark.parametrize("max_epochs", [3, 20])
def test_an_epoch_horizon_left_out_follows_trainer_max_epochs(max_epochs):
    cosine = {"class_path": "torch.optim.lr_scheduler.CosineAnnealingLR"}
    assert _cosine_horizon(cosine, max_epochs=max_epochs).T_max == max_epochs
    timm_cosine = {"class_path": "timm.scheduler.CosineLRScheduler", "init_args": {"lr_min": 1e-5}}
    assert _cosine_horizon(timm_cosine, max_epochs=max_epochs).t_initial == max_epochs


def test_a_given_horizon_is_kept_and_a_step_horizon_counts_steps():
    given = {"class_path": "CosineAnnealingLR", "init_args": {"T_max": 7}}
    assert _cosine_horizon(given, max_epochs=3).T_max == 7
    per_step = {"class_path": "CosineAnnealingLR", "interval": "step"}
    assert _cosine_horizon(per_step, max_epochs=-1, max_steps=150).T_max == 150


def test_an_epoch_horizon_without_max_epochs_names_the_key():
    with pytest.raises(ConfigError, match=r"lr_scheduler_init\.init_args\.T_max: .* no max_epochs"):
        _cosine_horizon({"class_path": "CosineAnnealingLR"}, max_epochs=-1, max_steps=150)
