"""``affectlab predict``: faces in images, folders and videos -> OpenFace-named CSVs, timelines, a report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CONFIGS, affectlab, affectlab_inline, face_scene, printed_run_id, tiny_data_args

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

    (empty,) = read_rows(out / "empty.csv")  # no face: OpenFace's row, success 0 and zeros
    assert empty["success"] == "0" and empty["face_id"] == "0" and empty["confidence"] == "0"
    assert all(empty[c] == "0" for c in header[5:]), {c: empty[c] for c in header[5:] if empty[c] != "0"}

    video = read_rows(out / "clips" / "talk.csv")  # named by its path below the inputs' common folder
    assert [int(r["frame"]) for r in video] == list(range(1, 13))
    assert np.allclose([float(r["timestamp"]) for r in video], np.arange(12) / 6, atol=1e-3)
    assert [r["success"] for r in video] == ["1"] * 4 + ["0"] * 3 + ["1"] * 5
    assert np.diff([float(r["face_x"]) for r in video if r["success"] == "1"]).mean() > 2  # follows the face
    # The face is lost for 3 frames (within --max-missed 10): one track, id 0, before and after the gap.
    assert {r["face_id"] for r in video} == {"0"} and "1 tracks" in report
    assert (out / "clips" / "talk_timeline_face0.png").stat().st_size > 5000


def test_onnxruntime_backend_gives_the_same_rows(au_run, inputs, tmp_path):
    run_id, store = au_run
    rows = {}
    for backend in ("torch", "onnx"):
        affectlab("predict", "--run_id", run_id, "--store", str(store), "--out", str(tmp_path / backend),
                  "--backend", backend, "--no-timeline", str(inputs / "clips" / "talk.mp4"))
        assert not list((tmp_path / backend).glob("*.png"))
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


def test_inputs_that_share_a_name_get_their_own_csvs_and_combined_has_a_source_column(au_run, tmp_path):
    run_id, store = au_run
    folder = tmp_path / "in"
    for name in ("x/img.png", "y/img.png", "x/img.jpg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face_scene(seed=int(name[0] == "y"))).save(folder / name)
    out = tmp_path / "out"  # in this process (predict trains nothing): the seconds of a new process's imports saved
    affectlab_inline("predict", "--run_id", run_id, "--store", str(store), "--out", str(out), str(folder / "x"),
              str(folder / "y"), str(folder / "x" / "img.png"))  # a file named twice is predicted once
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv"))
    assert written == ["x/img.jpg.csv", "x/img.png.csv", "y/img.csv"]  # before, all three were img.csv
    per_file = {name: read_rows(out / name)[0] for name in written}
    assert per_file["x/img.png.csv"]["AU01_p"] != per_file["y/img.csv"]["AU01_p"]  # two faces, two results

    combined_out = tmp_path / "combined"
    affectlab_inline("predict", "--run_id", run_id, "--store", str(store), "--out", str(combined_out), "--combined",
              "--openface-columns", "all", str(folder))
    assert [p.name for p in combined_out.rglob("*.csv")] == ["predictions.csv"]
    rows = read_rows(combined_out / "predictions.csv")
    assert [r["source"] for r in rows] == ["x/img.jpg", "x/img.png", "y/img.png"]
    header = list(rows[0])
    # OpenFace's -aus layout after the source: its 5 columns, 17 intensities, 18 presences, in its order.
    openface_r = [f"AU{au:02d}_r" for au in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)]
    openface_c = [f"AU{au:02d}_c" for au in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)]
    assert header[1:41] == ["frame", "face_id", "timestamp", "confidence", "success", *openface_r, *openface_c]
    for column in ("AU07_r", "AU10_c", "AU14_r", "AU23_c", "AU45_r", "AU28_c"):  # not predicted: empty
        assert rows[0][column] == "", column
    assert rows[1]["AU12_p"] == per_file["x/img.png.csv"]["AU12_p"] != ""


def test_tracked_frames_agree_with_per_frame_detection_and_progress_is_per_frame(au_run, inputs):
    from affectlab.data.media.face_detection import create_detector
    from affectlab.inference import FacePredictor, FileReport, ModelBackend, head_specs
    from affectlab.runs.models import load_run_model

    run_id, store = au_run
    model = load_run_model(run_id, str(store))
    backend, detector = ModelBackend(model), create_detector("mtcnn")
    drifting = [VideoFrame(t, t / 10, face_scene(seed=1, at=(40 + 3 * t, 40 + t))) for t in range(15)]
    gap = [VideoFrame(t, t / 10, face_scene(seed=1) if t < 4 or t > 6 else np.full((180, 240, 3), 100, np.uint8))
           for t in range(12)]
    rows, reports = {}, {}
    for every in (1, 5):
        predictor = FacePredictor(backend, detector, head_specs(model), detect_every=every, chunk_frames=4)
        for name, frames in (("drifting", drifting), ("gap", gap)):
            reports[every, name] = FileReport(Path(name))
            rows[every, name] = list(predictor.rows(iter(frames), reports[every, name]))
    assert reports[5, "drifting"].detected_frames == 4  # frames 1, 6, 11 and the last; the others tracked
    # Where the face leaves and comes back, the frames between are detected: the same success column.
    assert [r["success"] for r in rows[5, "gap"]] == [r["success"] for r in rows[1, "gap"]] == [1] * 4 + [0] * 3 + [1] * 5
    for a, b in zip(rows[1, "drifting"], rows[5, "drifting"]):
        assert a["success"] == b["success"] == 1
        assert abs(a["face_x"] - b["face_x"]) < 4 and abs(a["face_width"] - b["face_width"]) < 4
        assert max(abs(a[k] - b[k]) for k in a if k.endswith("_p")) < 0.05  # the tolerance docs/predict.md states

    calls = []
    predictor = FacePredictor(backend, detector, head_specs(model), chunk_frames=4)
    predictor.predict_file(inputs / "clips" / "talk.mp4", Path("unused"), timeline=False, sink=lambda row: None,
                           progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 3 and calls[-1] == (12, 12)  # advances within a video, not once per file


def test_predict_has_its_own_help_and_names_unknown_detectors():
    help_text = affectlab_inline("predict", "--help").stdout
    assert "--detect-every" in help_text and "--combined" in help_text and "--openface-columns" in help_text
    assert "--trainer" not in help_text  # not the trainer's predict
    import affectlab.cli.predict
    import affectlab.inference

    assert affectlab.cli.predict.DEFAULT_DETECT_EVERY == affectlab.inference.DEFAULT_DETECT_EVERY  # one default
    result = affectlab_inline("predict", "--run_id", "abc", "--detector", "nosuch", "a.png", check=False)
    assert result.returncode == 2 and "unknown detector 'nosuch'; known: mtcnn, " in result.stderr
    assert "yunet" in result.stderr  # (a test module may have registered more in this process)
