"""Test-only callbacks that kill their own process at a chosen point, once (a marker file remembers it), so
that the resumed run, which reads the same stored config, runs through."""

import os
import signal
from pathlib import Path

from lightning.pytorch import Callback


class KillOnce(Callback):
    """SIGKILL this process at the start of training epoch ``epoch`` or at the start of ``stage`` ('test'),
    unless ``marker`` exists (it is created just before the kill)."""

    def __init__(self, marker: str, epoch: int | None = None, stage: str | None = None) -> None:
        self.marker, self.epoch, self.stage = Path(marker), epoch, stage

    def _kill(self) -> None:
        if self.marker.exists():
            return
        self.marker.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.epoch is not None and trainer.current_epoch == self.epoch:
            self._kill()

    def on_test_start(self, trainer, pl_module) -> None:
        if self.stage == "test":
            self._kill()


def _supervised():
    from affectlab.methods import SupervisedClassifier

    return SupervisedClassifier


class BestIsHighestLoss(_supervised()):
    """The supervised baseline with best.ckpt chosen by the *highest* val/loss: as the loss falls, no epoch
    after the first improves, which is the case a resume must not re-train."""

    monitor_mode = "max"
