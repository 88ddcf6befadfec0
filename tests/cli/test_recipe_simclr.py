"""`affectlab recipe simclr caer` on precomputed features: SimCLR's two augmented views are two distinct stored
views of each sample (`data prepare ... --views K`, K >= 2; the original drew from 10), served with `pair_views`;
a store of one view, and MOSEI's one-view sequences, are refused with what to prepare."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import affectlab, mlflow_client

from affectlab.data.store.feature_store import FeatureStore, FeatureStoreDataModule, FeatureStoreWriter, StoreSample
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_caer
from affectlab.errors import ConfigError, DataError
from affectlab.experiments.recipe import CEILING, Recipe, RecipeOptions

SMALL = SynthConfig(num_clips=14, num_identities=7, num_frames=8, image_size=64, styles=("shaded",))


@pytest.fixture(scope="module")
def caer_views(tmp_path_factory):
    """AffectSynth exported as CAER, prepared with a tiny timm encoder and two views per clip: (raw, store)."""
    root = tmp_path_factory.mktemp("caer_views")
    raw, store = root / "CAER", root / "CAER-features"
    export_caer(ensure(root / "synth", SMALL, progress=False), raw)
    affectlab("data", "prepare", "caer", "--raw", str(raw), "--out", str(store), "--size", "32", "--num-frames", "4",
              "--encoder", "test_vit", "--views", "2", timeout=300)
    return raw, store


def test_pair_views_serves_two_distinct_stored_views_of_each_sample(caer_views):
    _, store_path = caer_views
    store = FeatureStore(store_path)
    assert store.views == 2
    data = FeatureStoreDataModule(str(store_path), modalities=["video"], batch_size=4, pair_views=True)
    data.setup("fit")
    val = next(iter(data.val_dataloader()))  # val and test: views 0 and 1
    first = store.split_indices("val")[0]
    assert torch.allclose(val["video"][0, : val["video_mask"][0].sum()], torch.from_numpy(store.features(first, "video", view=0)))
    assert torch.allclose(val["video_view2"][0, : val["video_view2_mask"][0].sum()],
                          torch.from_numpy(store.features(first, "video", view=1)))
    train = data.dataset("train")
    torch.manual_seed(0)
    for item in range(len(train)):  # never the same view twice: with K = 2, always views 0 and 1 in some order
        sample = train[item]
        i = int(train.index[item])
        views = {tuple(store.features(i, "video", view=v).ravel()[:8]) for v in range(2)}
        assert {tuple(sample["video"].numpy().ravel()[:8]), tuple(sample["video_view2"].numpy().ravel()[:8])} == views
    assert "video_view2" not in FeatureStoreDataModule(str(store_path), batch_size=4).dataset("train")[0]


def test_simclr_recipe_on_the_prepared_views_through_the_command(caer_views, tmp_path):
    raw, _ = caer_views
    store = tmp_path / "runs"
    result = affectlab("recipe", "simclr", "caer", "--data-root", str(raw), "--fractions", "1", "--no-floor",
                       "--store", str(store), "--quiet", "--pretrain-epochs", "1", "--probe-steps", "2",
                       "--ceiling-epochs", "1", "--data.init_args.data.init_args.batch_size", "4", timeout=300)
    assert "F1 (weighted)" in result.stdout
    record = json.loads((store / "recipes/simclr-caer-seed127.json").read_text())
    assert record["pretrain_done"] and {r["representation"] for r in record["rows"]} == {"simclr", CEILING}
    assert all(len(r["per_class"]) == 7 for r in record["rows"])
    client = mlflow_client(store)
    runs = {r.info.run_name: r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}
    pretrain = runs["simclr-caer-seed127"]
    assert pretrain.data.params["data.init_args.data.init_args.pair_views"] == "True"
    assert pretrain.data.params["model.init_args.encoder.class_path"] == "affectlab.nn.encoders.PrecomputedFeatures"
    assert np.isfinite(pretrain.data.metrics["train/loss_epoch"])
    probe = runs["probe-simclr-1-seed127"].data.params
    assert probe["data.init_args.data.init_args.modalities"] == "['video']"
    assert probe["data.init_args.data.init_args.pair_views"] == "False"  # the probes read one view


def one_view_store(path) -> None:
    writer = FeatureStoreWriter(path, {"video": 4, "audio": 3}, {"emotion": ()}, task_dtypes={"emotion": "int64"},
                                source={"name": "caer", "raw": "/data/CAER"})
    rows = [StoreSample(i, ("train", "val", "test")[i % 3], {"video": np.ones((2, 4)), "audio": np.ones((1, 3))},
                        {"emotion": i % 7}) for i in range(9)]
    writer.write(rows, len(rows))


def test_a_store_of_one_view_is_refused_with_the_views_to_prepare(tmp_path):
    features = tmp_path / "CAER-features"
    one_view_store(features)
    command = f"affectlab data prepare caer --raw /data/CAER --out {features}-views10 --views 10"
    with pytest.raises(ConfigError, match=rf"holds 1 view per sample. Prepare one of several views with:\n  {command}"):
        Recipe(RecipeOptions("simclr", "caer", data_root=str(tmp_path / "CAER"), store=str(tmp_path / "s")))
    with pytest.raises(ConfigError, match=rf"data.init_args.pair_views: .* holds 1 view per sample.*\n  {command}"):
        FeatureStoreDataModule(str(features), pair_views=True).setup("fit")
    Recipe(RecipeOptions("conclugen", "caer", data_root=str(tmp_path / "CAER"), store=str(tmp_path / "s")))  # one view serves it


def test_simclr_on_features_without_a_second_view_names_pair_views():
    from affectlab.methods.simclr import SimCLR
    from affectlab.nn.encoders import PrecomputedFeatures

    model = SimCLR(PrecomputedFeatures(in_features=4, modality="video"), representation_dim=8, projection_dim=4)
    batch = {"video": torch.randn(3, 2, 4), "video_mask": torch.ones(3, 2, dtype=torch.bool), "id": torch.arange(3)}
    with pytest.raises(DataError, match="pair_views: true"):
        model.views(batch)
    second = torch.randn(3, 2, 4)
    views = model.views({**batch, "video_view2": second, "video_view2_mask": batch["video_mask"]})
    assert views[0]["video"] is batch["video"] and views[1]["video"] is second


def test_simclr_on_mosei_is_refused_as_one_view():
    from affectlab.experiments.recipe_data import variant_modalities

    with pytest.raises(ConfigError, match="mosei's features hold one view per sample"):
        variant_modalities("simclr", "mosei")
    assert variant_modalities("simclr", "caer") == ["video"]
