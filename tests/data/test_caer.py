"""CAER (data/caer.py) read from files written in its exact layout (export_caer, AVI clips): official splits,
emotion folders mapped onto the canonical order, bad layouts named; the export and check commands."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import affectlab

from affectlab.data.readers.caer import CAER_CLASSES, CaerDataModule
from affectlab.data.check import check_video_dataset
from affectlab.data.contract import EMOTIONS
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_caer
from affectlab.errors import DataError

SMALL = SynthConfig(num_clips=14, num_identities=7, num_frames=8, image_size=64, styles=("shaded",))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return ensure(tmp_path_factory.mktemp("synth") / "cache", SMALL, progress=False)


@pytest.fixture(scope="module")
def caer_root(synth, tmp_path_factory):
    root = tmp_path_factory.mktemp("caer") / "CAER"
    assert export_caer(synth, root) == {"train": 10, "val": 2, "test": 2}
    return root


def test_official_splits_and_emotion_folders_in_canonical_order(caer_root, synth):
    module = CaerDataModule(str(caer_root), num_frames=3, image_size=24, batch_size=4)
    module.setup()
    assert {split: len(index) for split, index in module.splits.items()} == {"train": 10, "val": 2, "test": 2}
    folders = {"train": "train", "val": "validation", "test": "test"}
    for clip in module.clips:
        assert clip.path.suffix == ".avi" and clip.path.parents[1].name == folders[clip.split]
        assert EMOTIONS[clip.targets["emotion"]] == CAER_CLASSES[clip.path.parent.name]
    train = np.asarray(synth.identity) < 5  # the export gives the last identity to test, the one before to val
    assert module.class_counts("emotion").tolist() == np.bincount(synth.emotion[train], minlength=7).tolist()
    batch = next(iter(module.val_dataloader()))
    assert batch["video"].shape == (2, 3, 3, 24, 24) and batch["video_mask"].all()
    assert batch["subject"].tolist() == [-1, -1] and set(batch["targets"]) == {"emotion"}


def test_bad_layouts_name_the_folder_and_what_was_expected(caer_root, tmp_path):
    with pytest.raises(DataError, match=r"(?s)root .*absent is not a folder.*validation/<Anger\|Disgust"):
        CaerDataModule(str(tmp_path / "absent")).setup()
    copy = shutil.copytree(caer_root, tmp_path / "CAER")
    (copy / "train" / "Contempt").mkdir()
    (copy / "train" / "Happy" / "notes.txt").write_text("not a clip")
    with pytest.raises(DataError, match=r"train/Contempt is not an emotion folder of CAER \(expected one of Anger, "):
        CaerDataModule(str(copy)).setup()
    report = check_video_dataset("caer", copy, decode=False)
    assert any("Contempt" in e for e in report.errors) and any("notes.txt" in w for w in report.warnings)
    assert report.identities.startswith("not available")
    shutil.rmtree(copy / "validation")
    with pytest.raises(DataError, match=r"(?s)split folder .*validation is missing; expected"):
        CaerDataModule(str(copy)).setup()


def test_export_and_check_commands(tmp_path):
    out, cache = tmp_path / "caer", tmp_path / "cache"
    sizes = ["--num-clips", "7", "--num-identities", "7", "--num-frames", "4", "--image-size", "48"]
    result = affectlab("data", "export", "caer", "--out", str(out), "--cache", str(cache), *sizes)
    assert f"wrote caer to {out}: train 5, val 1, test 1" in result.stdout
    assert len(list(out.glob("*/*/*.avi"))) == 7
    (sorted(out.glob("train/*/*.avi"))[0]).write_bytes(b"RIFF\x00\x00garbage" * 30)
    bad = affectlab("data", "check", "caer", "--root", str(out), check=False)
    assert bad.returncode == 1 and "unreadable" in bad.stdout and "clips per split and emotion" in bad.stdout
    assert "modality video: 6 clips have it, 1 lack it" in bad.stdout  # the unreadable clip
    assert "modality audio: 6 clips have it, 1 lack it" in bad.stdout and "modality text" not in bad.stdout


def test_audio_is_the_exported_track_and_modalities_selects_it_alone(caer_root, synth):
    from affectlab.data.contract import check_batch
    from affectlab.data.synth.export import _identity_splits

    module = CaerDataModule(str(caer_root), num_frames=2, image_size=16, batch_size=16)
    module.setup()
    assert module.modalities == ("video", "audio")
    batch = module.on_after_batch_transfer(next(iter(module.loader("train"))), 0)
    check_batch(batch, module.modalities, module.tasks)
    # export_caer numbers each folder's clips in AffectSynth's order: the n-th clip of a split and emotion
    split_of = _identity_splits(synth, {"val": 0.1, "test": 0.2})
    for row, i in enumerate(batch["id"].tolist()):
        clip = module.clips[i]
        same = [c for c in range(len(synth)) if split_of[int(synth.identity[c])] == "train"
                and EMOTIONS[int(synth.emotion[c])] == CAER_CLASSES[clip.path.parent.name]]
        exported = np.asarray(synth.audio[same[int(clip.path.stem) - 1]], np.float64) / 32768.0  # PCM, 8 kHz
        served = batch["audio"][row][batch["audio_mask"][row]].numpy()
        reference = np.fft.irfft(np.fft.rfft(exported), n=2 * len(exported)) * 2  # band-limited, 16 kHz
        assert len(served) == 16000 and np.corrcoef(served, reference)[0, 1] > 0.99  # FFmpeg's filter is no ideal one
        # At the exported samples' own instants the resampled track is the exported track, sample for sample.
        assert np.abs(served[::2] - exported).max() < 1e-6
    alone = CaerDataModule(str(caer_root), batch_size=4, modalities=["audio"])
    batch = next(iter(alone.val_dataloader()))
    check_batch(batch, ("audio",), ("emotion",))
    assert "video" not in batch and batch["audio"].shape == (2, 16000)
    report = check_video_dataset("caer", caer_root)
    assert report.modalities == {"video": [14, 0], "audio": [14, 0]} and report.errors == []
