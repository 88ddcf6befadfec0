"""A group of runs: a parent made by runs/groups.py and a training run made its child by --parent_run_id and
--run_tags, as sweeps, --seeds, kfold and repeat do."""

from __future__ import annotations

import json

import pytest
from conftest import affectlab, mlflow_client, printed_run_id, tiny_args

from affectlab.runs import groups
from affectlab.runs.store import RunStore


def test_a_run_becomes_the_child_of_a_parent_with_its_tags(tiny_data, tmp_path):
    store = RunStore.resolve(str(tmp_path / "store"))
    parent = groups.open_parent_run(store, "affectlab", "grid-1", "sweep", {"affectlab.sweep.study": "grid"})
    tags = {"affectlab.trial": "3", groups.CONFIG_TAG: groups.config_key({"model.init_args.fusion_dim": 32})}
    result = affectlab("run", *tiny_args(tiny_data, tmp_path / "store", max_epochs=1), "--commands", "fit",
                       "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
                       *groups.child_arguments(parent, tags))
    child = printed_run_id(result.stdout)

    members = groups.child_runs(store, parent)
    assert [run.info.run_id for run in members] == [child]
    assert members[0].data.tags["affectlab.trial"] == "3"
    assert json.loads(members[0].data.tags[groups.CONFIG_TAG]) == {"model.init_args.fusion_dim": 32}
    assert mlflow_client(tmp_path / "store").get_run(parent).data.tags[groups.KIND_TAG] == "sweep"
    groups.end_parent_run(store, parent)
    assert store.get_run(parent).info.status == "FINISHED"


def test_an_unknown_parent_or_kind_is_refused(tiny_data, tmp_path):
    result = affectlab("run", *tiny_args(tiny_data, tmp_path / "store", max_epochs=1), "--commands", "fit",
                       "--parent_run_id", "0" * 32, check=False)
    assert result.returncode != 0 and "is not in the run store" in result.stderr
    store = RunStore.resolve(str(tmp_path / "store"))
    with pytest.raises(ValueError, match="sweep, seeds, kfold, repeat"):
        groups.open_parent_run(store, "affectlab", "x", "grid")
