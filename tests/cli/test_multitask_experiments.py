"""Every multi-task experiment config of issue 20 (compositeSine's ntk and mup, the AffectSynth multi-task model
with each balancing and the single-task baselines) trains a few steps through the ``affectlab`` command.

The ten runs go through ``affectlab.cli.main.main`` one after another in one subprocess (as ``--seeds`` runs its
members in one process): the command line of each is exactly a user's, and torch and Lightning are imported
once instead of ten times."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CONFIGS, TEST_CONFIGS, TINY_DATA, cli_env, mlflow_client

TRAINER = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
           "--trainer.enable_model_summary", "false", "--trainer.log_every_n_steps", "1"]
SYNTH = CONFIGS / "experiment/synth"
SINE = CONFIGS / "experiment/composite_sine"
SYNTH_OVERRIDES = ["uncertainty", "dwa", "pcgrad", "only_emotion", "only_au", "only_au_intensity", "only_sentiment"]

SCRIPT = """
import json, sys
from affectlab.cli.main import main
codes = {name: main(argv) for name, argv in json.loads(sys.argv[1]).items()}
print("EXIT CODES " + json.dumps(codes))
"""


def _runs(data_root, store) -> dict[str, list[str]]:
    common = [*TRAINER, "--store", str(store)]
    runs = {}
    for name in ("ntk", "mup"):
        runs[f"sine-{name}"] = [
            "run", "--config", str(SINE / f"{name}.yaml"), *common, "--run_name", f"sine-{name}",
            "--model.init_args.trunk.init_args.width", "16", "--data.init_args.val_size", "64",
            "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3",
            "--trainer.callbacks.init_args.every_n_epochs", "1"]
    sizes = [arg for key, value in TINY_DATA.items() for arg in (f"--data.init_args.{key}", str(value))]
    synth = [*common, "--config", str(TEST_CONFIGS / "tiny_multitask.yaml"), "--data.init_args.root", str(data_root),
             *sizes, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]
    runs["synth-sum"] = ["run", "--config", str(SYNTH / "multitask.yaml"), *synth, "--run_name", "synth-sum"]
    for name in SYNTH_OVERRIDES:
        runs[f"synth-{name}"] = ["run", "--config", str(SYNTH / "multitask.yaml"), "--config",
                                 str(SYNTH / f"multitask_{name}.yaml"), *synth, "--run_name", f"synth-{name}"]
    return runs


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """Run name -> the finished run (its metrics and artifacts), each trained through the command."""
    store = tmp_path_factory.mktemp("multitask-store")
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(_runs(tiny_data, store))], env=cli_env(),
                            capture_output=True, text=True, timeout=600)
    codes = [line for line in result.stdout.splitlines() if line.startswith("EXIT CODES ")]
    assert result.returncode == 0 and codes, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert set(json.loads(codes[0][len("EXIT CODES "):]).values()) == {0}, result.stderr[-3000:]
    client = mlflow_client(store)
    runs = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            runs[run.data.tags["mlflow.runName"]] = run
    return client, runs


def _artifacts(client, run, path: str) -> set[str]:
    return {item.path for item in client.list_artifacts(run.info.run_id, path)}


@pytest.mark.parametrize("name", ["ntk", "mup"])
def test_composite_sine_trains_and_draws_each_task_s_fit(trained, name):
    client, runs = trained
    run = runs[f"sine-{name}"]
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert {"train/loss_task_0", "train/loss_task_1", "fit/task_0/val_mse", "fit/task_1/train_mse"} <= set(metrics)
    assert run.data.params["model.init_args.trunk.init_args.parametrisation"] == name
    plots = _artifacts(client, run, "plots")
    assert {"plots/fit_epoch0000.png", "plots/fit_epoch0001.png", "plots/fit_over_training.png",
            "plots/fit_errors.png"} <= plots


def test_the_multi_task_model_trains_on_partial_labels_with_each_balancing(trained):
    _, runs = trained
    for name in ("sum", "uncertainty", "dwa", "pcgrad"):
        run = runs[f"synth-{name}"]
        assert run.info.status == "FINISHED", name
        assert run.data.params["model.init_args.balancing"] == name
        metrics = run.data.metrics
        for key in ("test/emotion/acc", "test/au/f1_macro", "test/au_intensity/mae", "test/sentiment/mae"):
            assert key in metrics, (name, key)


@pytest.mark.parametrize("task", ["emotion", "au", "au_intensity", "sentiment"])
def test_each_single_task_baseline_trains_its_one_head(trained, task):
    _, runs = trained
    run = runs[f"synth-only_{task}"]
    assert run.info.status == "FINISHED"
    tested = {key.split("/")[1] for key in run.data.metrics if key.startswith("test/") and key.count("/") == 2}
    assert tested == {task}
