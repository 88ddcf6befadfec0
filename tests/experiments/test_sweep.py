"""``affectlab sweep`` end to end on tiny AffectSynth (issue 18 points 1, 2, 4, 11): a 2-point grid x 2 seeds as
child runs of one parent; a re-run adds nothing; a sweep SIGKILLed mid-trial and run again resumes that trial's
run from its last.ckpt, keeps its finished seed, and ends with the uninterrupted sweep's table; bad input stops
before any trial."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import CONFIGS, ROOT, affectlab, affectlab_inline, cli_env, mlflow_client, tiny_args

GRID = [16, 32]
SEEDS = [0, 1]


def sweep_file(folder, **change):
    content = {"name": "tiny", "base": {"args": ["--config", str(CONFIGS / "experiment/synth/supervised.yaml")]},
               "metric": "test/acc", "direction": "maximize", "seeds": SEEDS,
               "space": {"grid": {"model.init_args.fusion_dim": GRID}}, **change}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def study(store, name="tiny"):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{store / 'sweeps.db'}")


def table(store):
    """(trial, params, value, seed values) of every trial: what two sweeps of one file must agree on."""
    return sorted((t.number, json.dumps(t.params, sort_keys=True), t.state.name, t.value,
                   tuple(e["value"] for e in t.user_attrs["affectlab.runs"].values())) for t in study(store).trials)


def children(store):
    client = mlflow_client(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags], [r for r in runs if "affectlab.group.kind" in r.data.tags]


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    store = folder / "runs"
    path = sweep_file(folder)
    result = affectlab("sweep", "--config", str(path), *tiny_args(tiny_data, store, max_epochs=2), cwd=ROOT, timeout=600)
    return folder, store, path, result


def test_sweep_trials_are_child_runs_of_one_parent(reference, tiny_data):
    folder, store, path, result = reference
    kids, parents = children(store)
    assert len(parents) == 1 and len(kids) == len(GRID) * len(SEEDS)
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {k: parent.data.tags[k] for k in ("affectlab.group.kind", "affectlab.sweep.study", "affectlab.sweep.metric",
                                            "affectlab.sweep.direction")} == {
        "affectlab.group.kind": "sweep", "affectlab.sweep.study": "tiny", "affectlab.sweep.metric": "test/acc",
        "affectlab.sweep.direction": "maximize"}
    assert parent.data.tags["affectlab.sweep.storage"] == f"sqlite:///{store / 'sweeps.db'}"
    trials = {t.number: t for t in study(store).trials}
    assert sorted(t.state.name for t in trials.values()) == ["COMPLETE"] * len(GRID)
    assert sorted(t.params["model.init_args.fusion_dim"] for t in trials.values()) == GRID  # each point once
    for run in kids:
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id and run.info.experiment_id == parent.info.experiment_id
        trial = trials[int(tags["affectlab.trial"])]
        assert json.loads(tags["affectlab.group.config"]) == {"model.init_args.fusion_dim": trial.params["model.init_args.fusion_dim"]}
        assert run.data.params["model.init_args.fusion_dim"] == str(trial.params["model.init_args.fusion_dim"])
        entry = trial.user_attrs["affectlab.runs"][tags["affectlab.seed"]]  # seeds 0 and 1 ran, ids recorded
        assert entry == {"run_id": run.info.run_id, "value": run.data.metrics["test/acc"]}
    for trial in trials.values():  # a trial's value is the mean over its seeds' runs
        values = [e["value"] for e in trial.user_attrs["affectlab.runs"].values()]
        assert trial.value == pytest.approx(sum(values) / len(values))
    assert f"sweep tiny: {len(GRID)} trials, parent run {parent.info.run_id}" in result.stdout


@pytest.mark.slow  # the killed sweep's test covers a re-run too (its parent reused, nothing run twice)
def test_rerun_of_a_finished_sweep_runs_nothing(reference, tiny_data):
    folder, store, path, _ = reference
    before = table(store)
    result = affectlab("sweep", "--config", str(path), *tiny_args(tiny_data, store, max_epochs=2), cwd=ROOT, timeout=600)
    kids, parents = children(store)
    assert len(parents) == 1 and len(kids) == len(GRID) * len(SEEDS) and table(store) == before
    assert "checking that the base run logs" not in result.stdout  # checked once per study


def test_killed_sweep_resumes_its_trial_and_ends_with_the_same_table(reference, tiny_data, tmp_path):
    """SIGKILL (a test callback kills the process the 2nd time a run starts epoch 1: trial 0's seed 1, its
    last.ckpt from epoch 0 written), then the same command again."""
    _, reference_store, _, _ = reference
    store = tmp_path / "runs"
    path = sweep_file(tmp_path)
    killer = {"class_path": "sweep_kill.KillOnNth", "init_args": {"counter": str(tmp_path / "count"), "n": 2}}
    command = [sys.executable, "-m", "affectlab", "sweep", "--config", str(path), *tiny_args(tiny_data, store, 2),
               "--additional_callbacks", json.dumps([killer]), "--import_allowlist", "sweep_kill"]
    killed = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-3000:]
    (interrupted,) = [t for t in study(store).trials if t.state.name == "RUNNING"]
    runs = interrupted.user_attrs["affectlab.runs"]
    assert runs["0"]["value"] is not None and runs["1"].get("value") is None  # seed 0 done, seed 1 opened
    client = mlflow_client(store)
    assert client.list_artifacts(runs["1"]["run_id"], "checkpoints")  # last.ckpt of epoch 0
    resumed = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"trial {interrupted.number} resumes run {runs['1']['run_id']}" in resumed.stdout
    assert "fit: resuming from" in resumed.stdout
    after = {t.number: t for t in study(store).trials}
    assert after[interrupted.number].user_attrs["affectlab.runs"]["0"] == runs["0"]  # not run again
    kids, parents = children(store)
    assert len(kids) == len(GRID) * len(SEEDS)  # nothing run twice: the interrupted run was reused
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # the re-run found the sweep's parent
    assert int(client.get_run(runs["1"]["run_id"]).data.tags["affectlab.attempts"]) == 2
    assert table(store) == table(reference_store)


def test_bad_space_key_and_unlogged_metric_stop_before_any_trial(tiny_data, tmp_path):
    store = tmp_path / "runs"
    path = sweep_file(tmp_path, space={"grid": {"model.init_args.fusion_dimm": [8]}})
    result = affectlab_inline("sweep", "--config", str(path), *tiny_args(tiny_data, store), cwd=ROOT, check=False)
    assert result.returncode == 2
    assert "space key 'model.init_args.fusion_dimm' is not a key of the base run's config" in result.stderr
    assert "did you mean model.init_args.fusion_dim" in result.stderr
    path = sweep_file(tmp_path, metric="test/accuracy")
    result = affectlab("sweep", "--config", str(path), *tiny_args(tiny_data, store), cwd=ROOT, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "metric 'test/accuracy' is logged by no run of this sweep" in result.stderr
    assert "did you mean test/acc" in result.stderr
    assert study(store).trials == [] and children(store) == ([], [])  # no trial, no run in the store


def test_a_dry_sweep_runs_every_trial_dry_in_its_own_study_and_experiment(reference, tiny_data):
    """``--dry_run`` (point 7): every trial on two batches in study ``<name>-dry`` and experiment ``<exp>-dry``, so
    the real sweep's study and runs beside it are untouched (seed 003 had to delete dry runs by hand)."""
    import optuna

    folder, store, path, _ = reference
    before = table(store)
    affectlab("sweep", "--config", str(path), *tiny_args(tiny_data, store, max_epochs=2), "--dry_run", cwd=ROOT,
              timeout=600)
    assert table(store) == before  # the real study is as it was
    dry = optuna.load_study(study_name="tiny-dry", storage=f"sqlite:///{store / 'sweeps.db'}")
    assert sorted(t.state.name for t in dry.trials) == ["COMPLETE"] * len(GRID)
    client = mlflow_client(store)
    experiment = client.get_experiment_by_name("synth-supervised-dry")
    runs = client.search_runs([experiment.experiment_id])
    members = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(members) == len(GRID) * len(SEEDS)
    assert all(r.data.tags.get("affectlab.dry_run") == "true" for r in members)
    steps = [m.step for r in members for m in client.get_metric_history(r.info.run_id, "train/loss_step")]
    assert steps and max(steps) <= 2  # a couple of steps, not the real run's epochs
