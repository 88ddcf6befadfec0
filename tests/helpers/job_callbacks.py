"""Test-only callbacks for jobs (``affectlab submit``): a preemption signal at a chosen step, a failure."""

import os
import signal
from pathlib import Path

from lightning.pytorch import Callback


class SignalAtStep(Callback):
    """Send SIGUSR1 at training step ``step``, once (``marker`` remembers it), as a cluster does before its time
    limit: to the job's worker (this process's parent) when run by ``affectlab submit``, else to this process."""

    def __init__(self, marker: str, step: int) -> None:
        self.marker, self.step = Path(marker), step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and not self.marker.exists():
            self.marker.write_text(str(trainer.global_step))
            target = os.getppid() if os.environ.get("AFFECTLAB_JOB_ID") else os.getpid()
            os.kill(target, signal.SIGUSR1)


class FailAtEpoch(Callback):
    """Raise at the start of training epoch ``epoch``: a job that fails after its run was opened."""

    def __init__(self, epoch: int = 0) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated failure in epoch {self.epoch} (job_callbacks.FailAtEpoch)")
