"""A run's life in the store, apart from the trainer: opened (new or reused), its configs, environment and
params logged, its status kept true, its predictions written as CSV.

Under DDP Lightning re-launches the command once per extra process. Only global rank 0 creates the run and
writes to the store; it passes the run id to the others through ``AFFECTLAB_RUN_ID``.

Attempts and status. Every command line that opens a run is one *attempt* (``affectlab.attempts`` counts
them): it logs its own ``environment.json`` (the first) or ``environment-<n>.json`` and its own
``affectlab.attempt.<n>.command``, beside the earlier ones, never over them. The run is RUNNING from the
moment it is opened to the end of the whole command chain (the MLflow logger no longer marks it FINISHED
after ``fit`` when ``test`` is still to come). The attempt ends FINISHED, FAILED (the error in
``affectlab.attempt.<n>.error``) or KILLED; a failing later attempt on a FINISHED run leaves the run
FINISHED, since its earlier result stands, and is recorded on its own attempt. A run whose process died
without a word (SIGKILL, power cut) is found the next time the store is opened: a RUNNING run whose
process (``affectlab.process``: host, pid and the process's start time, so a reused pid does not pass for
it) no longer exists, or, from another host, whose ``affectlab.heartbeat`` is older than
``STALE_AFTER_SECONDS``, is marked KILLED.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import MLFlowLogger

from affectlab.errors import ConfigError, StorageError
from affectlab.io import storage_error
from affectlab.runs.checkpoints import BEST, LAST  # noqa: F401 (the run's checkpoint names, re-exported)
from affectlab.runs.environment import environment
from affectlab.runs.jobs import JOB_DIR_ENV, JOB_ID_ENV, RUN_ID_FILE
from affectlab.runs.store import FIRST_CONFIG_COPIES, RunStore

RUN_ID_ENV = "AFFECTLAB_RUN_ID"
DEFAULT_SEED = 127  # seed 000's default seed: every run, recipe and ablation starts from it unless told
HEARTBEAT_SECONDS = 60.0  # at most one heartbeat write per minute
STALE_AFTER_SECONDS = 3600.0  # a RUNNING run of another host without a heartbeat for this long was killed
TAG = "affectlab."
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: its UI nests a child under its parent


def attempt_tag(attempt: int, name: str) -> str:
    return f"{TAG}attempt.{attempt}.{name}"


def process_identity(pid: int) -> str | None:
    """``host:pid:start`` of a live process (its start time in clock ticks from ``/proc``, so that a pid the
    system gave to another process later does not match); None when no such process runs."""
    host = socket.gethostname()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the parenthesised command name
        return f"{host}:{pid}:{start}"
    except (OSError, IndexError):
        pass
    try:  # no /proc (macOS): whether the pid is alive at all
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"{host}:{pid}:"


@dataclass
class OpenRun:
    store: RunStore
    run_id: str
    reused: bool
    attempt: int = 1
    status_before: str | None = None  # the run's status when this attempt opened it (None: a new run)
    writer: bool = True  # global rank 0: the one process that writes to the store
    tracking_uri_env: str | None = None  # MLFLOW_TRACKING_URI before the run (MLflow's logger sets it)

    @property
    def checkpoint_dir(self) -> Path:
        return self.store.checkpoint_dir(self.run_id)


def _stale(tags: dict[str, str], now: float) -> bool:
    identity = tags.get(f"{TAG}process")
    if not identity:
        return False  # not opened by this version of affectlab: nothing to judge it by
    host, pid, _ = identity.split(":", 2)
    if host == socket.gethostname():
        return process_identity(int(pid)) != identity
    heartbeat = float(tags.get(f"{TAG}heartbeat", "0") or 0)
    return now - heartbeat > STALE_AFTER_SECONDS


def mark_stale_runs(store: RunStore) -> list[str]:
    """Mark KILLED the RUNNING runs whose process is gone (see the module's docstring); returns their ids. A
    killed later attempt on a FINISHED run is marked on the attempt and leaves the run FINISHED."""
    client = store.client
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    now, marked = time.time(), []
    for run in client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if not _stale(tags, now):
            continue
        attempt = int(tags.get(f"{TAG}attempts", "1"))
        client.set_tag(run.info.run_id, attempt_tag(attempt, "status"), "KILLED")
        before = tags.get(attempt_tag(attempt, "status_before"))
        client.set_terminated(run.info.run_id, "FINISHED" if before == "FINISHED" else "KILLED")
        marked.append(run.info.run_id)
    return marked


def _start_attempt(run: OpenRun) -> None:
    client, now = run.store.client, time.time()
    tags = {
        f"{TAG}attempts": str(run.attempt),
        f"{TAG}process": process_identity(os.getpid()) or "",
        f"{TAG}heartbeat": f"{now:.0f}",
        attempt_tag(run.attempt, "status"): "RUNNING",
        attempt_tag(run.attempt, "started"): time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
    }
    if run.status_before is not None:
        tags[attempt_tag(run.attempt, "status_before")] = run.status_before
    job_id = os.environ.get(JOB_ID_ENV)  # set by `affectlab submit`'s job (runs/jobs.py)
    if job_id:
        tags[f"{TAG}job_id"] = job_id
        tags[attempt_tag(run.attempt, "job_id")] = job_id
        # the job's first run is the one a requeued job resumes (--run_id); later ones are a sweep's trials
        run_id_file = Path(os.environ.get(JOB_DIR_ENV, ".")) / RUN_ID_FILE
        if not run_id_file.exists():
            run_id_file.write_text(run.run_id)
    for key, value in tags.items():
        client.set_tag(run.run_id, key, value)
    if run.reused:
        client.update_run(run.run_id, status="RUNNING")


def open_run(store: str | None, run_id: str | None, experiment: str, name: str, seed: Any, rank: int,
             parent_run_id: str | None = None, tags: dict[str, str] | None = None) -> OpenRun:
    """The run to log to: ``run_id``'s if given, else a new one named ``name`` (a child of ``parent_run_id``,
    with ``tags``); ranks above 0 take rank 0's."""
    tracking_uri_env = os.environ.get("MLFLOW_TRACKING_URI")
    resolved = RunStore.resolve(store)
    if rank != 0:
        inherited = os.environ.get(RUN_ID_ENV) or run_id
        if not inherited:
            raise ConfigError(
                f"process of global rank {rank} has no run id: start distributed runs through "
                f"Lightning's launcher (--trainer.strategy ddp) or set {RUN_ID_ENV}"
            )
        return OpenRun(resolved, inherited, reused=True, writer=False, tracking_uri_env=tracking_uri_env)
    resolved.require_writable()
    mark_stale_runs(resolved)
    if run_id is not None:
        found = resolved.get_run(run_id)
        attempt = int(found.data.tags.get(f"{TAG}attempts", "1")) + 1
        opened = OpenRun(resolved, found.info.run_id, reused=True, attempt=attempt, status_before=found.info.status,
                         tracking_uri_env=tracking_uri_env)
    else:
        new_tags = {"affectlab.seed": str(seed), **(tags or {})}
        if parent_run_id is not None:
            resolved.get_run(parent_run_id)  # an unknown parent is refused with the store's message
            new_tags[PARENT_TAG] = parent_run_id
        created = resolved.create_run(experiment, name, new_tags)
        opened = OpenRun(resolved, created, reused=False, tracking_uri_env=tracking_uri_env)
    _start_attempt(opened)
    os.environ[RUN_ID_ENV] = opened.run_id  # Lightning's DDP launcher copies the environment to its children
    return opened


def end_attempt(run: OpenRun, error: BaseException | None = None) -> str:
    """Record how this attempt ended and set the run's status (see the module's docstring); returns it."""
    if run.writer:
        client = run.store.client
        if error is None:
            outcome = "FINISHED"
        elif isinstance(error, (KeyboardInterrupt, SystemExit)):
            outcome = "KILLED"
        else:
            outcome = "FAILED"
        client.set_tag(run.run_id, attempt_tag(run.attempt, "status"), outcome)
        status = outcome
        if error is not None:
            message = f"{type(error).__name__}: {error}"[:5000]
            client.set_tag(run.run_id, attempt_tag(run.attempt, "error"), message)
            if run.status_before == "FINISHED":
                status = "FINISHED"  # the earlier result stands; this attempt's failure is on its own record
            else:
                client.set_tag(run.run_id, f"{TAG}error", message)
        client.set_terminated(run.run_id, status)
    else:
        status = "FINISHED" if error is None else "FAILED"
    # MLflow's logger set MLFLOW_TRACKING_URI for this run; a later run in this process must not inherit it
    if run.tracking_uri_env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = run.tracking_uri_env
    return status


def readable_storage_error(error: BaseException, run: OpenRun) -> StorageError | None:
    """A full disk or a read-only folder met anywhere in the chain (a checkpoint, a plot, MLflow's database)
    as one message naming the path and the fix; None for any other error."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, StorageError):
            return error
        if isinstance(error, OSError) and error.errno is not None:
            readable = storage_error(error.filename or run.checkpoint_dir / "...", error)
            if isinstance(readable, StorageError):
                return readable
        text = str(error)
        database = run.store.folder / "mlflow.db" if run.store.folder is not None else run.store.tracking_uri
        if "database or disk is full" in text:
            return StorageError(f"no space left to write the run store's database {database}: free space on its "
                                "disk, or point --store at a disk with room; the run resumes with --run_id after")
        if "readonly database" in text:
            return StorageError(f"the run store's database {database} became read-only: make it writable, or point "
                                "--store at a writable folder")
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def run_attempt(run: OpenRun) -> Iterator[OpenRun]:
    """The command chain of one attempt: the run ends FINISHED, or FAILED / KILLED with the error recorded."""
    try:
        yield run
    except BaseException as error:
        readable = readable_storage_error(error, run) if isinstance(error, Exception) else None
        try:
            end_attempt(run, readable or error)
        except Exception:  # a full disk may refuse the status too; the error that stopped the run comes first
            if readable is None:
                raise error from None
        if readable is not None and readable is not error:
            raise readable from error
        raise
    end_attempt(run)


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger, except that the end of one trainer command does not terminate the run: the
    chain (``fit`` then ``test``) is one attempt, whose end ``run_attempt`` records."""

    def finalize(self, status: str = "success") -> None:
        if not self._initialized:
            return
        if self._checkpoint_callback:
            self._scan_and_log_checkpoints(self._checkpoint_callback)


class RunHeartbeat(Callback):
    """Writes ``affectlab.heartbeat`` (seconds since the epoch) during every command, at most once every
    ``HEARTBEAT_SECONDS``: how a run on another host is known to be alive."""

    def __init__(self, run: OpenRun) -> None:
        self.run = run
        self.last = 0.0

    def beat(self, trainer: Trainer, force: bool = False) -> None:
        now = time.time()
        if self.run.writer and trainer.is_global_zero and (force or now - self.last >= HEARTBEAT_SECONDS):
            self.run.store.client.set_tag(self.run.run_id, f"{TAG}heartbeat", f"{now:.0f}")
            self.last = now

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.beat(trainer, force=True)

    def on_train_batch_end(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        self.beat(trainer)

    def on_validation_batch_end(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        self.beat(trainer)

    def on_test_batch_end(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        self.beat(trainer)

    def on_predict_batch_end(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        self.beat(trainer)


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict) and tree:
        flat: dict[str, str] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: str(tree)[:500]}


def user_arguments(argv: list[str]) -> list[str]:
    """``argv`` without the run's first config that ``--run_id`` put in front (a temporary copy's path): the
    command as the user gave it."""
    result, index = [], 0
    while index < len(argv):
        if argv[index] in ("--config", "-c") and index + 1 < len(argv) and argv[index + 1] in FIRST_CONFIG_COPIES:
            index += 2
            continue
        result.append(argv[index])
        index += 1
    return result


def environment_file(attempt: int) -> str:
    return "environment.json" if attempt == 1 else f"environment-{attempt}.json"


def log_run_contents(run: OpenRun, config_text: str, seed: Any, argv: list[str]) -> None:
    """The config (``config.yaml`` first, ``config_<timestamp>.yaml`` after), this attempt's environment
    (``environment.json`` first, ``environment-<n>.json`` after) and command, tags and, for a new run, the
    flattened config as params."""
    config_name = run.store.log_config(run.run_id, config_text)
    env = {"attempt": run.attempt, "config": config_name, **environment(seed, user_arguments(argv))}
    client = run.store.client
    client.log_text(run.run_id, json.dumps(env, indent=2), environment_file(run.attempt))
    tags = {attempt_tag(run.attempt, "command"): env["command"][:5000], "affectlab.seed": str(seed)}
    if env["git"]:
        tags[attempt_tag(run.attempt, "git_commit")] = env["git"]["commit"]
    if run.attempt == 1:  # the run's own command and code: the first attempt's, never replaced
        tags["affectlab.command"] = env["command"][:5000]
        if env["git"]:
            tags["mlflow.source.git.commit"] = env["git"]["commit"]
            tags["affectlab.git_dirty"] = str(env["git"]["dirty"])
    for key, value in tags.items():
        client.set_tag(run.run_id, key, value)
    if not run.reused:  # MLflow refuses to change a logged param; later configs are kept as files instead
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten(yaml.safe_load(config_text)).items()]
        for start in range(0, len(params), 100):
            client.log_batch(run.run_id, params=params[start : start + 100])


def predictions_csv(batches: list[dict[str, torch.Tensor]], class_names: list[str] | None) -> tuple[str, int] | None:
    """The predict batches as CSV text (one column per 1-d output, ``p_<class>`` per probability) and its row
    count; None when the method predicts no dict of tensors."""
    if not batches or not isinstance(batches[0], dict):
        return None
    columns = {key: torch.cat([b[key] for b in batches]).cpu() for key in batches[0]}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [k for k in columns if columns[k].ndim == 1]
    probabilities = columns.get("probabilities")
    classes = class_names or ([str(i) for i in range(probabilities.shape[1])] if probabilities is not None else [])
    writer.writerow(header + [f"p_{c}" for c in classes] if probabilities is not None else header)
    count = len(columns[header[0]])
    for row in range(count):
        values = [columns[k][row].item() for k in header]
        if probabilities is not None:
            values += [f"{p:.6f}" for p in probabilities[row].tolist()]
        writer.writerow(values)
    return buffer.getvalue(), count


def log_predictions(run: OpenRun, batches: list[dict[str, torch.Tensor]], class_names: list[str] | None) -> None:
    table = predictions_csv(batches, class_names)
    if table is None:
        return
    text, count = table
    run.store.client.log_text(run.run_id, text, "predictions/predictions.csv")
    print(f"predict: {count} predictions logged as predictions/predictions.csv", flush=True)
