"""``affectlab ui`` opens on training runs: a tiny run finishes while the UI serves its store, and the address
the command prints, loaded in a headless Chromium, shows MLflow's runs table with the run's test metrics as
columns; the experiment's bare address, as MLflow itself links it, shows none (GenAI mode, default columns)."""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import affectlab, cli_env, mlflow_client, tiny_args

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: Debian's `apt-get install chromium` "
                                                          "(CI's .ci/run installs it when it can)")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_text(url: str, profile: Path) -> str:
    """The page's visible text once its scripts have run (virtual time: the UI's requests and renders)."""
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=20000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))


def wait_for(condition, seconds: float, what: str, output: Path):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"no {what} after {seconds} s; affectlab ui printed:\n{output.read_text()}")


@pytest.fixture(scope="module")
def served(tiny_data, tmp_path_factory):
    """``affectlab ui`` on an empty store, then a tiny supervised run (fit, test) into it while it serves."""
    folder = tmp_path_factory.mktemp("ui")
    store, output, port = folder / "store", folder / "ui.txt", free_port()
    with output.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "affectlab", "ui", "--store", str(store), "--port", str(port),
                                   "--refresh", "2"], env=cli_env(), stdout=log, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)
    try:
        run = affectlab("run", *tiny_args(tiny_data, store, max_epochs=1), "--commands", "fit-test")
        run_name = re.search(r"^run: (\S+)", run.stdout, flags=re.M).group(1)

        def printed_address():  # the experiment is printed when it appears, again when its columns change
            lines = re.findall(r"^  affectlab \((.*)\): (http://\S+)$", output.read_text(), flags=re.M)
            return next((line for line in reversed(lines) if "test/" in line[0]), None)

        columns, address = wait_for(printed_address, 120, "address with test metrics", output)

        def healthy():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, 120, "answer on /health", output)
        yield folder, store, port, run_name, columns.split(", "), address
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # affectlab ui stops its server's process group on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_experiments_are_created_as_model_training(served):
    _, store, _, _, _, _ = served
    (experiment,) = [e for e in mlflow_client(store).search_experiments() if e.name == "affectlab"]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "mlflow.sharedViewState.affectlab" in experiment.tags


def test_the_printed_address_shows_the_runs_table_with_test_metrics(served):
    folder, _, _, run_name, columns, address = served
    assert columns[:4] == ["test/acc", "test/wacc", "test/f1_macro", "test/f1_weighted"]
    text = page_text(address, folder / "chromium")
    assert "Runs" in text and "matching run" in text and run_name in text, text[:2000]
    for metric in columns:
        assert metric in text, f"{metric} is not a column of {address}:\n{text[:2000]}"
    assert "Latency" not in text and "Token Usage" not in text  # not the GenAI traces dashboard


def test_without_it_mlflow_opens_the_genai_dashboard_without_metric_columns(served):
    """Why the address matters: MLflow 3.17's own link to the experiment opens in GenAI mode."""
    folder, _, port, _, _, address = served
    experiment = re.search(r"/experiments/(\d+)/", address).group(1)
    text = page_text(f"http://127.0.0.1:{port}/#/experiments/{experiment}", folder / "chromium-plain")
    assert "test/acc" not in text and "Traces" in text, text[:2000]
