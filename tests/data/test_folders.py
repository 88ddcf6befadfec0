"""Folder-per-class image data sets (RAF-DB, FER2013, ExpW, AffectNet, CAER-S), read from files that
AffectSynth's exporter writes in exactly their native layouts; `affectlab data export|check`; bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from conftest import CONFIGS, TEST_CONFIGS, affectlab, affectlab_inline, mlflow_client, printed_run_id

from affectlab.data.check import check_folder_dataset
from affectlab.data.contract import EMOTIONS
from affectlab.data.readers.folders import FOLDER_LAYOUTS, FolderDataModule
from affectlab.data.synth.export import export_folder_dataset
from affectlab.errors import DataError


@pytest.mark.parametrize("name", sorted(FOLDER_LAYOUTS))
def test_reader_gets_back_every_exported_image_with_its_emotion(synth, name, tmp_path):
    counts = export_folder_dataset(synth, name, tmp_path / name)
    assert sum(counts.values()) == len(synth)
    module = FolderDataModule(name, str(tmp_path / name), image_size=32, batch_size=8)
    module.setup()
    seen = 0
    for split in ("train", "val", "test"):
        files, labels, _ = module.splits[split]
        for path, label in zip(files, labels):
            clip = int(path.stem.split("_")[-1])  # the exporter names files after their clip
            assert EMOTIONS[label] == EMOTIONS[int(synth.emotion[clip])], (path, EMOTIONS[label])
        seen += len(files)
    assert seen == len(synth)
    assert module.splits["val"][0] and module.splits["test"][0]
    batch = next(iter(module.test_dataloader()))
    batch = module.on_after_batch_transfer(batch, 0)
    assert batch["video"].shape[1:] == (1, 3, 32, 32) and batch["video"].dtype == torch.float32
    assert batch["targets"]["emotion"].dtype == torch.long and (batch["subject"] == -1).all()
    assert module.class_counts().sum() == len(module.splits["train"][0])


def test_affectnet_contempt_is_left_out_and_counted(synth, tmp_path):
    root = tmp_path / "affectnet"
    export_folder_dataset(synth, "affectnet", root)
    contempt = root / "train_set" / "7"
    contempt.mkdir()
    next((root / "train_set" / "0").iterdir()).replace(contempt / "c.jpg")
    module = FolderDataModule("affectnet", str(root))
    with pytest.warns(UserWarning, match="left out 1 in folder '7'"):
        module.setup()


def test_unreadable_images_are_skipped_named_and_counted_or_raise(synth, tmp_path):
    root = tmp_path / "rafdb"
    export_folder_dataset(synth, "rafdb", root)
    broken = root / "test" / "1" / "broken.jpg"
    broken.parent.mkdir(exist_ok=True)
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    module = FolderDataModule("rafdb", str(root), image_size=16, batch_size=64)
    module.setup()
    with pytest.warns(UserWarning, match="skipped unreadable image .*broken.jpg"):
        batches = [module.on_after_batch_transfer(b, 0) for b in module.test_dataloader()]
    assert sum(len(b["id"]) for b in batches) == len(module.splits["test"][0]) - 1
    assert "skipped 1 unreadable image(s)" in module.unreadable.report()
    strict = FolderDataModule("rafdb", str(root), image_size=16, batch_size=64, corrupt="raise")
    with pytest.raises(DataError, match="broken.jpg: not a readable image"):
        list(strict.test_dataloader())


def test_fuzzed_files_never_crash_the_reader(synth, tmp_path):
    """Random bytes, empty files, truncated images, wrong extensions: each is skipped, none stops the epoch."""
    root = tmp_path / "fer2013"
    export_folder_dataset(synth, "fer2013", root)
    rng = np.random.default_rng(0)
    good = sorted((root / "train").rglob("*.png"))
    bad = 0
    for i in range(12):
        target = root / "train" / "happy" / f"fuzz_{i}.png"
        target.parent.mkdir(exist_ok=True)
        kind = i % 4
        if kind == 0:
            target.write_bytes(rng.bytes(int(rng.integers(0, 300))))
        elif kind == 1:
            target.write_bytes(b"")
        elif kind == 2:
            data = good[i].read_bytes()
            target.write_bytes(data[: len(data) // 2])  # truncated PNG
        else:
            target.write_text("emotion,pixels\n3,1 2 3\n")  # a CSV with an image extension
        bad += 1
    (root / "train" / "happy" / "notes.txt").write_text("not an image")  # ignored, not read
    module = FolderDataModule("fer2013", str(root), image_size=16, batch_size=16)
    module.setup()
    served = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for split in ("train", "val", "test"):
            loader = module.train_dataloader() if split == "train" else module.loader(split)
            for batch in loader:
                served += len(module.on_after_batch_transfer(batch, 0)["id"])
    total = sum(len(module.splits[s][0]) for s in ("train", "val", "test"))
    skipped = len(module.unreadable.paths)
    assert 1 <= skipped <= bad and served >= total - bad - 16  # drop_last may leave out one train batch


def test_wrong_root_and_missing_split_name_the_folder_and_layout(synth, tmp_path):
    with pytest.raises(DataError, match=r"root .*nowhere is not a folder; expected\n.*train/<1\|2\|3"):
        FolderDataModule("rafdb", str(tmp_path / "nowhere")).setup()
    root = tmp_path / "caer_s"
    export_folder_dataset(synth, "caer_s", root)
    for path in (root / "test").rglob("*"):
        if path.is_file():
            path.unlink()
    for folder in sorted((root / "test").iterdir()):
        folder.rmdir()
    (root / "test").rmdir()
    with pytest.raises(DataError, match=r"split folder .*caer_s/test is missing"):
        FolderDataModule("caer_s", str(root)).setup()


def test_check_reports_counts_unknown_folders_and_unreadable_files(synth, tmp_path):
    root = tmp_path / "rafdb"
    export_folder_dataset(synth, "rafdb", root)
    clean = check_folder_dataset("rafdb", root)
    assert not clean.errors and sum(map(sum, clean.counts.values())) == len(synth)
    (root / "train" / "8").mkdir()  # RAF-DB has labels 1-7 only
    (root / "test" / "4").mkdir(exist_ok=True)
    (root / "test" / "4" / "cut.jpg").write_bytes(b"\xff\xd8")
    report = check_folder_dataset("rafdb", root)
    assert any("train/8: not a class folder of rafdb" in e for e in report.errors)
    assert any("cut.jpg: unreadable" in e for e in report.errors)


def test_data_check_of_a_missing_root_names_the_file_expected(tmp_path):
    # `data export|check` of the folder layouts: tests/data/test_caer_s.py (CAER-S's authors' layout is one).
    missing = affectlab_inline("data", "check", "meld", "--root", str(tmp_path / "meld"), check=False)
    assert missing.returncode == 2 and "train_sent_emo.csv" in missing.stderr


def test_supervised_model_trains_on_a_folder_dataset_by_name(synth, tmp_path):
    export_folder_dataset(synth, "rafdb", tmp_path / "rafdb")
    store = tmp_path / "store"
    result = affectlab(
        "run", "--model", str(CONFIGS / "model/supervised.yaml"), "--config", str(TEST_CONFIGS / "tiny_supervised.yaml"),
        "--model.init_args.modalities", "[video]", "--data", "rafdb", "--data.init_args.root", str(tmp_path / "rafdb"),
        "--data.init_args.image_size", "32", "--data.init_args.batch_size", "8", "--trainer.max_epochs", "1",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--store", str(store),
    )
    metrics = mlflow_client(store).get_run(printed_run_id(result.stdout)).data.metrics
    expected = FolderDataModule("rafdb", str(tmp_path / "rafdb"))
    expected.setup()
    assert "test/acc" in metrics and metrics["test/num_samples"] == len(expected.splits["test"][0])
