"""AFE (data/afe.py), read from files AffectSynth's exporter writes in exactly its native layout: splits, the
label mapping, crops at the annotated box, bad input named by file and line (also fuzzed), unreadable images,
`affectlab data export|check afe`, and a training run selected with `--data afe`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    CONFIGS,
    TEST_CONFIGS,
    TINY_DATA,
    affectlab,
    affectlab_inline,
    mlflow_client,
    printed_run_id,
)
from PIL import Image

from affectlab.data.readers.afe import (
    AFE_CODES,
    AfeDataModule,
    face_region,
    load_face,
    parse_line,
    scan,
)
from affectlab.data.check import check_afe_dataset
from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.export import export_afe
from affectlab.errors import DataError

SIZE = TINY_DATA["image_size"]


@pytest.fixture(scope="module")
def afe_root(synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("afe") / "AFE"
    export_afe(synth, root)
    return root


def _clip(path: Path) -> int:
    return int(path.stem.split("_")[-1])  # the exporter names photographs after their clip


def _copy(root: Path, tmp_path: Path) -> Path:
    """A private copy of the exported data set, to break."""
    import shutil

    return Path(shutil.copytree(root, tmp_path / "AFE"))


def test_reader_gets_back_every_face_with_its_emotion_and_split(synth, afe_root):
    module = AfeDataModule(str(afe_root), image_size=SIZE, batch_size=8)
    module.setup()
    clips = {split: [_clip(p) for p in module.splits[split][0]] for split in ("train", "val", "test")}
    assert sorted(c for split in clips.values() for c in split) == list(range(len(synth)))  # every face once
    for split, numbers in clips.items():
        labels = module.splits[split][2]
        assert [EMOTIONS[k] for k in labels] == [EMOTIONS[int(synth.emotion[c])] for c in numbers], split
    test_ids = {int(synth.identity[c]) for c in clips["test"]}  # the exporter's official test: the last identity
    assert test_ids == {int(np.max(synth.identity))} and not test_ids & {int(synth.identity[c]) for c in clips["train"]}
    train_labels = np.concatenate([module.splits[s][2] for s in ("train", "val")])
    for label in np.unique(train_labels):  # val carved out of Train per emotion
        if (train_labels == label).sum() >= 2:
            assert label in module.splits["val"][2] and label in module.splits["train"][2]
    ids = np.concatenate([module.splits[s][3] for s in ("train", "val", "test")])
    assert sorted(ids.tolist()) == list(range(len(synth)))
    again = AfeDataModule(str(afe_root), split_seed=0)
    again.setup()
    assert [p.name for p in again.splits["val"][0]] == [p.name for p in module.splits["val"][0]]  # seeded
    batch = module.on_after_batch_transfer(next(iter(module.test_dataloader())), 0)
    assert batch["video"].shape[1:] == (1, 3, SIZE, SIZE) and batch["video"].dtype == torch.float32
    assert batch["video_mask"].all() and batch["targets"]["emotion"].dtype == torch.long
    assert (batch["subject"] == -1).all() and batch["target_mask"]["emotion"].all()
    assert module.class_counts().sum() == len(module.splits["train"][0])


def test_emotion_codes_follow_clups_mapping():
    clup_classes = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
    clup_codes = [6, 2, 1, 3, 5, 0, 4]  # CluP's AFE emotion_labels, zipped with its classes
    canonical = {"Surprise": "surprise", "Fear": "fear", "Disgust": "disgust", "Happiness": "happy",
                 "Sadness": "sad", "Anger": "anger", "Neutral": "neutral"}
    for code, name in zip(clup_codes, clup_classes):
        _, _, label = parse_line(f"a/b.jpg 1 2 30 40 {code}", "Train.csv:1")
        assert EMOTIONS[label] == canonical[name] == AFE_CODES[code]
    path, box, _ = parse_line("x/y.jpg  12.9\t4 30.2 41 0", "Train.csv:1")  # runs of blanks; decimals truncated
    assert path == "x/y.jpg" and box == (12, 4, 30, 41)


def test_crops_match_the_annotated_box(synth, afe_root):
    module = AfeDataModule(str(afe_root), image_size=SIZE)
    module.setup()
    files, boxes, _, _ = module.splits["test"]
    dataset = module.dataset("test")
    for item in range(len(files)):
        clip = _clip(files[item])
        apex = int(np.asarray(synth.au_intensity[clip]).sum(axis=1).argmax())
        left, top, right, bottom = (int(v) for v in boxes[item])
        # The face as pasted (stretched to its box) and resized back: what the crop holds, but for JPEG's losses.
        pasted = Image.fromarray(np.asarray(synth.frames[clip, apex])).resize((right - left, bottom - top), Image.BILINEAR)
        frame = torch.from_numpy(np.asarray(pasted.resize((SIZE, SIZE), Image.BILINEAR))).permute(2, 0, 1) / 255
        crop = dataset[item]["video"][0]  # [3, S, S]
        error = (crop - frame).abs().mean().item()
        assert error < 0.03, (files[item], error)
        shift = (right - left) // 4
        shifted = load_face(files[item], (left + shift, top, right + shift, bottom), SIZE)[0]
        assert (shifted - frame).abs().mean().item() > 2 * error  # the box is where the face is
    with Image.open(files[0]) as image:
        width, height = image.size
    left, top, right, bottom = (int(v) for v in boxes[0])
    assert face_region((left, top, right, bottom), 0.0, width, height) == (left, top, right, bottom)
    grown = face_region((left, top, right, bottom), 0.25, width, height)
    assert grown[0] == max(0, round(left - 0.25 * (right - left))) and grown[2] <= width and grown[3] <= height
    wide = AfeDataModule(str(afe_root), image_size=SIZE, margin=0.25).dataset("test")[0]["video"]
    assert not torch.allclose(wide, dataset[0]["video"])  # the margin adds the scene around the face


def test_missing_files_and_folders_name_what_was_expected(afe_root, tmp_path):
    with pytest.raises(DataError, match=r"root .*nowhere is not a folder; expected\n.*src/image/<path>"):
        AfeDataModule(str(tmp_path / "nowhere")).setup()
    root = _copy(afe_root, tmp_path)
    (root / "annos" / "TrainTest" / "Test.csv").unlink()
    with pytest.raises(DataError, match=r"annotation file .*annos/TrainTest/Test.csv is missing; expected\n"):
        scan(root)
    (root / "annos" / "TrainTest" / "Test.csv").write_text("\n\n")
    with pytest.raises(DataError, match=r"Test.csv lists no faces"):
        scan(root)
    (root / "src" / "image").rename(root / "images")
    with pytest.raises(DataError, match=r"image folder .*src/image is missing; expected\n.*src/image/<path>\n.*annos/TrainTest/Train.csv"):
        scan(root)
    (root / "images").rename(root / "src" / "elsewhere")
    (root / "src" / "image").mkdir()
    with pytest.raises(DataError, match=r"none of the first 20 images Train.csv lists exists \(the first: "
                                        r".*Train.csv:1 names .*\); AFE's paths are relative to .*src/image/"):
        scan(root)


@pytest.mark.parametrize("line, message", [
    ("000/a.jpg 1 2 30 40", r"5 field\(s\); expected 6 fields separated by spaces"),
    ("000/a.jpg,1,2,30,40,3", r"1 field\(s\) \(it holds commas: AFE's files are separated by spaces\)"),
    ("000/a.jpg 1 2 30 40 3 extra", r"7 field\(s\)"),
    ("000/a.jpg 1 two 30 40 3", r"top 'two' is not a number"),
    ("000/a.jpg 1 2 nan 40 3", r"right 'nan' is not a number"),
    ("000/a.jpg 30 2 1 40 3", r"the box \(left 30, top 2, right 1, bottom 40\) is inverted or empty"),
    ("000/a.jpg 1 40 30 40 3", r"the box \(left 1, top 40, right 30, bottom 40\) is inverted or empty"),
    ("000/a.jpg 1 2 30 40 7", r"emotion '7' is not one of AFE's; .*<emotion> an integer 0-6 \(0 anger, 1 disgust"),
    ("000/a.jpg 1 2 30 40 happy", r"emotion 'happy' is not one of AFE's"),
    ("path left top right bottom emotion", r"left 'left' is not a number; .*\(no header\)"),
])
def test_malformed_lines_name_file_line_and_what_was_expected(afe_root, tmp_path, line, message):
    root = _copy(afe_root, tmp_path)
    csv = root / "annos" / "TrainTest" / "Train.csv"
    lines = csv.read_text().splitlines()
    lines.insert(3, line)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"Train.csv:4: {message}"):
        AfeDataModule(str(root)).setup()


def test_fuzzed_lines_always_give_a_data_error_naming_their_line(afe_root, tmp_path):
    """Each mutation below makes a valid line invalid; whatever it is, the reader names the file and line."""
    root = _copy(afe_root, tmp_path)
    csv = root / "annos" / "TrainTest" / "Test.csv"
    good = csv.read_text().splitlines()
    rng = np.random.default_rng(0)
    junk = list("abcxyz_-./,;:!?#\"' ") + ["nan", "inf", "-inf", "1e999", "", "0x10", "\u00e9"]
    for case in range(60):
        fields = good[int(rng.integers(len(good)))].split()
        kind = case % 6
        if kind == 0:  # a field lost
            del fields[int(rng.integers(len(fields)))]
        elif kind == 1:  # a field too many
            fields.insert(int(rng.integers(len(fields) + 1)), str(rng.integers(100)))
        elif kind == 2:  # a coordinate that is no finite number
            fields[int(rng.integers(1, 5))] = "".join(rng.choice(junk, int(rng.integers(1, 4)))).replace(" ", "") or "?"
        elif kind == 3:  # an inverted box: right at or left of left, or bottom at or above top
            a, b = (1, 3) if rng.random() < 0.5 else (2, 4)
            fields[b] = str(int(fields[a]) - int(rng.integers(0, 5)))
        elif kind == 4:  # an emotion outside 0-6
            fields[5] = rng.choice(["7", "-1", "3.0", "happy", "99", "", "six"]) or "x"
        else:  # a line of letters and punctuation only: no number anywhere
            fields = ["".join(rng.choice(junk[:19], int(rng.integers(1, 30))))]
        at = int(rng.integers(0, len(good) + 1))
        text = " ".join(fields)
        if not text.strip():
            text = "?"
        csv.write_text("\n".join([*good[:at], text, *good[at:]]) + "\n")
        with pytest.raises(DataError, match=rf"Test.csv:{at + 1}: .*expected") as caught:
            scan(root)
        assert "\n" not in str(caught.value), text  # one line: file:line, what is wrong, what was expected
    csv.write_bytes(b"\xff\xfe broken\n")
    with pytest.raises(DataError, match=r"Test.csv:1: not UTF-8 text"):
        scan(root)


def test_unreadable_images_are_skipped_named_and_counted_or_raise(afe_root, tmp_path):
    root = _copy(afe_root, tmp_path)
    module = AfeDataModule(str(root), image_size=16, batch_size=64)
    module.setup()
    files = module.splits["test"][0]
    files[0].write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # damaged
    files[1].unlink()  # missing
    csv = root / "annos" / "TrainTest" / "Test.csv"
    lines = csv.read_text().splitlines()
    name = files[2].relative_to(root / "src" / "image").as_posix()
    lines = [f"{name} 500 500 600 600 3" if line.startswith(name + " ") else line for line in lines]
    csv.write_text("\n".join(lines) + "\n")  # a box outside its photograph
    module = AfeDataModule(str(root), image_size=16, batch_size=64)
    module.setup()
    with pytest.warns(UserWarning, match="afe: skipped unreadable image"):
        batches = [module.on_after_batch_transfer(b, 0) for b in module.test_dataloader()]
    assert sum(len(b["id"]) for b in batches) == len(files) - 3
    assert sorted(module.unreadable.paths) == sorted(str(p) for p in files[:3])
    assert "skipped 3 unreadable image(s)" in module.unreadable.report()
    strict = AfeDataModule(str(root), image_size=16, batch_size=64, corrupt="raise")
    with pytest.raises(DataError, match=rf"{files[0].name}: not a readable face"):
        list(strict.test_dataloader())
    for decode in (True, False):  # --quick opens each image and checks its box against its size
        report = check_afe_dataset(root, decode)
        assert len(report.errors) == 3 and any("lies outside the" in e for e in report.errors)
        assert any(f"{files[1]} (" in e and "No such file" in e for e in report.errors)
    assert sum(map(sum, report.counts.values())) == len(module.splits["train"][0]) + len(module.splits["val"][0]) + len(files)


def test_data_export_and_check_commands(tiny_data, synth, tmp_path):
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_DATA.items() if k != "batch_size"]
    root = tmp_path / "AFE"
    result = affectlab_inline("data", "export", "afe", "--out", str(root), "--cache", str(tiny_data), *sizes)
    assert f"wrote afe to {root}: train 40, test 8" in result.stdout
    ok = affectlab_inline("data", "check", "afe", "--root", str(root))
    assert "OK: 0 error(s)" in ok.stdout and "faces per split and emotion" in ok.stdout
    csv = root / "annos" / "TrainTest" / "Train.csv"
    csv.write_text(csv.read_text() + "000/x.jpg 1 2 3\n")
    malformed = affectlab_inline("data", "check", "afe", "--root", str(root), check=False)
    assert malformed.returncode == 2 and f"{csv}:41: 4 field(s)" in malformed.stderr


def test_supervised_model_trains_on_afe_by_name(afe_root, tmp_path):
    store = tmp_path / "store"
    result = affectlab(
        "run", "--model", str(CONFIGS / "model/supervised.yaml"), "--config", str(TEST_CONFIGS / "tiny_supervised.yaml"),
        "--model.init_args.modalities", "[video]", "--data", "afe", "--data.init_args.root", str(afe_root),
        "--data.init_args.image_size", str(SIZE), "--data.init_args.margin", "0.1", "--data.init_args.batch_size", "8",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--store", str(store),
    )
    metrics = mlflow_client(store).get_run(printed_run_id(result.stdout)).data.metrics
    assert "test/acc" in metrics and metrics["test/num_samples"] == 8 and np.isfinite(metrics["train/loss_epoch"])
