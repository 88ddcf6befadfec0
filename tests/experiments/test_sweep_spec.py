"""The sweep file is read and checked before anything runs (issue 18 point 11): each mistake names its key and
the fix. In process, no training."""

from __future__ import annotations

import pytest
import yaml

from affectlab.errors import ConfigError
from affectlab.experiments.sweep_spec import load_spec

BASE = {"base": {"args": ["--config", "configs/experiment/synth/supervised.yaml"]}, "metric": "test/acc",
        "space": {"grid": {"model.init_args.fusion_dim": [64, 256], "model.init_args.dropout": [0.0, 0.2]}}}


def write(tmp_path, content, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def test_grid_defaults_to_every_point_in_file_order(tmp_path):
    spec = load_spec(write(tmp_path, BASE, "my_grid.yaml"))
    assert spec.name == "my_grid" and spec.sampler == "grid" and spec.trials == 4 and spec.direction == "maximize"
    assert spec.grid_points() == [{"model.init_args.fusion_dim": a, "model.init_args.dropout": b}
                                  for a in (64, 256) for b in (0.0, 0.2)]
    assert spec.args == ["--config", "configs/experiment/synth/supervised.yaml"] and spec.seeds is None


def test_list_valued_grid_values_and_distributions(tmp_path):
    spec = load_spec(write(tmp_path, {**BASE, "sampler": "tpe", "trials": 3, "seeds": [0, 1], "space": {
        "grid": {"model.init_args.modalities": [["video"], ["video", "audio"]]},
        "model.init_args.optimizer_init.init_args.lr": {"type": "float", "low": "1e-4", "high": 1e-2, "log": True},
        "model.init_args.fusion_dim": {"type": "int", "low": 16, "high": 64, "step": 16}}}))
    axis = spec.dimensions[0]
    assert axis.choices() == ['["video"]', '["video", "audio"]']
    assert axis.config_value('["video", "audio"]') == ["video", "audio"]  # a list is one value, never an axis
    lr = spec.dimensions[1]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-2, True) and spec.seeds == [0, 1]


@pytest.mark.parametrize("change, words", [
    ({"sweeps": 3}, ["unknown key(s) sweeps", "name, base, metric"]),
    ({"space": {"model.init_args.dropout": {"type": "float", "low": 0.5, "high": 0.1}}, "sampler": "tpe", "trials": 2},
     ["space.model.init_args.dropout: low 0.5 is above high 0.1", "swap them"]),
    ({"space": {"model.init_args.dropout": [0.1, 0.2]}}, ["space.model.init_args.dropout must be a distribution",
                                                          "grid: block"]),
    ({"space": {"grid": {"model.init_args.dropout": [0.1]}, "model.init_args.fusion_dim": {"type": "int", "low": 8,
                                                                                            "high": 9}}},
     ["sampler grid tries the grid: block's values only", "model.init_args.fusion_dim"]),
    ({"space": {"model.init_args.optimizer_init.init_args.lr": {"type": "float", "low": 0, "high": 1, "log": True}},
      "sampler": "random", "trials": 2}, ["log scale needs low > 0"]),
    ({"trials": 9}, ["trials 9 must be between 1 and the grid's 4 points"]),
    ({"direction": "up"}, ["direction 'up' is not maximize or minimize"]),
    ({"sampler": "tpe"}, ["sampler tpe needs a number of trials"]),
    ({"pruning": {"monitor": "val/loss", "patience": 2}}, ["pruning: unknown key(s) ['patience']"]),
    ({"base": {"recipe": {"variant": "conclugen"}}}, ["base.recipe names RecipeOptions fields", "dataset"]),
    ({"base": {"recipe": {"variant": "conclugen", "dataset": "synth"}}, "seeds": [0],
      "space": {"grid": {"probe_steps": [10, 20]}}}, ["would share the recipe record of conclugen on synth seed 0"]),
])
def test_bad_sweep_files_are_refused_naming_the_key(tmp_path, change, words):
    with pytest.raises(ConfigError) as error:
        load_spec(write(tmp_path, {**BASE, **change}))
    for word in words:
        assert word in str(error.value)


def test_unreachable_storage_is_refused_naming_the_url(tmp_path):
    from affectlab.experiments.sweep import connect, public_url

    url = "postgresql+psycopg://sweeper:secret@127.0.0.1:9/nothing"  # port 9 (discard): nothing listens
    with pytest.raises(ConfigError) as error:
        connect(url)
    message = str(error.value)
    assert "postgresql+psycopg://sweeper@127.0.0.1:9/nothing cannot be reached" in message and "secret" not in message
    assert "leave storage out" in message
    assert public_url(url) == "postgresql+psycopg://sweeper@127.0.0.1:9/nothing"
    with pytest.raises(ConfigError, match="does not exist; create it"):
        connect(f"sqlite:///{tmp_path}/missing/sweeps.db")
