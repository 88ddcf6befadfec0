"""The Python API (``affectlab.train``, ``affectlab.load``, the figures) and docs/api.md: the page's code blocks
run as one script on tiny AffectSynth, and the run it trains is then loaded here and compared with what
``affectlab predict`` writes for the same files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT, affectlab_inline, cli_env, face_scene, mlflow_client

from affectlab.data.contract import ACTION_UNITS, EMOTIONS
from affectlab.data.media.video import write_video
from affectlab.errors import ConfigError, DataError


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs/api.md").read_text(), flags=re.S)


def make_inputs(folder: Path) -> None:
    """The files docs/api.md names: a photo, a 12-frame video whose face vanishes for frames 5-10, two frames."""
    Image.fromarray(face_scene(seed=0)).save(folder / "photo.png")
    frames = [face_scene(seed=1, at=(40 + 4 * t, 40)) for t in range(12)]
    for t in range(4, 10):
        frames[t] = np.full_like(frames[0], 100)
    write_video(folder / "talk.mp4", frames, fps=6)
    (folder / "frames").mkdir()
    for i in range(2):
        Image.fromarray(face_scene(seed=i, at=(50 + 20 * i, 30))).save(folder / "frames" / f"{i:03d}.png")


@pytest.fixture(scope="module")
def docs_run(tmp_path_factory) -> tuple[Path, str, subprocess.CompletedProcess]:
    """docs/api.md's blocks run in order in a fresh process, in a folder holding the files they name."""
    folder = tmp_path_factory.mktemp("api_docs")
    make_inputs(folder)
    script = folder / "api_docs.py"
    script.write_text("\n".join(doc_blocks()))
    result = subprocess.run([sys.executable, str(script)], cwd=folder, env=cli_env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"docs/api.md's code failed:\n{result.stdout}\n{result.stderr}"
    (run,) = mlflow_client(folder / "runs").search_runs([e.experiment_id for e in
                                                         mlflow_client(folder / "runs").search_experiments()])
    return folder, run.info.run_id, result


def test_the_docs_blocks_train_predict_and_plot(docs_run):
    folder, run_id, result = docs_run
    assert len(doc_blocks()) >= 3
    printed = result.stdout.splitlines()
    assert f"run_id: {run_id}" in printed and run_id in printed  # the run's own line, then print(result.run_id)
    logged = mlflow_client(folder / "runs").get_run(run_id).data.metrics
    f1 = printed[printed.index(run_id) + 1]
    assert float(f1) == pytest.approx(logged["test/au_f1_mean"])  # train returns the run's own test metrics
    assert "AU12_r" in printed[printed.index(run_id) + 2]  # the head of the predictions table
    for figure in ("talk_aus.png", "talk_emotions.png"):
        assert (folder / figure).stat().st_size > 5000


@pytest.fixture(scope="module")
def model(docs_run):
    import affectlab

    folder, run_id, _ = docs_run
    return affectlab.load(run_id, store=folder / "runs")


def test_predict_gives_the_predict_csvs_columns_and_values(docs_run, model, tmp_path):
    folder, run_id, _ = docs_run
    frame = model.predict(folder / "talk.mp4")
    affectlab_inline("predict", "--run_id", run_id, "--store", str(folder / "runs"), "--out", str(tmp_path),
                     "--no-timeline", str(folder / "talk.mp4"))
    (written,) = tmp_path.rglob("talk*.csv")
    csv = pd.read_csv(written, keep_default_na=False, na_values=[""])
    assert list(frame.columns) == ["source"] + [c for c in csv.columns if c != "source"]
    assert (frame["source"] == str(folder / "talk.mp4")).all()
    assert frame["frame"].tolist() == list(range(1, 13)) and frame["frame"].dtype == "Int64"
    assert frame["success"].tolist() == csv["success"].tolist() and set(frame["success"]) == {0, 1}
    assert frame["face_id"].dtype == "Int64"
    values = [c for c in csv.columns if c.startswith(("AU", "emotion_"))]
    assert {f"AU{au:02d}_r" for au in ACTION_UNITS} | {f"emotion_{e}" for e in EMOTIONS} <= set(values)
    assert np.allclose(frame[values].to_numpy(float), csv[values].to_numpy(float), equal_nan=True)
    assert frame.attrs["run_id"] == run_id


def test_predict_reads_images_folders_and_lists_and_names_each_source(docs_run, model):
    folder, _, _ = docs_run
    frame = model.predict([folder / "photo.png", folder / "frames"])
    assert list(dict.fromkeys(frame["source"])) == [str(folder / "photo.png"), str(folder / "frames/000.png"),
                                                     str(folder / "frames/001.png")]
    assert (frame["success"] == 1).all() and (frame["frame"] == 1).all()


def test_an_unreadable_file_raises_naming_it_or_is_skipped_with_a_warning(docs_run, model, tmp_path):
    folder, _, _ = docs_run
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg: not a readable image"):
        model.predict([folder / "photo.png", broken])
    with pytest.warns(UserWarning, match="skipped .*broken.jpg"):
        frame = model.predict([folder / "photo.png", broken], skip_unreadable=True)
    assert frame["source"].tolist() == [str(folder / "photo.png")]


class BoxAt:
    """A detector that places one face at a fixed box (the interface MTCNN and any plugged-in detector share)."""

    def detect(self, images):
        from affectlab.data.media.face_detection import DetectedFace

        landmarks = np.array([[95, 70], [135, 70], [115, 90], [100, 110], [130, 110]], np.float32)
        return [[DetectedFace((70.0, 40.0, 166.0, 136.0), 0.99, landmarks)] for _ in images]


def test_load_takes_another_detector_and_the_predictors_options(docs_run):
    import affectlab

    folder, run_id, _ = docs_run
    model = affectlab.load(run_id, store=folder / "runs", detector=BoxAt(), crop_scale=1.0)
    assert model.predictor.crop_scale == 1.0
    frame = model.predict(folder / "photo.png")
    assert frame[["face_x", "face_y", "face_width", "face_height", "confidence"]].iloc[0].tolist() == [
        70.0, 40.0, 96.0, 96.0, 0.99]

    every_frame = affectlab.load(run_id, store=folder / "runs", detect_every=1, openface_columns="all")
    frame = every_frame.predict(folder / "talk.mp4")  # detected on every frame: the gap is exactly where it is
    assert frame["success"].tolist() == [1] * 4 + [0] * 6 + [1] * 2
    assert {"AU07_r", "AU45_c"} <= set(frame.columns) and frame["AU07_r"].isna().all()  # OpenFace's, not predicted
    assert [ax.get_ylabel() for ax in affectlab.api.plot_au_timeline(frame).axes] == [
        f"AU{au:02d}" for au in ACTION_UNITS]  # the empty ones get no strip
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        affectlab.load(run_id, store=folder / "runs", detector="nope")


def two_tracks() -> pd.DataFrame:
    """Six frames of two faces: face 1 is missing at frame 3, frame 5 has no face at all."""
    rows = []
    for frame in range(1, 7):
        faces = [] if frame == 5 else [0] if frame == 3 else [0, 1]
        if not faces:
            rows.append({"source": "v.mp4", "frame": frame, "face_id": pd.NA, "timestamp": frame / 10, "success": 0})
        for face in faces:
            rows.append({"source": "v.mp4", "frame": frame, "face_id": face, "timestamp": frame / 10, "success": 1,
                         "AU12_r": 1.0 + face, "AU01_r": 3.0 - face, "AU02_r": 0.5,
                         **{f"emotion_{e}": 1 / len(EMOTIONS) for e in EMOTIONS}})
    rows.append({"source": "w.mp4", "frame": 1, "face_id": 0, "timestamp": 0.0, "success": 1, "AU12_r": 4.0})
    return pd.DataFrame(rows)


def test_the_au_timeline_has_a_strip_per_au_in_order_and_a_line_per_track_with_gaps():
    from affectlab.api import plot_au_timeline

    figure = plot_au_timeline(two_tracks())
    assert [ax.get_ylabel() for ax in figure.axes] == ["AU01", "AU02", "AU12"]  # AU order, not column order
    au12 = figure.axes[2].get_lines()
    assert [line.get_label() for line in au12] == ["face 0", "face 1"]
    face1 = np.asarray(au12[1].get_ydata(), float)
    assert np.isnan(face1[[2, 4]]).all() and np.allclose(face1[[0, 1, 3, 5]], 2.0)  # gaps, not interpolated
    assert np.isnan(np.asarray(au12[0].get_ydata(), float)[4])  # frame 5: no face at all
    other = plot_au_timeline(two_tracks(), source="w.mp4")
    assert np.allclose(other.axes[-1].get_lines()[0].get_ydata(), [4.0])
    with pytest.raises(DataError, match="x.mp4.*hold"):
        plot_au_timeline(two_tracks(), source="x.mp4")


def test_emotions_over_time_have_a_panel_per_track():
    from affectlab.api import plot_emotions

    figure = plot_emotions(two_tracks())
    assert [ax.get_ylabel() for ax in figure.axes] == ["face 0", "face 1"]
    assert len(figure.axes[0].collections) == len(EMOTIONS)  # one stacked band per emotion
    with pytest.raises(DataError, match="no emotion head"):
        plot_emotions(two_tracks().drop(columns=[f"emotion_{e}" for e in EMOTIONS]))


def test_train_names_a_missing_config_and_the_bundled_ones():
    import affectlab

    with pytest.raises(ConfigError, match="experiment/no_such.yaml.*bundled config.*experiment/au_synth.yaml"):
        affectlab.train("experiment/no_such.yaml")


def test_import_affectlab_stays_light():
    code = ("import sys, affectlab; heavy = [m for m in ('torch', 'lightning', 'mlflow', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy; assert callable(affectlab.load) and callable(affectlab.train)")
    subprocess.run([sys.executable, "-c", code], env=cli_env(), check=True, timeout=120)
