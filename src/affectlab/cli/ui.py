"""``affectlab ui``: the MLflow UI on the run store, opening on training runs.

It prints, per experiment, the address of its runs table in MLflow's model-training mode with the saved
view that shows the main test metrics as columns (``runs/ui_views.py`` says why an address is needed), then
serves; every ``--refresh`` seconds it updates the views, so runs that finish meanwhile get their columns,
and prints the address of any new experiment.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from affectlab.runs.store import RunStore


def _print_changed(views: list, known: dict[str, tuple[str, ...]], base: str) -> None:
    """A line per experiment that is new or whose columns changed (a run finished its test, say)."""
    for view in views:
        if known.get(view.experiment_id) != view.metrics:
            known[view.experiment_id] = view.metrics
            columns = ", ".join(view.metrics) or "no metrics yet"
            print(f"  {view.name} ({columns}): {view.url(base)}", flush=True)


def _refresh(store: RunStore, known: dict[str, tuple[str, ...]], base: str) -> None:
    from affectlab.runs.ui_views import refresh_views

    try:
        _print_changed(refresh_views(store), known, base)
    except Exception as error:  # a busy or remote store must not stop the server; the next refresh retries
        print(f"affectlab ui: could not update the saved views ({type(error).__name__}: {error})", file=sys.stderr)


def ui_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectlab ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=None, help="run store folder (default: MLFLOW_TRACKING_URI or ./runs)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1, help="server processes (one serves a person at a time)")
    parser.add_argument("--refresh", type=float, default=10.0, help="seconds between updates of the saved views")
    options = parser.parse_args(args)
    store = RunStore.resolve(options.store)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri,
               "--host", options.host, "--port", str(options.port), "--workers", str(options.workers)]
    if store.artifact_location:
        command += ["--default-artifact-root", store.artifact_location]
    store.client.search_experiments(max_results=1)  # creates the database first: two first users would race
    base = f"http://{options.host}:{options.port}"
    print(f"MLflow UI on {store.tracking_uri}: {base} (MLflow's home page opens in GenAI mode; each experiment's "
          "address below opens its training runs)", flush=True)
    # Its own process group, so that stopping this command stops the server and every worker it started.
    server = subprocess.Popen(command, start_new_session=True)

    def stop(*_: object) -> None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(143)))
    known: dict[str, tuple[str, ...]] = {}
    print("Training runs with their main metrics as columns, per experiment:", flush=True)
    _refresh(store, known, base)
    try:
        while server.poll() is None:
            try:
                server.wait(timeout=options.refresh)
            except subprocess.TimeoutExpired:
                _refresh(store, known, base)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    return server.returncode or 0
