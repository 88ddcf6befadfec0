"""Checkpoints are written atomically and loaded with weights_only=True."""

from __future__ import annotations

import pytest
import torch

import affectlab.io
from affectlab.errors import ConfigError
from affectlab.runs.checkpoints import AtomicCheckpointIO, atomic_write_bytes


def test_save_and_load_round_trip(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 2}, path)
    loaded = io.load_checkpoint(path)
    assert loaded["epoch"] == 2 and torch.equal(loaded["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_write_bytes(path, b"old complete checkpoint")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process is interrupted between writing and renaming

    monkeypatch.setattr(affectlab.io.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old complete checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


class Payload:
    def __reduce__(self):
        return (print, ("code ran while loading a checkpoint",))


def test_loading_refuses_pickled_code(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Payload()}, path)
    # One readable message: the file, why (the pickled global it names), no unsafe loading on offer; torch's
    # advice to retry with weights_only=False is not passed on.
    with pytest.raises(ConfigError, match=r"evil.ckpt is not a checkpoint readable with weights_only=True: it holds "
                                          r"a pickled object \(print\).*does not offer to load it unsafely") as refused:
        AtomicCheckpointIO().load_checkpoint(path)
    assert "weights_only=False" not in str(refused.value) and "trust the source" not in str(refused.value)
    assert "code ran" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="weights_only=True only"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)


def test_last_checkpoint_holds_every_epoch_and_every_n_steps(tmp_path):
    """last.ckpt holds the end of every epoch, improved or not; with ``every_n_steps`` it also follows training
    inside an epoch (every N steps), and still holds the epoch's end state after it."""
    from lightning.pytorch import Callback, LightningModule, Trainer

    from affectlab.runs.checkpoints import checkpoint_callbacks

    class Linear(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.log("val/loss", self.layer(batch).pow(2).mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.randn(7, 2), batch_size=1)

        def val_dataloader(self):
            return torch.utils.data.DataLoader(torch.randn(2, 2), batch_size=1)

    def fit(callbacks, max_epochs=1) -> None:
        Trainer(max_epochs=max_epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                callbacks=callbacks).fit(Linear())

    # issue 17.1: best by the *highest* val/loss (which falls), so no epoch after the first improves; last.ckpt
    # still holds the last epoch, not a copy of best.ckpt
    fit(checkpoint_callbacks(tmp_path / "no-improvement", "val/loss", "max"), max_epochs=3)
    best, last = (torch.load(tmp_path / "no-improvement" / name, weights_only=True) for name in ("best.ckpt", "last.ckpt"))
    assert (best["epoch"], last["epoch"]) == (0, 2)

    seen = []

    class LastStep(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            last = steps / "last.ckpt"
            seen.append(torch.load(last, weights_only=True)["global_step"] if last.exists() else None)

    steps = tmp_path / "steps"
    fit([LastStep(), *checkpoint_callbacks(steps, "val/loss", "min", every_n_steps=3)])
    assert seen == [None, None, None, 3, 3, 3, 6]
    assert torch.load(steps / "last.ckpt", weights_only=True)["global_step"] == 7
    assert sorted(p.name for p in steps.iterdir()) == ["best.ckpt", "last.ckpt"]
