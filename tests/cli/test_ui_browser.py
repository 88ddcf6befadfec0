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


def page_dom(url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run (virtual time: the UI's requests and renders)."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=20000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout


def page_text(url: str, profile: Path) -> str:
    """The page's visible text once its scripts have run."""
    dom = page_dom(url, profile)
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


def row_html(dom: str, run_id: str) -> str:
    """The runs table's row of ``run_id`` (AG Grid: from its ``row-id`` to the next row)."""
    start = dom.index(f'row-id="{run_id}"')
    end = dom.find('role="row"', start)
    return dom[start:end if end > 0 else len(dom)]


def test_a_group_of_runs_is_one_expandable_row(served):
    """A sweep (issue 18.4): its parent is one row with an expand button, its trials nested under it (hidden until
    expanded), beside the ordinary run whose row has no button. Made with runs/groups.py in the served store."""
    from affectlab.runs import groups
    from affectlab.runs.store import RunStore

    folder, store_path, _, run_name, _, address = served
    store = RunStore.resolve(str(store_path))
    parent = groups.open_parent_run(store, "affectlab", "grid-sweep-parent", "sweep", {})
    for trial in range(2):
        child = store.create_run("affectlab", f"grid-trial-{trial}", {"mlflow.parentRunId": parent})
        store.client.log_metric(child, "test/acc", 0.5)
        store.client.set_terminated(child)
    groups.end_parent_run(store, parent)
    (solo,) = [r for r in mlflow_client(store_path).search_runs([store.experiment_id("affectlab")])
               if r.info.run_name == run_name]
    dom = page_dom(address, folder / "chromium-groups")
    expander = "runnamecellrenderer"  # MLflow's run-name cell: a button before the name of a run with children
    assert "grid-sweep-parent" in dom and expander in row_html(dom, parent).lower(), dom[:2000]
    assert expander not in row_html(dom, solo.info.run_id).lower()
    assert "grid-trial-0" not in dom and "grid-trial-1" not in dom  # nested: shown only once the row is expanded
