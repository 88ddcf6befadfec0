"""Every ConCluGen variant config trains a few steps end to end through the CLI (`affectlab run`)."""

from __future__ import annotations

import pytest

from conftest import CONFIGS, affectlab, mlflow_client, printed_run_id, tiny_data_args

VARIANTS = sorted(p.stem for p in (CONFIGS / "model/conclugen").glob("*.yaml"))


def test_all_eight_variants_have_a_config():
    assert VARIANTS == sorted([
        "conclugen", "contrast_cluster", "contrast_generative", "contrast_only", "contrast_only_video_audio",
        "contrast_only_video_text", "generative_only", "simclr",
    ])


# CI trains the full method, SimCLR and the two single-loss ends; the combinations between them (whose loss
# terms the method tests cover) train through the CLI in `make test-slow`, to keep CI inside its budget
IN_CI = {"conclugen", "simclr", "contrast_only", "generative_only"}


@pytest.mark.parametrize("variant", [v if v in IN_CI else pytest.param(v, marks=pytest.mark.slow) for v in VARIANTS])
def test_variant_pretrains_through_the_cli(variant, tiny_data, tmp_path):
    store = tmp_path / "store"
    result = affectlab(
        "run", "--model", str(CONFIGS / f"model/conclugen/{variant}.yaml"),
        "--config", str(CONFIGS / "experiment/synth/pretrain.yaml"),
        *tiny_data_args(tiny_data, store, max_epochs=2),
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
        "--model.init_args.kmeans_queue_size" if variant != "simclr" else "--model.init_args.temperature",
        "2" if variant != "simclr" else "0.07",
    )
    run_id = printed_run_id(result.stdout)
    metrics = mlflow_client(store).get_run(run_id).data.metrics
    assert "train/loss_epoch" in metrics and "test/loss" in metrics
    if variant != "simclr":  # ConCluGen logs its pictures: loss terms per epoch, the t-SNE map of the test set
        plots = {a.path.split("/")[-1] for a in mlflow_client(store).list_artifacts(run_id, "plots")}
        assert {"loss_terms.png", "test_representation_map.png"} <= plots
    lrs = [m.value for m in mlflow_client(store).get_metric_history(run_id, "lr-AdamW")]
    assert len(lrs) == 2 and lrs[0] != lrs[1]  # the timm cosine schedule moved the learning rate
