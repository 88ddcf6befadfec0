"""Same config and seed, same numbers, also across a kill and resume.

``EpochSeed`` reseeds Python, NumPy and torch at the start of every training epoch from (seed, epoch,
rank). Every epoch's random draws (dropout, augmentation) then depend only on those three numbers, never
on how many draws earlier epochs made in this process, so an epoch replayed after a resume draws exactly
what the uninterrupted run drew. Data order is made resume-proof by the epoch-seeded samplers
(``affectlab.data.samplers``).

A run stopped mid-epoch (a preempted job, ``checkpoint_every_n_steps``) resumes on the next batch: the loaders
pass over the batches already trained on (``data/loaders.py``'s ``ResumableLoader``), and ``EpochSeed`` puts
back the random state of the moment the checkpoint was written, which it keeps in every checkpoint.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def random_state() -> dict:
    """Python's, NumPy's and torch's random states as tensors and plain data (``weights_only`` loads them)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_gauss": random.getstate()[2],
             "numpy": torch.from_numpy(keys.astype(np.int64)), "numpy_rest": [kind, position, has_gauss, gauss],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    random.setstate((3, tuple(state["python"]), state["python_gauss"]))
    kind, position, has_gauss, gauss = state["numpy_rest"]
    np.random.set_state((kind, state["numpy"].numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EpochSeed(Callback):
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._saved: dict | None = None

    def state_dict(self) -> dict:
        return {"random_state": random_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._saved = state_dict.get("random_state")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning skips on_train_epoch_start when it resumes inside an epoch: the saved state stands in for it
        saved, self._saved = self._saved, None
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if saved is not None and trainer.fit_loop.restarting and 0 < done < trainer.num_training_batches:
            set_random_state(saved)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)
