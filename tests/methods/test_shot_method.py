"""SHOT on tiny AffectSynth faces: the source is loaded from its checkpoint, its classifier stays frozen while its
feature extractor adapts, the pseudo-labels are the pure function's on every training sample (no augmentation, no
randomness drawn), and a missing or mismatched source checkpoint is a clear error."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer

from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.errors import ConfigError
from affectlab.losses.shot import shot_pseudo_labels
from affectlab.methods import SHOT, SupervisedClassifier
from affectlab.nn.encoders import FrameEncoder
from conftest import TINY_DATA


def _source(seed: int, fusion_dim: int = 16) -> SupervisedClassifier:
    torch.manual_seed(seed)
    return SupervisedClassifier({"video": FrameEncoder("test_vit", {"img_size": 32})}, modalities=["video"],
                                fusion_dim=fusion_dim, unimodal_weight=0.0)


def _faces(tiny_data) -> AffectSynthDataModule:
    return AffectSynthDataModule(root=str(tiny_data), **TINY_DATA, modalities=["video"], sample_unit="frame")


def _trainer(**kwargs) -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, **kwargs)


@pytest.fixture(scope="module")
def adapted(tiny_data, tmp_path_factory):
    """A source model saved as a run's checkpoint, and SHOT fitted from it for two short epochs."""
    source = _source(0)
    path = tmp_path_factory.mktemp("source") / "best.ckpt"
    torch.save({"state_dict": source.state_dict()}, path)
    model = SHOT(_source(1), source_checkpoint=str(path))  # other initial weights: the checkpoint must replace them
    trainer = _trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=2)
    trainer.fit(model, datamodule=_faces(tiny_data))
    return source, model, trainer


def test_the_classifier_stays_the_sources_and_the_features_adapt(adapted):
    source, model, _ = adapted
    before, after = source.state_dict(), model.source.state_dict()
    for key in before:
        if key.startswith(("head.", "unimodal_heads.")):
            assert torch.equal(before[key], after[key]), key  # loaded from the checkpoint, then frozen
    moved = [key for key in before if key.startswith(("encoders.", "fusion.")) and before[key].is_floating_point()
             and not torch.equal(before[key], after[key])]
    assert any(k.startswith("encoders.") for k in moved) and any(k.startswith("fusion.") for k in moved)
    assert not any(p.requires_grad for p in model.source.head.parameters())


def test_terms_and_diagnostics_are_logged(adapted):
    metrics = adapted[2].callback_metrics
    for key in ("train/loss_epoch", "train/entropy_epoch", "train/diversity_epoch", "train/pseudo_label_epoch",
                "train/pseudo_label_acc", "train/prediction_acc", "val/acc", "val/entropy"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    assert 0.0 <= float(metrics["train/pseudo_label_acc"]) <= 1.0
    assert adapted[1].monitor == "val/acc" and adapted[1].monitor_mode == "max"


def test_pseudo_labels_are_the_functions_on_every_unaugmented_sample(adapted, tiny_data):
    _, model, _ = adapted
    state = torch.get_rng_state()
    model.relabel()
    assert torch.equal(torch.get_rng_state(), state)  # no random draw: training order and augmentations unchanged
    data = _faces(tiny_data)
    data.setup()
    dataset = data.dataset("train")
    model.eval()
    with torch.no_grad():
        items = [dataset[i] for i in range(len(dataset))]
        batch = {"video": torch.stack([s["video"] for s in items]), "video_mask": torch.stack([s["video_mask"] for s in items])}
        outputs = model.source(batch)
    expected = shot_pseudo_labels(outputs["embedding"], outputs["fused"].softmax(-1))
    ids = torch.tensor([s["id"] for s in items])
    assert torch.equal(model.pseudo_labels[ids], expected)
    assert (model.pseudo_labels >= 0).sum() == len(dataset)


def test_fit_without_a_source_checkpoint_is_refused(tiny_data):
    with pytest.raises(ConfigError, match="source_checkpoint to the source run's best.ckpt"):
        _trainer(fast_dev_run=1).fit(SHOT(_source(0)), datamodule=_faces(tiny_data))


def test_a_checkpoint_of_another_architecture_is_refused(tiny_data, tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": _source(0, fusion_dim=8).state_dict()}, path)
    with pytest.raises(ConfigError, match="do not fit model.init_args.source"):
        _trainer(fast_dev_run=1).fit(SHOT(_source(0), source_checkpoint=str(path)), datamodule=_faces(tiny_data))


def test_the_source_must_be_a_supervised_classifier():
    with pytest.raises(ConfigError, match="not a SupervisedClassifier"):
        SHOT(torch.nn.Linear(2, 2))
