"""Pose estimation into ``.pose`` files: estimators by name, each in its own virtual environment when its
dependencies clash with AffectLab's, driven through a subprocess (``pose_worker.py``: its docstring is the
protocol, JSON lines on stdin and stdout).

``affectlab pose setup NAME`` (or ``make pose-envs``) creates ``<envs>/<name>`` (default ``.venv-pose``, or
``$AFFECTLAB_POSE_ENVS``) with the estimator's pinned requirements; ``affectlab pose estimate --estimator NAME
VIDEO_OR_FOLDER... --out DIR`` finds the videos, keeps outputs that exist (resumable: a ``.pose`` file is only
ever renamed into place whole), sends the others to one worker, shows a progress bar (videos and the current
video's frames), and reports the videos it could not read, which are skipped. A worker that dies is restarted
for the videos left, its video counted as failed.

Estimators (``ESTIMATORS``):

- ``mediapipe_holistic``: MediaPipe Holistic 0.10.21, the last release whose wheel still bundles Holistic's
  models (later ones, and 1.x, have no ``solutions`` and need ``.task`` files downloaded); it needs numpy<2,
  hence its own environment. Body, face mesh, both hands and world landmarks, pose-format's holistic header.
- ``keypointrcnn``: torchvision's Keypoint R-CNN, COCO's 17 body keypoints (a body without face or hands),
  its weights from a local file (``--option weights=PATH``), never downloaded. Chosen as the second because
  its code ships in a package AffectLab already depends on (torchvision) and the user can give its COCO
  weights as a file; it runs in the main environment. MediaPipe's other bundled models (Pose, Hands,
  FaceMesh) are parts of Holistic, and the other whole-body estimators pose-format reads (OpenPose,
  AlphaPose, MMPose, RTMLib) download their weights at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectlab.errors import ConfigError, DataError

WORKER = Path(__file__).with_name("pose_worker.py")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
READY_MARK = ".affectlab-ready"


@dataclass(frozen=True)
class EstimatorSpec:
    """One estimator.

    Attributes:
        name: what ``--estimator`` calls it (the worker's class of the same key).
        description: one line for listings.
        requirements: the pinned packages of its own environment; None: it runs in the main environment.
        python: the interpreter its environment is made with (None: the one running AffectLab).
        options: its options (``--option KEY=VALUE``) and what each does.
    """

    name: str
    description: str
    requirements: tuple[str, ...] | None
    python: str | None = None
    options: dict[str, str] = field(default_factory=dict)


ESTIMATORS = {
    "mediapipe_holistic": EstimatorSpec(
        "mediapipe_holistic", "MediaPipe Holistic 0.10.21: body 33, face 468, hands 2 x 21, world 33 (XYZC)",
        ("mediapipe==0.10.21", "numpy<2", "pose-format==0.15.0", "av==18.1.0", "scikit-video==1.1.11"),
        options={"refine_face_landmarks": "true adds the 10 iris points (478 face points)",
                 "min_detection_confidence": "0.5", "min_tracking_confidence": "0.5"}),
    "keypointrcnn": EstimatorSpec(
        "keypointrcnn", "torchvision Keypoint R-CNN: COCO's 17 body keypoints as holistic body points (XYC)", None,
        options={"weights": "a local keypointrcnn_resnet50_fpn COCO state dict (required)",
                 "random_init": "true: untrained seeded weights, for protocol tests", "min_size": "512 (pixels)",
                 "score_threshold": "0.5", "proposals": "1000 (region proposals kept per frame)",
                 "threads": "1"}),
}


def estimator(name: str) -> EstimatorSpec:
    if name not in ESTIMATORS:
        raise ConfigError(f"--estimator {name!r} is not one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name]


def envs_root(envs: str | Path | None = None) -> Path:
    return Path(envs or os.environ.get("AFFECTLAB_POSE_ENVS") or ".venv-pose")


def _requirements_digest(spec: EstimatorSpec) -> str:
    return hashlib.sha256("\n".join(spec.requirements or ()).encode()).hexdigest()[:16]


def env_python(name: str, envs: str | Path | None = None) -> Path:
    """The Python that runs estimator ``name``'s worker; a ConfigError saying how to make its environment."""
    spec = estimator(name)
    if spec.requirements is None:
        return Path(sys.executable)
    folder = envs_root(envs) / name
    python = folder / "bin" / "python"
    mark = folder / READY_MARK
    if not python.exists() or not mark.is_file() or mark.read_text().strip() != _requirements_digest(spec):
        raise ConfigError(f"pose estimator {name}: its environment {folder} is missing or out of date; create it with "
                          f"'affectlab pose setup {name}' (or 'make pose-envs'), or point --envs / "
                          "AFFECTLAB_POSE_ENVS at the folder holding it")
    return python


def setup_env(name: str, envs: str | Path | None = None, python: str | None = None,
              run: Callable[..., Any] = subprocess.run) -> Path:
    """Create (or bring up to date) estimator ``name``'s environment; its folder. Nothing to do for an
    estimator of the main environment. The machine-wide pip constraints (pinning the main environment's numpy)
    are lifted for this environment only: its own requirements pin what it needs."""
    spec = estimator(name)
    if spec.requirements is None:
        return Path(sys.prefix)
    folder = envs_root(envs) / name
    mark = folder / READY_MARK
    if mark.is_file() and mark.read_text().strip() == _requirements_digest(spec):
        return folder
    interpreter = python or spec.python or sys.executable
    if not (folder / "bin" / "python").exists():
        run([interpreter, "-m", "venv", str(folder)], check=True)
    env = dict(os.environ, PIP_CONSTRAINT="")
    run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", *spec.requirements], check=True, env=env)
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(_requirements_digest(spec) + "\n")
    return folder


def find_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """The videos named, and those inside the folders named (recursively), sorted; a missing path is a DataError."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"pose estimate: {item} is neither a video nor a folder")
    return list(dict.fromkeys(p.resolve() for p in found))


def output_paths(videos: Sequence[Path], out: str | Path) -> dict[Path, Path]:
    """Each video's ``.pose`` path under ``out``: its path below the videos' common folder, so none collide."""
    if not videos:
        return {}
    common = Path(os.path.commonpath([str(v.parent) for v in videos]))
    return {v: Path(out) / v.relative_to(common).with_suffix(".pose") for v in videos}


@dataclass
class EstimateReport:
    """What ``estimate_poses`` did: files written (with frames), kept from an earlier run, and failed videos."""

    written: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


class PoseWorker:
    """One worker process (``pose_worker.py``) running ``name`` with ``options``; ``estimate`` one video at a
    time. Its standard error goes to a temporary file, shown when it fails to start."""

    def __init__(self, name: str, options: dict[str, Any], python: Path) -> None:
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)  # the worker imports only its environment's packages
        self.process = subprocess.Popen([str(python), str(WORKER), "--estimator", name, "--options", json.dumps(options)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        bufsize=1, env=env)
        ready = self.read()
        if ready is None or ready.get("event") != "ready":
            error = ready.get("error") if ready else "it exited before saying it was ready"
            self.close()
            raise ConfigError(f"pose estimator {name} could not start: {error}{self.stderr_tail()}")
        self.versions = ready.get("versions", {})

    def read(self) -> dict[str, Any] | None:
        line = self.process.stdout.readline()
        return json.loads(line) if line else None

    def stderr_tail(self, chars: int = 2000) -> str:
        self.log.seek(0)
        text = self.log.read()[-chars:].strip()
        return f"\n--- its standard error ---\n{text}" if text else ""

    def estimate(self, video: Path, out: Path, max_frames: int | None,
                 on_event: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Send one video; every event to ``on_event``; the final ``done`` or ``error`` event (an ``error`` too
        when the worker died)."""
        self.process.stdin.write(json.dumps({"video": str(video), "out": str(out), "max_frames": max_frames}) + "\n")
        self.process.stdin.flush()
        while True:
            event = self.read()
            if event is None:
                return {"event": "error", "video": str(video), "died": True,
                        "error": f"the {self.name} worker died (exit status {self.process.wait()}){self.stderr_tail(500)}"}
            on_event(event)
            if event.get("event") in ("done", "error"):
                return event

    def close(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as the worker's keyword arguments (VALUE read as JSON where it is: numbers, true)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {pair!r}: not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def estimate_poses(name: str, inputs: Sequence[str | Path], out: str | Path, options: dict[str, Any] | None = None,
                   envs: str | Path | None = None, max_frames: int | None = None, progress: bool = True) -> EstimateReport:
    """Write one ``.pose`` file per video of ``inputs`` under ``out`` with estimator ``name`` (module docstring)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    spec = estimator(name)
    unknown = sorted(set(options or {}) - set(spec.options))
    if unknown:
        raise ConfigError(f"--option {', '.join(unknown)}: not an option of {name} ({', '.join(spec.options)})")
    python = env_python(name, envs)
    videos = find_videos(inputs)
    targets = output_paths(videos, out)
    report = EstimateReport()
    todo = []
    for video, target in targets.items():
        if target.is_file():
            report.kept.append(str(target))
        else:
            todo.append(video)
    if not todo:
        return report
    worker: PoseWorker | None = None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        overall = bar.add_task(f"{name}: videos", total=len(todo))
        frames = bar.add_task("frames", total=None)
        try:
            for video in todo:
                if worker is None:
                    worker = PoseWorker(name, options or {}, python)
                    report.versions = worker.versions
                bar.update(frames, description=f"{video.name}: frames", completed=0, total=None)

                def show(event: dict[str, Any]) -> None:
                    if event["event"] == "start":
                        total = event.get("frames")
                        bar.update(frames, total=min(total, max_frames) if total and max_frames else total)
                    elif event["event"] == "progress":
                        bar.update(frames, completed=event["frame"])
                    elif event["event"] == "done":
                        bar.update(frames, completed=event["frames"], total=event["frames"])

                result = worker.estimate(video, targets[video], max_frames, show)
                if result["event"] == "done":
                    report.written[str(targets[video])] = int(result["frames"])
                else:
                    report.failed[str(video)] = result["error"]
                    if result.get("died"):
                        worker.close()
                        worker = None  # a fresh one for the videos left
                bar.advance(overall)
        finally:
            if worker is not None:
                worker.close()
    return report
