"""Preemption: the cluster's pre-timeout signal becomes ``last.ckpt`` and an exit that asks for a requeue.

Slurm sends SIGUSR1 some time before it kills a job at its time limit or for a higher-priority one
(``--signal=USR1@120``, which ``affectlab submit`` asks for). Three parties could act on it, and one must:

- submitit's handler checkpoints from inside the signal handler, on global rank 0 only, through a
  ``checkpoint()`` method that knows nothing of the MLflow run;
- Lightning's ``SLURMEnvironment(auto_requeue=True)`` saves ``hpc_ckpt_<n>.ckpt`` in the trainer's root folder,
  where a resume by ``--run_id`` never looks, and requeues the job so that it starts a new run;
- AffectLab's ``Preemption`` callback, the owner: its handler only records that the signal came; at the end of
  the current training step every rank agrees on it (one all-reduce), ``last.ckpt`` is written through the
  trainer (atomically, with the loaders' position and the random state, so the resume is exact), and the
  process exits with ``REQUEUE_EXIT``. In an ``affectlab submit`` job the job's worker then requeues it and the
  requeued job resumes the same run with ``--run_id`` (``runs/jobs.py``); outside one it prints that command.

Lightning's handler is kept out with ``SLURMEnvironment(auto_requeue=False)`` (``slurm_environment``), and
submitit's is replaced in the job's worker by one that forwards the signal to this process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from affectlab.runs.jobs import PREEMPT_SIGNAL as _SIGNAL_NAME
from affectlab.runs.jobs import JOB_ID_ENV, REQUEUE_EXIT

PREEMPT_SIGNAL = getattr(signal, "SIG" + _SIGNAL_NAME)


class Preempted(SystemExit):
    """Raised after ``last.ckpt`` was written on the preemption signal; the process exits with REQUEUE_EXIT."""

    def __init__(self) -> None:
        super().__init__(REQUEUE_EXIT)


class Preemption(Callback):
    """On SIGUSR1, write ``last_checkpoint`` at the end of the current training step and exit for a requeue.

    Args:
        last_checkpoint: the run's ``last.ckpt``, the one a resume by run id continues from.
        run_id: named in the message printed outside a job, with the command that resumes it.
    """

    def __init__(self, last_checkpoint: Path, run_id: str = "") -> None:
        self.last_checkpoint, self.run_id = Path(last_checkpoint), run_id
        self.requested = False
        self._previous: Any = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True  # nothing else here: a checkpoint written inside a signal handler can tear

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and threading.current_thread() is threading.main_thread():
            self.requested = False
            self._previous = signal.signal(PREEMPT_SIGNAL, self._on_signal)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._previous is not None:
            signal.signal(PREEMPT_SIGNAL, self._previous)
            self._previous = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # after an epoch's last batch its validation and epoch-end checkpoint are still to come: a state saved
        # here would resume without them (another best.ckpt), so the stop waits for the next epoch's first step
        stop = self.requested and batch_idx + 1 < trainer.num_training_batches
        if trainer.world_size > 1:  # a signal on any rank stops all of them at the same step
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        trainer.save_checkpoint(self.last_checkpoint)
        if trainer.is_global_zero:
            job_id = os.environ.get(JOB_ID_ENV)
            where = f"job {job_id}" if job_id else "this run"
            print(f"preempted at step {trainer.global_step}: wrote {self.last_checkpoint}; {where} "
                  + ("is requeued and resumes from it" if job_id
                     else f"resumes from it with: affectlab fit --run_id {self.run_id}"), file=sys.stderr, flush=True)
        raise Preempted()


def slurm_environment() -> Any | None:
    """Lightning's Slurm environment without its own requeue, when this process runs under Slurm."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment(auto_requeue=False) if SLURMEnvironment.detect() else None
