"""CAER-S (data/readers/caer_s.py), read from files AffectSynth's exporter writes in the authors' layout
(train|test/<Emotion>/<nnnn>.png): counts per split and class as written, the label folders, wrong roots named
with their fix, fuzzed files and unknown class folders, a deterministic export and the CLI."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DATA, affectlab_inline

from affectlab.data.check import check_folder_dataset
from affectlab.data.contract import EMOTIONS, check_batch
from affectlab.data.readers.caer_s import (
    LABEL_CODES,
    CaerSDataModule,
    check_caer_s_dataset,
)
from affectlab.data.readers.folders import FOLDER_LAYOUTS
from affectlab.data.synth.export import _identity_splits
from affectlab.data.synth.export_caer_s import export_caer_s
from affectlab.errors import DataError


@pytest.fixture(scope="module")
def caer_s_root(synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("caer_s") / "CAER-S"
    export_caer_s(synth, root)
    return root


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "CAER-S"))


def test_counts_per_split_and_class_are_what_was_written(synth, caer_s_root):
    split_of = _identity_splits(synth, {"test": 0.2})
    expected = Counter((split_of[int(synth.identity[c])], int(synth.emotion[c])) for c in range(len(synth)))
    report = check_caer_s_dataset("caer_s", caer_s_root)
    assert not report.errors and not report.warnings
    for split in ("train", "test"):
        assert report.counts[split] == [expected[split, k] for k in range(len(EMOTIONS))], split
    for (split, label), count in expected.items():  # numbered per split and class from 0001, as the authors do
        folder = next(f for f, e in LABEL_CODES.items() if e == EMOTIONS[label])
        names = sorted(p.name for p in (caer_s_root / split / folder).iterdir())
        assert names == [f"{n:04d}.png" for n in range(1, count + 1)]
    module = CaerSDataModule(str(caer_s_root), image_size=16, batch_size=8)
    module.setup()
    assert sum(len(module.splits[s][0]) for s in ("train", "val", "test")) == len(synth)
    assert len(module.splits["test"][0]) == sum(report.counts["test"])
    check_batch(module.on_after_batch_transfer(next(iter(module.val_dataloader())), 0), module.modalities, module.tasks)


def test_label_folders_are_caer_s_own_and_the_folder_reader_agrees():
    assert set(LABEL_CODES) == {"Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"}
    assert dict(FOLDER_LAYOUTS["caer_s"].classes) == LABEL_CODES and set(LABEL_CODES.values()) == set(EMOTIONS)


def test_wrong_roots_say_what_was_found_and_how_to_fix_it(caer_s_root, tmp_path):
    with pytest.raises(DataError, match=r"root .*nowhere is not a folder; expected CAER-S .*\n.*train/<Anger\|"):
        CaerSDataModule(str(tmp_path / "nowhere")).setup()
    parent = tmp_path / "download"
    shutil.copytree(caer_s_root, parent / "CAER-S")
    with pytest.raises(DataError, match=r"no train/, test/ folder at .*download \(found: CAER-S/\)(.*\n)*.*CAER-S holds a "
                                        r"train/ folder: point --data.init_args.root at .*download/CAER-S"):
        CaerSDataModule(str(parent)).setup()
    cased = tmp_path / "cased"
    shutil.copytree(caer_s_root, cased)
    (cased / "test").rename(cased / "Test")
    with pytest.raises(DataError, match=r"no test/ folder(.*\n)*.*in lower case; rename Test/"):
        check_caer_s_dataset("caer_s", cased)
    flat = tmp_path / "flat"
    shutil.copytree(caer_s_root / "train", flat)
    with pytest.raises(DataError, match=r"class folders lie directly under the root"):
        CaerSDataModule(str(flat)).setup()


def test_fuzzed_files_and_unknown_folders_are_skipped_counted_and_reported(caer_s_root, tmp_path):
    root = _copy(caer_s_root, tmp_path)
    rng = np.random.default_rng(0)
    good = sorted((root / "train").rglob("*.png"))
    broken = []
    for i in range(6):
        target = root / "train" / "Happy" / f"9{i:03d}.png"
        kind = i % 3
        if kind == 0:
            target.write_bytes(rng.bytes(int(rng.integers(1, 200))))
        elif kind == 1:
            target.write_bytes(b"")
        else:
            data = good[i].read_bytes()
            target.write_bytes(data[: len(data) // 3])  # truncated PNG
        broken.append(target)
    (root / "train" / "Angry").mkdir()  # a re-upload's name, not CAER-S's
    (root / "train" / "Angry" / "0001.png").write_bytes(good[0].read_bytes())
    (root / "train" / "Happy" / "notes.txt").write_text("not an image")
    module = CaerSDataModule(str(root), image_size=16, batch_size=64, val_fraction=0.0)
    with pytest.warns(UserWarning, match=r"no class folder of caer_s.*train/Angry; left out"):
        module.setup()
    assert module.skips.counts == {"unknown_class_folder": 1}  # the folder's one image, counted
    served = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for split in ("train", "val", "test"):
            for batch in module.loader(split) if split != "train" else module.train_dataloader():
                served += len(module.on_after_batch_transfer(batch, 0)["id"])
    listed = sum(len(module.splits[s][0]) for s in ("train", "val", "test"))
    assert listed == len(good) + len(broken) + len(list((root / "test").rglob("*.png")))  # Angry/ not listed
    assert 1 <= len(module.unreadable.paths) <= len(broken)  # drop_last may leave some train files unread
    assert served >= listed - len(broken) - 64 and all(Path(p) in broken for p in module.unreadable.paths)
    report = check_caer_s_dataset("caer_s", root)
    assert sum(1 for e in report.errors if "unreadable" in e) == len(broken)
    assert any("train/Angry: not a class folder of caer_s" in e for e in report.errors)
    assert any("notes.txt: not an image file" in w for w in report.warnings)
    assert report.counts == check_folder_dataset("caer_s", root, decode=False).counts


def test_export_is_byte_for_byte_deterministic(synth, caer_s_root, tmp_path):
    again = tmp_path / "again"
    assert sum(export_caer_s(synth, again).values()) == len(synth)
    files = sorted(p.relative_to(caer_s_root) for p in caer_s_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for path in files:
        assert (caer_s_root / path).read_bytes() == (again / path).read_bytes(), path


def test_data_export_and_check_commands(tiny_data, tmp_path):
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items() if k != "batch_size"]
    root = tmp_path / "CAER-S"
    result = affectlab_inline("data", "export", "caer_s", "--out", str(root), "--cache", str(tiny_data), *sizes)
    assert f"wrote caer_s to {root}: train 40, test 8" in result.stdout
    (root / "test" / "Sad" / "0099.png").write_bytes(b"junk")
    bad = affectlab_inline("data", "check", "caer_s", "--root", str(root), check=False)
    assert bad.returncode == 1 and "0099.png: unreadable" in bad.stdout and "images per split and emotion" in bad.stdout
