"""AffectNet (data/readers/affectnet.py), read from files AffectSynth's exporter writes in the authors' layout
(Manually_Annotated_Images/ + Manually_Annotated_file_lists/{training,validation}.csv): emotions, valence and
arousal with their masks, 7 or 8 classes, codes left out and counted, crops at the box, malformed rows and bad
faces counted or raised (also fuzzed), the community layout, wrong layouts named, a deterministic export and
the CLI."""

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
from affectlab.data.readers.affectnet import (
    AFFECTNET_IMAGES,
    AFFECTNET_LISTS,
    COLUMNS,
    LABEL_CODES,
    AffectNetDataModule,
    check_affectnet_dataset,
    read_list,
)
from affectlab.data.synth.export import export_folder_dataset
from affectlab.data.synth.export_affectnet import export_affectnet
from affectlab.data.synth.export_expw import apex_frame
from affectlab.errors import ConfigError, DataError

SIZE = TINY_DATA["image_size"]


@pytest.fixture(scope="module")
def affectnet_root(synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("affectnet") / "AffectNet"
    export_affectnet(synth, root)
    return root


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "AffectNet"))


def _clip_of(path: Path, synth) -> int:
    import hashlib

    names = {hashlib.sha224(f"affectsynth-0-{c}".encode()).hexdigest(): c for c in range(len(synth))}
    return names[path.stem]


def _lists(root: Path) -> tuple[Path, Path]:
    return root / AFFECTNET_LISTS / "training.csv", root / AFFECTNET_LISTS / "validation.csv"


def _setup(module: AffectNetDataModule) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.setup()
    return [str(w.message) for w in caught]


def test_reader_serves_every_face_with_emotion_valence_and_arousal(synth, affectnet_root):
    module = AffectNetDataModule(str(affectnet_root), image_size=SIZE, batch_size=8)
    assert not _setup(module)
    assert module.tasks == ("emotion", "valence", "arousal") and module.class_names["emotion"] == EMOTIONS
    seen = []
    for split, part in module.splits.items():
        clips = [_clip_of(p, synth) for p in part["files"]]
        seen += clips
        assert part["labels"].tolist() == [int(synth.emotion[c]) for c in clips], split
        valence, known = part["regression"]["valence"]
        assert known.all() and np.allclose(valence, [np.clip(synth.valence[c], -1, 1) for c in clips], atol=1e-6)
    assert sorted(seen) == list(range(len(synth)))
    test_ids = {int(synth.identity[_clip_of(p, synth)]) for p in module.splits["test"]["files"]}
    train_ids = {int(synth.identity[_clip_of(p, synth)]) for p in module.splits["train"]["files"]}
    assert test_ids and not test_ids & train_ids  # validation.csv is the test split
    assert module.splits["val"]["files"] and set(module.splits["val"]["files"]) <= set(
        module.rows["train"].files)  # val carved out of training.csv
    ids = np.concatenate([part["ids"] for part in module.splits.values()])
    assert sorted(ids.tolist()) == list(range(len(synth)))
    batch = module.on_after_batch_transfer(next(iter(module.test_dataloader())), 0)
    check_batch(batch, module.modalities, module.tasks)
    assert batch["targets"]["valence"].dtype == torch.float32 and batch["target_mask"]["arousal"].all()
    assert batch["video"].shape[1:] == (1, 3, SIZE, SIZE)


def test_codes_map_to_the_canonical_emotions():
    affectnet = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger"]  # codes 0-6 (AffectNet paper)
    for code, name in enumerate(affectnet):
        assert LABEL_CODES[code] == {"Anger": "anger"}.get(name, name.lower())
    assert all(LABEL_CODES[code] is None for code in (7, 8, 9, 10)) and len(LABEL_CODES) == 11


def test_crops_match_the_face_box(synth, affectnet_root):
    module = AffectNetDataModule(str(affectnet_root), image_size=SIZE)
    module.setup()
    part, dataset = module.splits["test"], module.dataset("test")
    for item in range(len(part["files"])):
        left, top, right, bottom = (int(v) for v in part["boxes"][item])
        pasted = Image.fromarray(apex_frame(synth, _clip_of(part["files"][item], synth))).resize(
            (right - left, bottom - top), Image.BILINEAR)
        expected = torch.from_numpy(np.asarray(pasted.resize((SIZE, SIZE), Image.BILINEAR))).permute(2, 0, 1) / 255
        assert (dataset[item]["video"][0] - expected).abs().mean().item() < 0.03
    wide = AffectNetDataModule(str(affectnet_root), image_size=SIZE, margin=0.3).dataset("test")[0]["video"]
    assert not torch.allclose(wide, dataset[0]["video"])


def test_contempt_is_an_eighth_class_on_request_and_codes_8_to_10_are_left_out(affectnet_root, tmp_path):
    root = _copy(affectnet_root, tmp_path)
    training, _ = _lists(root)
    lines = training.read_text().splitlines()
    extra = []
    for code in (7, 7, 8, 9, 10):
        fields = lines[1 + len(extra)].split(",")
        fields[6] = str(code)
        if code in (9, 10):
            fields[7] = fields[8] = "-2"
        extra.append(",".join(fields))
    training.write_text("\n".join([*lines, *extra]) + "\n")
    seven = AffectNetDataModule(str(root))
    messages = _setup(seven)
    assert any("left out 2 contempt (code 7), 1 none (code 8), 1 uncertain (code 9), 1 no-face (code 10)" in m
               for m in messages)
    assert len(seven.rows["train"].files) == len(lines) - 1
    eight = AffectNetDataModule(str(root), classes=8)
    messages = _setup(eight)
    assert eight.class_names["emotion"] == (*EMOTIONS, "contempt")
    assert int((eight.rows["train"].labels == 7).sum()) == 2 and "contempt" not in " ".join(messages)
    assert eight.class_counts(split="train").shape == (8,)
    with pytest.raises(ConfigError, match="data.init_args.classes: 6"):
        AffectNetDataModule(str(root), classes=6)
    report = check_affectnet_dataset("affectnet", root, decode=False)
    assert not report.errors and any("left out 2 contempt" in w for w in report.warnings)


def test_missing_valence_and_arousal_are_masked(affectnet_root, tmp_path):
    root = _copy(affectnet_root, tmp_path)
    _, validation = _lists(root)
    lines = validation.read_text().splitlines()
    fields = lines[0].split(",")
    fields[7] = "-2"
    lines[0] = ",".join(fields)
    validation.write_text("\n".join(lines) + "\n")
    module = AffectNetDataModule(str(root), image_size=16)
    module.setup()
    sample = module.dataset("test")[0]
    assert not sample["target_mask"]["valence"] and sample["target_mask"]["arousal"]
    assert sample["targets"]["valence"] == 0.0 and sample["target_mask"]["emotion"]
    emotion_only = AffectNetDataModule(str(root), valence_arousal=False)
    assert emotion_only.tasks == ("emotion",) and "valence" not in emotion_only.dataset("test")[0]["targets"]


BAD_ROWS = [
    (lambda f: f[:-1], r"8 column\(s\); expected 9 comma-separated columns"),
    (lambda f: [*f, "1"], r"10 column\(s\)"),
    (lambda f: [f[0], "ten", *f[2:]], r"face_x 'ten' is not a number"),
    (lambda f: [*f[:3], "0", *f[4:]], r"the face box \(.*width 0.*\) is empty"),
    (lambda f: [*f[:6], "11", *f[7:]], r"expression '11' is not one of AffectNet's codes 0-10"),
    (lambda f: [*f[:6], "2.5", *f[7:]], r"expression '2.5' is not one of AffectNet's codes"),
    (lambda f: [*f[:7], "1.5", f[8]], r"valence '1.5' is outside \[-1, 1\] \(and not -2"),
    (lambda f: [*f[:8], "nan"], r"arousal 'nan' is not a number"),
]


@pytest.mark.parametrize("change, message", BAD_ROWS)
def test_a_malformed_row_is_a_counted_skip_or_an_error_naming_its_line(affectnet_root, tmp_path, change, message):
    root = _copy(affectnet_root, tmp_path)
    training, _ = _lists(root)
    lines = training.read_text().splitlines()
    lines.insert(3, ",".join(change(lines[3].split(","))))
    training.write_text("\n".join(lines) + "\n")
    module = AffectNetDataModule(str(root))
    with pytest.warns(UserWarning, match=rf"left out 1 malformed row\(s\): .*training.csv:4: {message}"):
        module.setup()
    assert len(module.rows["train"].files) == len(lines) - 2  # the header and that row
    with pytest.raises(DataError, match=rf"training.csv:4: {message}.*or set data.init_args.corrupt: skip"):
        AffectNetDataModule(str(root), corrupt="raise").setup()
    report = check_affectnet_dataset("affectnet", root, decode=False)
    assert len(report.errors) == 1 and "training.csv:4:" in report.errors[0]


def test_fuzzed_lists_never_crash_and_count_every_row(affectnet_root, tmp_path):
    root = _copy(affectnet_root, tmp_path)
    training, _ = _lists(root)
    lines = training.read_text().splitlines()
    header, good = lines[0], lines[1:]
    rng = np.random.default_rng(0)
    junk = ["", "nan", "-inf", "x", "1;2", "\"", "-2", "99", "-0.5", "3", "1e309", "\u00e9", "\"a,b\""]
    mutated = list(good)
    for _ in range(40):
        fields = good[int(rng.integers(len(good)))].split(",")
        kind = int(rng.integers(3))
        if kind == 0:
            del fields[int(rng.integers(len(fields)))]
        elif kind == 1:
            fields.insert(int(rng.integers(len(fields) + 1)), str(rng.choice(junk)))
        else:
            fields[int(rng.integers(1, 9))] = str(rng.choice(junk))
        mutated.insert(int(rng.integers(len(mutated) + 1)), ",".join(fields))
    training.write_text("\n".join([header, *mutated]) + "\n")
    rows = read_list(training, root / AFFECTNET_IMAGES, 7, "skip")
    assert len(rows.files) + len(rows.problems) + sum(rows.left_out.values()) == len(mutated)
    assert all("training.csv:" in p for p in rows.problems)


def test_missing_damaged_images_and_boxes_outside_are_skipped_with_their_row(affectnet_root, tmp_path):
    root = _copy(affectnet_root, tmp_path)
    _, validation = _lists(root)
    lines = validation.read_text().splitlines()
    fields = lines[0].split(",")
    with Image.open(root / AFFECTNET_IMAGES / fields[0]) as image:
        height = image.height
    lines.append(",".join([fields[0], fields[1], str(height - 4), fields[3], fields[4], *fields[5:]]))  # past the bottom
    lines.append(",".join(["9/missing.jpg", *fields[1:]]))
    validation.write_text("\n".join(lines) + "\n")
    (root / AFFECTNET_IMAGES / lines[1].split(",")[0]).write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    module = AffectNetDataModule(str(root), image_size=16)
    dataset = module.dataset("test")
    with pytest.warns(UserWarning, match="affectnet: skipped unreadable face"):
        batch = module.on_after_batch_transfer(collate_skipping([dataset[i] for i in range(len(dataset))]), 0)
    assert len(batch["id"]) == len(lines) - 3 and len(module.unreadable.paths) == 3
    assert any("validation.csv:" in p and "reaches outside the" in p for p in module.unreadable.paths)
    check_batch(batch, module.modalities, module.tasks)
    with pytest.raises(DataError, match="not a readable face"):
        strict = AffectNetDataModule(str(root), corrupt="raise").dataset("test")
        [strict[i] for i in range(len(strict))]
    for decode in (True, False):
        report = check_affectnet_dataset("affectnet", root, decode)
        assert len(report.errors) == 3 and any("missing.jpg" in e for e in report.errors)


def test_lists_at_the_root_and_a_header_in_validation_csv_are_read(affectnet_root, tmp_path):
    root = _copy(affectnet_root, tmp_path)
    training, validation = _lists(root)
    text = validation.read_text()
    (root / "validation.csv").write_text(",".join(COLUMNS) + "\n" + text)
    training.rename(root / "training.csv")
    validation.unlink()
    (root / AFFECTNET_LISTS).rmdir()
    module = AffectNetDataModule(str(root))
    module.setup()
    assert len(module.splits["test"]["files"]) == len(text.splitlines())
    (root / "validation.csv").write_text("subDirectory_filePath,face_x\n" + text)
    with pytest.raises(DataError, match=r"validation.csv:1: the header reads"):
        AffectNetDataModule(str(root)).setup()


def test_community_layout_and_wrong_roots(synth, affectnet_root, tmp_path):
    folders = tmp_path / "affectnet_folders"
    export_folder_dataset(synth, "affectnet", folders)
    module = AffectNetDataModule(str(folders), image_size=SIZE)
    messages = _setup(module)
    assert module.found_layout == "folders" and any("holds no valence or arousal" in m for m in messages)
    batch = module.on_after_batch_transfer(next(iter(module.val_dataloader())), 0)
    check_batch(batch, module.modalities, module.tasks)
    assert not batch["target_mask"]["valence"].any() and batch["target_mask"]["emotion"].all()
    assert sum(len(p["files"]) for p in module.splits.values()) == len(synth)
    report = check_affectnet_dataset("affectnet", folders, decode=False)
    assert not report.errors and sum(map(sum, report.counts.values())) == len(synth)
    with pytest.raises(DataError, match=r"does not hold the authors' layout; it holds train_set/, val_set/; expected:"
                                        r"\n(.*\n)*.*Manually_Annotated_Images/<subDirectory>/<file>"
                                        r"(.*\n)*.*--data.init_args.layout folders"):
        AffectNetDataModule(str(folders), layout="authors").setup()
    with pytest.raises(DataError, match=r"root .*nowhere is not a folder"):
        AffectNetDataModule(str(tmp_path / "nowhere")).setup()
    root = _copy(affectnet_root, tmp_path)
    (root / AFFECTNET_LISTS / "validation.csv").unlink()
    with pytest.raises(DataError, match=r"validation.csv is in neither .*Manually_Annotated_file_lists nor"):
        AffectNetDataModule(str(root)).setup()


def test_export_is_byte_for_byte_deterministic(synth, affectnet_root, tmp_path):
    again = tmp_path / "again"
    counts = export_affectnet(synth, again)
    assert sum(counts.values()) == len(synth) and set(counts) == {"train", "test"}
    files = sorted(p.relative_to(affectnet_root) for p in affectnet_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for path in files:
        assert (affectnet_root / path).read_bytes() == (again / path).read_bytes(), path


def test_data_export_and_check_commands(tiny_data, tmp_path):
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items() if k != "batch_size"]
    root = tmp_path / "AffectNet"
    result = affectlab_inline("data", "export", "affectnet", "--out", str(root), "--cache", str(tiny_data), *sizes)
    assert f"wrote affectnet to {root}: train 40, test 8" in result.stdout
    training, _ = _lists(root)
    training.write_text(training.read_text() + "1/x.jpg,1,2\n")
    bad = affectlab_inline("data", "check", "affectnet", "--root", str(root), check=False)
    assert bad.returncode == 1 and f"{training}:42: 3 column(s)" in bad.stdout
    assert "faces per split and emotion" in bad.stdout and "FAILED: 1 error(s)" in bad.stdout
