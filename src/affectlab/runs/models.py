"""A run's model rebuilt from its logged first config, with fresh or checkpointed weights (export, predict,
benchmarks); ``load_deployed_model`` gives the part of it that export and predict run."""

from __future__ import annotations

from argparse import ArgumentError
from typing import Any

import yaml
from torch import nn

from affectlab.errors import ConfigError
from affectlab.io import load_checkpoint
from affectlab.runs.store import RunStore


def build_run_model(run_id: str, store: str | None = None) -> nn.Module:
    """The run's model built from its first config, with freshly initialised weights; ``model.run_config``
    keeps the config (the data's image size, say)."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule

    from affectlab.imports import allowed_packages, check_class_paths, refused_import, restrict_imports

    restrict_imports()  # the stored config may have been edited: its class paths import only allowed packages
    path = RunStore.resolve(store).first_config(run_id)
    config = yaml.safe_load(path.read_text())
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", required=True)
    check_class_paths(config["model"], "model")  # the schedulers too, before they are left out below
    try:
        parsed = parser.parse_object({"model": _without_schedulers(config["model"])})
    except ArgumentError as error:
        refused = refused_import(str(error))
        if refused:
            raise ConfigError(
                f"run {run_id}'s stored config ({path}): class path {refused!r} is refused: a config may only name "
                f"classes from the packages {', '.join(allowed_packages())}"
            ) from None
        raise ConfigError(f"run {run_id}'s stored config ({path}) no longer builds: {error}") from None
    check_class_paths(parsed.as_dict())  # before anything is built: a function would be called
    model = parser.instantiate_classes(parsed).model
    model.run_config = config
    return model


def _without_schedulers(section: Any) -> Any:
    """``section`` with every ``lr_scheduler_init`` set to None: a model rebuilt for its weights never trains,
    and a run stored before schedulers were typed (a cosine without ``T_max``, seed 000's flat lists) would
    otherwise no longer parse."""
    if isinstance(section, dict):
        return {k: None if k == "lr_scheduler_init" else _without_schedulers(v) for k, v in section.items()}
    if isinstance(section, list):
        return [_without_schedulers(v) for v in section]
    return section


def load_run_model(run_id: str, store: str | None = None, checkpoint: str = "best.ckpt") -> nn.Module:
    """The run's model (``build_run_model``) loaded with its checkpoint's weights, in eval mode."""
    model = build_run_model(run_id, store)
    path = RunStore.resolve(store).checkpoint_dir(run_id) / checkpoint
    if not path.is_file():
        raise ConfigError(f"run {run_id} has no {checkpoint} in {path.parent}; was it trained (fit)?")
    model.load_state_dict(load_checkpoint(path)["state_dict"])
    return model.eval()


def load_deployed_model(run_id: str, store: str | None = None, checkpoint: str = "best.ckpt") -> nn.Module:
    """The trained run's ``deployed_model()`` (``load_run_model``): the method itself, or the model a training
    method holds (a FixMatchAU or MiroAU run's AUModel, without MIRO's oracle), in eval mode, with ``run_config``."""
    method = load_run_model(run_id, store, checkpoint)
    model = method.deployed_model() if hasattr(method, "deployed_model") else method
    model.run_config = method.run_config
    return model.eval()
