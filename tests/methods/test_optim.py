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


# -- optimisers typed in the config: jsonargparse resolves and checks them, overrides keep the other values ----
def _model_section(*overrides: str) -> dict:
    """The supervised model's config section as the CLI parses it (``--print_config``), with ``overrides``."""
    import yaml
    from conftest import CONFIGS, affectlab_inline

    printed = affectlab_inline("run", "--model", str(CONFIGS / "model/supervised.yaml"), "--data",
                               str(CONFIGS / "data/synth.yaml"), *overrides, "--print_config")
    return yaml.safe_load(printed.stdout)["model"]


def _built_optimizers(model_section: dict, max_epochs: int = 3):
    """The optimisers and schedulers of the model jsonargparse builds from ``model_section``."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule, Trainer

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", required=True)
    model = parser.instantiate_classes(parser.parse_object({"model": model_section})).model
    model.trainer = Trainer(accelerator="cpu", max_epochs=max_epochs, logger=False, enable_progress_bar=False,
                            enable_model_summary=False)
    return model.configure_optimizers()


def _tiny(section: dict) -> dict:
    """``section`` with one small audio encoder, so building it is quick."""
    section["init_args"]["encoders"] = {"audio": {"class_path": "affectlab.nn.encoders.AudioConvEncoder",
                                                  "init_args": {"channels": 8}}}
    section["init_args"]["fusion_dim"] = 8
    return section


def test_a_learning_rate_from_the_command_line_keeps_the_configs_other_values():
    section = _model_section("--model.init_args.optimizer_init.init_args.lr", "0.01")
    assert section["init_args"]["optimizer_init"]["init_args"]["lr"] == 0.01
    assert section["init_args"]["optimizer_init"]["init_args"]["weight_decay"] == 0.01  # supervised.yaml's
    (optimizer,), _ = _built_optimizers(_tiny(section))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 0.01


def test_a_new_optimiser_class_from_the_command_line_keeps_the_arguments_it_shares():
    section = _model_section("--model.init_args.optimizer_init.class_path", "torch.optim.SGD",
                             "--model.init_args.optimizer_init.init_args.momentum", "0.9")
    (optimizer,), _ = _built_optimizers(_tiny(section))
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["lr"] == 2.0e-3 and optimizer.defaults["weight_decay"] == 0.01  # from supervised.yaml
    assert optimizer.defaults["momentum"] == 0.9


def test_several_named_optimisers_are_typed_and_schedulers_pair_by_name():
    section = _tiny(_model_section())
    section["init_args"]["optimizer_init"] = [
        {"name": "encoders", "params": ["encoders"],
         "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.5}}},
        {"name": "heads", "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.01}}},
    ]
    section["init_args"]["lr_scheduler_init"] = [
        {"optimizer_name": "heads",
         "scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 2}}},
        {"optimizer_name": "encoders", "scheduler": {"class_path": "affectlab.methods.optim.TrainerCosineAnnealingLR"}},
    ]
    optimizers, schedulers = _built_optimizers(section, max_epochs=4)
    assert [type(o).__name__ for o in optimizers] == ["SGD", "AdamW"]
    step, cosine = (s["scheduler"] for s in schedulers)
    assert isinstance(step, torch.optim.lr_scheduler.StepLR) and step.optimizer is optimizers[1]
    assert isinstance(cosine, torch.optim.lr_scheduler.CosineAnnealingLR) and cosine.optimizer is optimizers[0]
    assert cosine.T_max == 4


def test_an_optimiser_argument_is_checked_when_the_config_is_parsed():
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule

    section = _tiny(_model_section())
    section["init_args"]["optimizer_init"] = {"class_path": "torch.optim.SGD", "init_args": {"lrr": 1}}
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", required=True)
    with pytest.raises(Exception, match="Option 'lrr' is not accepted"):
        parser.parse_object({"model": section})  # at parse time, before anything is built


def test_a_function_is_no_optimiser():
    with pytest.raises(ConfigError, match="'load' is refused; it takes a torch.optim.Optimizer subclass"):
        parse_optimizers(torch.load)
    with pytest.raises(ConfigError, match="'subprocess.Popen' is refused"):
        parse_optimizers({"class_path": "subprocess.Popen"})


# -- schedulers typed too: checked at parse time, overrides keep the other values, horizons from the trainer --
def _parse_model(section: dict):
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", required=True)
    return parser.parse_object({"model": section})


def test_a_scheduler_argument_from_the_command_line_keeps_the_class_and_its_trainer_horizon():
    section = _model_section("--model.init_args.lr_scheduler_init.init_args.eta_min", "1.0e-4")
    scheduler = section["init_args"]["lr_scheduler_init"]
    assert scheduler["class_path"] == "affectlab.methods.optim.TrainerCosineAnnealingLR"  # supervised.yaml's
    assert scheduler["init_args"]["eta_min"] == 1.0e-4
    _, (entry,) = _built_optimizers(_tiny(section), max_epochs=6)
    assert isinstance(entry["scheduler"], torch.optim.lr_scheduler.CosineAnnealingLR)
    assert entry["scheduler"].eta_min == 1.0e-4 and entry["scheduler"].T_max == 6  # T_max from the trainer


def test_a_new_scheduler_class_from_the_command_line_keeps_the_arguments_it_shares():
    section = _model_section("--model.init_args.lr_scheduler_init.init_args.eta_min", "1.0e-4",
                             "--model.init_args.lr_scheduler_init.class_path", "torch.optim.lr_scheduler.CosineAnnealingLR",
                             "--model.init_args.lr_scheduler_init.init_args.T_max", "9")
    _, (entry,) = _built_optimizers(_tiny(section), max_epochs=3)
    assert type(entry["scheduler"]) is torch.optim.lr_scheduler.CosineAnnealingLR
    assert entry["scheduler"].T_max == 9 and entry["scheduler"].eta_min == 1.0e-4  # eta_min kept across classes
    section = _model_section("--model.init_args.lr_scheduler_init.class_path", "torch.optim.lr_scheduler.StepLR",
                             "--model.init_args.lr_scheduler_init.init_args.step_size", "2")
    _, (entry,) = _built_optimizers(_tiny(section))
    assert type(entry["scheduler"]) is torch.optim.lr_scheduler.StepLR and entry["scheduler"].step_size == 2


def test_a_misspelt_scheduler_argument_is_a_parse_time_error_naming_the_key():
    from conftest import CONFIGS, affectlab_inline

    printed = affectlab_inline("run", "--model", str(CONFIGS / "model/supervised.yaml"), "--data",
                               str(CONFIGS / "data/synth.yaml"), "--model.init_args.lr_scheduler_init.init_args.eta_minn",
                               "0.1", "--print_config", check=False)
    message = printed.stdout + printed.stderr
    assert printed.returncode != 0 and "init_args.eta_minn" in message
    assert "did you mean 'model.init_args.lr_scheduler_init.init_args.eta_min'" in message
    section = _tiny(_model_section())
    section["init_args"]["lr_scheduler_init"] = {"class_path": "torch.optim.lr_scheduler.StepLR",
                                                 "init_args": {"step_sizee": 2}}
    with pytest.raises(Exception, match="Option 'step_sizee' is not accepted"):
        _parse_model(section)  # at parse time, before anything is built


def test_a_named_scheduler_list_is_typed_and_a_step_interval_counts_steps():
    section = _tiny(_model_section())
    section["init_args"]["lr_scheduler_init"] = [
        {"interval": "step", "scheduler": {"class_path": "affectlab.methods.optim.TrainerCosineLRScheduler",
                                           "init_args": {"lr_min": 1.0e-5}}},
    ]
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule, Trainer

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", required=True)
    model = parser.instantiate(parser.parse_object({"model": section})).model
    model.trainer = Trainer(accelerator="cpu", max_epochs=-1, max_steps=40, logger=False, enable_progress_bar=False,
                            enable_model_summary=False)
    _, (entry,) = model.configure_optimizers()
    assert entry["interval"] == "step" and entry["scheduler"].t_initial == 40 and entry["scheduler"].lr_min == 1.0e-5
    section["init_args"]["lr_scheduler_init"][0]["interval"] = "batch"
    with pytest.raises(Exception, match="interval"):
        _parse_model(section)


def test_a_required_horizon_of_torchs_own_class_is_asked_for_at_parse_time():
    """torch's CosineAnnealingLR requires T_max and jsonargparse checks the signature: a config that leaves the
    horizon to the trainer names AffectLab's subclass, whose T_max is optional."""
    section = _tiny(_model_section())
    section["init_args"]["lr_scheduler_init"] = {"class_path": "torch.optim.lr_scheduler.CosineAnnealingLR"}
    with pytest.raises(Exception, match="required: T_max"):
        _parse_model(section)


def test_a_non_scheduler_is_refused():
    optimizers = parse_optimizers(_sgd())
    with pytest.raises(ConfigError, match="'load' is refused; it takes a torch.optim.lr_scheduler or timm"):
        parse_schedulers(torch.load, optimizers)
    section = _tiny(_model_section())
    section["init_args"]["lr_scheduler_init"] = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}
    with pytest.raises(Exception, match="subclass of"):
        _parse_model(section)


def test_a_run_stored_with_an_untyped_scheduler_still_rebuilds_for_its_weights(tmp_path):
    """export and predict rebuild a run's model from its stored config; a model rebuilt for its weights never
    trains, so a scheduler that no longer parses (torch's cosine without T_max, as configs named it before
    schedulers were typed) does not stop it."""
    import yaml

    from affectlab.runs.models import build_run_model
    from affectlab.runs.store import RunStore

    store = RunStore.resolve(str(tmp_path / "store"))
    run_id = store.create_run("old", "untyped-scheduler", {})
    section = _tiny(_model_section())
    section["init_args"]["lr_scheduler_init"] = {"class_path": "torch.optim.lr_scheduler.CosineAnnealingLR"}
    store.artifact_dir(run_id).mkdir(parents=True, exist_ok=True)
    (store.artifact_dir(run_id) / "config.yaml").write_text(yaml.safe_dump({"model": section}))
    model = build_run_model(run_id, str(tmp_path / "store"))
    assert type(model).__name__ == "SupervisedClassifier"


def test_a_typed_one_cycle_left_without_total_steps_counts_the_trainers_steps():
    """A typed config carries every default, so one-cycle's total_steps and epochs are there as None: None
    counts as left out, and the horizon is the trainer's."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule, Trainer

    section = _tiny(_model_section())
    section["init_args"]["lr_scheduler_init"] = [
        {"interval": "step", "scheduler": {"class_path": "torch.optim.lr_scheduler.OneCycleLR", "init_args": {"max_lr": 0.1}}},
    ]
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", required=True)
    model = parser.instantiate(parser.parse_object({"model": section})).model
    model.trainer = Trainer(accelerator="cpu", max_epochs=-1, max_steps=30, logger=False, enable_progress_bar=False,
                            enable_model_summary=False)
    _, (entry,) = model.configure_optimizers()
    assert isinstance(entry["scheduler"], torch.optim.lr_scheduler.OneCycleLR) and entry["scheduler"].total_steps == 30
