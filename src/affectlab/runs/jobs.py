"""Jobs: any ``affectlab`` command run as a Slurm job through submitit, or by submitit's local executor.

    affectlab submit [--launcher slurm|local] [--slurm.partition P --slurm.time 4:00:00 ...] fit --config X.yaml
      -> <store>/jobs/<job id>/   job.json (what was submitted), submitit's pickles and logs
                                   (<job id>_0_log.out/.err), run_id (the run the job opened), outcome.json

One job per command; ``--slurm.array N`` submits N tasks of the same command as one array job (a sweep's
workers sharing one study). The job runs ``python -m affectlab.cli.main <command>`` as a child of submitit's
worker (``run_job``), so that the worker reads the stderr tail from the job's log and requeues after it has exited.

Preemption has one owner, AffectLab (see ``runs/preemption.py``). Slurm sends SIGUSR1 ``signal_delay_s``
before the time limit (``--signal=USR1@...``, which submitit writes because ``SUBMITIT_PREEMPT_SIGNAL`` is set
before it is imported). The worker does not let submitit's own handler act on it (that one checkpoints from
inside the signal handler, on rank 0 only, and knows nothing of the run): it forwards the signal to the child,
whose ``Preemption`` callback writes ``last.ckpt`` at the next step and exits with ``REQUEUE_EXIT``. The worker
then requeues: ``scontrol requeue`` under Slurm; under the local executor, exiting 144 is what makes submitit's
controller start the task again. The requeued task adds ``--run_id <the run>`` (read from the job folder) to
the command, so fit resumes the same MLflow run from its ``last.ckpt``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from affectlab.errors import ConfigError
from affectlab.io import atomic_write_json

PREEMPT_SIGNAL = "USR1"  # what Lightning's SLURMEnvironment expects; submitit's default is USR2
REQUEUE_EXIT = 144  # submitit's local controller restarts a task that exits with this code
JOB_ID_ENV, JOB_DIR_ENV = "AFFECTLAB_JOB_ID", "AFFECTLAB_JOB_DIR"
JOB_FILE, RUN_ID_FILE, OUTCOME_FILE, TAIL_FILE = "job.json", "run_id", "outcome.json", "stderr_tail.txt"
CANCELLED_FILE = "cancelled"
TAIL_LINES = 40
LAUNCHERS = ("slurm", "local")
# commands that open one run and resume it with --run_id (a sweep resumes its own study, a recipe its stages)
RESUMABLE = ("fit", "validate", "test", "run")


@dataclass
class SlurmOptions:
    """``--slurm.<name>`` options: the job's resources (the local executor uses ``time`` and ``gpus_per_node``)."""

    partition: str | None = None
    time: str = "1:00:00"  # Slurm's formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    array: int = 1  # tasks of the same command in one array job
    account: str | None = None
    signal_delay_s: int = 120  # SIGUSR1 this long before the time limit: time to write last.ckpt


_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$")


def slurm_minutes(value: str) -> int:
    """Slurm's ``--time`` formats as whole minutes (rounded up), or a ConfigError naming ``--slurm.time``."""
    match = _TIME.match(str(value).strip())
    if not match:
        raise ConfigError(f"--slurm.time {value!r} is not a Slurm time limit; write MM, HH:MM:SS, D-HH or "
                          "D-HH:MM:SS (e.g. --slurm.time 4:00:00 for four hours)")
    days, a, b, c = (int(match[k]) if match[k] else None for k in ("days", "a", "b", "c"))
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = ((days * 24 + a) * 60 + (b or 0)) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = (a * 60 + b) * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:  # MM
        seconds = a * 60
    if seconds <= 0:
        raise ConfigError(f"--slurm.time {value!r} is zero; give the job time to run (e.g. --slurm.time 30)")
    return -(-seconds // 60)


def check_options(options: SlurmOptions) -> int:
    """The options' minutes after checking the numbers; each error names its option."""
    minutes = slurm_minutes(options.time)
    for name in ("nodes", "array"):
        if getattr(options, name) < 1:
            raise ConfigError(f"--slurm.{name} must be at least 1, not {getattr(options, name)}")
    if options.gpus_per_node < 0:
        raise ConfigError(f"--slurm.gpus_per_node must be 0 or more, not {options.gpus_per_node}")
    if options.signal_delay_s * 2 > minutes * 60:
        raise ConfigError(f"--slurm.signal_delay_s {options.signal_delay_s} leaves no time to train within "
                          f"--slurm.time {options.time}; lower it or raise the time limit")
    return minutes


def require_slurm(options: SlurmOptions) -> None:
    """Slurm's commands answer and the partition exists; else the fix (``--launcher local``, a real partition)."""
    if shutil.which("sbatch") is None:
        raise ConfigError("--launcher slurm: sbatch is not on this machine's PATH, so there is no Slurm cluster "
                          "to submit to; run on the cluster's login node, or use --launcher local to run the "
                          "job here through submitit's local executor")
    try:
        listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"--launcher slurm: sinfo did not answer ({error}); is slurmctld running?") from None
    if listed.returncode != 0:
        raise ConfigError(f"--launcher slurm: sinfo failed ({listed.stderr.strip()}); is slurmctld reachable?")
    partitions = [p.rstrip("*") for p in listed.stdout.split()]
    if options.partition is not None and options.partition not in partitions:
        raise ConfigError(f"--slurm.partition {options.partition!r} is not a partition of this cluster; "
                          f"choose one of {', '.join(partitions) or '(none listed)'} (sinfo lists them)")


def store_of(command: list[str]) -> str | None:
    """The ``--store`` a command names, if any."""
    for i, arg in enumerate(command):
        if arg == "--store" and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith("--store="):
            return arg.split("=", 1)[1]
    return None


def jobs_folder(store: str | None) -> Path:
    """``<store>/jobs``: jobs' logs live beside the runs they made (a server store: ``./runs/jobs``)."""
    from affectlab.runs.store import DEFAULT_STORE, RunStore

    return (RunStore.resolve(store).folder or Path(DEFAULT_STORE).resolve()) / "jobs"


# -- inside the job -------------------------------------------------------------------------------------------
def _job_identity() -> tuple[str, Path, int, str]:
    import submitit

    env = submitit.JobEnvironment()
    return str(env.job_id), Path(env.paths.folder), int(env.global_rank), str(env.paths.stderr)


def _log_tail(log: Path) -> list[str]:
    """The last lines the command wrote to the job's stderr log (submitit's own lines left out)."""
    try:
        lines = log.read_text(errors="replace").splitlines(keepends=True)
    except OSError:
        return []
    return [line for line in lines if not line.startswith("submitit ")][-TAIL_LINES:]


def _command_for_attempt(command: list[str], job_dir: Path) -> list[str]:
    """The command, plus ``--run_id`` of the run an earlier attempt of this job opened (a requeued job)."""
    run_id_file = job_dir / RUN_ID_FILE
    resumes = command and command[0] in RESUMABLE and "--seeds" not in command
    named = any(a == "--run_id" or a.startswith("--run_id=") for a in command)
    if resumes and not named and run_id_file.is_file():
        return [*command, "--run_id", run_id_file.read_text().strip()]
    return command


def _record_failure(command: list[str], job_dir: Path, tail: str) -> None:
    """The stderr tail beside the job and on the run it opened (artifact and tag), for ``submit --status``."""
    (job_dir / TAIL_FILE).write_text(tail)
    run_id_file = job_dir / RUN_ID_FILE
    if not run_id_file.is_file():
        return
    try:
        from affectlab.runs.store import RunStore

        store = RunStore.resolve(store_of(command))
        run_id = run_id_file.read_text().strip()
        store.client.log_text(run_id, tail, "job/stderr_tail.txt")
        store.client.set_tag(run_id, "affectlab.job.stderr_tail", tail[-4000:])
    except Exception as error:  # the job has failed already; its folder keeps the tail whatever MLflow says
        print(f"affectlab job: could not log the stderr tail on the run ({error})", file=sys.stderr)


def run_job(command: list[str]) -> dict[str, Any]:
    """submitit's callable: run ``affectlab <command>`` as a child, forward preemption, requeue, report."""
    job_id, job_dir, rank, stderr_log = _job_identity()
    job_dir.mkdir(parents=True, exist_ok=True)
    argv = _command_for_attempt(command, job_dir)
    env = {**os.environ, JOB_ID_ENV: job_id, JOB_DIR_ENV: str(job_dir)}
    # the child writes to the job's own log (inherited): it outlives this worker, which a cancel kills first
    child = subprocess.Popen([sys.executable, "-m", "affectlab.cli.main", *argv], env=env)
    # submitit's handler for the preemption signal is replaced: the child's Preemption callback owns it
    forward = lambda signum, frame: child.poll() is None and child.send_signal(signum)  # noqa: E731
    signal.signal(getattr(signal, "SIG" + PREEMPT_SIGNAL), forward)
    signal.signal(signal.SIGTERM, forward)  # scancel, a node going down
    signal.signal(signal.SIGINT, forward)  # the local executor's cancel: the child's run then ends KILLED
    code = child.wait()
    record = {"job_id": job_id, "command": argv, "returncode": code, "ended": time.time()}
    if code == REQUEUE_EXIT:
        atomic_write_json(job_dir / OUTCOME_FILE, {**record, "state": "REQUEUED"})
        if rank == 0 and os.environ.get("SLURM_JOB_ID"):
            slurm_id = job_id  # submitit's id: <array>_<task> for an array task, as scontrol takes it
            subprocess.run(["scontrol", "requeue", slurm_id], check=False, timeout=60)
        sys.exit(REQUEUE_EXIT)  # the local controller starts the task again; Slurm has requeued the job
    if code != 0:
        tail = _log_tail(Path(stderr_log))
        text = "".join(tail)
        if rank == 0:
            _record_failure(command, job_dir, text)
            atomic_write_json(job_dir / OUTCOME_FILE, {**record, "state": "FAILED"})
        last = next((line.strip() for line in reversed(tail) if line.strip()), "no output on stderr")
        raise RuntimeError(f"affectlab {' '.join(argv[:1])} exited with {code}: {last}")
    if rank == 0:
        atomic_write_json(job_dir / OUTCOME_FILE, {**record, "state": "FINISHED"})
    return record


# -- submitting and following ---------------------------------------------------------------------------------
def submit(command: list[str], options: SlurmOptions, launcher: str = "slurm", store: str | None = None) -> list[Any]:
    """Submit ``command`` (``options.array`` tasks of it); the submitit jobs, after writing each one's job.json."""
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher {launcher!r} is not one of {', '.join(LAUNCHERS)}: slurm submits to the "
                          "cluster, local runs the same job here")
    if not command:
        raise ConfigError("affectlab submit needs a command to run, e.g. 'affectlab submit fit --config X.yaml'")
    if command[0] == "submit":
        raise ConfigError("affectlab submit runs a command as a job; 'submit submit' would submit a submitter")
    minutes = check_options(options)
    if launcher == "slurm":
        require_slurm(options)
    os.environ["SUBMITIT_PREEMPT_SIGNAL"] = PREEMPT_SIGNAL  # read when submitit is imported, here and in the job
    import submitit

    store = store or store_of(command)
    folder = jobs_folder(store) / "%j"
    if launcher == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=minutes, signal_delay_s=options.signal_delay_s,
                                   gpus_per_node=options.gpus_per_node)
    else:
        executor = submitit.SlurmExecutor(folder=folder)
        parameters: dict[str, Any] = {
            "time": minutes, "nodes": options.nodes, "signal_delay_s": options.signal_delay_s,
            # one task per GPU, as Lightning's SLURMEnvironment expects for DDP across nodes
            "ntasks_per_node": max(1, options.gpus_per_node), "job_name": f"affectlab-{command[0]}",
            "additional_parameters": {"requeue": True},
        }
        if options.gpus_per_node:
            parameters["gpus_per_node"] = options.gpus_per_node
        for name, key in (("partition", "partition"), ("cpus_per_task", "cpus_per_task"), ("account", "account")):
            if getattr(options, name) is not None:
                parameters[key] = getattr(options, name)
        if options.mem_gb is not None:
            parameters["mem"] = f"{int(options.mem_gb * 1024)}M"
        executor.update_parameters(**parameters)
    if options.array > 1:
        with executor.batch():
            jobs = [executor.submit(run_job, command) for _ in range(options.array)]
    else:
        jobs = [executor.submit(run_job, command)]
    for job in jobs:
        job_dir = Path(job.paths.folder)
        job_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(job_dir / JOB_FILE, {"job_id": str(job.job_id), "launcher": launcher, "command": command,
                                         "options": asdict(options), "submitted": time.time(),
                                         "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)})
    return jobs


def _pid_running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet waited for, does not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _queue_state(record: dict[str, Any]) -> str | None:
    """The job's state while the scheduler still holds it (PENDING, RUNNING, ...), else None."""
    job_id = record["job_id"]
    if record["launcher"] == "local":
        return "RUNNING" if job_id.isdigit() and _pid_running(int(job_id)) else None
    try:
        listed = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = listed.stdout.split() if listed.returncode == 0 else []
    return states[0] if states else None


def job_status(job_dir: Path) -> dict[str, Any]:
    """What ``submit --status`` shows of one job: its record, state, run id and, after a failure, stderr tail."""
    record = json.loads((job_dir / JOB_FILE).read_text())
    outcome_file, run_id_file = job_dir / OUTCOME_FILE, job_dir / RUN_ID_FILE
    outcome = json.loads(outcome_file.read_text()) if outcome_file.is_file() else {}
    state = _queue_state(record)
    if state is None and (job_dir / CANCELLED_FILE).is_file():
        state = "CANCELLED"
    elif state is None or (record["launcher"] == "local" and outcome.get("state") in ("FINISHED", "FAILED")):
        # an exception before run_job wrote its outcome (a job that could not start) leaves submitit's own log
        state = outcome.get("state") or "LOST (not queued, no outcome; see its log)"
    tail_file = job_dir / TAIL_FILE
    return {**record, "state": state, "folder": str(job_dir),
            "run_id": run_id_file.read_text().strip() if run_id_file.is_file() else None,
            "stderr_tail": tail_file.read_text() if tail_file.is_file() and state == "FAILED" else None}


def list_jobs(store: str | None) -> list[Path]:
    """The store's job folders, oldest first."""
    root = jobs_folder(store)
    folders = [p for p in root.glob("*") if (p / JOB_FILE).is_file()] if root.is_dir() else []
    return sorted(folders, key=lambda p: json.loads((p / JOB_FILE).read_text()).get("submitted", 0))


def find_job(store: str | None, job_id: str) -> Path:
    folder = jobs_folder(store) / job_id
    if not (folder / JOB_FILE).is_file():
        known = ", ".join(p.name for p in list_jobs(store)[-10:]) or "none"
        raise ConfigError(f"no job {job_id!r} under {jobs_folder(store)} (recent jobs: {known}); "
                          "pass the store the job was submitted with (--store)")
    return folder


def cancel(job_dir: Path) -> str:
    """Cancel a job: scancel under Slurm; under the local executor, SIGINT to its controller (as submitit does)."""
    record = json.loads((job_dir / JOB_FILE).read_text())
    if _queue_state(record) is None:
        return f"already ended ({job_status(job_dir)['state']})"
    if record["launcher"] == "local":
        os.kill(int(record["job_id"]), signal.SIGINT)
    else:
        done = subprocess.run(["scancel", record["job_id"]], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise ConfigError(f"scancel {record['job_id']} failed: {done.stderr.strip()}")
    (job_dir / CANCELLED_FILE).write_text(str(time.time()))  # what --status says once the job has gone
    return "cancelled"
