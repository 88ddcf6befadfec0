"""Test-only callback for the sweep's resume test: SIGKILL this process the N-th time any run of it starts
training epoch ``epoch`` (a counter file keeps the count across runs and processes)."""

import os
import signal
from pathlib import Path

from lightning.pytorch import Callback


class KillOnNth(Callback):
    def __init__(self, counter: str, n: int, epoch: int = 1) -> None:
        self.counter, self.n, self.epoch = Path(counter), n, epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch != self.epoch:
            return
        count = int(self.counter.read_text()) + 1 if self.counter.exists() else 1
        self.counter.write_text(str(count))
        if count == self.n:
            os.kill(os.getpid(), signal.SIGKILL)
