"""Same config and seed, same numbers; a run killed during fit and resumed by its id ends where an
uninterrupted run ends. Both compare test metrics for equality, not closeness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import affectlab, cli_env, mlflow_client, printed_run_id, tiny_args


def _test_metrics(store: Path, run_id: str) -> dict[str, float]:
    metrics = mlflow_client(store).get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith("test/")}


EPOCHS = 3


@pytest.fixture(scope="module")  # make test runs a file on one worker (--dist loadfile): one reference per run
def reference(tiny_data, tmp_path_factory) -> dict[str, float]:
    """The test metrics of one uninterrupted run at the default seed."""
    store = tmp_path_factory.mktemp("reference")
    result = affectlab("run", *tiny_args(tiny_data, store, max_epochs=EPOCHS))
    metrics = _test_metrics(store, printed_run_id(result.stdout))
    assert metrics
    return metrics


def test_same_config_and_seed_give_identical_test_metrics(reference, tiny_data, tmp_path):
    result = affectlab("run", *tiny_args(tiny_data, tmp_path, max_epochs=EPOCHS))
    assert _test_metrics(tmp_path, printed_run_id(result.stdout)) == reference


def test_another_seed_gives_other_numbers(reference, tiny_data, tmp_path):
    result = affectlab("run", *tiny_args(tiny_data, tmp_path, max_epochs=EPOCHS), "--seed_everything", "2")
    assert _test_metrics(tmp_path, printed_run_id(result.stdout))["test/loss"] != reference["test/loss"]


def test_killed_run_resumes_to_the_same_metrics(reference, tiny_data, tmp_path):
    epochs = EPOCHS
    # Sleeping after each batch changes no number (the reference ran without it); it leaves time to kill the
    # run in the middle of fitting.
    slow = ["--additional_callbacks", "[{class_path: slow_callbacks.SleepEachBatch, init_args: {seconds: 0.25}}]",
            "--import_allowlist", "slow_callbacks"]  # a test helper, outside the allowed packages
    expected = reference

    store = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "affectlab", "run", *tiny_args(tiny_data, store, max_epochs=epochs), *slow],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    run_id = None
    for line in process.stdout:  # read until the id is printed
        if line.startswith("run_id: "):
            run_id = line.split()[1]
            break
    assert run_id, "the run printed no id"
    last = next(store.glob(f"artifacts/*/{run_id}/artifacts")) / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # into the next epoch
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not _test_metrics(store, run_id), "the killed run must not have reached its test"

    resumed = affectlab("run", "--run_id", run_id, "--store", str(store), "--import_allowlist", "slow_callbacks")
    assert "fit: resuming from" in resumed.stdout and "last.ckpt" in resumed.stdout
    assert _test_metrics(store, run_id) == expected
