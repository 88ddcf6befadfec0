"""ExpW (data/readers/expw.py), read from files AffectSynth's exporter writes in the authors' layout
(image/origin/ + label/label.lst, several faces per photograph): every face with its emotion, crops at the box,
photographs never split across splits, malformed lines and bad faces counted or raised (also fuzzed), the
community folder layout found automatically, wrong layouts named, a deterministic export and the CLI."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_DATA, affectlab_inline
from PIL import Image

from affectlab.data.collate import collate_skipping
from affectlab.data.contract import EMOTIONS, check_batch
from affectlab.data.readers.expw import (
    EXPW_LABELS,
    LABEL_CODES,
    ExpwDataModule,
    check_expw_dataset,
    parse_label_line,
    read_label_list,
)
from affectlab.data.readers.folders import FolderImages
from affectlab.data.synth.export import export_folder_dataset
from affectlab.data.synth.export_expw import apex_frame, export_expw
from affectlab.errors import ConfigError, DataError

SIZE = TINY_DATA["image_size"]


@pytest.fixture(scope="module")
def expw_root(synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("expw") / "ExpW"
    export_expw(synth, root)
    return root


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "ExpW"))


def _quiet_setup(module: ExpwDataModule) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.setup()
    return [str(w.message) for w in caught]


def test_reader_gets_back_every_face_with_its_emotion_and_keeps_photographs_whole(synth, expw_root):
    module = ExpwDataModule(str(expw_root), image_size=SIZE, batch_size=8)
    assert not _quiet_setup(module)
    ids = {split: module.splits[split][3] for split in ("train", "val", "test")}
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(len(synth)))  # line k is clip k
    for split, index in ids.items():
        assert module.splits[split][2].tolist() == [int(synth.emotion[c]) for c in index], split
        assert len(index), split
    photographs = {split: {p.name for p in module.splits[split][0]} for split in ids}
    assert not photographs["train"] & photographs["test"] and not photographs["train"] & photographs["val"]
    assert not photographs["val"] & photographs["test"]
    assert len(set().union(*photographs.values())) < len(synth)  # several faces per photograph
    again = ExpwDataModule(str(expw_root))
    again.setup()
    assert again.splits["test"][3].tolist() == ids["test"].tolist()  # seeded
    other = ExpwDataModule(str(expw_root), split_seed=3)
    other.setup()
    assert other.splits["test"][3].tolist() != ids["test"].tolist()
    batch = module.on_after_batch_transfer(next(iter(module.test_dataloader())), 0)
    check_batch(batch, module.modalities, module.tasks)
    assert batch["video"].shape[1:] == (1, 3, SIZE, SIZE) and (batch["subject"] == -1).all()
    assert module.class_counts().sum() == len(ids["train"])


def test_label_codes_and_field_order_follow_the_authors_readme():
    expw_order = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # label.lst's 0-6
    canonical = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy", "sad": "sad",
                 "surprise": "surprise", "neutral": "neutral"}
    for code, name in enumerate(expw_order):
        assert LABEL_CODES[code] == canonical[name]
        *_, label = parse_label_line(f"a.jpg 0 10 20 50 60 33.5 {code}", "label.lst:1")
        assert EMOTIONS[label] == canonical[name]
    image, face, box, confidence, _ = parse_label_line("x.jpg 2 10 20 50 60 33.5 3", "label.lst:1")
    assert (image, face, confidence) == ("x.jpg", 2, 33.5)
    assert box == (20, 10, 50, 60)  # top 10, left 20, right 50, bottom 60 -> PIL's left, top, right, bottom


def test_crops_match_the_annotated_box_and_margin_widens_them(synth, expw_root):
    module = ExpwDataModule(str(expw_root), image_size=SIZE)
    module.setup()
    files, boxes, _, ids, _ = module.splits["test"]
    dataset = module.dataset("test")
    for item in range(len(files)):
        left, top, right, bottom = (int(v) for v in boxes[item])
        pasted = Image.fromarray(apex_frame(synth, int(ids[item]))).resize((right - left, bottom - top), Image.BILINEAR)
        expected = torch.from_numpy(np.asarray(pasted.resize((SIZE, SIZE), Image.BILINEAR))).permute(2, 0, 1) / 255
        crop = dataset[item]["video"][0]
        error = (crop - expected).abs().mean().item()
        assert error < 0.03, (files[item], error)
        if item + 1 < len(files) and files[item + 1] == files[item]:  # the photograph's next face is elsewhere
            neighbour = dataset[item + 1]["video"][0]
            assert (neighbour - expected).abs().mean().item() > 2 * error
    wide = ExpwDataModule(str(expw_root), image_size=SIZE, margin=0.25).dataset("test")[0]["video"]
    assert not torch.allclose(wide, dataset[0]["video"])
    with pytest.raises(ConfigError, match="data.init_args.margin"):
        ExpwDataModule(str(expw_root), margin=-0.1)


def test_min_confidence_leaves_out_low_scoring_faces(expw_root):
    confidences = [float(line.split()[6]) for line in (expw_root / EXPW_LABELS).read_text().splitlines()]
    module = ExpwDataModule(str(expw_root), min_confidence=60.0)
    messages = _quiet_setup(module)
    below = sum(c < 60.0 for c in confidences)
    assert 0 < below < len(confidences)
    assert sum(len(module.splits[s][0]) for s in module.splits) == len(confidences) - below
    assert any(f"left out {below} face(s) below min_confidence" in m for m in messages)


BAD_LINES = [
    ("ghost.jpg 0 1 2 30 40 50.0", r"7 field\(s\); expected 8 fields"),
    ("ghost.jpg 0 1 2 30 40 50.0 3 extra", r"9 field\(s\)"),
    ("ghost.jpg 0 one 2 30 40 50.0 3", r"face_box_top 'one' is not a number"),
    ("ghost.jpg 0 1 2 30 40 nan 3", r"face_box_cofidence 'nan' is not a number"),
    ("ghost.jpg 0 1 30 2 40 50.0 3", r"the face box \(top 1, left 30, right 2, bottom 40\) is empty or inverted"),
    ("ghost.jpg 0 1 2 30 40 50.0 7", r"expression_label '7' is not one of ExpW's codes"),
    ("ghost.jpg 0 1 2 30 40 50.0 happy", r"expression_label 'happy' is not one of ExpW's codes"),
]


@pytest.mark.parametrize("line, message", BAD_LINES)
def test_a_malformed_line_is_a_counted_skip_or_an_error_naming_its_line(expw_root, tmp_path, line, message):
    root = _copy(expw_root, tmp_path)
    labels = root / EXPW_LABELS
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([*lines[:3], line, *lines[3:]]) + "\n")
    module = ExpwDataModule(str(root))
    with pytest.warns(UserWarning, match=rf"left out 1 malformed line\(s\) of label/label.lst: .*label.lst:4: {message}"):
        module.setup()
    assert sum(len(module.splits[s][0]) for s in module.splits) == len(lines)  # only that line left out
    with pytest.raises(DataError, match=rf"label.lst:4: {message}.*or set data.init_args.corrupt: skip"):
        ExpwDataModule(str(root), corrupt="raise").setup()
    report = check_expw_dataset("expw", root, decode=False)
    assert len(report.errors) == 1 and "label.lst:4:" in report.errors[0]
    assert sum(map(sum, report.counts.values())) == len(lines)


def test_a_face_listed_twice_is_left_out_naming_both_lines(expw_root, tmp_path):
    root = _copy(expw_root, tmp_path)
    labels = root / EXPW_LABELS
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([*lines, lines[0]]) + "\n")
    faces = read_label_list(root)
    assert len(faces.files) == len(lines) and len(faces.problems) == 1
    assert f"label.lst:{len(lines) + 1}: face 0 of {lines[0].split()[0]} is listed twice (first at " in faces.problems[0]
    assert faces.problems[0].endswith("label.lst:1)")


def test_fuzzed_label_lists_never_crash_and_count_every_line(expw_root, tmp_path):
    """Random mutations of valid lines: each line is either served or left out as malformed, never both or
    neither, and the reader never raises anything but a DataError."""
    root = _copy(expw_root, tmp_path)
    labels = root / EXPW_LABELS
    good = labels.read_text().splitlines()
    rng = np.random.default_rng(0)
    junk = ["nan", "inf", "-1e999", "", "x", "3.5.1", "\u00e9", "-", "1e3", "0x1f", "7", "-1", "6.0"]
    mutated = list(good)
    for _ in range(40):
        fields = good[int(rng.integers(len(good)))].split()
        kind = int(rng.integers(4))
        if kind == 0:
            del fields[int(rng.integers(len(fields)))]
        elif kind == 1:
            fields.insert(int(rng.integers(len(fields) + 1)), str(rng.integers(100)))
        elif kind == 2:
            fields[int(rng.integers(1, 8))] = str(rng.choice(junk)) or "?"
        else:
            fields[1] = str(100 + int(rng.integers(1000)))  # a new face id: valid unless its box is broken
        mutated.insert(int(rng.integers(len(mutated) + 1)), " ".join(fields))
    labels.write_text("\n".join(mutated) + "\n")
    faces = read_label_list(root)
    assert len(faces.files) + len(faces.problems) == len(mutated)
    assert all("label.lst:" in p and "\n" not in p for p in faces.problems)
    labels.write_bytes(labels.read_bytes() + b"\xff\xfe broken\n")
    faces = read_label_list(root)
    assert "not UTF-8 text" in faces.problems[-1]


def test_missing_damaged_images_and_boxes_outside_are_skipped_with_line_and_box(expw_root, tmp_path):
    root = _copy(expw_root, tmp_path)
    labels = root / EXPW_LABELS
    lines = labels.read_text().splitlines()
    name, _, top, _, _, bottom, *_ = lines[0].split()
    with Image.open(root / "image" / "origin" / name) as image:
        width = image.width
    lines.append(f"{name} 9 {top} {width - 5} {width + 20} {bottom} 50.0 3")  # reaches past the right edge
    lines.append("missing.jpg 0 1 2 30 40 50.0 3")
    labels.write_text("\n".join(lines) + "\n")
    damaged = max({line.split()[0] for line in lines[:-2]})
    faces_in_damaged = sum(line.split()[0] == damaged for line in lines)
    (root / "image" / "origin" / damaged).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    module = ExpwDataModule(str(root), image_size=16, batch_size=64, test_fraction=0.0, val_fraction=0.0)
    dataset = module.dataset("train")
    with pytest.warns(UserWarning, match="expw: skipped unreadable face"):
        batch = module.on_after_batch_transfer(collate_skipping([dataset[i] for i in range(len(dataset))]), 0)
    served = len(batch["id"])
    bad = 2 + faces_in_damaged
    assert served == len(lines) - bad and len(module.unreadable.paths) == bad
    outside = [p for p in module.unreadable.paths if "reaches outside" in p]
    assert len(outside) == 1 and f"label.lst:{len(lines) - 1}, box ({width - 5}, {top}, {width + 20}, {bottom})" in outside[0]
    with pytest.raises(DataError, match=r"not a readable face"):
        strict = ExpwDataModule(str(root), corrupt="raise", test_fraction=0.0, val_fraction=0.0).dataset("train")
        [strict[i] for i in range(len(strict))]
    for decode in (True, False):
        report = check_expw_dataset("expw", root, decode)
        assert len(report.errors) == bad, report.errors
        assert any("reaches outside the" in e for e in report.errors) and any("missing.jpg" in e for e in report.errors)


def test_community_folder_layout_is_read_automatically_or_on_request(synth, expw_root, tmp_path):
    folders = tmp_path / "expw_folders"
    export_folder_dataset(synth, "expw", folders)
    module = ExpwDataModule(str(folders), image_size=SIZE)
    module.setup()
    assert module.found_layout == "folders" and isinstance(module.dataset("train"), FolderImages)
    assert sum(len(module.splits[s][0]) for s in module.splits) == len(synth)
    check_batch(module.on_after_batch_transfer(next(iter(module.val_dataloader())), 0), ("video",), ("emotion",))
    report = check_expw_dataset("expw", folders, decode=False)
    assert not report.errors and sum(map(sum, report.counts.values())) == len(synth)
    assert any("community folder-per-class layout" in note for note in report.notes)
    with pytest.raises(DataError, match=r"does not hold the authors' layout; it holds angry/.*expected:\n"
                                        r".*image/origin/<image_name>\n.*label/label.lst.*\n"
                                        r"It holds the community folder layout .*read it with "
                                        r"--data.init_args.layout folders"):
        ExpwDataModule(str(folders), layout="authors").setup()
    with pytest.raises(DataError, match=r"The authors' layout is there"):
        ExpwDataModule(str(expw_root), layout="folders").setup()
    assert ExpwDataModule(str(expw_root), layout="authors").dataset("val") is not None
    with pytest.raises(ConfigError, match=r"data.init_args.layout: 'original'"):
        ExpwDataModule(str(expw_root), layout="original")


def test_wrong_roots_name_what_was_found_and_expected(expw_root, tmp_path):
    with pytest.raises(DataError, match=r"root .*nowhere is not a folder; expected the authors' layout"):
        ExpwDataModule(str(tmp_path / "nowhere")).setup()
    (tmp_path / "empty" / "stuff").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty does not hold the authors' layout; it holds stuff/; expected:\n(.*\n)*"
                                        r".*label/label.lst.*\n\(The community folder layout, --data.init_args.layout "
                                        r"folders, is not there either"):
        ExpwDataModule(str(tmp_path / "empty")).setup()
    root = _copy(expw_root, tmp_path)
    (root / "image" / "origin").rename(root / "image" / "elsewhere")
    with pytest.raises(DataError, match=r"image folder .*image/origin is missing"):
        read_label_list(root)
    (root / "image" / "origin").mkdir()
    with pytest.raises(DataError, match=r"none of the first 20 photographs label/label.lst lists exists"):
        read_label_list(root)
    (root / EXPW_LABELS).write_text("\n\n")
    with pytest.raises(DataError, match=r"lists no usable face"):
        read_label_list(root)


def test_export_is_byte_for_byte_deterministic(synth, expw_root, tmp_path):
    again = tmp_path / "again"
    assert export_expw(synth, again) == {"all": len(synth)}
    files = sorted(p.relative_to(expw_root) for p in expw_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for path in files:
        assert (expw_root / path).read_bytes() == (again / path).read_bytes(), path
    other = tmp_path / "other"
    export_expw(synth, other, seed=1)
    assert (other / EXPW_LABELS).read_bytes() != (expw_root / EXPW_LABELS).read_bytes()


def test_data_export_and_check_commands(tiny_data, tmp_path):
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items() if k != "batch_size"]
    root = tmp_path / "ExpW"
    result = affectlab_inline("data", "export", "expw", "--out", str(root), "--cache", str(tiny_data), *sizes)
    assert f"wrote expw to {root}: all {TINY_DATA['num_clips']}" in result.stdout
    labels = root / EXPW_LABELS
    labels.write_text(labels.read_text() + "x.jpg 0 1 2\n")
    bad = affectlab_inline("data", "check", "expw", "--root", str(root), check=False)
    assert bad.returncode == 1 and f"{labels}:{TINY_DATA['num_clips'] + 1}: 4 field(s)" in bad.stdout
    assert "faces per split and emotion" in bad.stdout and "FAILED: 1 error(s)" in bad.stdout
