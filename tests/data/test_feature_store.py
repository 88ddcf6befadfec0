"""The feature store: round trip, resume after interruption, idempotent re-runs, prepare from readers,
training from a store through the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import CONFIGS, TEST_CONFIGS, affectlab, affectlab_inline, mlflow_client, printed_run_id

from affectlab.data import feature_store
from affectlab.data.store.feature_store import FeatureStore, FeatureStoreDataModule, FeatureStoreWriter, StoreSample
from affectlab.data.readers.mosei import MoseiDataModule
from affectlab.data.store.prepare import prepare
from affectlab.data.synth.export import export_frame_tables, export_mosei
from affectlab.errors import DataError


def _samples(n=23, seed=0):
    rng = np.random.default_rng(seed)
    splits = ["train"] * 15 + ["val"] * 4 + ["test"] * 4
    return [
        StoreSample(i, splits[i], {"a": rng.normal(size=(int(rng.integers(1, 9)), 5)).astype(np.float32),
                                   "b": rng.normal(size=(3, 2)).astype(np.float32)},
                    {"y": float(i) if i % 5 else None, "v": rng.uniform(size=3)})
        for i in range(n)
    ]


def _writer(path, shard=4):
    return FeatureStoreWriter(path, {"a": 5, "b": 2}, {"y": (), "v": (3,)}, shard_samples=shard)


def test_round_trip_keeps_rows_targets_masks_and_splits(tmp_path):
    samples = _samples()
    _writer(tmp_path / "s").write(iter(samples), len(samples))
    store = FeatureStore(tmp_path / "s")
    assert len(store) == 23 and store.index["shards"] == 6
    for i, sample in enumerate(samples):
        assert np.allclose(store.features(i, "a"), sample.features["a"], atol=1e-2)
        value, labelled = store.target(i, "y")
        assert labelled == (i % 5 != 0) and (not labelled or value == i)
    assert store.split_indices("val").tolist() == [15, 16, 17, 18]


def test_interrupted_preparation_resumes_to_the_same_store(tmp_path):
    samples = _samples()

    def interrupted():
        for position, sample in enumerate(samples):
            if position == 10:  # killed while filling the third shard
                raise KeyboardInterrupt
            yield sample

    writer = _writer(tmp_path / "s")
    with pytest.raises(KeyboardInterrupt):
        writer.write(interrupted(), len(samples))
    assert writer.done() == 8  # two whole shards
    with pytest.raises(DataError, match="unfinished preparation: run it again"):
        FeatureStore(tmp_path / "s")
    writer.write(iter(samples[writer.done():]), len(samples))
    _writer(tmp_path / "whole").write(iter(samples), len(samples))
    resumed, whole = FeatureStore(tmp_path / "s"), FeatureStore(tmp_path / "whole")
    for key in whole.samples:
        assert np.array_equal(resumed.samples[key], whole.samples[key]), key
    for i in range(len(samples)):
        assert np.array_equal(resumed.features(i, "a"), whole.features(i, "a"))
    assert not (tmp_path / "s" / "progress.json").exists()


def _killed_at(samples, position):
    yield from samples[:position]
    raise KeyboardInterrupt


def _assert_same_store(a, b, n):
    a, b = FeatureStore(a), FeatureStore(b)
    assert a.index == b.index and set(a.samples) == set(b.samples)
    for key in a.samples:
        assert np.array_equal(a.samples[key], b.samples[key]), key
    for i in range(n):
        for modality in ("a", "b"):
            assert np.array_equal(a.features(i, modality), b.features(i, modality))


def test_progress_stays_small_and_a_crash_before_recording_a_shard_is_harmless(tmp_path, monkeypatch):
    samples = _samples()
    real, yielded = feature_store.atomic_write_json, []

    def counted():
        for sample in samples:
            yielded.append(sample.id)
            yield sample

    def killed_before_recording_the_ninth_shard(path, content):
        if path.name == "progress.json":
            if len(content["shards"]) == 9:  # shard 8's rows and records file are written, progress.json is not
                raise KeyboardInterrupt
        real(path, content)

    monkeypatch.setattr(feature_store, "atomic_write_json", killed_before_recording_the_ninth_shard)
    writer = _writer(tmp_path / "s", shard=2)
    with pytest.raises(KeyboardInterrupt):
        writer.write(counted(), len(samples), state=lambda: {"yielded": len(yielded)})
    monkeypatch.setattr(feature_store, "atomic_write_json", real)
    progress = json.loads((tmp_path / "s" / "progress.json").read_text())
    assert set(progress) == {"shards", "caller"} and progress["shards"] == [{"count": 2}] * 8  # no per-sample records
    assert (tmp_path / "s" / "progress.json").stat().st_size < 40 * 8 + 64  # one small entry per shard
    assert writer.done() == 16 and writer.written_ids() == list(range(16)) and writer.saved_state() == {"yielded": 16}
    stale = tmp_path / "s" / "progress_records" / "shard_00008.json"
    assert stale.is_file()  # the unrecorded shard's records file: ignored, then rewritten
    stale.write_text("{ killed mid-write")
    (tmp_path / "s" / "progress_records" / "shard_00009.json").write_text("not json either")
    assert writer.written_ids() == list(range(16))
    writer.write(iter(samples[writer.done():]), len(samples))
    assert not (tmp_path / "s" / "progress.json").exists() and not (tmp_path / "s" / "progress_records").exists()
    _writer(tmp_path / "whole", shard=2).write(iter(samples), len(samples))
    _assert_same_store(tmp_path / "s", tmp_path / "whole", len(samples))
    index = (tmp_path / "s" / "index.json").read_bytes()
    _writer(tmp_path / "s", shard=2).write(iter(samples), len(samples))  # complete: a re-run does nothing
    assert (tmp_path / "s" / "index.json").read_bytes() == index


def test_an_unfinished_store_of_an_earlier_version_with_records_in_progress_json_resumes(tmp_path):
    samples = _samples()
    writer = _writer(tmp_path / "s")
    with pytest.raises(KeyboardInterrupt):
        writer.write(_killed_at(samples, 10), len(samples))
    records = [r for shard in (0, 1) for r in json.loads(
        (tmp_path / "s" / "progress_records" / f"shard_{shard:05d}.json").read_text())["records"]]
    shutil.rmtree(tmp_path / "s" / "progress_records")
    (tmp_path / "s" / "progress.json").write_text(json.dumps({"shards": [{"count": 4}] * 2, "records": records}))
    assert writer.done() == 8 and writer.written_ids() == list(range(8))
    writer.write(iter(samples[writer.done():]), len(samples))
    _writer(tmp_path / "whole").write(iter(samples), len(samples))
    _assert_same_store(tmp_path / "s", tmp_path / "whole", len(samples))


def test_prepared_mosei_serves_what_the_csd_reader_serves(synth, tmp_path):
    export_mosei(synth, tmp_path / "raw")
    prepare("mosei", str(tmp_path / "raw"), str(tmp_path / "store"), shard_samples=16)
    index_mtime = (tmp_path / "store" / "index.json").stat().st_mtime_ns
    prepare("mosei", str(tmp_path / "raw"), str(tmp_path / "store"))  # a re-run does nothing
    assert (tmp_path / "store" / "index.json").stat().st_mtime_ns == index_mtime
    direct = MoseiDataModule(str(tmp_path / "raw"), max_steps=50)
    stored = FeatureStoreDataModule(str(tmp_path / "store"), max_steps=50)
    direct.setup()
    stored.setup()
    assert stored.modalities == ("video", "audio", "text")
    assert set(stored.tasks) == {"sentiment", "emotion_presence", "emotion_intensity"}
    a = direct.on_after_batch_transfer(next(iter(direct.test_dataloader())), 0)
    b = next(iter(stored.test_dataloader()))
    assert torch.equal(a["id"], b["id"])
    for modality in ("video", "audio", "text"):
        assert torch.equal(a[f"{modality}_mask"], b[f"{modality}_mask"])
        assert torch.allclose(a[modality], b[modality], atol=2e-2, rtol=1e-3)
    assert torch.allclose(a["targets"]["sentiment"], b["targets"]["sentiment"], atol=1e-6)
    assert stored.class_counts("emotion_presence").shape == (6, 2)


def test_supervised_model_trains_from_a_prepared_store(synth, tmp_path):
    export_frame_tables(synth, tmp_path / "openface", "openface")
    affectlab_inline("data", "prepare", "openface", "--raw", str(tmp_path / "openface"), "--out", str(tmp_path / "store"))
    store = tmp_path / "runs"
    result = affectlab(
        "run", "--model", str(CONFIGS / "model/supervised.yaml"), "--config", str(TEST_CONFIGS / "openface_supervised.yaml"),
        "--data", "feature_store", "--data.init_args.root", str(tmp_path / "store"), "--data.init_args.batch_size", "8",
        "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--store", str(store),
    )
    metrics = mlflow_client(store).get_run(printed_run_id(result.stdout)).data.metrics
    assert "test/acc" in metrics and metrics["test/num_samples"] > 0
    again = affectlab_inline("data", "prepare", "openface", "--raw", str(tmp_path / "openface"), "--out", str(tmp_path / "store"))
    assert "already prepared" in again.stdout


def test_prepare_refuses_image_sets_and_names_the_layout_of_a_missing_video_set(tmp_path):
    result = affectlab_inline("data", "prepare", "rafdb", "--raw", str(tmp_path), "--out", str(tmp_path / "s"), check=False)
    assert result.returncode == 2 and "its reader serves directly (--data rafdb)" in result.stderr
    result = affectlab_inline("data", "prepare", "meld", "--raw", str(tmp_path / "meld"), "--out", str(tmp_path / "s"), check=False)
    assert result.returncode == 2 and "train_sent_emo.csv" in result.stderr and str(tmp_path / "meld") in result.stderr


def test_conclugen_original_set_up_pretrains_from_a_feature_store(synth, tmp_path):
    """Seed 000's set-up: one pooled vector per clip and modality from frozen backbones, read from the store."""
    from lightning.pytorch import Trainer

    from affectlab.methods import ConCluGen
    from affectlab.nn.encoders import PrecomputedFeatures

    export_mosei(synth, tmp_path / "raw")
    prepare("mosei", str(tmp_path / "raw"), str(tmp_path / "store"))
    data = FeatureStoreDataModule(str(tmp_path / "store"), batch_size=8)
    data.setup()
    encoders = {m: PrecomputedFeatures(d, modality=m) for m, d in data.store.dims.items()}
    model = ConCluGen(encoders, freeze_encoders=True, representation_dim=32, projection_dim=16, num_clusters=4,
                      reconstruction_dim=16, kmeans_queue_size=2)
    trainer = Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=data)
    logged = trainer.callback_metrics
    assert all(torch.isfinite(logged[f"train/{t}_epoch"]) for t in ("contrastive", "clustering", "reconstruction"))
    batch = next(iter(data.test_dataloader()))
    assert {m: v.shape for m, v in model.represent(batch).items()} == {m: (8, 32) for m in ("video", "audio", "text")}
