"""Two sweep workers on one study in a real PostgreSQL server (issue 18 point 2): the test starts a throw-away
cluster (``initdb`` in a temporary folder, a Unix socket, no TCP), both workers take grid points from the study,
and every point runs exactly once. PostgreSQL refuses to run as root: as root the cluster is run as ``nobody``
(``runuser``), in a folder that user owns. Skipped only where the server's programs are absent."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, ROOT, cli_env, mlflow_client, tiny_args

GRID = [8, 16, 32]


def server_program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A running throw-away PostgreSQL cluster; yields the SQLAlchemy URL of an empty database in it."""
    initdb, pg_ctl = server_program("initdb"), server_program("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="affectlab-pg-"))
    if os.geteuid() == 0:  # the server refuses root: run it as nobody, in a folder nobody owns
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root without runuser: PostgreSQL cannot be started as another user")
        as_user = [runuser, "-u", "nobody", "--"]
        folder.chmod(0o755)
        shutil.chown(folder, "nobody")
    port = free_port()
    data = folder / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], check=True,
                   capture_output=True, timeout=120)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-o",
                    f"-k {folder} -p {port} -c listen_addresses=''", "start"], check=True, capture_output=True, timeout=120)
    try:
        import psycopg

        with psycopg.connect(host=str(folder), port=port, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE sweeps")
        yield f"postgresql+psycopg://postgres@/sweeps?host={folder}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_the_grid_without_duplicates(postgres, tiny_data, tmp_path):
    two_workers(postgres, tiny_data, tmp_path)


@pytest.mark.slow  # the same on the default SQLite storage (file lock, one machine)
def test_two_workers_share_a_sqlite_study(tiny_data, tmp_path):
    two_workers(None, tiny_data, tmp_path)


def two_workers(storage, tiny_data, tmp_path):
    path = tmp_path / "sweep.yaml"
    store = tmp_path / "runs"
    path.write_text(yaml.safe_dump({
        "name": "shared", "base": {"args": ["--config", str(CONFIGS / "experiment/synth/supervised.yaml")]},
        "metric": "test/acc", **({"storage": storage} if storage else {}),
        "space": {"grid": {"model.init_args.fusion_dim": GRID}}}, sort_keys=False))
    storage = storage or f"sqlite:///{store / 'sweeps.db'}"
    command = [sys.executable, "-m", "affectlab", "sweep", "--config", str(path), *tiny_args(tiny_data, store, 1)]
    workers = [subprocess.Popen(command, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    import optuna

    study = optuna.load_study(study_name="shared", storage=storage)
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * len(GRID)
    assert sorted(t.params["model.init_args.fusion_dim"] for t in study.trials) == GRID  # each point once
    started = [line for out in outputs for line in out.splitlines() if line.startswith("sweep shared: trial ")]
    assert len(started) == len(GRID)  # no point started twice, by either worker
    client = mlflow_client(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in runs if r.data.tags.get("affectlab.group.kind") == "sweep"]
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].data.tags["affectlab.sweep.storage"] == storage
    assert sorted(json.loads(r.data.tags["affectlab.group.config"])["model.init_args.fusion_dim"] for r in kids) == GRID
