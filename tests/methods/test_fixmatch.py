"""FixMatch and DeFixMatch for AU occurrence: separate batches, both variants."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer

from conftest import CONFIGS, TINY_DATA, affectlab, mlflow_client, printed_run_id, tiny_data_args

from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.data.transforms import augment_frames, strong_augment_frames
from affectlab.losses import pseudo_label_loss
from affectlab.methods import AUModel, FixMatchAU


def test_strong_view_changes_more_than_the_weak_one_and_stays_in_range():
    torch.manual_seed(0)
    video = torch.rand(4, 2, 3, 32, 32)
    strong = strong_augment_frames(video)
    assert strong.shape == video.shape and strong.min() >= 0 and strong.max() <= 1
    assert torch.equal(strong[:, 0] == 0.5, strong[:, 1] == 0.5)  # one cut-out per clip, on every frame


def _semi(tiny_data) -> AffectSynthDataModule:
    return AffectSynthDataModule(root=str(tiny_data), **{**TINY_DATA, "batch_size": 4}, label_fraction=0.2,
                                 unlabelled="separate", unlabelled_ratio=2)


def test_separate_batches_hold_labelled_and_unlabelled_clips(tiny_data):
    module = _semi(tiny_data)
    module.setup()
    item = next(iter(module.train_dataloader()))
    batch = item[0] if isinstance(item, tuple) else item  # CombinedLoader yields (batch, index, loader index)
    assert batch["labelled"]["target_mask"]["au"].all() and not batch["unlabelled"]["target_mask"]["au"].any()
    assert len(batch["unlabelled"]["id"]) == 2 * len(batch["labelled"]["id"])
    assert not set(batch["labelled"]["id"].tolist()) & set(batch["unlabelled"]["id"].tolist())


@pytest.mark.parametrize("debiased", [False, True])
def test_fixmatch_and_defixmatch_train_and_log_their_terms(tiny_data, debiased):
    model = FixMatchAU(AUModel("test_convnext"), p_cutoff=0.6, debiased=debiased)
    trainer = Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=_semi(tiny_data))
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss_epoch"]) and "train/mask_rate_epoch" in metrics
    assert (metrics["train/anti_epoch"] != 0) == debiased
    assert "val/au_f1_mean" in metrics


def test_defixmatch_anti_term_is_on_the_strong_labelled_view(tiny_data):
    """L = L_s + lambda_u (L_u - L_anti) with L_anti = pseudo-labels from weak(x_l), loss on strong(x_l). The same
    views are drawn again (same seed, the method's order) and the total recomputed: it matches the strong-view anti
    term and not FaceFlow's weak-view one (a regression to it fails here)."""
    module = _semi(tiny_data)
    module.setup()
    item = next(iter(module.train_dataloader()))
    batch = item[0] if isinstance(item, tuple) else item
    torch.manual_seed(0)
    model = FixMatchAU(AUModel("test_convnext"), p_cutoff=0.55, lambda_u=1.0, debiased=True).eval()  # no dropout
    labelled, unlabelled = batch["labelled"], batch["unlabelled"]
    with torch.no_grad():
        torch.manual_seed(1)
        total = model.training_loss(batch, 0)
        torch.manual_seed(1)
        views = [model.au_model.training_frames(labelled), strong_augment_frames(labelled["video"]),
                 augment_frames(unlabelled["video"]), strong_augment_frames(unlabelled["video"])]
        outputs = [torch.split(o, [len(v) for v in views]) for o in model({"video": torch.cat(views)})]
        supervised = (model.au_model.head_losses([o[0] for o in outputs], labelled)["loss"]
                      + model.au_model.head_losses([o[1] for o in outputs], labelled)["loss"]) / 2
        expected = {}
        for anti_view in ("strong", "weak"):
            term = supervised
            for task, o in zip(model.au_model.head_tasks, outputs):
                if task.pseudo_labelled:
                    unsup = pseudo_label_loss(o[2][..., 0], o[3][..., 0], model.p_cutoff)[0]
                    anti = pseudo_label_loss(o[0][..., 0], o[1 if anti_view == "strong" else 0][..., 0], model.p_cutoff)[0]
                    term = term + task.head.weight * (unsup - anti)
            expected[anti_view] = term
    assert torch.allclose(total, expected["strong"], atol=1e-6)
    assert not torch.allclose(expected["strong"], expected["weak"], atol=1e-4)


def test_fixmatch_refuses_mixed_batches(datamodule):
    model = FixMatchAU(AUModel("test_convnext"))
    with pytest.raises(Exception, match="unlabelled: separate"):
        Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False).fit(model, datamodule=datamodule)


def test_defixmatch_experiment_runs_through_the_cli(tiny_data, tmp_path):
    store = tmp_path / "store"
    result = affectlab("run", "--config", str(CONFIGS / "experiment/au_defixmatch_synth.yaml"),
                       *tiny_data_args(tiny_data, store, max_epochs=1), "--data.init_args.batch_size", "4",
                       "--data.init_args.label_fraction", "0.2", "--trainer.limit_train_batches", "2",
                       "--model.init_args.au_model.init_args.backbone", "test_convnext",
                       "--model.init_args.au_model.init_args.feature_stage", "-1")
    metrics = mlflow_client(store).get_run(printed_run_id(result.stdout)).data.metrics
    assert "test/au_f1_mean" in metrics and "train/anti_epoch" in metrics
