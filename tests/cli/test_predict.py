"""``affectlab predict``: faces in images, folders and videos -> OpenFace-named CSVs, timelines, a report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CONFIGS, affectlab, face_scene, printed_run_id, tiny_data_args

from affectlab.data.contract import ACTION_UNITS, EMOTIONS
from affectlab.data.media.video import VideoFrame, write_video


@pytest.fixture(scope="module")
def au_run(tiny_data, tmp_path_factory) -> tuple[str, Path]:
    """A briefly trained AU model (occurrence, intensity and emotion heads) on tiny AffectSynth."""
    store = tmp_path_factory.mktemp("predict") / "store"
    result = affectlab("run", "--config", str(CONFIGS / "experiment/au_synth.yaml"),
                       *tiny_data_args(tiny_data, store, max_epochs=1), "--trainer.limit_train_batches", "2",
                       "--model.init_args.backbone", "test_convnext", "--model.init_args.feature_stage", "-1",
                       "--commands", "fit")
    return printed_run_id(result.stdout), store


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    Image.fromarray(face_scene(seed=0)).save(folder / "face.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(folder / "empty.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    # A 12-frame video: the face drifts right; frames 5-7 (1-based) show no face.
    frames = [face_scene(seed=1, at=(40 + 4 * t, 40)) for t in range(12)]
    for t in (4, 5, 6):
        frames[t] = np.full_like(frames[t], 100)
    write_video(folder / "clips" / "talk.mp4", frames, fps=6)
    return folder


def test_predict_writes_openface_rows_a_timeline_and_reports_bad_files(au_run, inputs, tmp_path):
    run_id, store = au_run
    out = tmp_path / "out"
    result = affectlab("predict", "--run_id", run_id, "--store", str(store), "--out", str(out),
                       str(inputs / "face.png"), str(inputs / "empty.png"), str(inputs / "broken.jpg"),
                       str(inputs / "clips"), str(inputs / "missing.png"))
    assert "3 of 5 files predicted with pytorch; 2 skipped" in result.stdout
    report = (out / "report.txt").read_text()
    assert "skipped" in report and "broken.jpg: not a readable image" in report and "missing.png: no such file" in report

    (face,) = read_rows(out / "face.csv")
    header = list(face)
    assert header[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]  # OpenFace 2.0's first columns
    assert {f"AU{au:02d}_r" for au in ACTION_UNITS} | {f"AU{au:02d}_c" for au in ACTION_UNITS} <= set(header)
    assert face["success"] == "1" and float(face["confidence"]) > 0.9
    assert 70 <= float(face["face_x"]) and float(face["face_x"]) + float(face["face_width"]) <= 70 + 96
    assert all(0 <= float(face[f"AU{au:02d}_r"]) <= 5 and face[f"AU{au:02d}_c"] in ("0", "1") for au in ACTION_UNITS)
    assert sum(float(face[f"emotion_{name}"]) for name in EMOTIONS) == pytest.approx(1.0, abs=1e-3)

    (empty,) = read_rows(out / "empty.csv")  # no face: a row that says so, with empty values
    assert empty["success"] == "0" and empty["AU01_r"] == "" and empty["emotion_happy"] == ""

    video = read_rows(out / "talk.csv")
    assert [int(r["frame"]) for r in video] == list(range(1, 13))
    assert np.allclose([float(r["timestamp"]) for r in video], np.arange(12) / 6, atol=1e-3)
    assert [r["success"] for r in video] == ["1"] * 4 + ["0"] * 3 + ["1"] * 5
    assert np.diff([float(r["face_x"]) for r in video if r["success"] == "1"]).mean() > 2  # follows the face
    assert (out / "talk_timeline.png").stat().st_size > 5000


def test_onnxruntime_backend_gives_the_same_rows(au_run, inputs, tmp_path):
    run_id, store = au_run
    rows = {}
    for backend in ("torch", "onnx"):
        affectlab("predict", "--run_id", run_id, "--store", str(store), "--out", str(tmp_path / backend),
                  "--backend", backend, "--no-timeline", str(inputs / "clips" / "talk.mp4"))
        rows[backend] = read_rows(tmp_path / backend / "talk.csv")
    assert len(rows["torch"]) == len(rows["onnx"]) == 12
    for a, b in zip(rows["torch"], rows["onnx"]):
        for key in a:
            if key.startswith(("AU", "emotion_")) and a[key] != "":
                assert float(a[key]) == pytest.approx(float(b[key]), abs=2e-3), key


def test_frames_that_change_size_mid_video_are_all_read(au_run):
    from affectlab.data.media.face_detection import FaceDetector
    from affectlab.runs.models import load_run_model
    from affectlab.inference import FacePredictor, FileReport, ModelBackend, head_specs

    run_id, store = au_run
    model = load_run_model(run_id, str(store))
    model.image_size = 32
    predictor = FacePredictor(ModelBackend(model), FaceDetector(), head_specs(model), chunk_frames=4)
    sizes = [(240, 180)] * 3 + [(320, 200)] * 3 + [(200, 240)] * 2  # e.g. a stream re-encoded mid-way
    frames = [VideoFrame(i, i / 10, face_scene(seed=0, scene=size)) for i, size in enumerate(sizes)]
    report = FileReport(Path("resized.mp4"))
    rows = list(predictor.rows(iter(frames), report))
    assert [r["frame"] for r in rows] == list(range(1, 9)) and all(r["success"] == 1 for r in rows)
    assert report.frames == 8 and report.faces == 8


def test_paths_are_told_apart_from_option_values():
    from affectlab.cli.predict import has_paths

    assert has_paths(["--run_id", "abc", "video.mp4"])
    assert has_paths(["--no-timeline", "a.png", "--run_id", "abc"])
    assert has_paths(["--run_id", "abc", "--largest-only", "a.png"])  # every flag, not a list kept by hand
    assert not has_paths(["--run_id", "abc", "--config", "c.yaml"])  # the trainer's predict command
    assert not has_paths(["--run_id=abc"])
