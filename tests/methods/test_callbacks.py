"""The picture callbacks on a method that does not ask for them: per-epoch loss means, train and validation."""

from __future__ import annotations

import pytest
from lightning.pytorch import Trainer

from affectlab.methods import SupervisedClassifier
from affectlab.methods.callbacks import LossCurves, RepresentationMap
from affectlab.nn.encoders import AudioConvEncoder


def test_loss_curves_record_one_mean_per_epoch_and_stage(datamodule):
    curves = LossCurves(("loss", "loss_fused", "not_logged"))
    model = SupervisedClassifier({"audio": AudioConvEncoder(channels=8)}, fusion_dim=8, lr_scheduler_init=None)
    trainer = Trainer(max_epochs=3, limit_train_batches=2, limit_val_batches=2, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                      callbacks=[curves])
    trainer.fit(model, datamodule=datamodule)
    assert sorted(curves.curves) == ["train/loss", "train/loss_fused", "val/loss", "val/loss_fused"]
    assert all(len(values) == 3 for values in curves.curves.values())  # the sanity check is not an epoch
    assert curves.curves["val/loss"][-1] == pytest.approx(float(trainer.callback_metrics["val/loss"]))


def test_conclugen_asks_for_both_pictures():
    from affectlab.methods import ConCluGen

    model = ConCluGen({"audio": AudioConvEncoder(channels=8), "video": AudioConvEncoder(channels=8)},
                      representation_dim=8, projection_dim=4, num_clusters=2, reconstruction_dim=8)
    kinds = [type(c) for c in model.configure_callbacks()]
    assert kinds == [LossCurves, RepresentationMap]
