"""The run lifecycle outside the trainer: opening runs, DDP ranks, params, predictions CSV."""

from __future__ import annotations

import pytest
import torch

from affectlab.errors import ConfigError
from affectlab.runs.lifecycle import RUN_ID_ENV, flatten, log_run_contents, open_run, predictions_csv


def test_a_new_run_is_created_and_a_reused_one_found(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    run = open_run(str(tmp_path), None, "affectlab", "first", 127, rank=0)
    assert not run.reused and run.store.get_run(run.run_id).info.run_name == "first"
    again = open_run(str(tmp_path), run.run_id, "affectlab", "ignored", 127, rank=0)
    assert again.reused and again.run_id == run.run_id
    assert run.checkpoint_dir.name == "checkpoints"


def test_other_ranks_take_rank_zeros_run(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    with pytest.raises(ConfigError, match="global rank 1 has no run id"):
        open_run(str(tmp_path), None, "affectlab", "x", 0, rank=1)
    run = open_run(str(tmp_path), None, "affectlab", "x", 0, rank=0)
    other = open_run(str(tmp_path), None, "affectlab", "x", 0, rank=1)  # through the environment
    assert other.run_id == run.run_id and other.reused


def test_contents_of_a_new_run_are_its_config_environment_and_params(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    run = open_run(str(tmp_path), None, "affectlab", "x", 3, rank=0)
    log_run_contents(run, "model:\n  init_args:\n    fusion_dim: 64\n", 3, ["run", "--x"])
    assert {"config.yaml", "environment.json"} <= set(run.store.artifact_names(run.run_id))
    logged = run.store.get_run(run.run_id).data
    assert logged.params["model.init_args.fusion_dim"] == "64" and logged.tags["affectlab.seed"] == "3"


def test_flatten_joins_keys_with_dots():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}}) == {"a.b": "1", "a.c": "[1, 2]", "d": "{}"}


def test_predictions_become_one_csv_row_per_sample():
    batches = [{"index": torch.tensor([0, 1]), "probabilities": torch.tensor([[0.25, 0.75], [1.0, 0.0]])},
               {"index": torch.tensor([2]), "probabilities": torch.tensor([[0.5, 0.5]])}]
    text, count = predictions_csv(batches, ["happy", "sad"])
    assert count == 3
    assert text.splitlines() == ["index,p_happy,p_sad", "0,0.250000,0.750000", "1,1.000000,0.000000",
                                 "2,0.500000,0.500000"]
    assert predictions_csv([], None) is None and predictions_csv([torch.zeros(2)], None) is None


def test_each_attempt_keeps_its_own_environment_command_and_outcome(tmp_path, monkeypatch):
    import json

    from affectlab.runs.lifecycle import end_attempt
    from affectlab.runs.store import FIRST_CONFIG_COPIES

    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    first = open_run(str(tmp_path), None, "affectlab", "x", 3, rank=0)
    log_run_contents(first, "seed_everything: 3\n", 3, ["run", "--first"])
    assert end_attempt(first) == "FINISHED"
    copy = str(first.store.first_config(first.run_id))  # what --run_id puts in front of the arguments
    assert copy in FIRST_CONFIG_COPIES
    again = open_run(str(tmp_path), first.run_id, "affectlab", "x", 3, rank=0)
    assert (again.attempt, again.status_before) == (2, "FINISHED")
    assert again.store.get_run(again.run_id).info.status == "RUNNING"
    log_run_contents(again, "seed_everything: 3\n", 3, ["--config", copy, "test", "--run_id", first.run_id])
    # a failing later command: recorded on its own attempt, the run's earlier result stands
    assert end_attempt(again, FileNotFoundError("checkpoint nowhere.ckpt does not exist")) == "FINISHED"
    run = again.store.get_run(again.run_id)
    tags = run.data.tags
    assert run.info.status == "FINISHED" and "affectlab.error" not in tags
    assert (tags["affectlab.attempt.1.status"], tags["affectlab.attempt.2.status"]) == ("FINISHED", "FAILED")
    assert tags["affectlab.attempt.2.error"] == "FileNotFoundError: checkpoint nowhere.ckpt does not exist"
    assert tags["affectlab.command"] == "affectlab run --first"  # the first attempt's, not replaced
    assert tags["affectlab.attempt.2.command"] == f"affectlab test --run_id {first.run_id}"  # no temporary path
    folder = again.store.artifact_dir(again.run_id)
    assert json.loads((folder / "environment.json").read_text())["command"] == "affectlab run --first"
    assert json.loads((folder / "environment-2.json").read_text())["attempt"] == 2
    # a new run that fails is FAILED, with the error on the run
    new = open_run(str(tmp_path), None, "affectlab", "y", 3, rank=0)
    assert end_attempt(new, ValueError("no data in /nowhere")) == "FAILED"
    assert new.store.get_run(new.run_id).data.tags["affectlab.error"] == "ValueError: no data in /nowhere"


def test_mlflow_setting_its_tracking_variable_keeps_the_store_whole(tmp_path, monkeypatch):
    from affectlab.runs.store import RunStore

    folder = RunStore.resolve(str(tmp_path / "store"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", folder.tracking_uri)  # what MLflow's logger does during a run
    resolved = RunStore.resolve(None)
    assert resolved.tracking_uri == folder.tracking_uri and resolved.artifact_location == folder.artifact_location


def test_a_full_disk_met_during_the_chain_is_one_storage_message(tmp_path, monkeypatch):
    from affectlab.errors import StorageError
    from affectlab.runs.lifecycle import run_attempt

    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    run = open_run(str(tmp_path), None, "affectlab", "x", 3, rank=0)
    with pytest.raises(StorageError, match=r"no space left to write .*checkpoints.*free space") as raised:
        with run_attempt(run):
            with open("/dev/full", "wb", buffering=0) as full:  # a real ENOSPC, as from a plot or a log file
                full.write(b"x")
    assert isinstance(raised.value.__cause__, OSError)
    tags = run.store.get_run(run.run_id).data.tags
    assert tags["affectlab.attempt.1.status"] == "FAILED" and "no space left" in tags["affectlab.error"]
