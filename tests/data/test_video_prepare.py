"""Video preparation (data/video_prepare.py, video_clips.py): frame sampling, the no-face policies, damaged files
skipped and reported, resume after an interruption, the supervised baseline trained from a prepared store, and
features precomputed with a named timm encoder (--encoder) instead of crops."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import CONFIGS, TEST_CONFIGS, affectlab, face_scene, mlflow_client, printed_run_id

import affectlab.data.store.video_prepare as video_prepare
from affectlab.data.store.feature_store import FeatureStore, FeatureStoreDataModule, FeatureStoreWriter
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_caer, export_meld
from affectlab.data.media.video import write_video
from affectlab.data.media.video_clips import evenly_spaced, sample_frames
from affectlab.data.store.video_prepare import CropEncoder, FaceCropper, PrepareReport, prepare_video
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


def kill_at_clip(clip: int, monkeypatch, run) -> None:
    """Runs ``run()`` with the preparation killed (KeyboardInterrupt) as it starts its ``clip``-th clip."""
    real, calls = video_prepare.prepare_clip, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == clip:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(video_prepare, "prepare_clip", killed)
    with pytest.raises(KeyboardInterrupt):
        run()


def test_interrupted_preparation_resumes_to_the_same_store(synth, tmp_path, monkeypatch):
    raw = tmp_path / "MELD.Raw"
    export_meld(synth, raw)
    options = dict(num_frames=3, size=16, shard_samples=4, progress=False)
    whole = prepare_video("meld", str(raw), str(tmp_path / "whole"), **options)
    kill_at_clip(7, monkeypatch, lambda: prepare_video("meld", str(raw), str(tmp_path / "resumed"), **options))
    assert FeatureStoreWriter(tmp_path / "resumed", {}, {}).written_ids() == [0, 1, 2, 3]  # one shard stored
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"unfinished preparation made with size 16 \(not size 24\)"):
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


# -- --encoder: features instead of crops ---------------------------------------------------------------------------


def _crops(store: FeatureStore, i: int, size: int) -> np.ndarray:
    """Sample ``i``'s stored crops back as ``[T, S, S, 3]`` uint8 (float16 holds every k/255 closely enough)."""
    rows = store.features(i, "video").reshape(-1, 3, size, size).transpose(0, 2, 3, 1)
    return np.rint(rows * 255).astype(np.uint8)


def test_encoder_features_are_the_encoder_applied_to_the_crops(synth, tmp_path):
    raw = tmp_path / "CAER"
    export_caer(synth, raw)
    options = dict(num_frames=3, size=32, progress=False)
    prepare_video("caer", str(raw), str(tmp_path / "crops"), **options)
    prepare_video("caer", str(raw), str(tmp_path / "features"), encoder="test_vit", encoder_batch=5, **options)
    crops, features = FeatureStore(tmp_path / "crops"), FeatureStore(tmp_path / "features")
    encoder = CropEncoder("test_vit", batch=64)  # random init is seeded: the same weights as the preparation's
    assert encoder.dim == 64 and features.dims == {"video": 64, "audio": 128} and features.shapes == {}
    source = features.index["source"]
    assert source["encoder"]["name"] == "test_vit" and source["encoder"]["checkpoint"] is None
    assert source["encoder"]["input_size"] == [160, 160] and source["options"]["encoder"]["name"] == "test_vit"
    assert np.array_equal(features.samples["id"], crops.samples["id"])
    for i in range(len(features)):
        stored = features.features(i, "video")  # [T, 64]
        assert stored.shape == (3, 64)
        assert np.allclose(stored, encoder(_crops(crops, i, 32)), atol=1e-2, rtol=1e-2), i
    data = FeatureStoreDataModule(str(tmp_path / "features"), batch_size=4)
    batch = next(iter(data.val_dataloader()))
    assert batch["video"].shape[1:] == (3, 64) and batch["video"].dtype == torch.float32


def test_resumed_encoder_preparation_refuses_another_encoder_and_ends_as_an_uninterrupted_one(synth, tmp_path,
                                                                                              monkeypatch):
    raw = tmp_path / "MELD.Raw"
    export_meld(synth, raw)
    # 3 crops per clip, 7 per encoder batch: clips reach the writer in threes, so the shard of 4 is recorded
    # while 2 more clips have been counted in the report; the saved report must not count them.
    options = dict(num_frames=3, size=16, shard_samples=4, encoder="test_vit", encoder_batch=7, progress=False)
    whole = prepare_video("meld", str(raw), str(tmp_path / "whole"), **options)
    kill_at_clip(7, monkeypatch, lambda: prepare_video("meld", str(raw), str(tmp_path / "resumed"), **options))
    unfinished = FeatureStoreWriter(tmp_path / "resumed", {}, {})
    assert unfinished.written_ids() == [0, 1, 2, 3]
    saved = unfinished.saved_state()["report"]
    assert (saved["clips"], saved["written"], saved["frames"]) == (4, 4, 12)  # the report at the last stored clip
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"unfinished preparation made with encoder \{'name': 'test_vit', "
                                          r"'checkpoint': None\} \(not encoder \{'name': 'test_resnet'"):
        prepare_video("meld", str(raw), str(tmp_path / "resumed"), **{**options, "encoder": "test_resnet"})
    crops_only = {k: v for k, v in options.items() if not k.startswith("encoder")}
    with pytest.raises(ConfigError, match=r"made with encoder \{'name': 'test_vit'.*\(not encoder None\)"):
        prepare_video("meld", str(raw), str(tmp_path / "resumed"), **crops_only)
    resumed = prepare_video("meld", str(raw), str(tmp_path / "resumed"), **options)
    counts = ("clips", "written", "frames", "face", "nearest", "whole", "dropped", "decoded_frames")
    assert [getattr(resumed, k) for k in counts] == [getattr(whole, k) for k in counts]
    a, b = FeatureStore(tmp_path / "whole"), FeatureStore(tmp_path / "resumed")
    assert all(np.array_equal(a.features(i, "video"), b.features(i, "video")) for i in range(len(a)))
    with pytest.raises(ConfigError, match=r"already holds a complete store of meld made with encoder"):
        prepare_video("meld", str(raw), str(tmp_path / "resumed"), **crops_only)


def test_encoder_checkpoint_loads_local_weights_only_and_names_what_does_not_fit(tmp_path):
    import timm

    torch.manual_seed(1)
    trained = timm.create_model("test_vit", pretrained=False, num_classes=7)  # with a classifier, left out on load
    path = tmp_path / "vit.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, path)
    encoder = CropEncoder("test_vit", checkpoint=str(path))
    assert torch.equal(encoder.model.pos_embed, trained.pos_embed)
    assert encoder.describe()["checkpoint"]["path"] == str(path.resolve()) and len(encoder.checkpoint["sha256"]) == 64
    crops = np.random.default_rng(0).integers(0, 256, (5, 24, 24, 3), dtype=np.uint8)
    trained.reset_classifier(0)
    x = torch.nn.functional.interpolate(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255, size=(160, 160),
                                        mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    with torch.no_grad():
        expected = trained.eval()((x - 0.5) / 0.5).numpy()  # test_vit: mean = std = 0.5
    assert np.allclose(encoder(crops), expected, atol=1e-5)
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(ConfigError, match=r"--encoder-checkpoint: the weights in .*resnet.pt do not fit timm's "
                                          r"test_vit: \d+ missing keys"):
        CropEncoder("test_vit", checkpoint=str(tmp_path / "resnet.pt"))
    torch.save({"weights": PrepareReport()}, tmp_path / "pickled.pt")  # an object, not tensors
    with pytest.raises(ConfigError, match=r"(?s)pickled.pt is not a checkpoint readable with weights_only=True.*does not offer to load it unsafely.*save the state dict alone"):
        CropEncoder("test_vit", checkpoint=str(tmp_path / "pickled.pt"))
    with pytest.raises(ConfigError, match=r"--encoder-checkpoint: .*nowhere.pt does not exist"):
        prepare_video("meld", str(tmp_path), str(tmp_path / "s"), encoder="test_vit",
                      encoder_checkpoint=str(tmp_path / "nowhere.pt"))
    with pytest.raises(ConfigError, match=r"--encoder-checkpoint needs --encoder NAME"):
        prepare_video("meld", str(tmp_path), str(tmp_path / "s"), encoder_checkpoint=str(path))
    with pytest.raises(ConfigError, match=r"--encoder: 'resnet_9000' is not a timm model name"):
        CropEncoder("resnet_9000")


def test_supervised_baseline_trains_from_encoder_features_through_the_cli(synth, tmp_path):
    raw, store, runs = tmp_path / "CAER", tmp_path / "store", tmp_path / "runs"
    export_caer(synth, raw)
    prepared = affectlab("data", "prepare", "caer", "--raw", str(raw), "--out", str(store), "--size", "32",
                         "--num-frames", "3", "--encoder", "test_vit", "--encoder-batch", "16",
                         "--audio-encoder", "test_resnet", "--audio-seconds", "0.25", "--views", "2")
    assert "14 clips stored" in prepared.stdout and "encoder" in prepared.stdout
    assert "video 64, audio 96; 2 views per clip" in prepared.stdout
    assert "warning: the audio backbone is randomly initialised (no --audio-encoder-checkpoint given)" in prepared.stdout
    index = json.loads((store / "index.json").read_text())
    dims = index["dims"]
    assert dims == {"video": 64, "audio": 96} and index["views"] == 2  # test_vit's and test_resnet's pooled features
    assert len(index["source"]["warnings"]) == 2  # both backbones randomly initialised
    config = tmp_path / "features.yaml"
    config.write_text(
        "model:\n  init_args:\n    encoders:\n      video:\n"
        "        class_path: affectlab.nn.encoders.PrecomputedFeatures\n"
        f"        init_args: {{in_features: {dims['video']}, modality: video}}\n"
        "    modalities: [video]\n    fusion_dim: 32\n    lr_scheduler_init: null\n"
    )
    result = affectlab(
        "run", "--model", str(CONFIGS / "model/supervised.yaml"), "--config", str(config),
        "--data", "feature_store", "--data.init_args.root", str(store), "--data.init_args.batch_size", "4",
        "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--store", str(runs),
    )
    metrics = mlflow_client(runs).get_run(printed_run_id(result.stdout)).data.metrics
    assert metrics["test/num_samples"] == len(FeatureStore(store).split_indices("test"))
    assert np.isfinite(metrics["train/loss_epoch"])


# -- every modality: audio (log-mel or an encoder's features), text (ids or an encoder's), views -------------------

TINY = SynthConfig(num_clips=6, num_identities=6, num_frames=4, image_size=64, styles=("shaded",))
FEW = dict(num_frames=2, size=16, audio_seconds=0.5, progress=False)


@pytest.fixture(scope="module")
def tiny_meld(tmp_path_factory):
    """MELD of 6 clips (4 train, 1 dev, 1 test) whose train clip dia0_utt1 has no audio track."""
    root = tmp_path_factory.mktemp("tiny_meld")
    export_meld(ensure(root / "synth", TINY, progress=False), root / "MELD.Raw")
    silent = root / "MELD.Raw" / "train_splits" / "dia0_utt1.mp4"
    write_video(silent, [f.image for f in sample_frames(silent, 100).frames])
    return root / "MELD.Raw"


@pytest.fixture(scope="module")
def meld_store(tiny_meld, tmp_path_factory):
    out = tmp_path_factory.mktemp("meld_store") / "store"
    return out, prepare_video("meld", str(tiny_meld), str(out), **FEW)


def _reader(raw):
    from affectlab.data.readers.meld import MeldDataModule

    module = MeldDataModule(str(raw), audio_seconds=0.5)
    module.setup()
    return module


def test_prepare_stores_crops_log_mel_and_token_ids_and_the_store_serves_all_three(tiny_meld, meld_store):
    from affectlab.data.contract import check_batch
    from affectlab.data.media.audio import log_mel, read_audio
    from affectlab.data.media.video_clips import encode_text

    out, report = meld_store
    store, module = FeatureStore(out), _reader(tiny_meld)
    assert store.dims == {"video": 3 * 16 * 16, "audio": 128, "text": 1} and store.token_ids == ("text",)
    assert report.written == 6 and report.no_audio == 1 and report.no_text == 0 and report.skipped == []
    assert store.index["source"]["text"]["vocabulary"] == list(module.vocabulary)
    assert store.index["source"]["options"]["audio"] == {"sample_rate": 16000, "n_fft": 2048, "hop_length": 160,
                                                         "n_mels": 128, "max_seconds": 0.5}
    assert "warnings" not in store.index["source"]  # no backbone, nothing randomly initialised
    index = {word: i for i, word in enumerate(module.vocabulary)}
    for i, clip in enumerate(module.clips):  # ids are positions in the reader's order
        track = read_audio(clip.path, max_seconds=0.5)
        audio = store.features(i, "audio")
        if clip.name == "dia0_utt1" and clip.split == "train":
            assert track is None and audio.shape == (0, 128)
        else:
            assert audio.shape == (8000 // 160 + 1, 128)
            assert np.allclose(audio, log_mel(track.waveform), atol=2e-2)  # float16 rows
        assert store.features(i, "text")[:, 0].astype(int).tolist() == encode_text(clip.text, index, 48).tolist()
    data = FeatureStoreDataModule(str(out), batch_size=8, max_steps=64)
    batch = next(iter(data.train_dataloader()))
    check_batch(batch, data.modalities, data.tasks)
    assert data.modalities == ("video", "audio", "text") and batch["text"].dtype == torch.long
    assert batch["video"].shape[2:] == (3, 16, 16) and batch["audio"].shape[2] == 128
    silent = [module.clips[i].name for i in batch["id"].tolist()].index("dia0_utt1")
    assert not batch["audio_mask"][silent].any() and batch["audio_mask"].any(1).sum() == 3
    two = FeatureStoreDataModule(str(out), batch_size=8, modalities=["video", "audio"])  # a two-modality variant
    assert set(next(iter(two.val_dataloader()))) >= {"video", "audio"} and "text" not in next(iter(two.val_dataloader()))


def test_audio_and_text_encoders_from_checkpoints_or_random_with_a_warning_and_views(tiny_meld, meld_store, tmp_path):
    from affectlab.data.media.audio import log_mel, read_audio
    from affectlab.data.media.video_clips import words
    from affectlab.data.store.encoders import MelEncoder
    from affectlab.nn.encoders.text import TextTransformerEncoder

    torch.manual_seed(5)
    module = _reader(tiny_meld)
    text_model = TextTransformerEncoder(vocab_size=len(module.vocabulary) + 3, dim=32, max_len=48).eval()
    checkpoint = tmp_path / "text.pt"
    torch.save({"state_dict": {f"encoders.text.{k}": v for k, v in text_model.state_dict().items()}}, checkpoint)
    out = tmp_path / "store"
    report = prepare_video("meld", str(tiny_meld), str(out), audio_encoder="test_resnet", text_encoder="affectlab",
                           text_encoder_checkpoint=str(checkpoint), vocab_size=len(module.vocabulary) + 3,
                           views=2, **FEW)
    store, plain = FeatureStore(out), FeatureStore(meld_store[0])
    source = store.index["source"]
    assert store.views == 2 and store.dims == {"video": 768, "audio": 96, "text": 32} and report.no_audio == 1
    assert source["audio_encoder"]["name"] == "test_resnet" and source["audio_encoder"]["checkpoint"] is None
    assert "randomly initialised" in source["audio_encoder"]["warning"] and len(source["warnings"]) == 1
    assert source["text_encoder"]["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert "warning" not in source["text_encoder"] and source["text_encoder"]["config"]["dim"] == 32
    audio_model = MelEncoder("test_resnet")  # seeded random init: the preparation's weights
    index = {word: i for i, word in enumerate(module.vocabulary)}
    for i, clip in enumerate(module.clips):
        view0 = store.features(i, "video", view=0)
        assert np.array_equal(view0, plain.features(i, "video"))  # view 0 is the clip as is
        assert view0.shape == store.features(i, "video", view=1).shape
        assert not np.array_equal(view0, store.features(i, "video", view=1))  # view 1 augmented
        track = read_audio(clip.path, max_seconds=0.5)
        if track is None:
            assert store.features(i, "audio", view=1).shape == (0, 96)
        else:
            expected = audio_model(log_mel(track.waveform))
            assert np.allclose(store.features(i, "audio", view=0), expected, atol=1e-2, rtol=1e-2)
        ids = torch.tensor([[index.get(w, 1) for w in words(clip.text)]])  # the reader's ids (test_meld.py)
        with torch.no_grad():
            hidden, _ = text_model.forward_features(ids)
        assert np.allclose(store.features(i, "text", view=0), hidden.mean(1).numpy(), atol=1e-2), i
    # The train split draws one view per load; val and test serve view 0.
    data = FeatureStoreDataModule(str(out), batch_size=8)
    train, val = data.dataset("train"), data.dataset("val")
    torch.manual_seed(0)
    seen = {int(np.array_equal(train[0]["video"].numpy(), store.features(int(train.index[0]), "video", view=1)))
            for _ in range(12)}
    assert seen == {0, 1}
    assert all(np.array_equal(val[0]["video"].numpy(), store.features(int(val.index[0]), "video")) for _ in range(4))


def test_backbone_checkpoints_are_local_adapted_or_refused_with_the_fix(tmp_path, tiny_meld):
    import timm

    from affectlab.data.store.encoders import MelEncoder, TextEncoder

    torch.manual_seed(2)
    image_model = timm.create_model("test_resnet", pretrained=False)  # an RGB image checkpoint
    path = tmp_path / "rgb.pt"
    torch.save(image_model.state_dict(), path)
    audio = MelEncoder("test_resnet", checkpoint=str(path))  # the first convolution summed over R, G, B
    first = next(k for k, v in image_model.state_dict().items() if v.ndim == 4)
    assert torch.equal(audio.model.state_dict()[first], image_model.state_dict()[first].sum(1, keepdim=True))
    assert audio.describe()["checkpoint"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "warning" not in audio.describe()
    with pytest.raises(ConfigError, match=r"--audio-encoder: 'resnet_9000' is not a timm model name"):
        MelEncoder("resnet_9000")
    with pytest.raises(ConfigError, match=r"--text-encoder-checkpoint: .*rgb.pt holds 0 TextTransformerEncoder"):
        TextEncoder("affectlab", checkpoint=str(path))
    random_text = TextEncoder("affectlab", vocab_size=50, max_len=16)
    assert "randomly initialised" in random_text.describe()["warning"] and random_text.dim == 64
    assert random_text(np.array([5, 9, 1])).shape == (1, 64) and random_text(np.zeros(0, np.int64)).shape == (0, 64)
    assert np.array_equal(random_text(np.array([5, 9])), TextEncoder("affectlab", vocab_size=50)(np.array([5, 9])))
    folder = tmp_path / "distilroberta"
    folder.mkdir()
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"needs the 'transformers' package, which is not installed here"):
            TextEncoder(str(folder))
    with pytest.raises(ConfigError, match=r"--text-encoder: 'nowhere' is neither 'affectlab' nor a local"):
        TextEncoder("nowhere")
    with pytest.raises(ConfigError, match=r"--audio-encoder-checkpoint needs --audio-encoder NAME"):
        prepare_video("meld", str(tiny_meld), str(tmp_path / "s"), audio_encoder_checkpoint=str(path))
    with pytest.raises(ConfigError, match=r"--text-encoder: caer has no text \(its modalities: video, audio\)"):
        prepare_video("caer", str(tmp_path), str(tmp_path / "s"), text_encoder="affectlab")
    with pytest.raises(ConfigError, match=r"--vocab-size 4096: token ids are stored as float16, exact up to 2048"):
        prepare_video("meld", str(tiny_meld), str(tmp_path / "s"), vocab_size=4096)
