"""Run store reliability probes (issue 17 points 1, 3, 6, 9, 10; issue 16 point 4): kill points and resume,
concurrent first use of a store, run status and attempts, faults as one message, temporary files, and
in-process runs that keep everything under the store's root.

Every run is the real command on tiny AffectSynth; kills are real SIGKILLs of the run's own process
(``tests/helpers/kill_callbacks.py``), the read-only store and the full disk are real mounts in a private
mount namespace (``unshare``; skipped with the reason where the system refuses one)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import CONFIGS, TEST_CONFIGS, TINY_DATA, affectlab, cli_env, mlflow_client, printed_run_id, tiny_args

EPOCHS = 3
# The supervised baseline whose best.ckpt is the highest val/loss: after epoch 0 the falling loss improves
# nothing, so best.ckpt stays at epoch 0 while last.ckpt must move on (where last.ckpt was a copy of best.ckpt)
NO_IMPROVEMENT = ["--model.class_path", "kill_callbacks.BestIsHighestLoss"]
# the test helpers live outside the packages a config may import from; a stored config cannot allow them itself
TRUST = ["--import_allowlist", "kill_callbacks,slow_callbacks"]
QUICK = [*TRUST, "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"]


def _callbacks(marker: Path, **kill) -> list[str]:
    options = ", ".join(f"{k}: {v}" for k, v in kill.items())
    return ["--additional_callbacks",
            f"[{{class_path: kill_callbacks.KillOnce, init_args: {{marker: {marker}, {options}}}}}, "
            "{class_path: slow_callbacks.CountEpochs}]"]


def _test_metrics(store: Path, run_id: str) -> dict[str, float]:
    return {k: v for k, v in mlflow_client(store).get_run(run_id).data.metrics.items() if k.startswith("test/")}


def _artifact_dir(store: Path, run_id: str) -> Path:
    return next(store.glob(f"artifacts/*/{run_id}/artifacts"))


def _killed(args: list[str]) -> tuple[str, str]:
    """Run ``affectlab ARGS`` until it kills itself; its run id and output."""
    result = subprocess.run([sys.executable, "-m", "affectlab", *args], env=cli_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, f"not killed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return printed_run_id(result.stdout), result.stdout


# -- 17.1: last.ckpt at every epoch end; a resume re-trains nothing that finished ------------------------------

@pytest.mark.slow  # three real runs (~90 s on CI's 2 cores); test_checkpoints.py checks last.ckpt's epoch in CI
def test_resume_after_an_epoch_that_did_not_improve_starts_after_it(tiny_data, tmp_path):
    done = tmp_path / "never-kill"
    done.write_text("")
    reference = affectlab("run", *tiny_args(tiny_data, tmp_path / "reference", EPOCHS), *QUICK, *NO_IMPROVEMENT,
                          *_callbacks(done, epoch=2))
    expected = _test_metrics(tmp_path / "reference", printed_run_id(reference.stdout))
    assert expected

    store = tmp_path / "killed"
    run_id, output = _killed(["run", *tiny_args(tiny_data, store, EPOCHS), *QUICK,
                              *NO_IMPROVEMENT, *_callbacks(tmp_path / "kill-marker", epoch=2)])
    assert "epoch-finished 1" in output and "epoch-finished 2" not in output
    checkpoints = _artifact_dir(store, run_id) / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    best = torch.load(checkpoints / "best.ckpt", weights_only=True)
    assert (best["epoch"], last["epoch"]) == (0, 1)  # epoch 1 did not improve, and last.ckpt still holds it
    assert not _test_metrics(store, run_id)

    resumed = affectlab("run", "--run_id", run_id, "--store", str(store), *TRUST)
    assert "fit: resuming from" in resumed.stdout
    # the resume starts at epoch 2: epochs 0 and 1 are not trained again
    assert "epoch-finished 2" in resumed.stdout and "epoch-finished 1" not in resumed.stdout
    assert _test_metrics(store, run_id) == expected

    # 17.6 / 16.4: the killed attempt is marked KILLED when the store is next opened (here: by the resume), the
    # resume is attempt 2 with its own environment and command, the first ones kept
    run = mlflow_client(store).get_run(run_id)
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert (tags["affectlab.attempt.1.status"], tags["affectlab.attempt.2.status"]) == ("KILLED", "FINISHED")
    assert tags["affectlab.attempt.2.status_before"] == "KILLED"
    artifacts = _artifact_dir(store, run_id)
    first = json.loads((artifacts / "environment.json").read_text())
    second = json.loads((artifacts / "environment-2.json").read_text())
    assert first["attempt"] == 1 and "--run_id" not in first["command"] and tags["affectlab.command"] == first["command"]
    assert second["attempt"] == 2 and second["command"] == f"affectlab --run_id {run_id} --store {store} {' '.join(TRUST)}"
    assert tags["affectlab.attempt.2.command"] == second["command"]
    # 17.10: the thread counts identical numbers depend on are recorded
    assert second["determinism"]["torch_threads"] == 1 and second["determinism"]["thread_variables"]["OMP_NUM_THREADS"] == "1"


# -- 17.3: four runs started at once on an empty store --------------------------------------------------------

@pytest.fixture(scope="module")
def four_runs(tiny_data, tmp_path_factory) -> tuple[Path, list[str]]:
    store = tmp_path_factory.mktemp("concurrent") / "store"  # does not exist yet: the first runs create it
    processes = [
        subprocess.Popen([sys.executable, "-m", "affectlab", "run", *tiny_args(tiny_data, store, max_epochs=1), *QUICK,
                          "--run_name", f"concurrent-{i}"],
                         env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, f"a concurrent run failed ({process.returncode}):\n{out}\n{err}"
    return store, [printed_run_id(out) for out, _ in outputs]


@pytest.mark.slow  # four real runs at once (~2 min on CI's 2 cores); the store set-up race itself runs in CI below
def test_four_runs_started_at_once_on_an_empty_store_all_finish(four_runs):
    store, run_ids = four_runs
    client = mlflow_client(store)
    assert len(set(run_ids)) == 4
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
    assert sorted(r.info.run_name for r in client.search_runs([client.get_experiment_by_name("affectlab").experiment_id])) \
        == [f"concurrent-{i}" for i in range(4)]


# the store alone (no torch, no Lightning to import): its database set-up and first experiment are the race
OPEN_ONE_RUN = """
import sys
from affectlab.runs.store import RunStore
store = RunStore.resolve(sys.argv[1])
run_id = store.create_run("affectlab", sys.argv[2], {})
store.client.set_terminated(run_id, "FINISHED")
print("opened", run_id)
"""


def test_four_processes_opening_runs_at_once_on_an_empty_store_all_succeed(tmp_path):
    """The race of issue 17.3 without the training: MLflow's first-time database set-up in four processes."""
    store = tmp_path / "store"
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_ONE_RUN, str(store), f"at-once-{i}"], env=cli_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0 and "opened" in out, err
    client = mlflow_client(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(r.info.run_name for r in runs) == [f"at-once-{i}" for i in range(4)]
    assert {r.info.status for r in runs} == {"FINISHED"}


# -- 17.6: status -----------------------------------------------------------------------------------------------

@pytest.mark.slow  # needs four_runs; test_lifecycle.py checks the same attempt records without training
def test_a_failing_later_command_is_recorded_on_its_own_attempt(four_runs, tmp_path):
    store, run_ids = four_runs
    run_id = run_ids[0]
    failed = affectlab("test", "--run_id", run_id, "--store", str(store), "--test.ckpt_path", str(tmp_path / "none.ckpt"),
                       check=False)
    assert failed.returncode != 0
    run = mlflow_client(store).get_run(run_id)
    tags = run.data.tags
    assert run.info.status == "FINISHED"  # the earlier result stands
    assert (tags["affectlab.attempt.1.status"], tags["affectlab.attempt.2.status"]) == ("FINISHED", "FAILED")
    assert "none.ckpt" in tags["affectlab.attempt.2.error"] and "affectlab.error" not in tags
    assert "test/acc" in run.data.metrics


def test_a_run_killed_during_test_is_not_finished_and_becomes_killed(tiny_data, tmp_path, monkeypatch):
    from affectlab.runs.lifecycle import RUN_ID_ENV, end_attempt, open_run

    store = tmp_path / "store"
    run_id, output = _killed(["run", *tiny_args(tiny_data, store, max_epochs=1), *QUICK,
                              *_callbacks(tmp_path / "marker", stage="test")])
    assert "epoch-finished 0" in output
    client = mlflow_client(store)
    assert client.get_run(run_id).info.status == "RUNNING" and not _test_metrics(store, run_id)
    # the next touch of the store (any run opened in it) finds the dead process
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    other = open_run(str(store), None, "affectlab", "next", 0, rank=0)
    end_attempt(other)
    killed = client.get_run(run_id)
    assert killed.info.status == "KILLED" and killed.data.tags["affectlab.attempt.1.status"] == "KILLED"
    assert client.get_run(other.run_id).info.status == "FINISHED"  # a live (this) process's run is not touched


def test_a_run_of_a_live_process_is_not_stale_and_a_reused_pid_is(tmp_path, monkeypatch):
    from affectlab.runs.lifecycle import RUN_ID_ENV, mark_stale_runs, open_run, process_identity

    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    alive = open_run(str(tmp_path), None, "affectlab", "alive", 0, rank=0)
    reused_pid = open_run(str(tmp_path), None, "affectlab", "reused-pid", 0, rank=0)
    client = alive.store.client
    host, pid, start = process_identity(os.getpid()).split(":")
    assert host == socket.gethostname()
    client.set_tag(reused_pid.run_id, "affectlab.process", f"{host}:{pid}:{int(start or 0) + 1}")  # same pid, later start
    assert mark_stale_runs(alive.store) == [reused_pid.run_id]
    assert client.get_run(alive.run_id).info.status == "RUNNING"
    assert client.get_run(reused_pid.run_id).info.status == "KILLED"


# -- 16.4: in-process runs keep everything under the store; failed runs say why; reuses keep their history ------

def _overrides(tiny_data: Path, **more) -> dict:
    # a section given a file (data) comes before the keys it sets, as on the command line
    overrides = {"data": CONFIGS / "data/synth.yaml", "data.init_args.root": str(tiny_data), "trainer.accelerator": "cpu", "trainer.max_epochs": 1,
                 "trainer.enable_progress_bar": False, "trainer.enable_model_summary": False,
                 "trainer.limit_train_batches": 2, "trainer.limit_val_batches": 1, "trainer.limit_test_batches": 1,
                 **{f"data.init_args.{k}": v for k, v in TINY_DATA.items()}}
    return {**overrides, **more}


def test_in_process_runs_keep_everything_under_the_default_store(tiny_data, tmp_path, monkeypatch):
    from affectlab.experiments.train import train
    from affectlab.runs.lifecycle import RUN_ID_ENV

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    configs = [TEST_CONFIGS / "tiny_supervised.yaml"]
    model = CONFIGS / "model/supervised.yaml"
    first = train(configs, _overrides(tiny_data, exp_name="first"), model=model)
    # the second run creates another experiment after MLflow's logger had set MLFLOW_TRACKING_URI in this process
    second = train(configs, _overrides(tiny_data, exp_name="second"), model=model)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no ./mlruns, nothing beside the store
    for result in (first, second):
        assert (next((tmp_path / "runs").glob(f"artifacts/*/{result.run_id}/artifacts")) / "checkpoints/last.ckpt").is_file()

    # a run whose data cannot be read is created (the error happens in fit), then ends FAILED with the error
    not_a_folder = tmp_path / "runs" / "not-a-folder.txt"
    not_a_folder.write_text("")
    with pytest.raises(Exception):
        train(configs, _overrides(tiny_data, **{"data.init_args.root": str(not_a_folder), "run_name": "bad-root"}),
              model=model)
    client = mlflow_client(tmp_path / "runs")
    bad = client.search_runs([e.experiment_id for e in client.search_experiments()], "attributes.run_name = 'bad-root'")[0]
    assert bad.info.status == "FAILED" and "not-a-folder" in bad.data.tags["affectlab.error"]


# -- 17.9: faults as one readable message -----------------------------------------------------------------------

def _unshare(script: str) -> subprocess.CompletedProcess:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("unshare -rm (a private mount namespace) is not allowed here; the mounts need it")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], env=cli_env(), capture_output=True, text=True,
                          timeout=300)


def test_a_read_only_store_fails_at_once_with_the_path_and_the_fix(tiny_data, tmp_path):
    from affectlab.runs.store import RunStore

    store = tmp_path / "store"
    RunStore.resolve(str(store)).client.search_experiments()  # an existing store: its database made
    command = " ".join([sys.executable, "-m", "affectlab", "fit", *tiny_args(tiny_data, store, max_epochs=1)])
    start = time.perf_counter()
    result = _unshare(f"mount --bind {store} {store} && mount -o remount,bind,ro {store} && {command}")
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert f"storage error: the run store {store} is read-only" in result.stderr and "--store" in result.stderr
    assert "Traceback" not in result.stderr and seconds < 60  # not minutes of MLflow's retries


def test_a_full_disk_is_one_message_naming_the_path(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    code = ("from affectlab.io import atomic_write_bytes; from affectlab.errors import StorageError\n"
            f"atomic_write_bytes('{disk}/ckpts/last.ckpt', b'old')\n"
            "try:\n"
            f"    atomic_write_bytes('{disk}/ckpts/last.ckpt', bytes(1_000_000))\n"
            "except StorageError as error:\n"
            "    print('MESSAGE', error)\n")
    result = _unshare(f"mount -t tmpfs -o size=256k tmpfs {disk} && {sys.executable} -c \"{code}\" && "
                      f"cat {disk}/ckpts/last.ckpt && ls -a {disk}/ckpts")
    assert result.returncode == 0, result.stderr
    assert f"MESSAGE no space left to write {disk}/ckpts/last.ckpt: free space" in result.stdout
    assert "old" in result.stdout and ".tmp" not in result.stdout  # the earlier file intact, no temporary left


# -- 17.10: temporary files, folder fsync, exit codes -----------------------------------------------------------

def test_leftover_temporary_files_of_dead_writers_go_on_the_next_write(tmp_path, monkeypatch):
    import affectlab.io
    from affectlab.io import atomic_write_bytes

    # a host name with the separators temporary names use (dots, dashes) is still recognised as this host
    monkeypatch.setattr(affectlab.io.socket, "gethostname", lambda: "node-7.cluster")
    host = "node_7_cluster"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    legacy = tmp_path / ".last.ckpt.k3j4h5.tmp"  # the layout before writers named themselves
    of_dead = tmp_path / f".last.ckpt.{host}-{dead.pid}.a1b2.tmp"
    of_live = tmp_path / f".last.ckpt.{host}-{os.getppid()}.c3d4.tmp"  # a live writer's is kept
    other_file = tmp_path / ".best.ckpt.k3j4h5.tmp"
    for path in (legacy, of_dead, of_live, other_file):
        path.write_bytes(b"partial")
    atomic_write_bytes(tmp_path / "last.ckpt", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.ckpt", of_live.name, other_file.name])


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    import stat

    import affectlab.io

    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        real_fsync(descriptor)

    monkeypatch.setattr(affectlab.io.os, "fsync", recording_fsync)
    affectlab.io.atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert synced == [False, True]  # the file's data, then the folder entry that the rename changed


def test_data_check_tells_errors_found_from_a_crash(tmp_path, monkeypatch, capsys):
    import affectlab.cli.data
    from affectlab.cli.main import main

    assert main(["data", "check", "rafdb", "--root", str(tmp_path)]) in (1, 2)  # an empty folder: not a crash

    def crash(*args, **kwargs):
        raise RuntimeError("a bug in a reader")

    monkeypatch.setattr(affectlab.cli.data, "check_dataset", crash)
    assert main(["data", "check", "rafdb", "--root", str(tmp_path)]) == 3
    assert "data check crashed (RuntimeError: a bug in a reader)" in capsys.readouterr().err
