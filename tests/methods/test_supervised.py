"""The supervised baseline on tiny AffectSynth batches: shapes, learning, modality subsets, several optimisers."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer

from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.errors import ConfigError
from affectlab.methods import SupervisedClassifier
from affectlab.nn.encoders import AudioConvEncoder, FrameEncoder, TextTransformerEncoder
from conftest import TINY_DATA


def _encoders():
    return {
        "video": FrameEncoder("test_vit", {"img_size": 32}),
        "audio": AudioConvEncoder(channels=16),
        "text": TextTransformerEncoder(vocab_size=128, dim=16),
    }


def test_forward_gives_fused_and_unimodal_logits(datamodule):
    model = SupervisedClassifier(_encoders(), fusion_dim=32)
    batch = next(iter(datamodule.train_dataloader()))
    outputs = model(batch)
    for head in ("fused", "video", "audio", "text"):
        assert outputs[head].shape == (8, 7)


def test_loss_falls_when_overfitting_one_batch(datamodule):
    torch.manual_seed(0)
    model = SupervisedClassifier(_encoders(), fusion_dim=32, dropout=0.0)
    batch = next(iter(datamodule.train_dataloader()))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model._losses(model(batch), batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_trains_on_a_subset_of_modalities(datamodule):
    model = SupervisedClassifier(_encoders(), modalities=["audio"], fusion_dim=16)
    assert model.modalities == ["audio"]
    trainer = Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=datamodule)


def test_missing_modality_is_a_clear_error(tiny_data):
    data = AffectSynthDataModule(root=str(tiny_data), modalities=["video"], **TINY_DATA)
    model = SupervisedClassifier(_encoders(), fusion_dim=16)
    trainer = Trainer(fast_dev_run=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ConfigError, match=r"modalities \['audio', 'text'\].*does not serve"):
        trainer.fit(model, datamodule=data)


def test_unknown_modality_subset_is_rejected():
    with pytest.raises(ConfigError, match="model.init_args.modalities"):
        SupervisedClassifier(_encoders(), modalities=["pose"])


def test_several_optimisers_step_through_manual_optimisation(datamodule):
    model = SupervisedClassifier(
        _encoders(),
        fusion_dim=16,
        optimizer_init=[
            {"class_path": "torch.optim.SGD", "name": "encoders", "params": ["encoders"], "init_args": {"lr": 0.1}},
            {"class_path": "torch.optim.AdamW", "name": "rest", "init_args": {"lr": 1e-3}},
        ],
        lr_scheduler_init=[
            {"class_path": "torch.optim.lr_scheduler.StepLR", "optimizer_name": "encoders", "init_args": {"step_size": 1, "gamma": 0.5}},
        ],
    )
    assert not model.automatic_optimization
    before = {k: v.clone() for k, v in model.state_dict().items() if "encoders.audio" in k and v.is_floating_point()}
    trainer = Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    sgd = trainer.optimizers[0]
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)  # stepped once per epoch, twice
