"""SwAV (methods/swav.py) on tiny image batches: multi-crop views, unit prototypes, the queue, frozen prototypes,
the checkpoint's ``encoder.*`` keys (the CluP student's backbone), and both configs through the CLI."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import CONFIGS, affectlab, mlflow_client, printed_run_id

from affectlab.errors import DataError
from affectlab.losses.swav import sinkhorn_knopp
from affectlab.methods import SwAV
from affectlab.nn.encoders import FrameEncoder


def _swav(**overrides) -> SwAV:
    torch.manual_seed(0)
    args = dict(projection_hidden_dim=32, projection_dim=16, num_prototypes=10, num_large_crops=2, num_small_crops=2,
                large_crop_size=24, small_crop_size=16, queue_size=6, queue_start_epoch=0,
                freeze_prototypes_iterations=0, optimizer_init={"class_path": "torch.optim.SGD", "init_args": {"lr": 0.5}})
    return SwAV(FrameEncoder("resnet18", stem="clup"), **{**args, **overrides})


def _batch(size: int = 4, frames: int = 1) -> dict:
    generator = torch.Generator().manual_seed(1)
    return {"video": torch.rand(size, frames, 3, 32, 32, generator=generator), "id": torch.arange(size)}


def _step(model: SwAV, batch: dict) -> torch.Tensor:
    """One optimiser step as Lightning takes it: loss, backward, on_after_backward, step."""
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    model.log = lambda *args, **kwargs: None  # no trainer attached
    loss = model.training_loss(batch, 0)
    optimiser.zero_grad()
    loss.backward()
    model.on_after_backward()
    optimiser.step()
    return loss


def test_views_projections_and_scores():
    model = _swav().train()
    views = model.views(_batch())
    assert [tuple(v.shape) for v in views] == [(4, 3, 24, 24)] * 2 + [(4, 3, 16, 16)] * 2
    assert not torch.equal(views[0], views[1])  # two draws of the augmentation
    z, scores = model.project(views)
    assert len(z) == len(scores) == 4 and scores[0].shape == (4, 10)
    assert torch.allclose(torch.stack(z).norm(dim=-1), torch.ones(4, 4), atol=1e-5)
    assert model.represent(_batch())["video"].shape == (4, 512) == (4, model.representation_dims["video"])


def test_checkpoint_keys_hold_the_backbone_as_encoder():
    keys = set(_swav().state_dict())
    assert "encoder.backbone.conv1.weight" in keys and "prototypes.weight" in keys
    assert {"projector.0.weight", "projector.1.running_mean", "projector.3.weight", "queue", "queue_rows"} <= keys
    assert _swav().state_dict()["encoder.backbone.conv1.weight"].shape == (64, 3, 7, 7)
    assert "queue" not in _swav(queue_size=0).state_dict()


def test_prototypes_are_unit_rows_at_each_step_and_frozen_at_first():
    model = _swav(freeze_prototypes_iterations=1).train()
    with torch.no_grad():
        model.prototypes.weight.mul_(3.0)
    model.trainer = None
    _step(model, _batch())  # global_step 0 < 1: the prototypes' gradient is zeroed
    normalised = F.normalize(model.prototypes.weight.detach(), dim=1)
    assert torch.allclose(model.prototypes.weight.norm(dim=1), torch.ones(10), atol=1e-5)  # normalised, not stepped
    unfrozen = _swav(freeze_prototypes_iterations=0).train()
    before = F.normalize(unfrozen.prototypes.weight.detach().clone(), dim=1)
    _step(unfrozen, _batch())
    assert not torch.allclose(unfrozen.prototypes.weight, before)  # trained once the freeze is over
    assert torch.allclose(normalised, model.prototypes.weight)


def test_queue_fills_and_joins_the_codes():
    model = _swav().train()
    _step(model, _batch())
    assert int(model.queue_rows) == 4 and model.queue[:, 4:].abs().sum() == 0
    _step(model, _batch())
    assert int(model.queue_rows) == 6  # full: the oldest rows dropped
    _, scores = model.project(model.views(_batch()))
    codes = model.codes(scores, use_queue=True)
    by_hand = sinkhorn_knopp(torch.cat([model.queue[0] @ model.prototypes.weight.T, scores[0]]), 0.05, 3)[-4:]
    assert torch.allclose(codes[0], by_hand) and not torch.allclose(codes[0], model.codes(scores, use_queue=False)[0])
    assert torch.allclose(codes[0].sum(dim=1), torch.ones(4), atol=1e-5)


def test_clips_of_several_frames_are_refused():
    with pytest.raises(DataError, match="one face per sample"):
        _swav().views(_batch(frames=2))


def test_both_configs_train_a_few_steps_through_the_cli(tmp_path):
    """configs/model/swav.yaml with configs/experiment/clup/swav_synth.yaml (on synth_clup_target), as its header says."""
    store = tmp_path / "runs"
    result = affectlab(
        "run", "--model", str(CONFIGS / "model/swav.yaml"), "--config", str(CONFIGS / "experiment/clup/swav_synth.yaml"),
        "--data.init_args.root", str(tmp_path / "synth"), "--data.init_args.num_clips", "64",
        "--data.init_args.num_identities", "8", "--data.init_args.image_size", "32", "--data.init_args.batch_size", "8",
        "--model.init_args.large_crop_size", "24", "--model.init_args.small_crop_size", "16",
        "--model.init_args.queue_start_epoch", "0", "--model.init_args.queue_size", "16",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", "--store", str(store),
    )
    run = mlflow_client(store).get_run(printed_run_id(result.stdout))
    assert run.data.params["model.class_path"] == "affectlab.methods.SwAV"
    assert run.data.params["model.init_args.num_prototypes"] == "300"
    assert run.data.params["data.init_args.synth_seed"] == "1"  # the target domain
    for key in ("train/loss_epoch", "val/loss", "test/loss"):
        assert torch.isfinite(torch.tensor(run.data.metrics[key])), key
    checkpoint = torch.load(next((store / "artifacts").rglob("best.ckpt")), weights_only=True)
    assert any(key.startswith("encoder.backbone.") for key in checkpoint["state_dict"])
