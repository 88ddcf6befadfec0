"""Test-only callbacks, importable by the CLI subprocesses (tests put this folder on PYTHONPATH)."""

import time

from lightning.pytorch import Callback


class SleepEachBatch(Callback):
    """Sleep after every training batch, so a test can kill a run in the middle of fitting."""

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)


class CountEpochs(Callback):
    """Prints one line per finished training epoch (for additional_callbacks tests)."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        print(f"epoch-finished {trainer.current_epoch}", flush=True)

