"""Same config and seed, same numbers, also across a kill and resume.

``EpochSeed`` reseeds Python, NumPy and torch at the start of every training epoch from (seed, epoch,
rank). Every epoch's random draws (dropout, augmentation) then depend only on those three numbers, never
on how many draws earlier epochs made in this process, so an epoch replayed after a resume draws exactly
what the uninterrupted run drew. Data order is made resume-proof by the epoch-seeded samplers
(``affectlab.data.samplers``).
"""

from __future__ import annotations

import random

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


class EpochSeed(Callback):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)
