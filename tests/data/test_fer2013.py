"""FER2013 (data/readers/fer2013.py) read from the CSV AffectSynth's exporter writes in exactly the authors' layout:
Usage -> split, the emotion codes, both headers, the memory-mapped cache (decoded once, never parsed per epoch),
malformed rows counted or raised by file and line (also fuzzed), the community folder layout as a fallback, the
error for a wrong layout, `affectlab data export|check fer2013`."""

from __future__ import annotations

import os
import pickle
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
from affectlab.data.readers import fer2013
from affectlab.data.readers.fer2013 import (
    LABEL_CODES,
    Fer2013DataModule,
    check_fer2013_dataset,
    decode_csv,
)
from affectlab.data.synth.export import export_folder_dataset
from affectlab.data.synth.export_fer2013 import export_fer2013, fer2013_faces
from affectlab.errors import ConfigError, DataError

SIZE = TINY_DATA["image_size"]


@pytest.fixture(scope="module")
def fer_root(synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer") / "fer2013"
    export_fer2013(synth, root)
    return root


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "fer2013"))


def _module(root: Path, tmp_path: Path, **options) -> Fer2013DataModule:
    return Fer2013DataModule(str(root), cache=str(tmp_path / "cache"), image_size=SIZE, batch_size=8, **options)


def _usages(csv: Path) -> list[str]:
    """The Usage column as the file holds it, read without the reader."""
    return [line.rsplit(",", 1)[1] for line in csv.read_text().splitlines()[1:]]


def test_reader_gets_back_every_face_with_its_emotion_and_usage(synth, fer_root, tmp_path):
    module = _module(fer_root, tmp_path)
    module.setup()
    assert module.read_as == "authors" and not module.skipped_rows
    rows = {split: module.splits[split][0].tolist() for split in ("train", "val", "test")}
    assert sorted(r for split in rows.values() for r in split) == list(range(len(synth)))  # every row once
    usage = _usages(fer_root / "fer2013.csv")  # row r of the array is line r + 2 of the CSV, clip r
    official = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    for split, numbers in rows.items():
        assert {usage[r] for r in numbers} == {official[split]}, split
        assert [EMOTIONS[k] for k in module.splits[split][1]] == [EMOTIONS[int(synth.emotion[r])] for r in numbers]
        identities = {int(synth.identity[r]) for r in numbers}
        others = {int(synth.identity[r]) for s, n in rows.items() if s != split for r in n}
        assert identities and not identities & others  # the exporter's Usage is identity-disjoint
    assert module.rows.lines.tolist() == [r + 2 for r in range(len(synth))]  # the header is line 1
    faces = fer2013_faces(synth)
    dataset = module.dataset("test")
    for item, row in enumerate(rows["test"]):
        expected = Image.fromarray(faces[row]).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
        expected = torch.from_numpy(np.asarray(expected).copy()).permute(2, 0, 1).float() / 255
        assert torch.equal(dataset[item]["video"][0], expected)  # exactly the CSV's pixels, as a PNG would load
    batch = module.on_after_batch_transfer(next(iter(module.train_dataloader())), 0)
    check_batch(batch, module.modalities, module.tasks)
    assert batch["video"].shape[1:] == (1, 3, SIZE, SIZE) and (batch["subject"] == -1).all()
    assert module.class_counts().sum() == len(rows["train"])


def test_emotion_codes_are_fer2013s():
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # the challenge's codes 0-6
    canonical = {"angry": "anger"}
    assert {code: canonical.get(n, n) for code, n in enumerate(names)} == LABEL_CODES
    assert set(LABEL_CODES.values()) == set(EMOTIONS)
    columns = {"emotion": 0, "pixels": 1, "Usage": 2}
    for code in range(7):
        face, label, split = fer2013.parse_row([str(code), " ".join(["7"] * 2304), "PrivateTest"], columns, 3)
        assert EMOTIONS[label] == LABEL_CODES[code] and split == 2 and face.shape == (48, 48) and (face == 7).all()


def test_kaggles_icml_header_reads_the_same_faces(synth, fer_root, tmp_path):
    icml = tmp_path / "icml"
    export_fer2013(synth, icml, variant="icml")
    assert (icml / "icml_face_data.csv").read_text().splitlines()[0] == "emotion, Usage, pixels"
    text = (icml / "icml_face_data.csv").read_text().splitlines()
    text[1] = text[1].replace(",", ", ", 1)  # a value with a leading space, as the header has
    (icml / "icml_face_data.csv").write_text("\n".join(text) + "\n")
    ours, theirs = decode_csv(fer_root / "fer2013.csv"), decode_csv(icml / "icml_face_data.csv")
    assert not theirs.skipped and np.array_equal(ours.pixels, theirs.pixels)
    assert np.array_equal(ours.labels, theirs.labels) and np.array_equal(ours.splits, theirs.splits)


def test_the_csv_is_decoded_once_and_epochs_read_the_memory_map(fer_root, tmp_path, monkeypatch):
    root = _copy(fer_root, tmp_path)
    first = _module(root, tmp_path)
    first.setup()
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert [Path(name).suffix for name in cached] == [".npy", ".npz"]
    assert isinstance(first.dataset("train").pixels, np.memmap)
    assert first.dataset("train").pixels.shape == (len(first.rows.labels), 48, 48)
    shipped = pickle.loads(pickle.dumps(first.dataset("val")))  # what a loader worker gets: the path, not the map
    assert shipped._pixels is None and torch.equal(shipped[0]["video"], first.dataset("val")[0]["video"])

    def parse_again(path):
        raise AssertionError(f"{path} parsed again")

    monkeypatch.setattr(fer2013, "decode_csv", parse_again)
    second = _module(root, tmp_path)
    second.setup()  # the cache is found: the CSV is not parsed
    assert np.array_equal(np.asarray(second.rows.pixels), np.asarray(first.rows.pixels))
    (root / "fer2013.csv").rename(root / "moved.csv")  # epochs never touch the CSV
    served = sum(len(b["id"]) for b in second.val_dataloader())
    assert served == len(second.splits["val"][0])
    (root / "moved.csv").rename(root / "fer2013.csv")
    monkeypatch.undo()
    stat = (root / "fer2013.csv").stat()
    os.utime(root / "fer2013.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # an edited copy
    _module(root, tmp_path).setup()
    assert len(list((tmp_path / "cache").iterdir())) == 2 and sorted(p.name for p in (tmp_path / "cache").iterdir()) != cached
    other = Path(shutil.copytree(fer_root, tmp_path / "other copy"))
    os.utime(other / "fer2013.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    _module(other, tmp_path).setup()  # another copy sharing the cache keeps this copy's
    assert len(list((tmp_path / "cache").iterdir())) == 4
    monkeypatch.setattr(fer2013, "decode_csv", parse_again)
    _module(root, tmp_path).setup()  # still cached


def test_default_cache_sits_with_the_copy_and_an_unwritable_one_names_the_option(fer_root, tmp_path):
    root = _copy(fer_root, tmp_path)
    Fer2013DataModule(str(root)).setup()
    assert len(list((root / fer2013.DEFAULT_CACHE).glob("fer2013-*.npy"))) == 1
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match=r"data.init_args.cache: cannot write FER2013's decoded faces to .*file/x"):
        Fer2013DataModule(str(root), cache=str(tmp_path / "file" / "x")).setup()


def _rewrite(root: Path, change) -> list[str]:
    lines = (root / "fer2013.csv").read_text().splitlines()
    change(lines)
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    return lines


@pytest.mark.parametrize("line, message", [
    ("3,1 2 3,Training", r"pixels hold 3 values, not 2304"),
    ("3," + " ".join(["300"] * 2304) + ",Training", r"pixels hold values outside 0-255 \(300 to 300\)"),
    ("3," + " ".join(["1.5"] * 2304) + ",Training", r"pixels hold something other than integers"),
    ("9," + " ".join(["1"] * 2304) + ",Training", r"emotion '9' is not one of FER2013's codes 0-6"),
    ("x," + " ".join(["1"] * 2304) + ",Training", r"emotion 'x'"),
    ("3," + " ".join(["1"] * 2304) + ",Validation", r"Usage 'Validation' is not one of Training, PublicTest"),
    ("3," + " ".join(["1"] * 2304), r"2 field\(s\), the header has 3"),
    ("3," + " ".join(["1"] * 2304) + ",Training,extra", r"4 field\(s\)"),
])
def test_a_malformed_row_is_a_counted_skip_or_an_error_naming_its_line(fer_root, tmp_path, line, message):
    root = _copy(fer_root, tmp_path)
    _rewrite(root, lambda lines: lines.insert(5, line))  # line 6 of the file
    module = _module(root, tmp_path)
    with pytest.warns(UserWarning, match=rf"skipped 1 malformed row\(s\): .*fer2013.csv:6: {message}"):
        module.setup()
    assert sum(len(module.splits[s][0]) for s in ("train", "val", "test")) == len(decode_csv(fer_root / "fer2013.csv").labels)
    with pytest.raises(DataError, match=rf"fer2013.csv:6: {message}.*set data.init_args.corrupt: skip"):
        _module(root, tmp_path, corrupt="raise").setup()


def test_a_header_without_usage_names_the_header_found(fer_root, tmp_path):
    root = _copy(fer_root, tmp_path)
    _rewrite(root, lambda lines: lines.__setitem__(0, "emotion,pixels"))
    with pytest.raises(DataError, match=r"fer2013.csv:1: the header 'emotion,pixels' lacks the column\(s\) Usage"):
        _module(root, tmp_path).setup()


def test_fuzzed_rows_are_each_skipped_and_counted_never_a_crash(fer_root, tmp_path):
    """Seeded random damage to random rows (truncated, bytes flipped, fields dropped or doubled, non-UTF-8): each
    damaged row is one counted skip naming its line, every intact row is served."""
    root = _copy(fer_root, tmp_path)
    data = (root / "fer2013.csv").read_bytes().split(b"\n")
    rng = np.random.default_rng(0)
    damaged = sorted(rng.choice(np.arange(1, len(data) - 1), size=12, replace=False).tolist())
    for k, index in enumerate(damaged):
        row = data[index]
        kind = k % 6
        if kind == 0:
            data[index] = row[: int(rng.integers(1, len(row) - 12))]  # cut inside the pixels
        elif kind == 1:
            data[index] = row.replace(b" ", b"", 1)  # two pixels run together: 2303 values
        elif kind == 2:
            data[index] = row.rsplit(b",", 1)[0]  # no Usage
        elif kind == 3:
            data[index] = row + b"," + row  # doubled
        elif kind == 4:
            data[index] = row.replace(b" ", b" \xff\xfe", 1)  # bytes that are not UTF-8, inside the pixels
        else:
            data[index] = b"7" + row[1:]  # an emotion code FER2013 does not have
    (root / "fer2013.csv").write_bytes(b"\n".join(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = _module(root, tmp_path)
        module.setup()
    assert [int(s.split(":")[1]) for s in module.skipped_rows] == [i + 1 for i in damaged]  # line = index + 1
    intact = len(data) - 2 - len(damaged)  # minus the header and the final empty line
    served = [module.dataset(s)[i] for s in ("train", "val", "test") for i in range(len(module.dataset(s)))]
    assert len(served) == intact and all(item["video"].shape == (1, 3, SIZE, SIZE) for item in served)
    report = check_fer2013_dataset("fer2013", root)
    assert sum(map(sum, report.counts.values())) == intact and len(report.errors) == len(damaged)
    with pytest.raises(DataError, match=rf"fer2013.csv:{damaged[0] + 1}: "):
        _module(root, tmp_path, corrupt="raise").setup()


def test_the_community_folder_layout_is_read_and_a_wrong_layout_named(synth, fer_root, tmp_path):
    folders = tmp_path / "folders"
    export_folder_dataset(synth, "fer2013", folders)
    module = Fer2013DataModule(str(folders), image_size=SIZE)
    module.setup()
    assert module.read_as == "folders" and sum(len(v[0]) for v in module.splits.values()) == len(synth)
    assert module.dataset("test")[0]["video"].shape == (1, 3, SIZE, SIZE)
    report = check_fer2013_dataset("fer2013", folders)
    assert not report.errors and sum(map(sum, report.counts.values())) == len(synth)
    assert any("community folder layout" in note for note in report.notes)
    with pytest.raises(DataError, match=r"does not hold the authors' layout; it holds test/, train/; expected:\n"
                                        r".*fer2013.csv .*\n(.*\n)?It holds the community folder layout .* read it "
                                        r"with --data.init_args.layout folders"):
        Fer2013DataModule(str(folders), layout="authors").setup()
    with pytest.raises(DataError, match=r"does not hold the community folder layout \(layout: folders\); it holds "
                                        r"fer2013.csv; expected:\n.*train/<angry.*\n.*test/<angry.*\nThe authors' layout is there"):
        Fer2013DataModule(str(fer_root), layout="folders").setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"it holds an empty folder; expected:\n.*fer2013.csv.*\n.*\n\(The community "
                                        r"folder layout, --data.init_args.layout folders, is not there either"):
        Fer2013DataModule(str(tmp_path / "empty")).setup()
    with pytest.raises(DataError, match=r"root .*nowhere is not a folder"):
        Fer2013DataModule(str(tmp_path / "nowhere")).setup()
    with pytest.raises(ConfigError, match=r"data.init_args.layout: 'csv' is not one of"):
        Fer2013DataModule(str(fer_root), layout="csv")


def test_export_is_byte_for_byte_deterministic_with_all_three_usages(synth, fer_root, tmp_path):
    counts = export_fer2013(synth, tmp_path / "again")
    assert (tmp_path / "again" / "fer2013.csv").read_bytes() == (fer_root / "fer2013.csv").read_bytes()
    assert set(_usages(fer_root / "fer2013.csv")) == {"Training", "PublicTest", "PrivateTest"}
    assert min(counts.values()) > 0 and sum(counts.values()) == len(synth)
    report = check_fer2013_dataset("fer2013", fer_root)
    assert not report.errors and {split: sum(c) for split, c in report.counts.items()} == counts
    per_class = np.bincount(np.asarray(synth.emotion), minlength=len(EMOTIONS)).tolist()
    assert [sum(column) for column in zip(*report.counts.values())] == per_class


def test_data_export_and_check_fer2013_commands(tiny_data, tmp_path, capsys):
    """`affectlab data export|check fer2013` through the command's entry point, in process (a subprocess costs
    seconds of start-up; tests/data/test_folders.py runs the command in one)."""
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items() if k != "batch_size"]
    out = tmp_path / "fer2013"
    assert main(["data", "export", "fer2013", "--out", str(out), "--cache", str(tiny_data), *sizes]) == 0
    printed = capsys.readouterr().out
    assert f"wrote fer2013 to {out}: train " in printed
    expected = dict(part.split() for part in printed.strip().split(": ", 1)[1].split(", "))
    assert main(["data", "check", "fer2013", "--root", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OK: 0 error(s)" in printed and "faces per split (Usage) and emotion" in printed
    for split, count in expected.items():  # the table's total column holds what the export wrote
        assert any(line.split("│")[1:2] == [f" {split:<5} "] and line.split("│")[-2].strip() == count
                   for line in printed.splitlines()), (split, printed)
    _rewrite(out, lambda lines: lines.insert(2, "3,1 2 3,Training"))
    assert main(["data", "check", "fer2013", "--root", str(out)]) == 1
    assert "fer2013.csv:3: pixels hold 3 values, not 2304" in capsys.readouterr().out
    assert main(["data", "check", "fer2013", "--root", str(tmp_path)]) == 2
    assert "does not hold the authors' layout" in capsys.readouterr().err
