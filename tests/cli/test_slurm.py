"""``affectlab submit`` on a real Slurm: the test starts a single-node cluster (Debian's slurmctld, slurmd and
munge, on localhost, with a minimal slurm.conf in a temporary folder), submits tiny runs and reads their metrics
from the run store. Skipped, with the reason, only where those programs are absent.

Run only these: ``.venv/bin/python -m pytest tests/cli/test_slurm.py`` (add ``-m slow`` for the preemption
test: a requeued Slurm job becomes eligible again only about 120 s later)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, ROOT, affectlab, cli_env, mlflow_client, printed_run_id, tiny_args
from experiments.test_sweep_postgres import GRID, free_port, postgres  # noqa: F401 (the fixture, shared)

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
PARTITION = "debug"


def _program(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name)
                                       if p.is_file()), None)


def _slurm_conf(folder: Path, user: str, host: str, ports: tuple[int, int]) -> str:
    return "\n".join([
        "ClusterName=affectlab-test", f"SlurmctldHost={host}(127.0.0.1)", f"SlurmUser={user}", f"SlurmdUser={user}",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={folder / 'munge.socket'}",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldPort={ports[0]}", f"SlurmdPort={ports[1]}", f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        # no cgroups in a container: processes are tracked by parentage, tasks are not bound
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SchedulerType=sched/builtin", "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
        "ReturnToService=2", "JobRequeue=1",
        f"NodeName=node0 NodeAddr=127.0.0.1 NodeHostname={host} CPUs={os.cpu_count() or 1} RealMemory=2000 "
        "State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes=node0 Default=YES MaxTime=INFINITE State=UP", ""])


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node Slurm; yields the environment its clients need (SLURM_CONF)."""
    missing = [name for name in PROGRAMS if _program(name) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing; Debian: apt-get install slurmctld "
                    "slurmd slurm-client munge)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's slurmd must run as root to start job steps (run the suite as root, as CI does)")
    folder = Path(tempfile.mkdtemp(prefix="affectlab-slurm-"))  # short: munge's socket path has a length limit
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_slurm_conf(folder, getpass.getuser(), host, (free_port(), free_port())))
    env = {**cli_env(), "SLURM_CONF": str(conf)}
    started = []
    try:
        subprocess.run([_program("munged"), "--force", f"--socket={folder / 'munge.socket'}", f"--key-file={key}",
                        f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
                        f"--seed-file={folder / 'munge.seed'}"], check=True, capture_output=True, timeout=30)
        started.append("munged.pid")
        subprocess.run([_program("slurmctld"), "-i"], env=env, check=True, capture_output=True, timeout=60)
        started.append("slurmctld.pid")
        subprocess.run([_program("slurmd"), "-N", "node0"], env=env, check=True, capture_output=True, timeout=60)
        started.append("slurmd.pid")
        for _ in range(60):  # the node registers with the controller within a few seconds
            state = subprocess.run(["sinfo", "-h", "-n", "node0", "-o", "%t"], env=env, capture_output=True, text=True)
            if state.stdout.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            logs = "".join((folder / f).read_text()[-2000:] for f in ("slurmctld.log", "slurmd.log")
                           if (folder / f).exists())
            pytest.fail(f"the test cluster's node did not become idle:\n{logs}")
        yield {"env": env, "folder": folder}
    finally:
        for pid_file in reversed(started):
            try:
                os.kill(int((folder / pid_file).read_text().strip()), 15)
            except (OSError, ValueError):
                pass
        time.sleep(1)
        shutil.rmtree(folder, ignore_errors=True)


def submit(slurm, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**slurm["env"], "AFFECTLAB_IMPORT_ALLOWLIST": "slow_callbacks"}
    return subprocess.run([sys.executable, "-m", "affectlab", "submit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def only_job(store: Path) -> Path:
    (folder,) = [p for p in (store / "jobs").iterdir() if (p / "job.json").is_file()]
    return folder


def test_a_run_submitted_to_slurm_logs_its_metrics_and_job_id(slurm, tiny_data, tmp_path):
    store = tmp_path / "store"
    job = submit(slurm, "--slurm.partition", PARTITION, "--slurm.time", "10", "--wait",
                 "run", "--commands", "fit-test", *tiny_args(tiny_data, store, 1))
    assert job.returncode == 0, job.stdout + job.stderr
    folder = only_job(store)
    record = json.loads((folder / "job.json").read_text())
    assert record["launcher"] == "slurm" and (folder / f"{record['job_id']}_submission.sh").is_file()
    assert "#SBATCH --signal=USR1@" in (folder / f"{record['job_id']}_submission.sh").read_text()
    run = mlflow_client(store).get_run((folder / "run_id").read_text().strip())
    assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
    assert run.data.tags["affectlab.job_id"] == record["job_id"]
    status = subprocess.run([sys.executable, "-m", "affectlab", "submit", "--status", "--store", str(store)],
                            env=slurm["env"], capture_output=True, text=True, timeout=120)
    assert record["job_id"] in status.stdout and "FINISHED" in status.stdout


def test_an_unknown_partition_names_the_real_ones(slurm, tmp_path):
    result = submit(slurm, "--slurm.partition", "gpu-a100", "fit", "--store", str(tmp_path))
    assert result.returncode == 2
    assert "--slurm.partition 'gpu-a100' is not a partition" in result.stderr and PARTITION in result.stderr


def test_sweep_workers_as_an_array_job_share_a_postgresql_study(slurm, postgres, tiny_data, tmp_path):  # noqa: F811
    path, store = tmp_path / "sweep.yaml", tmp_path / "runs"
    path.write_text(yaml.safe_dump({
        "name": "array", "base": {"args": ["--config", str(CONFIGS / "experiment/synth/supervised.yaml")]},
        "metric": "test/acc", "storage": postgres, "space": {"grid": {"model.init_args.fusion_dim": GRID}}},
        sort_keys=False))
    job = submit(slurm, "--slurm.array", "2", "--slurm.time", "20", "--slurm.cpus_per_task", "1", "--wait",
                 "sweep", "--config", str(path), *tiny_args(tiny_data, store, 1))
    assert job.returncode == 0, job.stdout + job.stderr
    folders = [p for p in (store / "jobs").iterdir() if (p / "job.json").is_file()]
    assert len(folders) == 2 and len({p.name.split("_")[0] for p in folders}) == 1  # one array, two tasks
    import optuna

    study = optuna.load_study(study_name="array", storage=postgres)
    assert sorted(t.params["model.init_args.fusion_dim"] for t in study.trials) == GRID  # each point once
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    client = mlflow_client(store)
    kids = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
            if "mlflow.parentRunId" in r.data.tags]
    assert len(kids) == len(GRID) and {r.data.tags["affectlab.job_id"] for r in kids} <= {p.name for p in folders}


@pytest.mark.slow  # the requeued job waits about 120 s before Slurm starts it again
def test_a_preempted_slurm_job_requeues_and_resumes_its_run(slurm, tiny_data, tmp_path):
    store = tmp_path / "store"
    args = [*tiny_args(tiny_data, store, 3), "--additional_callbacks",
            "[{class_path: slow_callbacks.SleepEachBatch, init_args: {seconds: 0.5}}]"]
    env = {**slurm["env"], "AFFECTLAB_IMPORT_ALLOWLIST": "slow_callbacks"}
    waiting = subprocess.Popen([sys.executable, "-m", "affectlab", "submit", "--slurm.time", "20", "--wait",
                                "run", "--commands", "fit-test", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list((store / "jobs").glob("*/run_id")) and time.time() < deadline:
        time.sleep(0.5)
    folder = only_job(store)
    time.sleep(4)  # into epoch 0 or 1
    subprocess.run(["scancel", "--signal=USR1", folder.name], env=slurm["env"], check=True, timeout=60)
    output = waiting.communicate(timeout=600)[0]
    assert waiting.returncode == 0, output
    run = mlflow_client(store).get_run((folder / "run_id").read_text().strip())
    assert run.info.status == "FINISHED" and run.data.tags["affectlab.attempts"] == "2"
    reference = affectlab("run", "--commands", "fit-test", *tiny_args(tiny_data, tmp_path / "reference", 3))
    expected = mlflow_client(tmp_path / "reference").get_run(printed_run_id(reference.stdout)).data.metrics
    assert {k: v for k, v in run.data.metrics.items() if k.startswith("test/")} == \
        {k: v for k, v in expected.items() if k.startswith("test/")}
