"""GPU speed-ups that change no result, as one Lightning callback: channels-last weights and ``torch.compile``.

Why a callback and not a model argument: both are properties of the machine a run trains on, not of the model, so a
config or a command line adds them to any method without touching its arguments (and a checkpoint stays loadable
without them):

    affectlab run --config configs/experiment/au_synth.yaml --config configs/trainer/gpu.yaml \
        --trainer.callbacks+=affectlab.runs.accelerate.Accelerate --trainer.callbacks.compile=true

- channels last: a convolution whose weight is stored channels-last (NHWC) runs cuDNN's NHWC kernels, and its output
  is channels-last too, so the whole backbone then runs on the layout the tensor cores read at bf16 (NCHW costs
  a transpose around each convolution). The frames themselves need no conversion: PyTorch picks the
  layout from the input or the weight. Only 4-D weights change; a model without convolutions is left as it is.
- compile: ``torch.compile`` of the module's ``forward`` (``nn.Module.compile``: in place, so Lightning, the
  optimiser and the checkpoints see the same module and parameter names). It pays for itself only on runs of many
  steps (the first step compiles for tens of seconds) and only for methods whose training step calls ``forward``
  (``AUModel``, the supervised models); off by default.

``benchmarks/gpu_throughput.py`` measures both against the plain fp32 set-up.
"""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn


def to_channels_last(module: nn.Module) -> int:
    """Stores every 4-D parameter and buffer of ``module`` channels-last, in place; returns how many there are."""
    four_d = sum(1 for t in [*module.parameters(), *module.buffers()] if t.dim() == 4)
    if four_d:
        module.to(memory_format=torch.channels_last)
    return four_d


def compile_forward(module: nn.Module) -> None:
    """Compiles ``module``'s forward in place with ``torch.compile`` (its default backend, inductor)."""
    if not hasattr(torch, "compile") or not hasattr(module, "compile"):
        raise RuntimeError(f"torch {torch.__version__} has no torch.compile / nn.Module.compile; drop compile=true")
    module.compile()


class Accelerate(Callback):
    """Channels-last weights and, when asked, ``torch.compile`` of the model, applied once before the first stage.

    Args:
        channels_last: store the convolution weights channels-last (see the module docstring).
        compile: compile the model's forward with ``torch.compile`` (slow first step; for long GPU runs).
    """

    def __init__(self, channels_last: bool = True, compile: bool = False) -> None:
        self.channels_last = channels_last
        self.compile = compile
        self._applied: set[int] = set()  # id of the modules done: fit then test in one trainer sets up twice

    def setup(self, trainer: Trainer | None, pl_module: LightningModule | nn.Module, stage: str) -> None:
        # setup runs before the strategy moves the model to its device and before the optimiser is built;
        # .to(device) keeps the channels-last strides, and the parameters stay the same objects.
        if id(pl_module) in self._applied:
            return
        self._applied.add(id(pl_module))
        if self.channels_last:
            to_channels_last(pl_module)
        if self.compile:
            compile_forward(pl_module)
