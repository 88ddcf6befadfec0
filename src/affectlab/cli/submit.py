"""``affectlab submit``: run any affectlab command as a job (runs/jobs.py), and follow or cancel jobs.

    affectlab submit [--launcher slurm|local] [--slurm.partition P] [--slurm.time 4:00:00] [--slurm.nodes K]
                     [--slurm.gpus_per_node N] [--slurm.cpus_per_task C] [--slurm.mem_gb G] [--slurm.array N]
                     [--slurm.account A] [--slurm.signal_delay_s S] [--store DIR] [--wait] COMMAND [OPTIONS]
    affectlab submit --status [JOB] [--store DIR]    every job of the store (or one, with its stderr tail)
    affectlab submit --cancel JOB [--store DIR]

Submit's own options come before the command; everything from the command on is the command's, unchanged.
"""

from __future__ import annotations

import dataclasses
import time
import typing

from affectlab.errors import ConfigError
from affectlab.runs.jobs import SlurmOptions, cancel, find_job, job_status, list_jobs, store_of, submit

# the states job_status gives a job that has left the queue (while queued it gives Slurm's PENDING, RUNNING, ...)
FINAL_STATES = ("FINISHED", "FAILED", "CANCELLED")
_FIELDS = {f.name: f for f in dataclasses.fields(SlurmOptions)}
_TYPES = typing.get_type_hints(SlurmOptions)


def _convert(name: str, text: str) -> typing.Any:
    kind = _TYPES[name]
    base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
    try:
        return base(text)
    except ValueError:
        raise ConfigError(f"--slurm.{name} takes {base.__name__}, not {text!r}") from None


def parse_submit_args(args: list[str]) -> tuple[dict[str, typing.Any], list[str]]:
    """Submit's options (launcher, slurm, store, wait, status, cancel) and the command after them."""
    parsed: dict[str, typing.Any] = {"launcher": "slurm", "slurm": {}, "store": None, "wait": False,
                                     "status": False, "job": None, "cancel": None}
    i = 0
    while i < len(args) and args[i].startswith("--"):
        flag, _, inline = args[i].partition("=")

        def value() -> str:
            nonlocal i
            if inline:
                return inline
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"affectlab submit {flag} needs a value")
            i += 1
            return args[i]

        if flag == "--wait":
            parsed["wait"] = True
        elif flag == "--status":
            parsed["status"] = True
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                i += 1
                parsed["job"] = args[i]
        elif flag == "--cancel":
            parsed["cancel"] = value()
        elif flag == "--launcher":
            parsed["launcher"] = value()  # checked by submit(), the one place every caller goes through
        elif flag == "--store":
            parsed["store"] = value()
        elif flag.startswith("--slurm."):
            name = flag[len("--slurm."):]
            if name not in _FIELDS:
                raise ConfigError(f"unknown option {flag}; the Slurm options are "
                                  f"{', '.join('--slurm.' + n for n in _FIELDS)}")
            parsed["slurm"][name] = _convert(name, value())
        else:
            raise ConfigError(f"unknown submit option {flag}; submit's options (--launcher, --slurm.*, --store, "
                              "--wait, --status, --cancel) come before the command, the command's own after it")
        i += 1
    return parsed, args[i:]


def _table(statuses: list[dict[str, typing.Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="affectlab jobs")
    for column in ("job", "launcher", "state", "command", "run id", "last error line"):
        table.add_column(column, overflow="fold")
    for status in statuses:
        tail = (status.get("stderr_tail") or "").strip().splitlines()
        table.add_row(status["job_id"], status["launcher"], status["state"], " ".join(status["command"])[:60],
                      status.get("run_id") or "", tail[-1] if tail else "")
    Console().print(table)


def _detail(status: dict[str, typing.Any]) -> None:
    print(f"job {status['job_id']} ({status['launcher']}): {status['state']}")
    print(f"  command: affectlab {' '.join(status['command'])}")
    print(f"  run id:  {status.get('run_id') or '(none opened yet)'}")
    print(f"  folder:  {status['folder']}\n  stdout:  {status['stdout']}\n  stderr:  {status['stderr']}")
    if status.get("stderr_tail"):
        print("  stderr tail:\n" + "".join(f"    {line}\n" for line in status["stderr_tail"].rstrip().splitlines()))


def _wait(jobs: list[typing.Any], store: str | None, poll_s: float = 1.0) -> int:
    """Until every job has ended (a requeued one runs again first); 0 if all finished, else 1."""
    folders = [find_job(store, str(job.job_id)) for job in jobs]
    while True:
        for job in jobs:  # a local job's controller is this process's child: poll it, so that it is reaped
            process = getattr(job, "_process", None)
            if process is not None:
                process.poll()
        statuses = [job_status(folder) for folder in folders]
        if all(s["state"] in FINAL_STATES or s["state"].startswith("LOST") for s in statuses):
            break
        time.sleep(poll_s)
    for status in statuses:
        _detail(status)
    return 0 if all(s["state"] == "FINISHED" for s in statuses) else 1


def submit_command(args: list[str]) -> int:
    parsed, command = parse_submit_args(args)
    store = parsed["store"] or store_of(command)
    if parsed["cancel"] is not None:
        print(f"job {parsed['cancel']}: {cancel(find_job(store, parsed['cancel']))}")
        return 0
    if parsed["status"]:
        if parsed["job"] is not None:
            _detail(job_status(find_job(store, parsed["job"])))
        else:
            _table([job_status(folder) for folder in list_jobs(store)])
        return 0
    options = SlurmOptions(**parsed["slurm"])
    if store is not None and store_of(command) is None:
        command = [*command, "--store", store]  # the job's runs go where its logs go
    jobs = submit(command, options, parsed["launcher"], store)
    for job in jobs:
        print(f"submitted job {job.job_id} ({parsed['launcher']}): logs in {job.paths.folder}", flush=True)
    if parsed["wait"] or parsed["launcher"] == "local":
        # a local job lives as long as its controller, this process's child: submit waits for it
        return _wait(jobs, store)
    print("follow with: affectlab submit --status" + (f" --store {store}" if store else ""))
    return 0
