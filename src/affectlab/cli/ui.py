"""``affectlab ui``: the MLflow UI on the run store."""

from __future__ import annotations

import argparse
import os
import sys

from affectlab.runs.store import RunStore


def ui_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectlab ui", description="Start the MLflow UI on the run store.")
    parser.add_argument("--store", default=None, help="run store folder (default: MLFLOW_TRACKING_URI or ./runs)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    options = parser.parse_args(args)
    store = RunStore.resolve(options.store)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri,
               "--host", options.host, "--port", str(options.port)]
    if store.artifact_location:
        command += ["--default-artifact-root", store.artifact_location]
    print(f"MLflow UI on {store.tracking_uri}: http://{options.host}:{options.port}", flush=True)
    os.execv(sys.executable, command)  # become the server, so Ctrl-C and kill reach it directly
