"""VoxCeleb2 (data/voxceleb2.py) read from files written in its exact layout (export_voxceleb2): dev/test by
speaker, val carved out of dev by whole speakers, a speaker in both official sets refused; SimCLR pretrains on
it; `data check` exits 1 on overlap."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import affectlab_inline

from affectlab.data.check import check_video_dataset
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_voxceleb2
from affectlab.data.readers.voxceleb2 import VoxCeleb2DataModule
from affectlab.errors import ConfigError, DataError

SMALL = SynthConfig(num_clips=14, num_identities=7, num_frames=8, image_size=64, styles=("shaded",))


@pytest.fixture(scope="module")
def vox_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vox")
    arrays = ensure(root / "synth", SMALL, progress=False)
    assert export_voxceleb2(arrays, root / "VoxCeleb2") == {"dev": 12, "test": 2}
    return root / "VoxCeleb2"


def test_speakers_split_dev_test_and_val_by_whole_speakers(vox_root):
    module = VoxCeleb2DataModule(str(vox_root), val_fraction=0.2, num_frames=4, image_size=24, batch_size=4)
    module.setup()
    speakers = {split: {module.clips[i].subject for i in index} for split, index in module.splits.items()}
    assert speakers["test"] == {6} and len(speakers["val"]) == 1 and len(speakers["train"]) == 5
    assert not (speakers["train"] & speakers["val"]) and not (speakers["val"] & speakers["test"])
    for clip in module.clips:  # subject = the speaker id's number; dev clips train or validate, test clips test
        assert clip.path.parts[-3] == f"id{clip.subject:05d}"
        assert clip.path.parts[-5] == ("test" if clip.split == "test" else "dev")
    assert module.tasks == () and module.class_names == {}
    batch = next(iter(module.train_dataloader()))
    assert batch["video"].shape == (4, 4, 3, 24, 24) and batch["targets"] == {} and batch["subject"].min() >= 0
    again = VoxCeleb2DataModule(str(vox_root), val_fraction=0.2)
    again.setup()
    assert [c.split for c in again.clips] == [c.split for c in module.clips]  # seeded: the same speakers
    none = VoxCeleb2DataModule(str(vox_root), val_fraction=0.0)
    none.setup()
    assert len(none.splits["val"]) == 0 and len(none.splits["train"]) == 12
    with pytest.raises(ConfigError, match="val_fraction"):
        VoxCeleb2DataModule(str(vox_root), val_fraction=1.0)


def test_a_speaker_in_dev_and_test_is_refused_and_checked(vox_root, tmp_path):
    copy = shutil.copytree(vox_root, tmp_path / "VoxCeleb2")
    assert check_video_dataset("voxceleb2", copy, decode=False).errors == []
    speaker = sorted((copy / "dev" / "mp4").iterdir())[0]
    shutil.copytree(speaker, copy / "test" / "mp4" / speaker.name)
    with pytest.raises(DataError, match=rf"speaker {speaker.name} has clips in both .*dev/mp4 and .*test/mp4; "
                                        "VoxCeleb2's dev and test sets are speaker-disjoint"):
        VoxCeleb2DataModule(str(copy)).setup()
    result = affectlab_inline("data", "check", "voxceleb2", "--root", str(copy), "--quick", check=False)
    assert result.returncode == 1 and f"speaker {speaker.name} has clips in both" in result.stdout
    assert "OVERLAP" in result.stdout


def test_bad_roots_name_what_was_expected(vox_root, tmp_path):
    with pytest.raises(DataError, match=r"(?s)root .*nothing is not a folder.*<dev\|test>/mp4/<speaker id>/<video id>/<clip>\.mp4"):
        VoxCeleb2DataModule(str(tmp_path / "nothing")).setup()
    copy = shutil.copytree(vox_root, tmp_path / "VoxCeleb2")
    shutil.rmtree(copy / "test")  # the test set is optional: pretraining needs dev only
    module = VoxCeleb2DataModule(str(copy))
    module.setup()
    assert len(module.splits["test"]) == 0
    (copy / "dev" / "mp4" / "notes").mkdir()
    assert any("notes" in p for p in module.scan().ignored)
    shutil.rmtree(copy / "dev")
    with pytest.raises(DataError, match=r"(?s)dev/mp4 is missing; expected"):
        VoxCeleb2DataModule(str(copy)).setup()


def test_simclr_pretrains_on_voxceleb2_clips(vox_root):
    from lightning.pytorch import Trainer

    from affectlab.methods import SimCLR
    from affectlab.nn.encoders import FrameEncoder

    torch.manual_seed(0)
    data = VoxCeleb2DataModule(str(vox_root), val_fraction=0.2, num_frames=2, image_size=32, batch_size=4)
    model = SimCLR(FrameEncoder("test_vit", {"img_size": 32}), representation_dim=16, projection_dim=8)
    trainer = Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=data)
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
