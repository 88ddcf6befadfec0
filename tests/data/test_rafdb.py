"""RAF-DB's basic set (data/readers/rafdb.py) read from files AffectSynth's exporter writes in exactly the authors'
layout: the list file's labels and prefixes, aligned and original images, root at basic/ itself, bad lines and
missing images counted or raised by file and line (also fuzzed), unreadable images, the community folder layout
as a fallback, the error for a wrong layout, `affectlab data export|check rafdb`."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_DATA
from PIL import Image

from affectlab.cli.main import main
from affectlab.data.contract import EMOTIONS, check_batch
from affectlab.data.readers.rafdb import (
    LABEL_CODES,
    LIST_FILE,
    RafdbDataModule,
    check_rafdb_dataset,
    read_list,
)
from affectlab.data.synth.export import export_folder_dataset
from affectlab.data.synth.export_rafdb import ALIGNED_SIZE, export_rafdb, rafdb_names
from affectlab.errors import ConfigError, DataError

SIZE = TINY_DATA["image_size"]


@pytest.fixture(scope="module")
def raf_root(synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raf") / "RAF-DB"
    export_rafdb(synth, root)
    return root


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "RAF-DB"))


def _clip_of(synth) -> dict[str, int]:
    return {name: clip for clip, name in enumerate(rafdb_names(synth))}


def _listed(root: Path) -> list[str]:
    return (root / "basic" / LIST_FILE).read_text().splitlines()


def test_reader_gets_back_every_face_with_its_emotion_and_split(synth, raf_root):
    module = RafdbDataModule(str(raf_root), image_size=SIZE, batch_size=8)
    module.setup()
    assert module.read_as == "authors" and not module.skipped_lines
    clip_of = _clip_of(synth)
    clips = {split: [clip_of[p.name.replace("_aligned", "")] for p in module.splits[split][0]]
             for split in ("train", "val", "test")}
    assert sorted(c for split in clips.values() for c in split) == list(range(len(synth)))  # every face once
    for split, numbers in clips.items():
        assert [EMOTIONS[k] for k in module.splits[split][1]] == [EMOTIONS[int(synth.emotion[c])] for c in numbers]
        prefix = "test_" if split == "test" else "train_"
        assert all(p.name.startswith(prefix) and p.parent.name == "aligned" for p in module.splits[split][0])
    assert not {int(synth.identity[c]) for c in clips["test"]} & {int(synth.identity[c]) for c in clips["train"]}
    train_labels = np.concatenate([module.splits[s][1] for s in ("train", "val")])
    for label in np.unique(train_labels):  # val carved out of train per emotion
        if (train_labels == label).sum() >= 2:
            assert label in module.splits["val"][1] and label in module.splits["train"][1]
    ids = np.concatenate([module.splits[s][2] for s in ("train", "val", "test")])
    assert sorted(ids.tolist()) == list(range(len(synth)))
    again = RafdbDataModule(str(raf_root), split_seed=0)
    again.setup()
    assert [p.name for p in again.splits["val"][0]] == [p.name for p in module.splits["val"][0]]  # seeded
    with Image.open(module.splits["test"][0][0]) as image:
        assert image.size == (ALIGNED_SIZE, ALIGNED_SIZE)
    item = module.dataset("test")[0]
    clip = clips["test"][0]
    apex = np.asarray(synth.frames[clip, int(np.asarray(synth.au_intensity[clip]).sum(axis=1).argmax())])
    expected = torch.from_numpy(np.asarray(Image.fromarray(apex).resize((SIZE, SIZE), Image.BILINEAR)).copy())
    assert (item["video"][0] - expected.permute(2, 0, 1) / 255).abs().mean() < 0.03  # the face, but for JPEG
    batch = module.on_after_batch_transfer(next(iter(module.train_dataloader())), 0)
    check_batch(batch, module.modalities, module.tasks)
    assert batch["video"].shape[1:] == (1, 3, SIZE, SIZE) and (batch["subject"] == -1).all()
    assert module.class_counts().sum() == len(module.splits["train"][0])


def test_labels_are_raf_dbs_and_the_list_file_is_spelled_as_distributed(tmp_path):
    names = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]  # RAF-DB's 1-7
    canonical = {"happiness": "happy", "sadness": "sad"}
    assert {k + 1: canonical.get(n, n) for k, n in enumerate(names)} == LABEL_CODES
    assert LIST_FILE == "EmoLabel/list_patition_label.txt"  # sic
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"train_{k:05d}.jpg {k}\n" for k in range(1, 8)) + "\n  test_0001.jpg   7 \r\n")
    found = read_list(listing)
    assert [EMOTIONS[k] for k in found.labels] == [*[LABEL_CODES[k] for k in range(1, 8)], "neutral"]
    assert found.splits == ["train"] * 7 + ["test"] and not found.skipped and found.lines[-1] == f"{listing}:9"


def test_original_images_and_a_root_at_basic_itself(synth, raf_root):
    original = RafdbDataModule(str(raf_root), images="original", image_size=SIZE)
    original.setup()
    assert all(p.parent.name == "original" for s in original.splits.values() for p in s[0])
    assert sum(len(s[0]) for s in original.splits.values()) == len(synth)
    with Image.open(original.splits["test"][0][0]) as image:
        assert image.width > synth.frames.shape[2]  # a scene around the face
    inside = RafdbDataModule(str(raf_root / "basic"), image_size=SIZE)
    inside.setup()
    assert [p.name for p in inside.splits["test"][0]] == [
        p.name for p in RafdbDataModule(str(raf_root)).dataset("test").files]
    with pytest.raises(ConfigError, match=r"data.init_args.images: 'cropped' is not one of \['aligned', 'original'\]"):
        RafdbDataModule(str(raf_root), images="cropped")


def test_a_wrong_image_folder_names_the_option(raf_root, tmp_path):
    root = _copy(raf_root, tmp_path)
    shutil.rmtree(root / "basic" / "Image" / "aligned")
    with pytest.raises(DataError, match=r"none of the first 20 images .* lists exists \(the first: .*list_patition_label"
                                        r".txt:1 names .*test_0001_aligned.jpg\); .*Image/original holds them: set "
                                        r"data.init_args.images original"):
        RafdbDataModule(str(root)).setup()
    (root / "EmoLabel").mkdir()
    shutil.copy(root / "basic" / LIST_FILE, root / LIST_FILE)
    with pytest.raises(DataError, match=r"holds both .*basic/EmoLabel.* and .*EmoLabel"):
        RafdbDataModule(str(root)).setup()


@pytest.mark.parametrize("line, message", [
    ("train_09999.jpg", r"1 field\(s\)"),
    ("train_09999.jpg 3 extra", r"3 field\(s\)"),
    ("train_09999.jpg 8", r"label '8' is not one of RAF-DB's basic labels 1-7"),
    ("train_09999.jpg 0", r"label '0'"),
    ("train_09999.jpg four", r"label 'four'"),
    ("val_0001.jpg 4", r"'val_0001.jpg' starts with neither train_ nor test_"),
    ("train_00001.jpg 4", r"'train_00001.jpg' is listed twice \(first at .*list_patition_label.txt:\d+\)"),
    ("train_09999.jpg 4", r"its image .*train_09999_aligned.jpg is missing"),
])
def test_a_bad_line_or_missing_image_is_a_counted_skip_or_an_error_naming_its_line(synth, raf_root, tmp_path, line,
                                                                                     message):
    root = _copy(raf_root, tmp_path)
    lines = _listed(root)
    lines.insert(len(lines), line)  # the last line, after train_00001's
    (root / "basic" / LIST_FILE).write_text("\n".join(lines) + "\n")
    number = len(lines)
    module = RafdbDataModule(str(root), image_size=SIZE)
    with pytest.warns(UserWarning, match=rf"skipped 1 listed face\(s\): .*list_patition_label.txt:{number}: {message}"):
        module.setup()
    assert sum(len(s[0]) for s in module.splits.values()) == len(synth)
    with pytest.raises(DataError, match=rf"list_patition_label.txt:{number}: {message}.*corrupt: skip"):
        RafdbDataModule(str(root), corrupt="raise").setup()
    report = check_rafdb_dataset("rafdb", root)
    assert sum(map(sum, report.counts.values())) == len(synth)
    assert any(f"list_patition_label.txt:{number}:" in error for error in report.errors)


def test_fuzzed_list_and_images_are_each_skipped_and_counted_never_a_crash(synth, raf_root, tmp_path):
    """Seeded damage: lines cut, labels replaced with noise, images deleted, emptied, truncated or replaced with
    random bytes. Bad lines and missing images are skipped at setup, undecodable images when met; every skip is
    counted once and every intact face is served."""
    root = _copy(raf_root, tmp_path)
    lines = _listed(root)
    rng = np.random.default_rng(0)
    damaged = sorted(rng.choice(len(lines), size=16, replace=False).tolist())
    bad_lines, unreadable = [], []
    for k, index in enumerate(damaged):
        name = lines[index].split()[0]
        image = root / "basic" / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg")
        kind = k % 8
        if kind == 0:
            lines[index] = name  # no label
        elif kind == 1:
            lines[index] = f"{name} {rng.integers(8, 100)}"
        elif kind == 2:
            lines[index] = f"{name} \xe9"  # not a number
        elif kind == 3:
            image.unlink()
        elif kind == 4:
            image.write_bytes(b"")
        elif kind == 5:
            image.write_bytes(image.read_bytes()[:40])  # a truncated JPEG
        elif kind == 6:
            image.write_bytes(rng.bytes(200))
        else:
            image.write_text("train_00001.jpg 5\n")  # text with an image's name
        (bad_lines if kind <= 3 else unreadable).append(index + 1)
    (root / "basic" / LIST_FILE).write_text("\n".join(lines) + "\n")
    module = RafdbDataModule(str(root), image_size=SIZE, batch_size=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.setup()
        served = sum(len(module.on_after_batch_transfer(b, 0)["id"]) for s in ("val", "test", "train")
                     for b in module.loader(s))
    assert [int(s.split(":")[1]) for s in module.skipped_lines] == bad_lines  # in file order
    listed = sum(len(v[0]) for v in module.splits.values())
    assert listed == len(synth) - len(bad_lines)
    assert len(module.unreadable.paths) == len(unreadable) and served == listed - len(unreadable)
    assert any(f"skipped {len(bad_lines)} listed face(s)" in str(w.message) for w in caught)
    report = check_rafdb_dataset("rafdb", root)
    assert len([e for e in report.errors if "unreadable" in e and "/aligned/" in e]) == len(unreadable)
    assert len([e for e in report.errors if e.startswith("skipped")]) == len(bad_lines)


def test_the_community_folder_layout_is_read_and_a_wrong_layout_named(synth, raf_root, tmp_path):
    folders = tmp_path / "folders"
    export_folder_dataset(synth, "rafdb", folders)
    module = RafdbDataModule(str(folders), image_size=SIZE)
    module.setup()
    assert module.read_as == "folders" and sum(len(v[0]) for v in module.splits.values()) == len(synth)
    assert module.dataset("val")[0]["video"].shape == (1, 3, SIZE, SIZE)
    with pytest.raises(DataError, match=r"does not hold the authors' layout; it holds test/, train/; expected:\n"
                                        r".*basic/EmoLabel/list_patition_label.txt .*\n.*\n.*\nIt holds the community "
                                        r"folder layout .*: read it with --data.init_args.layout folders"):
        RafdbDataModule(str(folders), layout="authors").setup()
    with pytest.raises(DataError, match=r"does not hold the community folder layout \(layout: folders\); it holds "
                                        r"basic/; expected:\n.*train/<1\|2\|3\|4\|5\|6\|7>/<image>\n.*\nThe authors'"):
        RafdbDataModule(str(raf_root), layout="folders").setup()
    report = check_rafdb_dataset("rafdb", folders)
    assert not report.errors and sum(map(sum, report.counts.values())) == len(synth)
    assert any("community folder layout" in note for note in report.notes)


def test_export_is_byte_for_byte_deterministic_and_check_counts_what_it_wrote(synth, raf_root, tmp_path):
    counts = export_rafdb(synth, tmp_path / "again")
    files = sorted(p.relative_to(raf_root) for p in raf_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert len(files) == 2 * len(synth) + 1  # aligned and original per face, and the list file
    for path in files:
        assert (raf_root / path).read_bytes() == (tmp_path / "again" / path).read_bytes(), path
    report = check_rafdb_dataset("rafdb", raf_root)
    assert not report.errors and {split: sum(c) for split, c in report.counts.items()} == counts
    per_class = np.bincount(np.asarray(synth.emotion), minlength=len(EMOTIONS)).tolist()
    assert [sum(column) for column in zip(*report.counts.values())] == per_class
    damaged = _copy(raf_root, tmp_path)
    (damaged / "basic" / "Image" / "original" / "test_0002.jpg").write_bytes(b"\xff\xd8 cut")
    assert any("original/test_0002.jpg: unreadable" in e for e in check_rafdb_dataset("rafdb", damaged).errors)


def test_data_export_and_check_rafdb_commands(tiny_data, tmp_path, capsys):
    """`affectlab data export|check rafdb` through the command's entry point, in process (a subprocess costs
    seconds of start-up; tests/data/test_folders.py runs the command in one)."""
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items() if k != "batch_size"]
    out = tmp_path / "RAF-DB"
    assert main(["data", "export", "rafdb", "--out", str(out), "--cache", str(tiny_data), *sizes]) == 0
    printed = capsys.readouterr().out
    assert f"wrote rafdb to {out}: train " in printed
    expected = dict(part.split() for part in printed.strip().split(": ", 1)[1].split(", "))
    assert main(["data", "check", "rafdb", "--root", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OK: 0 error(s)" in printed and "faces per split and emotion" in printed
    for split, count in expected.items():  # the table's total column holds what the export wrote
        assert any(line.split("│")[1:2] == [f" {split:<5} "] and line.split("│")[-2].strip() == count
                   for line in printed.splitlines()), (split, printed)
    (out / "basic" / "Image" / "aligned" / "test_0001_aligned.jpg").unlink()
    assert main(["data", "check", "rafdb", "--root", str(out)]) == 1
    assert "list_patition_label.txt:1: its image" in capsys.readouterr().out
    assert main(["data", "check", "rafdb", "--root", str(tmp_path)]) == 2
    assert "does not hold the authors' layout" in capsys.readouterr().err
