"""ConCluGen and SimCLR on tiny AffectSynth: every loss switch, both set-ups, representations for probes."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer

from affectlab.methods import ConCluGen, SimCLR
from affectlab.nn.encoders import AudioConvEncoder, FrameEncoder, TextTransformerEncoder
from affectlab.nn.targets import FrameMotionTarget, LogMelStatsTarget, TokenHistogramTarget


def _encoders():
    return {
        "video": FrameEncoder("test_vit", {"img_size": 32}),
        "audio": AudioConvEncoder(channels=16),
        "text": TextTransformerEncoder(vocab_size=128, dim=16),
    }


def _model(**kwargs):
    defaults = dict(representation_dim=32, projection_dim=16, num_clusters=4, reconstruction_dim=16, kmeans_queue_size=2)
    return ConCluGen(_encoders(), **{**defaults, **kwargs})


def _fit(model, datamodule, steps=3):
    trainer = Trainer(max_epochs=1, limit_train_batches=steps, limit_val_batches=1, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    return trainer


@pytest.mark.parametrize(
    ("weights", "modalities", "expected"),
    [
        ((1, 1, 1), None, {"contrastive", "clustering", "reconstruction"}),
        ((1, 1, 0), None, {"contrastive", "clustering"}),
        ((1, 0, 1), None, {"contrastive", "reconstruction"}),
        ((1, 0, 0), ["video", "audio"], {"contrastive"}),
        ((0, 0, 1), None, {"reconstruction"}),
    ],
)
def test_each_loss_switch(datamodule, weights, modalities, expected):
    model = _model(loss_weight_contrastive=weights[0], loss_weight_clustering=weights[1],
                   loss_weight_reconstruction=weights[2], modalities=modalities)
    batch = next(iter(datamodule.train_dataloader()))
    losses = model._losses(batch, "val")
    terms = {t for t in ("contrastive", "clustering", "reconstruction") if t in losses}
    assert terms == expected - {"clustering"}  # evaluation has no centroids before the first training step
    trainer = _fit(model, datamodule)
    logged = {k[len("train/"):-len("_epoch")] for k in trainer.callback_metrics if k.startswith("train/") and k.endswith("_epoch")}
    assert logged & {"contrastive", "clustering", "reconstruction"} == expected
    total = trainer.callback_metrics["train/loss_epoch"]
    assert torch.isfinite(total)


def test_total_is_the_mean_of_the_weighted_terms(datamodule):
    model = _model(loss_weight_contrastive=2.0, loss_weight_clustering=0.0, loss_weight_reconstruction=0.5)
    batch = next(iter(datamodule.train_dataloader()))
    losses = model._losses(batch, "val")
    expected = (2.0 * losses["contrastive"] + 0.5 * losses["reconstruction"]) / 2
    assert torch.allclose(losses["loss"], expected)


def test_frozen_encoders_do_not_change_and_targets_are_their_outputs(datamodule):
    model = _model(freeze_encoders=True)
    assert model.target_encoders is None  # the frozen backbones' outputs are the reconstruction targets
    before = {k: v.clone() for k, v in model.encoders.state_dict().items()}
    _fit(model, datamodule)
    after = model.encoders.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics


def test_end_to_end_trains_the_encoders_against_fixed_targets(datamodule):
    model = _model()
    targets_before = {k: v.clone() for k, v in model.target_encoders.state_dict().items()}
    encoder_before = {k: v.clone() for k, v in model.encoders.state_dict().items() if v.is_floating_point()}
    _fit(model, datamodule)
    assert all(torch.equal(targets_before[k], v) for k, v in model.target_encoders.state_dict().items())
    assert any(not torch.equal(encoder_before[k], model.encoders.state_dict()[k]) for k in encoder_before)


def test_input_summaries_replace_the_frozen_copy_as_targets(datamodule):
    targets = {"video": FrameMotionTarget(size=4), "text": TokenHistogramTarget(vocab_size=128)}
    model = _model(reconstruction_targets=targets)
    assert set(model.target_encoders) == {"audio"}  # only the modality without a summary keeps a frozen copy
    assert model.reconstruction["video"].net[-1].out_features == targets["video"].num_features == 2 * 3 * 4 * 4
    batch = next(iter(datamodule.train_dataloader()))
    losses = model._losses(batch, "val")
    assert set(losses) >= {"reconstruction/video", "reconstruction/audio", "reconstruction/text"}
    encoder_before = {k: v.clone() for k, v in model.encoders.state_dict().items() if v.is_floating_point()}
    trainer = _fit(model, datamodule)
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
    assert any(not torch.equal(encoder_before[k], model.encoders.state_dict()[k]) for k in encoder_before)
    all_summarised = _model(reconstruction_targets={"video": FrameMotionTarget(), "audio": LogMelStatsTarget(),
                                                    "text": TokenHistogramTarget(128)})
    assert all_summarised.target_encoders is None
    with pytest.raises(ValueError, match="not among the modalities"):
        _model(modalities=["video", "audio"], reconstruction_targets={"text": TokenHistogramTarget(128)})


def test_representations_for_probes(datamodule):
    model = _model(modalities=["video", "text"]).eval()
    batch = next(iter(datamodule.val_dataloader()))
    represented = model.represent(batch)
    assert set(represented) == {"video", "text"} == set(model.representation_dims)
    assert all(v.shape == (len(batch["id"]), 32) for v in represented.values())


def test_projection_hidden_width_is_the_original_eighth_unless_set():
    widths = lambda model: [m.out_features for m in model.projection.net if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert widths(_model()) == [32 // 8, 16]
    assert widths(_model(projection_hidden_dim=64)) == [64, 16]
    assert [m.out_features for m in SimCLR(FrameEncoder("test_vit", {"img_size": 32}), representation_dim=32,
                                           projection_hidden_dim=24).projection.net if isinstance(m, torch.nn.Linear)] == [24, 128]


def test_clustering_needs_no_labels_and_is_deterministic(datamodule):
    batch = next(iter(datamodule.train_dataloader()))
    batch = dict(batch, targets={}, target_mask={})  # unlabelled clips
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _model(loss_weight_contrastive=0.0, loss_weight_reconstruction=0.0, clustering_mode="individual")
        trainer = Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                          enable_model_summary=False, enable_checkpointing=False)
        model.trainer = trainer
        results.append(model._losses(batch, "train")["clustering"])
    assert torch.isfinite(results[0]) and torch.equal(results[0], results[1])


def test_clustering_temperature_divides_the_centroid_similarities(datamodule):
    """Same weights, same k-means: the term equals clustering_loss at the configured tau, recomputed here from the
    model's own fused vectors and centroids; tau = 0.5 (similarities doubled) gives another value than none."""
    from affectlab.losses import clustering_loss

    batch = dict(next(iter(datamodule.train_dataloader())), targets={}, target_mask={})
    terms = {}
    for tau in (None, 0.5):
        torch.manual_seed(0)
        model = _model(loss_weight_contrastive=0.0, loss_weight_reconstruction=0.0, clustering_temperature=tau).eval()
        model.trainer = Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                                enable_model_summary=False, enable_checkpointing=False)
        terms[tau] = model._losses(batch, "train")["clustering"]
        with torch.no_grad():
            represented = model.represent(batch)
            fused = torch.stack([model.cluster_head(model.projection(r)) for r in represented.values()]).mean(0)
            z = torch.nn.functional.normalize(fused, dim=-1)
            assignments = (z @ model.kmeans_centroids.T).argmax(-1)  # k-means' labels: nearest unit centroid
            expected = clustering_loss(fused, model.centroids, assignments, model.clustering_margin, tau)
        assert torch.allclose(terms[tau], expected, atol=1e-6)
    assert not torch.allclose(terms[None], terms[0.5])


def _clustering_only(**kwargs):
    torch.manual_seed(0)
    model = _model(loss_weight_contrastive=0.0, loss_weight_reconstruction=0.0, **kwargs)
    model.trainer = Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False)
    return model


def test_individual_mode_sums_over_modalities_as_conclugen(datamodule):
    """Same weights, same k-means: ConCluGen's sum is M = 3 times MCN's mean; joint mode has one term either way."""
    batch = dict(next(iter(datamodule.train_dataloader())), targets={}, target_mask={})
    terms = {reduction: _clustering_only(clustering_mode="individual", clustering_individual_reduction=reduction)
             ._losses(batch, "train")["clustering"] for reduction in ("sum", "mean")}
    assert torch.allclose(terms["sum"], 3 * terms["mean"], rtol=1e-6) and terms["mean"] > 0
    assert _clustering_only().clustering_individual_reduction == "sum"  # the default follows ConCluGen
    joint = {reduction: _clustering_only(clustering_individual_reduction=reduction)._losses(batch, "train")["clustering"]
             for reduction in ("sum", "mean")}
    assert torch.equal(joint["sum"], joint["mean"])


def test_clustering_term_uses_raw_dot_products_with_member_means(datamodule):
    """The default term is the originals': unnormalised fused outputs against the plain means of k-means' members
    (the queue's rows plus the batch's); the cosine option gives another value."""
    from affectlab.losses import cluster_means, clustering_loss

    batch = dict(next(iter(datamodule.train_dataloader())), targets={}, target_mask={})
    model = _clustering_only().eval()
    term = model._losses(batch, "train")["clustering"]
    with torch.no_grad():
        fused = torch.stack([model.cluster_head(model.projection(r)) for r in model.represent(batch).values()]).mean(0)
        assignments = (torch.nn.functional.normalize(fused, dim=-1) @ model.kmeans_centroids.T).argmax(-1)
        assert torch.allclose(model.centroids, cluster_means(fused, assignments, model.num_clusters))
        manual = torch.nn.functional.cross_entropy(
            fused @ model.centroids.T - 0.001 * torch.nn.functional.one_hot(assignments, model.num_clusters), assignments)
    assert torch.allclose(term, manual, atol=1e-6)
    cosine = _clustering_only(clustering_similarity="cosine").eval()._losses(batch, "train")["clustering"]
    assert not torch.allclose(term, cosine)
    assert torch.allclose(cosine, clustering_loss(fused, model.kmeans_centroids, assignments, similarity="cosine"), atol=1e-6)


@pytest.mark.parametrize("warm", [True, False])
def test_kmeans_warm_start_begins_from_the_previous_centroids(datamodule, warm):
    """With no Lloyd step the fit returns its start: the previous step's centroids when warm-started, a fresh
    k-means++ seeding of the queue and the new batch when not."""
    batches = iter(datamodule.train_dataloader())
    model = _clustering_only(kmeans_warm_start=warm, kmeans_iterations=0)
    model._losses(dict(next(batches), targets={}, target_mask={}), "train")
    first = model.kmeans_centroids.clone()
    model._losses(dict(next(batches), targets={}, target_mask={}), "train")
    assert torch.equal(model.kmeans_centroids, first) == warm


def test_invalid_switches_are_refused():
    with pytest.raises(ValueError, match="switch on at least one"):
        _model(loss_weight_contrastive=0, loss_weight_clustering=0, loss_weight_reconstruction=0)
    with pytest.raises(ValueError, match="two modalities or more"):
        _model(modalities=["video"])


def test_simclr_trains_on_video_and_represents_it(datamodule):
    torch.manual_seed(0)
    model = SimCLR(FrameEncoder("test_vit", {"img_size": 32}), representation_dim=32, projection_dim=16)
    trainer = _fit(model, datamodule)
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
    batch = next(iter(datamodule.val_dataloader()))
    assert model.represent(batch)["video"].shape == (len(batch["id"]), 32)


def test_original_set_up_trains_the_heads_on_precomputed_features():
    """One pooled backbone vector per clip and modality; the vectors are inputs, not signals to augment."""
    from torch.utils.data import DataLoader

    from affectlab.nn.encoders import PrecomputedFeatures

    dims = {"video": 24, "audio": 12, "text": 8}
    features = {m: torch.randn(32, d) for m, d in dims.items()}
    clips = [{"id": i, **{m: f[i] for m, f in features.items()}} for i in range(32)]
    encoders = {m: PrecomputedFeatures(d, modality=m) for m, d in dims.items()}
    model = ConCluGen(encoders, freeze_encoders=True, representation_dim=16, projection_dim=8, num_clusters=4,
                      reconstruction_dim=8, kmeans_queue_size=2)
    model.train()
    batch = next(iter(DataLoader(clips, batch_size=8)))
    assert model._view(batch)["audio"] is batch["audio"]  # pooled audio features [B, D] are not a waveform
    losses = model._losses(batch, "train")
    assert set(losses) >= {"contrastive", "clustering", "reconstruction"}
    # The reconstruction targets are the input features themselves (the frozen backbone's output).
    rebuilt = model.reconstruction["text"](model.representation["text"](batch["text"]))
    assert torch.allclose(losses["reconstruction/text"], torch.nn.functional.mse_loss(rebuilt, batch["text"]))
    before = {k: v.clone() for k, v in model.representation.state_dict().items()}
    Trainer(max_steps=3, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
            enable_checkpointing=False).fit(model, DataLoader(clips, batch_size=8, shuffle=True))
    assert any(not torch.equal(before[k], v) for k, v in model.representation.state_dict().items())
