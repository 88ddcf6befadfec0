"""Video preparation (data/video_prepare.py, video_clips.py): frame sampling, the no-face policies, damaged files
skipped and reported, resume after an interruption, and the supervised baseline trained from a prepared store."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import CONFIGS, TEST_CONFIGS, affectlab, face_scene, mlflow_client, printed_run_id

import affectlab.data.video_prepare as video_prepare
from affectlab.data.feature_store import FeatureStore, FeatureStoreDataModule, FeatureStoreWriter
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_caer, export_meld
from affectlab.data.video import write_video
from affectlab.data.video_clips import evenly_spaced, sample_frames
from affectlab.data.video_prepare import FaceCropper, PrepareReport, prepare_video
from affectlab.errors import ConfigError

SMALL = SynthConfig(num_clips=14, num_identities=7, num_frames=8, image_size=64, styles=("shaded",))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return ensure(tmp_path_factory.mktemp("synth") / "cache", SMALL, progress=False)


@pytest.fixture(scope="module")
def cropper():
    return FaceCropper(size=32)


def test_evenly_spaced_frames_on_a_stride():
    stride, index = evenly_spaced(100, 8)
    assert stride == 14 and len(set(index)) == 8 and index[0] == 0 and max(index) <= 99
    assert all(i % stride == 0 for i in index) and np.abs(np.diff(index) - 99 / 7).max() <= stride
    assert evenly_spaced(5, 8) == (1, [0, 1, 2, 3, 4])  # shorter than asked: every frame
    assert evenly_spaced(9, 1) == (1, [4])  # one frame: the middle
    for total in range(2, 300, 7):  # distinct, in range, first frame kept, for any length
        for count in (2, 3, 8, 16):
            stride, index = evenly_spaced(total, count)
            assert len(set(index)) == min(total, count) and index == sorted(index) and index[-1] < total


def test_sampled_frames_are_the_planned_ones_in_order(tmp_path):
    frames = np.stack([np.full((48, 64, 3), 8 * t, np.uint8) for t in range(30)])  # brightness = 8 x index
    path = write_video(tmp_path / "ramp.mp4", frames, fps=10)
    sampled = sample_frames(path, 5)
    assert [f.index for f in sampled.frames] == [0, 7, 14, 21, 28] and sampled.problem is None
    assert [round(f.image.mean() / 8) for f in sampled.frames] == [0, 7, 14, 21, 28]
    assert sampled.decoded == 29  # decoding stops after the last frame needed
    by_rate = sample_frames(path, fps=2.5, max_frames=3)
    assert [f.index for f in by_rate.frames] == [0, 4, 8]


def test_no_face_policies(cropper):
    blank = np.full((180, 240, 3), 90, np.uint8)
    images = [face_scene(seed=1), blank, face_scene(seed=1), blank]
    for policy, crops_expected, counts in (("nearest", 4, (2, 2, 0, 0)), ("frame", 4, (0, 0, 4, 0)),
                                           ("skip", 2, (2, 0, 0, 2))):
        cropper.no_face = policy
        report = PrepareReport()
        crops = cropper(images, report)
        assert crops.shape == (crops_expected, 32, 32, 3) and crops.dtype == np.uint8
        assert (report.face, report.nearest, report.whole, report.dropped) == counts, policy
        if policy == "nearest":  # a blank frame cropped at its neighbour's face box: the blank scene's colour
            assert np.abs(crops[1].astype(int) - 90).max() <= 1 and crops[0].std() > 20
    cropper.no_face = "nearest"
    report = PrepareReport()
    assert cropper([blank, blank], report).shape == (2, 32, 32, 3) and report.whole == 2  # no face anywhere
    with pytest.raises(ConfigError, match="--no-face: 'guess' is not one of nearest, frame, skip"):
        FaceCropper(no_face="guess")


def test_undecodable_clips_are_skipped_listed_and_the_run_goes_on(synth, tmp_path):
    raw = tmp_path / "CAER"
    export_caer(synth, raw)
    garbage = raw / "train" / "Happy" / "9998.avi"
    garbage.write_bytes(b"RIFF....AVI garbage" * 50)
    good = write_video(tmp_path / "long.mkv", np.repeat(np.asarray(synth.frames[0]), 4, axis=0), fps=25)
    cut = raw / "test" / "Sad" / "9999.mkv"  # Matroska keeps its index in front: a cut file opens and decodes
    cut.parent.mkdir(exist_ok=True)
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    report = prepare_video("caer", str(raw), str(tmp_path / "store"), num_frames=4, size=32, progress=False)
    assert report.written == 15 and [s["file"] for s in report.skipped] == [str(garbage)]
    assert report.skipped[0]["reason"].startswith(f"{garbage}: holds no video stream")
    assert [d["file"] for d in report.damaged] == [str(cut)] and "truncated" in report.damaged[0]["problem"]
    assert report.face > 0 and report.face + report.nearest + report.whole == report.frames
    saved = json.loads((tmp_path / "store" / "prepare_report.json").read_text())
    assert saved["skipped"] == report.skipped
    store = FeatureStore(tmp_path / "store")
    assert len(store) == 15 and store.shapes == {"video": (3, 32, 32)}
    assert store.index["source"]["report"]["skipped"] == report.skipped


def test_interrupted_preparation_resumes_to_the_same_store(synth, tmp_path, monkeypatch):
    raw = tmp_path / "MELD.Raw"
    export_meld(synth, raw)
    options = dict(num_frames=3, size=16, shard_samples=4, progress=False)
    whole = prepare_video("meld", str(raw), str(tmp_path / "whole"), **options)
    real, calls = video_prepare.prepare_clip, []

    def killed_at_the_seventh_clip(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(video_prepare, "prepare_clip", killed_at_the_seventh_clip)
    with pytest.raises(KeyboardInterrupt):
        prepare_video("meld", str(raw), str(tmp_path / "resumed"), **options)
    assert FeatureStoreWriter(tmp_path / "resumed", {}, {}).written_ids() == [0, 1, 2, 3]  # one shard stored
    monkeypatch.setattr(video_prepare, "prepare_clip", real)
    with pytest.raises(ConfigError, match="unfinished preparation made with .*'size': 16"):
        prepare_video("meld", str(raw), str(tmp_path / "resumed"), **{**options, "size": 24})
    resumed = prepare_video("meld", str(raw), str(tmp_path / "resumed"), **options)
    counts = ("clips", "written", "frames", "face", "nearest", "whole", "dropped", "decoded_frames")
    assert [getattr(resumed, k) for k in counts] == [getattr(whole, k) for k in counts]
    a, b = FeatureStore(tmp_path / "whole"), FeatureStore(tmp_path / "resumed")
    for key in a.samples:
        assert np.array_equal(a.samples[key], b.samples[key]), key
    assert all(np.array_equal(a.features(i, "video"), b.features(i, "video")) for i in range(len(a)))
    mtime = (tmp_path / "resumed" / "index.json").stat().st_mtime_ns
    prepare_video("meld", str(raw), str(tmp_path / "resumed"), **options)  # complete: nothing is redone
    assert (tmp_path / "resumed" / "index.json").stat().st_mtime_ns == mtime


def test_supervised_baseline_trains_from_a_prepared_meld_store(synth, tmp_path):
    raw, store, runs = tmp_path / "MELD.Raw", tmp_path / "store", tmp_path / "runs"
    export_meld(synth, raw)
    prepared = affectlab("data", "prepare", "meld", "--raw", str(raw), "--out", str(store), "--size", "32",
                         "--num-frames", "4")
    assert "14 clips stored, 0 skipped" in prepared.stdout
    data = FeatureStoreDataModule(str(store), batch_size=4)
    batch = next(iter(data.val_dataloader()))
    assert batch["video"].shape == (2, 4, 3, 32, 32) and batch["video_mask"].all()
    assert data.class_names["emotion"][1] == "happy" and batch["targets"]["emotion"].dtype == torch.long
    result = affectlab(
        "run", "--model", str(CONFIGS / "model/supervised.yaml"), "--config", str(TEST_CONFIGS / "tiny_supervised.yaml"),
        "--model.init_args.modalities", "[video]", "--data", "feature_store", "--data.init_args.root", str(store),
        "--data.init_args.batch_size", "4", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--store", str(runs),
    )
    metrics = mlflow_client(runs).get_run(printed_run_id(result.stdout)).data.metrics
    assert metrics["test/num_samples"] == 2 and np.isfinite(metrics["train/loss_epoch"])
    shutil.rmtree(runs)
