"""Task-specific values (issue 20.1): a plain value holds for every task, ``{task: value}`` per task; the task
set must agree, and an unknown task, a missing one, or a per-task value under a key no task owns stop with
the key named (seed 002 silently dropped what it did not know)."""

from __future__ import annotations

import pytest

from affectlab.errors import ConfigError
from affectlab.experiments.sweep_spec import load_spec
from affectlab.methods.task_values import check_config, check_unowned, resolve, resolve_all, task_set

TASKS = ["task_0", "task_1"]


def test_plain_and_per_task_values():
    assert resolve(64, TASKS, "k") == {"task_0": 64, "task_1": 64}
    assert resolve([1, 2], TASKS, "k") == {"task_0": [1, 2], "task_1": [1, 2]}  # a list is a plain value
    assert resolve({"task_1": [1, 6], "task_0": [0]}, TASKS, "k") == {"task_0": [0], "task_1": [1, 6]}
    assert resolve_all({"kind": "regression", "outputs": {"task_0": [0], "task_1": [1, 2]}}, TASKS, "heads") == {
        "task_0": {"kind": "regression", "outputs": [0]}, "task_1": {"kind": "regression", "outputs": [1, 2]}}


def test_unknown_and_missing_tasks_name_the_key():
    with pytest.raises(ConfigError, match=r"^heads.weight: unknown task \['task_2'\]; the tasks are \['task_0', 'task_1'\]"):
        resolve({"task_0": 1, "task_1": 1, "task_2": 1}, TASKS, "heads.weight")
    with pytest.raises(ConfigError, match=r"^heads.lr: no value for task \['task_1'\]"):
        resolve({"task_0": 0.1}, TASKS, "heads.lr")


def test_the_task_set_must_agree_across_values():
    assert task_set({"kind": "regression", "outputs": {"task_0": [0], "task_1": [1]}}, "heads") == TASKS
    assert task_set({"kind": "regression"}, "heads") is None
    with pytest.raises(ConfigError, match=r"heads.weight names tasks \['a', 'b'\] but heads.outputs names \['task_0', 'task_1'\]"):
        task_set({"outputs": {"task_0": [0], "task_1": [1]}, "weight": {"a": 1, "b": 2}}, "heads")


def test_a_per_task_value_where_no_task_owns_the_key():
    config = {"trunk": {"init_args": {"width": 8, "backbone_kwargs": {"task_0": 1, "task_1": 2}}},
              "heads": {"weight": {"task_0": 1, "task_1": 2}}}
    with pytest.raises(ConfigError, match=r"^model.init_args.trunk.init_args.backbone_kwargs: a per-task value"):
        check_unowned(config, TASKS, ["heads"], "model.init_args")
    check_unowned({**config, "trunk": {"init_args": {"backbone_kwargs": {"img_size": 32}}}}, TASKS, ["heads"],
                  "model.init_args")  # another mapping passes
    whole = {"model": {"class_path": "x", "init_args": {"tasks": TASKS, "heads": config["heads"]}},
             "trainer": {"max_epochs": {"task_0": 1, "task_1": 2}},
             "data": {"init_args": {"datasets": {"task_0": {}, "task_1": {}}}}}
    with pytest.raises(ConfigError, match=r"^trainer.max_epochs: a per-task value"):
        check_config(whole)
    check_config({**whole, "trainer": {"max_epochs": 2}})  # heads and data own their per-task values
    inferred = {**whole, "model": {"init_args": {"heads": config["heads"]}}}  # tasks from the heads' values
    with pytest.raises(ConfigError, match=r"^trainer.max_epochs: a per-task value"):
        check_config(inferred)
    check_config({"model": {"init_args": {"fusion_dim": {"task_0": 1}}}})  # no tasks: not a multi-task model


def sweep(tmp_path, grid):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": {"args": []}, "metric": "val/loss", "direction": "minimize",
                                    "space": {"grid": grid}}, sort_keys=False))
    return path


def test_a_sweep_grid_axis_of_per_task_values(tmp_path):
    weights = [{"task_0": 1.0, "task_1": 1.0}, {"task_0": 1.0, "task_1": 4.0}]
    spec = load_spec(sweep(tmp_path, {"model.init_args.heads.weight": weights}))
    assert spec.trials == 2
    (axis,) = spec.grid
    assert [axis.config_value(v) for v in axis.choices()] == weights  # stored as JSON, given back as mappings
    with pytest.raises(ConfigError, match=r"space.grid.model.init_args.heads.lr: the per-task value .* names tasks \['a', 'b'\]"):
        load_spec(sweep(tmp_path, {"model.init_args.heads.weight": weights,
                                   "model.init_args.heads.lr": [{"a": 0.1, "b": 0.1}]}))
    with pytest.raises(ConfigError, match=r"space.grid.trainer.max_epochs: .* a per-task value under a key no task owns"):
        load_spec(sweep(tmp_path, {"model.init_args.heads.weight": weights, "trainer.max_epochs": [{"task_0": 1}]}))
