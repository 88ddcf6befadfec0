"""`affectlab run` end to end in a subprocess, with the run store read back through MLflow's client API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import affectlab, mlflow_client, printed_run_id, tiny_args


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory):
    """One fit-test-eval run shared by the read-back tests below."""
    store = tmp_path_factory.mktemp("store")
    result = affectlab(
        "run", *tiny_args(tiny_data, store), "--commands", "fit-test-eval",
        "--eval_func", "examine_incorrectly_classified_images", "--eval", "{stage: test, max_images: 4}",
        "--run_name", "readback",
        "--additional_callbacks", "[{class_path: slow_callbacks.CountEpochs}]",
        "--import_allowlist", "slow_callbacks",  # a test helper: outside the packages a config may import from
    )
    return store, printed_run_id(result.stdout), result


def test_run_prints_id_and_results(finished_run):
    _, run_id, result = finished_run
    assert f"run_id: {run_id}" in result.stdout
    assert "test/acc" in result.stdout  # the results table
    assert "Traceback" not in result.stderr


def test_additional_callbacks_run_beside_defaults(finished_run):
    store, run_id, result = finished_run
    assert "epoch-finished 0" in result.stdout and "epoch-finished 1" in result.stdout
    # ...and the default checkpoint callback still wrote its files.
    assert {"best.ckpt", "last.ckpt"} <= set(_artifacts(store, run_id, "checkpoints"))


def _artifacts(store: Path, run_id: str, path: str | None = None) -> list[str]:
    return [Path(a.path).name for a in mlflow_client(store).list_artifacts(run_id, path)]


def test_params_are_the_flattened_config(finished_run):
    store, run_id, _ = finished_run
    run = mlflow_client(store).get_run(run_id)
    params = run.data.params
    assert params["model.class_path"] == "affectlab.methods.SupervisedClassifier"
    assert params["data.init_args.num_clips"] == "48"
    assert params["seed_everything"] == "127"
    assert params["commands"] == "fit-test-eval"
    assert run.info.run_name == "readback"
    assert run.info.status == "FINISHED"


def test_metrics_per_step_and_epoch(finished_run):
    store, run_id, _ = finished_run
    client = mlflow_client(store)
    steps = client.get_metric_history(run_id, "train/loss_step")
    epochs = client.get_metric_history(run_id, "train/loss_epoch")
    assert len(steps) >= 4 and len({m.step for m in steps}) == len(steps)  # one value per optimiser step
    assert len(epochs) == 2
    val = client.get_metric_history(run_id, "val/acc")
    assert len(val) == 2 and all(0.0 <= m.value <= 1.0 for m in val)
    metrics = client.get_run(run_id).data.metrics
    for key in ("test/acc", "test/wacc", "test/f1_macro", "test/video/acc", "test/audio/acc", "test/text/acc"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["test/num_samples"] == 8  # 1 of 6 identities x 8 clips each


def test_config_environment_checkpoints_plots(finished_run):
    store, run_id, _ = finished_run
    client = mlflow_client(store)
    names = _artifacts(store, run_id)
    assert {"config.yaml", "environment.json", "checkpoints", "plots", "eval"} <= set(names)
    config = yaml.safe_load(Path(client.download_artifacts(run_id, "config.yaml")).read_text())
    assert config["model"]["class_path"] == "affectlab.methods.SupervisedClassifier"
    assert config["trainer"]["max_epochs"] == 2
    env = json.loads(Path(client.download_artifacts(run_id, "environment.json")).read_text())
    assert env["seed"] == 127
    assert env["command"].startswith("affectlab") and "--commands" in env["command"]
    assert "torch" in env["packages"] and "lightning" in env["packages"]
    assert "commit" in env["git"]  # the tests run from a git checkout
    plots = _artifacts(store, run_id, "plots")
    assert {"val_confusion.png", "test_confusion.png", "misclassified_test.png"} <= set(plots)
    misclassified = Path(client.download_artifacts(run_id, "eval/misclassified_test.csv")).read_text().splitlines()
    assert misclassified[0] == "id,true,predicted,confidence"


def test_checkpoints_hold_only_weights_and_plain_data(finished_run):
    import torch

    store, run_id, _ = finished_run
    path = mlflow_client(store).download_artifacts(run_id, "checkpoints/last.ckpt")
    checkpoint = torch.load(path, weights_only=True)  # raises if anything but tensors and plain data
    assert checkpoint["epoch"] == 1 and "state_dict" in checkpoint


def test_run_id_reuses_config_and_resolves_ckpt_dir(finished_run, tiny_data):
    store, run_id, _ = finished_run
    # No --model/--data: they come from the run's config.yaml. $ckpt_dir resolves to the run's checkpoints.
    result = affectlab(
        "test", "--run_id", run_id, "--store", str(store), "--test.ckpt_path", "$ckpt_dir/best.ckpt",
        "--import_allowlist", "slow_callbacks",  # the stored config names the helper; it cannot allow it itself
    )
    assert f"run_id: {run_id}" in result.stdout
    names = _artifacts(store, run_id)
    assert any(n.startswith("config_") and n.endswith(".yaml") for n in names), names
    assert "test/acc" in result.stdout
    # the re-test of the same checkpoint gives the same accuracy
    history = mlflow_client(store).get_metric_history(run_id, "test/acc")
    assert len(history) == 2 and history[0].value == history[1].value


def test_validate_and_predict_entry_points(finished_run):
    store, run_id, _ = finished_run
    trusted = ["--import_allowlist", "slow_callbacks"]  # the stored config names the test helper
    affectlab("validate", "--run_id", run_id, "--store", str(store), *trusted)
    result = affectlab("predict", "--run_id", run_id, "--store", str(store), *trusted)
    assert "predictions/predictions.csv" in result.stdout
    csv = Path(mlflow_client(store).download_artifacts(run_id, "predictions/predictions.csv")).read_text().splitlines()
    assert csv[0].startswith("id,prediction,target,p_neutral")
    assert len(csv) == 1 + 8


def test_inspect_batch_inputs(finished_run):
    store, run_id, _ = finished_run
    affectlab(
        "run", "--run_id", run_id, "--store", str(store), "--commands", "eval",
        "--config", str(Path(__file__).resolve().parents[2] / "configs/eval/inspect_batch_inputs.yaml"),
        "--eval.num_samples", "3", "--import_allowlist", "slow_callbacks",  # named by the stored config
    )
    assert "batch_inputs_train.png" in _artifacts(store, run_id, "plots")


def test_unknown_run_id_is_a_clear_error(tmp_path):
    result = affectlab("test", "--run_id", "0" * 32, "--store", str(tmp_path), check=False)
    assert result.returncode == 2
    assert "run_id '000" in result.stderr and "not in the run store" in result.stderr
    assert "Traceback" not in result.stderr
