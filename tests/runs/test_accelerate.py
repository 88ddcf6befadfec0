"""``Accelerate``: channels-last convolution weights that stay so through training, and ``torch.compile`` only when
asked (``runs/accelerate.py``)."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn

from affectlab.runs.accelerate import Accelerate, to_channels_last

CHANNELS_LAST = torch.channels_last


class TinyConvNet(LightningModule):
    """A convolution, a linear head: one 4-D weight to convert, one 2-D weight to leave alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).relu().mean(dim=(2, 3)))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self(batch).square().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-2)


def test_conv_weights_become_channels_last_and_outputs_stay_the_same() -> None:
    torch.manual_seed(0)
    model, x = TinyConvNet(), torch.randn(4, 3, 16, 16)
    assert not model.conv.weight.is_contiguous(memory_format=CHANNELS_LAST)
    before, parameters = model(x), list(model.parameters())
    Accelerate().setup(None, model, "fit")
    assert model.conv.weight.is_contiguous(memory_format=CHANNELS_LAST)
    assert model.head.weight.is_contiguous()  # 2-D: untouched
    assert [id(p) for p in model.parameters()] == [id(p) for p in parameters]  # an optimiser built later sees them
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)
    assert model.conv(x).is_contiguous(memory_format=CHANNELS_LAST)  # the layout follows the weight


def test_channels_last_off_and_models_without_convolutions_are_left_alone() -> None:
    model = TinyConvNet()
    Accelerate(channels_last=False).setup(None, model, "fit")
    assert not model.conv.weight.is_contiguous(memory_format=CHANNELS_LAST)
    assert to_channels_last(nn.Sequential(nn.Linear(4, 4))) == 0


def test_weights_stay_channels_last_through_a_training_run(tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyConvNet()
    start = model.conv.weight.detach().clone()
    trainer = Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[Accelerate()], default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(torch.randn(12, 3, 16, 16), batch_size=4))
    assert model.conv.weight.is_contiguous(memory_format=CHANNELS_LAST)
    assert not torch.equal(model.conv.weight.detach(), start)  # it did train


@pytest.mark.skipif(not hasattr(torch, "compile") or not hasattr(nn.Module, "compile"),
                    reason="this torch has no torch.compile / nn.Module.compile")
def test_compile_wraps_the_module_only_when_asked_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile is replaced by a recorder: what is checked is the wrapping, not inductor (which would compile
    C++ for tens of seconds on a CPU)."""
    calls = []

    def recording_compile(fn, *args, **kwargs):
        calls.append(fn)
        return fn

    monkeypatch.setattr(torch, "compile", recording_compile)
    model = nn.Sequential(nn.Conv2d(3, 4, 1))
    Accelerate().setup(None, model, "fit")
    assert calls == []
    callback = Accelerate(compile=True)
    callback.setup(None, model, "fit")
    callback.setup(None, model, "test")  # fit then test in one trainer: compiled once
    assert len(calls) == 1 and calls[0] == model._call_impl
    assert model(torch.randn(1, 3, 2, 2)).shape == (1, 4, 2, 2)
