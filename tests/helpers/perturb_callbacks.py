"""A test-only callback that makes otherwise identical runs differ, by a known amount in a known tensor, so
that ``affectlab repeat``'s report can be checked against what was done."""

from pathlib import Path

import torch
from lightning.pytorch import Callback


class PerturbPerRun(Callback):
    """At fit start (weights built, before the first step), add ``k * amount`` to the first element of the
    parameter ``parameter``, where ``k`` counts the runs that used the same ``counter`` file before this one
    (0, 1, 2, ...). One element, not the whole tensor: a constant added to every row of a classifier's weight
    shifts every logit alike, which softmax cancels, so the loss would part only by rounding, steps later."""

    def __init__(self, counter: str, parameter: str, amount: float = 1e-3) -> None:
        self.counter, self.parameter, self.amount = Path(counter), parameter, amount

    def on_fit_start(self, trainer, pl_module) -> None:
        runs = int(self.counter.read_text()) if self.counter.exists() else 0
        self.counter.write_text(str(runs + 1))
        with torch.no_grad():
            dict(pl_module.named_parameters())[self.parameter].view(-1)[0].add_(runs * self.amount)
