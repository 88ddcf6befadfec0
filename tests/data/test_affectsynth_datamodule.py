"""AffectSynthDataModule serves the batch contract, with identity-disjoint splits and resume-proof order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.data.samplers import EpochSeededRandomSampler
from affectlab.data.splits import check_disjoint, identity_split
from affectlab.errors import ConfigError, DataError
from conftest import TINY_DATA


def test_batch_contract(datamodule):
    batch = next(iter(datamodule.train_dataloader()))
    B, T, S = 8, TINY_DATA["num_frames"], TINY_DATA["image_size"]
    assert batch["video"].shape == (B, T, 3, S, S) and batch["video"].dtype == torch.float32
    assert 0.0 <= batch["video"].min() and batch["video"].max() <= 1.0
    assert batch["video_mask"].shape == (B, T) and batch["video_mask"].all()
    assert batch["audio"].ndim == 2 and batch["audio"].abs().max() <= 1.0 and batch["audio_mask"].shape == batch["audio"].shape
    assert batch["text"].dtype == torch.long and batch["text_mask"].shape == batch["text"].shape
    assert (batch["text"][~batch["text_mask"]] == 0).all()  # padding is 0 exactly where the mask is False
    targets = batch["targets"]
    assert targets["emotion"].dtype == torch.long and targets["emotion"].max() < 7
    assert targets["au"].shape == (B, 12) and set(targets["au"].unique().tolist()) <= {0.0, 1.0}
    assert targets["au_intensity"].max() <= 5 and targets["sentiment"].abs().max() <= 3
    assert all(mask.all() for mask in batch["target_mask"].values())
    assert {"domain", "subject", "id"} <= set(batch)


def test_splits_share_no_identity(datamodule):
    subjects = np.asarray(datamodule.arrays.identity)
    check_disjoint(datamodule.splits, subjects)
    all_ids = np.concatenate(list(datamodule.splits.values()))
    assert sorted(all_ids.tolist()) == list(range(TINY_DATA["num_clips"]))


def test_a_leaking_split_is_refused():
    subjects = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(DataError, match="identity 1 appears in both"):
        check_disjoint({"train": np.array([0, 1, 2]), "test": np.array([3, 4, 5])}, subjects)
    with pytest.raises(DataError, match="at least 3 identities"):
        identity_split(np.array([0, 0, 1]))


def test_epoch_order_depends_only_on_seed_and_epoch():
    data = list(range(20))
    first, second = EpochSeededRandomSampler(data, seed=5), EpochSeededRandomSampler(data, seed=5)
    first.set_epoch(3)
    second.set_epoch(3)
    assert list(first) == list(second)
    second.set_epoch(4)
    assert list(first) != list(second) and sorted(second) == data


def test_modality_subset_and_bad_options(tiny_data):
    data = AffectSynthDataModule(root=str(tiny_data), modalities=["text"], **TINY_DATA)
    data.setup()
    batch = next(iter(data.val_dataloader()))
    assert "text" in batch and "video" not in batch and "audio" not in batch
    with pytest.raises(ConfigError, match="data.init_args.modalities"):
        AffectSynthDataModule(root=str(tiny_data), modalities=["smell"])
    with pytest.raises(ConfigError, match="synth_options.face_nois"):
        AffectSynthDataModule(root=str(tiny_data), synth_options={"face_nois": 0.1})


def test_tampered_cache_is_regenerated_not_read(tmp_path, caplog):
    options = dict(TINY_DATA, num_clips=12, num_identities=3)
    first = AffectSynthDataModule(root=str(tmp_path), **options)
    first.prepare_data()
    frames = first.path / "frames.npy"
    original = frames.read_bytes()
    tampered = bytearray(original)
    tampered[-1] ^= 0xFF  # one pixel of the last clip
    frames.write_bytes(bytes(tampered))
    second = AffectSynthDataModule(root=str(tmp_path), **options)
    with caplog.at_level("WARNING"):
        second.prepare_data()
    assert "generating it" in caplog.text
    assert frames.read_bytes() == original  # regenerated, byte for byte


def test_identity_batches():
    from affectlab.data.samplers import IdentityBatchSampler

    subjects = np.repeat(np.arange(6), 5)  # 6 identities x 5 clips
    sampler = IdentityBatchSampler(subjects, batch_size=4, clips_per_identity=2, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 6  # 6 x floor(5 / 2) groups of 2, two groups per batch
    for batch in batches:
        ids = subjects[batch]
        assert len(batch) == 4 and all((ids == s).sum() == 2 for s in np.unique(ids))
    flat = np.concatenate(batches)
    assert len(set(flat.tolist())) == len(flat)  # no clip twice in an epoch
    again = IdentityBatchSampler(subjects, batch_size=4, clips_per_identity=2, seed=3)
    assert list(again) == batches  # a pure function of (seed, epoch)
    again.set_epoch(1)
    assert list(again) != batches
    with pytest.raises(ValueError, match="multiple"):
        IdentityBatchSampler(subjects, batch_size=5, clips_per_identity=2)


def test_identity_batches_from_the_data_module(tiny_data):
    data = AffectSynthDataModule(root=str(tiny_data), clips_per_identity=4, **TINY_DATA)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    counts = np.unique(batch["subject"].numpy(), return_counts=True)[1]
    assert counts.tolist() == [4, 4]
    with pytest.raises(ConfigError, match="clips_per_identity"):
        AffectSynthDataModule(root=str(tiny_data), clips_per_identity=3, **TINY_DATA)



def test_frame_samples_carry_their_own_frame_and_au_labels(tiny_data):
    from affectlab.data.contract import AU_OCCURRENCE_THRESHOLD

    options = {k: v for k, v in TINY_DATA.items()}
    frames = AffectSynthDataModule(root=str(tiny_data), **options, modalities=["video"], sample_unit="frame")
    clips = AffectSynthDataModule(root=str(tiny_data), **options, modalities=["video"])
    frames.setup(), clips.setup()
    T = TINY_DATA["num_frames"]
    train = frames.dataset("train")
    assert len(train) == T * len(clips.dataset("train"))
    clip = int(train.indices[1])
    sample = train[T + 2]  # frame 2 of the second train clip
    assert sample["video"].shape == (1, 3, TINY_DATA["image_size"], TINY_DATA["image_size"])
    expected = torch.from_numpy(np.asarray(frames.arrays.frames[clip, 2])).permute(2, 0, 1).float() / 255
    assert torch.equal(sample["video"][0], expected)
    intensity = torch.from_numpy(np.asarray(frames.arrays.au_intensity[clip, 2]))
    assert torch.equal(sample["targets"]["au_intensity"], intensity)
    assert torch.equal(sample["targets"]["au"], (intensity >= AU_OCCURRENCE_THRESHOLD).float())
    counts = frames.class_counts("au")  # per frame, as the samples are
    assert counts.sum(dim=1).tolist() == [len(train)] * 12
    with pytest.raises(ConfigError, match="sample_unit: frame serves single frames"):
        AffectSynthDataModule(root=str(tiny_data), **options, sample_unit="frame")
    with pytest.raises(ConfigError, match="sample_unit: 'frames' is not one of"):
        AffectSynthDataModule(root=str(tiny_data), **options, modalities=["video"], sample_unit="frames")
