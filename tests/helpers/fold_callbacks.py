"""Test-only callback that kills its own process when one chosen fold of a k-fold run starts testing, once (a
marker file remembers it), so that the resumed k-fold run, which reads the same stored config, runs through."""

import os
import signal
from pathlib import Path

from lightning.pytorch import Callback


class KillAtFoldTest(Callback):
    """SIGKILL this process at the start of ``test`` in fold ``fold``, unless ``marker`` exists (created just
    before the kill): the earlier folds have finished, this one has trained and not tested."""

    def __init__(self, marker: str, fold: int) -> None:
        self.marker, self.fold = Path(marker), fold

    def on_test_start(self, trainer, pl_module) -> None:
        if trainer.datamodule.fold == self.fold and not self.marker.exists():
            self.marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
