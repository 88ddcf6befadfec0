"""The other entry points: demo, ui, data synth, help, print_config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from pathlib import Path

from conftest import CONFIGS, TEST_CONFIGS, affectlab, affectlab_inline, cli_env, mlflow_client, printed_run_id


def test_help_lists_the_commands():
    result = affectlab_inline("--help")
    for command in ("fit", "run", "demo", "ui", "data synth"):
        assert command in result.stdout


def test_print_config_shows_the_merged_config():
    result = affectlab_inline(
        "run", "--config", str(CONFIGS / "experiment/synth/supervised.yaml"), "--model.init_args.fusion_dim", "64",
        "--print_config",
    )
    assert "class_path: affectlab.methods.SupervisedClassifier" in result.stdout
    assert "fusion_dim: 64" in result.stdout
    assert "commands: fit-test" in result.stdout


def test_data_synth_writes_a_verified_cache(tmp_path):
    out = tmp_path / "synth"
    affectlab_inline("data", "synth", "--out", str(out), "--num-clips", "12", "--seed", "3", "--num-identities", "3",
              "--num-frames", "2", "--image-size", "16")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["num_clips"] == 12 and manifest["config"]["seed"] == 3
    from affectlab.data.synth import load

    assert len(load(out)) == 12


def test_demo_trains_and_prints_the_table(tmp_path):
    result = affectlab(
        "demo", "--store", str(tmp_path / "store"), "--data-root", str(tmp_path / "data"), "--num-clips", "60",
        "--max-epochs", "1", "--trainer.enable_progress_bar", "false",
        "--config", str(TEST_CONFIGS / "tiny_supervised.yaml"),
        "--data.init_args.image_size", "32", "--data.init_args.num_frames", "4", "--data.init_args.num_identities", "6",
        cwd=tmp_path,
    )
    for head in ("video", "audio", "text", "fused (all three)"):
        assert head in result.stdout
    run_id = printed_run_id(result.stdout)
    assert "affectlab ui" in result.stdout
    assert mlflow_client(tmp_path / "store").get_run(run_id).data.metrics["test/num_samples"] > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_store(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "affectlab", "ui", "--store", str(tmp_path / "store"), "--port", str(port)],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline, status = time.time() + 120, None
        while time.time() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, process.stdout.read() if process.poll() is not None else "no answer"
        assert (tmp_path / "store" / "mlflow.db").exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and any workers it started
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_fit_alone_with_an_extra_logger(tiny_data, tmp_path):
    """`affectlab fit` trains without testing; a logger added under trainer.logger runs beside MLflow."""
    from conftest import tiny_args

    store, csv_dir = tmp_path / "store", tmp_path / "csv"
    result = affectlab(
        "fit", *tiny_args(tiny_data, store, max_epochs=1),
        "--trainer.logger", f"{{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {{save_dir: {csv_dir}}}}}",
    )
    run_id = printed_run_id(result.stdout)
    metrics = mlflow_client(store).get_run(run_id).data.metrics
    assert "val/acc" in metrics and not any(k.startswith("test/") for k in metrics)
    assert list(csv_dir.rglob("metrics.csv")), "the extra logger wrote nothing"
    checkpoints = [Path(a.path).name for a in mlflow_client(store).list_artifacts(run_id, "checkpoints")]
    assert sorted(checkpoints) == ["best.ckpt", "last.ckpt"]


def _self_contained_experiments() -> list[str]:
    """Experiment files that name their model file (synth/pretrain.yaml and probe.yaml take one from the
    command line, as `affectlab recipe` gives them; the recipe tests run those)."""
    import yaml

    return sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "experiment").rglob("*.yaml")
                  if isinstance(yaml.safe_load(p.read_text()).get("model"), str))


@pytest.mark.parametrize("config", _self_contained_experiments())
def test_every_experiment_config_parses(config, capsys):
    """Each experiment file (and the model and data files it names) builds a valid merged config."""
    from affectlab.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", "--config", str(CONFIGS / config), "--print_config"])
    assert exit_.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path: affectlab.methods" in printed and "class_path: affectlab.data" in printed
