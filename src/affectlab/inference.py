"""Prediction on images and videos: faces found, followed, cropped, aligned, and read by a trained face model.

Per input file (``FacePredictor.predict_file``), in chunks of frames so memory stays flat on long videos:
1. frames      an image is one frame; a video is decoded in order (``data/media/video.py``), optionally subsampled
2. faces       boxes, scores and landmarks from the detector (``data/media/face_detection.py``, MTCNN by
               default, others by name), on every ``detect_every``-th frame and the last
3. tracks      detections linked across frames (``data/media/face_tracking.py``: IoU, Hungarian), so
               ``face_id`` is a track id as in OpenFace; frames between detected ones take interpolated boxes
4. crops       each face cut square, eyes levelled, resized to the model's input size    (F, S, S, 3) uint8
5. model       the run's heads on the crops, in PyTorch or onnxruntime (``ModelBackend``)  per head (F, A_h)
6. rows        one row per face per frame, OpenFace 2.0 column names; a frame without a face gets one row as
               in OpenFace: ``face_id`` 0, ``success`` 0, ``confidence`` and every value 0

Columns (``csv_columns``): ``frame`` (from 1, as OpenFace), ``face_id``, ``timestamp`` (s), ``confidence``,
``success``, ``face_x/y/width/height`` (pixels), then per AU ``AU01_r`` (intensity 0-5), ``AU01_c`` (presence
0/1 at the model's validated threshold), ``AU01_p`` (presence probability, not in OpenFace), then
``emotion_<name>`` probabilities when the model has an emotion head. ``openface_columns="all"`` puts
OpenFace's ``-aus`` layout first, with empty columns for the AUs the model does not predict (docs/predict.md).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.data.contract import EMOTIONS
from affectlab.data.media.face_detection import DetectedFace, FaceDetectorProtocol, align_crop
from affectlab.data.media.face_tracking import FaceTracker, interpolate_faces
from affectlab.data.images import IMAGE_EXTENSIONS as IMAGE_SUFFIXES
from affectlab.data.media.video import VIDEO_SUFFIXES, VideoDecodeError, VideoFrame, VideoReader
from affectlab.errors import ConfigError, DataError
from affectlab.io import atomic_write_text


@dataclass(frozen=True)
class HeadSpec:
    """What one head of the model outputs: its task, the AUs of its columns, thresholds for presence."""

    task: str  # au | au_intensity | emotion
    aus: list[int]
    thresholds: np.ndarray | None = None  # (A,) for au heads


def head_specs(model: torch.nn.Module) -> list[HeadSpec]:
    specs = []
    for i, head in enumerate(model.heads):
        thresholds = getattr(model, f"thresholds_{i}", None)
        specs.append(HeadSpec(head.task, list(head.aus),
                              None if thresholds is None or head.task != "au" else thresholds.numpy().copy()))
    return specs


class ModelBackend:
    """Runs the model's ``onnx_forward`` on ``[N, 1, 3, S, S]`` float32 frames: in PyTorch eager, or in
    onnxruntime on the exported graph (``onnx_path``). Returns per head its ``[N, A_h]`` outputs."""

    def __init__(self, model: torch.nn.Module, onnx_path: str | Path | None = None, threads: int | None = None) -> None:
        if not hasattr(model, "onnx_forward"):
            raise ConfigError(f"{type(model).__name__} is not a face model: predict needs a run of a method with "
                              "per-frame heads (affectlab.methods.AUModel and its semi-supervised variants)")
        self.model = model.eval()
        self.image_size = int(getattr(model, "image_size", 64))
        self.session = None
        if onnx_path is not None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name

    @property
    def name(self) -> str:
        return "onnxruntime" if self.session is not None else "pytorch"

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        if self.session is not None:
            return list(self.session.run(None, {self.input_name: frames}))
        with torch.inference_mode():
            return [o.numpy() for o in self.model.onnx_forward(torch.from_numpy(frames))]


# OpenFace 2.0's AU columns (FeatureExtraction -aus): intensities of 17 AUs, presence of 18 (AU28 presence only).
OPENFACE_INTENSITY_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
OPENFACE_PRESENCE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)
OPENFACE_COLUMNS = ("model", "all")
FRAME_COLUMNS = ["frame", "face_id", "timestamp", "confidence", "success"]
BOX_COLUMNS = ["face_x", "face_y", "face_width", "face_height"]


def csv_columns(specs: list[HeadSpec], emotion_names: tuple[str, ...] = EMOTIONS, openface: str = "model") -> list[str]:
    """The CSV's columns. ``openface`` "model": OpenFace's first five, the face box, then the AUs the model
    predicts (``_r``, ``_c``, ``_p``) and emotions. "all": OpenFace's ``-aus`` layout first (its five, then
    every OpenFace AU's ``_r`` and ``_c`` in its order, empty where the model does not predict the AU, so
    scripts that index columns by position work), then the face box, ``_p`` and emotions."""
    if openface not in OPENFACE_COLUMNS:
        raise ConfigError(f"openface columns {openface!r}: choose one of {', '.join(OPENFACE_COLUMNS)}")
    intensity = sorted({au for s in specs if s.task == "au_intensity" for au in s.aus})
    presence = sorted({au for s in specs if s.task == "au" for au in s.aus})
    emotions = [f"emotion_{name}" for name in emotion_names] if any(s.task == "emotion" for s in specs) else []
    probabilities = [f"AU{au:02d}_p" for au in presence]
    if openface == "all":
        intensity = sorted(set(intensity) | set(OPENFACE_INTENSITY_AUS))
        presence = sorted(set(presence) | set(OPENFACE_PRESENCE_AUS))
        return (FRAME_COLUMNS + [f"AU{au:02d}_r" for au in intensity] + [f"AU{au:02d}_c" for au in presence]
                + BOX_COLUMNS + probabilities + emotions)
    return (FRAME_COLUMNS + BOX_COLUMNS + [f"AU{au:02d}_r" for au in intensity] + [f"AU{au:02d}_c" for au in presence]
            + probabilities + emotions)


def predicted_columns(specs: list[HeadSpec], emotion_names: tuple[str, ...] = EMOTIONS) -> list[str]:
    """The columns the model fills (box included): zeros on a row without a face; the others stay empty."""
    return [c for c in csv_columns(specs, emotion_names) if c not in FRAME_COLUMNS]


def unpredicted_aus(specs: list[HeadSpec]) -> list[str]:
    """OpenFace's AU columns this model leaves empty (``--openface-columns all``)."""
    model = set(csv_columns(specs))
    everything = csv_columns(specs, openface="all")
    return [c for c in everything if c.startswith("AU") and c not in model]


def face_values(specs: list[HeadSpec], outputs: list[np.ndarray], row: int,
                emotion_names: tuple[str, ...] = EMOTIONS) -> dict[str, Any]:
    """The model's columns of one face from the heads' outputs (first head wins where two predict one AU)."""
    values: dict[str, Any] = {}
    for spec, output in zip(specs, outputs):
        for k, au in enumerate(spec.aus):
            if spec.task == "au_intensity":
                values.setdefault(f"AU{au:02d}_r", round(float(output[row, k]), 3))
            elif spec.task == "au":
                p = float(output[row, k])
                values.setdefault(f"AU{au:02d}_p", round(p, 4))
                values.setdefault(f"AU{au:02d}_c", int(p >= spec.thresholds[k]))
        if spec.task == "emotion":
            for name, p in zip(emotion_names, output[row]):
                values.setdefault(f"emotion_{name}", round(float(p), 4))
    return values


@dataclass
class FileReport:
    """What happened to one input file."""

    path: Path
    frames: int = 0
    faces: int = 0
    frames_without_face: int = 0
    detected_frames: int = 0  # frames the detector ran on (the others were tracked)
    tracks: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: bool = False
    csv: Path | None = None
    timelines: list[Path] = field(default_factory=list)  # one per track, longest first

    def summary(self, combined: Path | None = None) -> list[str]:
        """Lines for the report: what was read and written, or why the file was skipped."""
        if self.skipped:
            return [f"skipped {self.path}: {'; '.join(self.problems)}"]
        rate = self.frames / self.seconds if self.seconds else 0.0
        return [f"{self.path}: {self.frames} frames, {self.faces} faces in {self.tracks} tracks, "
                f"{self.frames_without_face} frames without a face, {rate:.1f} frames/s -> {self.csv or combined}"
                + (f", {len(self.timelines)} timelines" if self.timelines else "")] + [
                f"  problem: {p}" for p in self.problems]

    @property
    def timeline(self) -> Path | None:
        """The longest track's timeline (the one plot of a one-face video)."""
        return self.timelines[0] if self.timelines else None


def iterate_inputs(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, and the images and videos inside folders (recursively, sorted), each once."""
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        found = (sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
                 if path.is_dir() else [path])
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


def output_names(files: Iterable[Path]) -> dict[Path, str]:
    """Each file's output name, collision-free: its path relative to the files' common folder without the
    suffix (``x/img.png`` and ``y/img.png`` give ``x/img`` and ``y/img``), with the suffix kept where two
    files differ only by it (``img.png`` and ``img.jpg`` give ``img.png`` and ``img.jpg``)."""
    files = list(files)
    if not files:
        return {}
    absolute = [f.resolve() for f in files]
    root = Path(os.path.commonpath([a.parent for a in absolute]))
    relative = [a.relative_to(root) for a in absolute]
    stems = [r.with_suffix("").as_posix() for r in relative]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return {f: (stem if counts[stem] == 1 else r.as_posix()) for f, r, stem in zip(files, relative, stems)}


def read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except Exception as error:  # PIL raises several unrelated types for truncated or foreign files
        raise DataError(f"{path}: not a readable image ({error})") from None


def frames_of(path: Path, fps: float | None, every: int) -> tuple[Iterator[VideoFrame], VideoReader | None]:
    """The frames of an image or a video (raises ``DataError`` when the file cannot be opened)."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        reader = VideoReader(path, fps=fps, every=every)
        return iter(reader), reader
    return iter([VideoFrame(0, 0.0, read_image(path))]), None


def expected_frames(reader: VideoReader | None, fps: float | None, every: int) -> int | None:
    """How many frames a video will yield, from its container's declarations (None: unknown)."""
    if reader is None:
        return 1
    info = reader.info
    if fps is not None and info.duration:
        return max(1, int(np.ceil(info.duration * fps)))
    return -(-info.declared_frames // every) if info.declared_frames else None


# Detection every 5 frames, tracking between: 2.8x the frames/s of per-frame MTCNN in benchmarks/predict.py
# (640 x 360, one thread), AU outputs within the tolerance docs/predict.md states (measured there).
DEFAULT_DETECT_EVERY = 5

TrackedFrame = tuple[VideoFrame, list[tuple[int, DetectedFace]]]  # a frame and its (track id, face) pairs


class FacePredictor:
    """Steps 1-6 for any number of files; ``predict_file`` writes one CSV (and per track a timeline).

    Args:
        backend: the model (``ModelBackend``).
        detector: any object with ``detect(images)`` (``face_detection.create_detector``).
        specs: the model's heads (``head_specs``).
        crop_scale: crop side as a multiple of the face box.
        chunk_frames: frames per model batch (memory stays flat).
        detect_every: run the detector on every k-th frame, track in between (1: every frame).
        max_missed: frames a track may go unmatched before it is lost.
        min_iou: least IoU for a detection to continue a track.
        openface_columns: "model" or "all" (``csv_columns``).
    """

    def __init__(self, backend: ModelBackend, detector: FaceDetectorProtocol, specs: list[HeadSpec],
                 crop_scale: float = 1.3, chunk_frames: int = 32, detect_every: int = DEFAULT_DETECT_EVERY,
                 max_missed: int = 10, min_iou: float = 0.2, openface_columns: str = "model") -> None:
        if detect_every < 1:
            raise ConfigError(f"detect every {detect_every} frames: give a positive number")
        self.backend, self.detector, self.specs = backend, detector, specs
        self.crop_scale, self.chunk_frames, self.detect_every = crop_scale, chunk_frames, detect_every
        self.max_missed, self.min_iou = max_missed, min_iou
        self.columns = csv_columns(specs, openface=openface_columns)
        self.zeros = dict.fromkeys(predicted_columns(specs), 0)

    def tracked_frames(self, frames: Iterator[VideoFrame], report: FileReport | None = None
                       ) -> Iterator[list[TrackedFrame]]:
        """Steps 2-3 in groups of frames: detection on every ``detect_every``-th frame (and the last, and the
        first of a new frame size), tracks linked on detected frames (``FaceTracker``), faces interpolated on
        the frames between them; where two detected frames hold different numbers of faces, the frames between
        them are detected too (a face's first and last rows are then where per-frame detection puts them)."""
        tracker = FaceTracker(self.min_iou, self.max_missed)
        keys_per_batch = max(1, self.chunk_frames // self.detect_every)
        pending: list[tuple[int, VideoFrame, bool]] = []  # frames not yet emitted: position, frame, detect it?
        previous: tuple[int, dict[int, DetectedFace]] | None = None  # the last detected frame's tracks

        def emit(detect_last: bool) -> list[TrackedFrame]:
            nonlocal previous, pending
            if detect_last:
                pending[-1] = (*pending[-1][:2], True)
            keys = [(p, f) for p, f, key in pending if key]
            detections = self.detector.detect([f.image for _, f in keys])
            if report is not None:
                report.detected_frames += len(keys)
            out: list[TrackedFrame] = []
            queue = iter(pending)
            for (position, frame), faces in zip(keys, detections):
                between = []
                for item in queue:
                    if item[0] == position:
                        break
                    between.append(item)
                if between and previous is not None and len(previous[1]) != len(faces):
                    # A face appeared or left between two detected frames: detect the frames between too, so
                    # the rows where it is there or not agree with per-frame detection.
                    if report is not None:
                        report.detected_frames += len(between)
                    for (p, f, _), found in zip(between, self.detector.detect([f.image for _, f, _ in between])):
                        out.append((f, sorted(zip(tracker.update(found, p), found))))
                    between = []
                current = dict(zip(tracker.update(faces, position), faces))
                for p, f, _ in between:
                    before_p, before = previous if previous is not None else (p, {})
                    fraction = (p - before_p) / (position - before_p)
                    out.append((f, sorted(interpolate_faces(before, current, fraction).items())))
                out.append((frame, sorted(current.items())))
                previous = (position, current)
            pending = [item for item in pending if item[0] > keys[-1][0]]
            return out

        shape = None
        for position, frame in enumerate(frames):
            resized = shape is not None and frame.image.shape != shape
            if resized and pending:
                yield emit(detect_last=True)  # boxes are never carried across a change of frame size
            shape = frame.image.shape
            key = position % self.detect_every == 0 or resized
            pending.append((position, frame, key))
            if key and sum(k for _, _, k in pending) >= keys_per_batch:
                yield emit(detect_last=False)
        if pending:
            yield emit(detect_last=True)

    def rows(self, frames: Iterator[VideoFrame], report: FileReport,
             progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """One row per face per frame (steps 2-6); ``progress(n)`` after every ``n`` frames."""
        size = self.backend.image_size
        track_ids: set[int] = set()
        for group in self.tracked_frames(frames, report):
            for start in range(0, len(group), self.chunk_frames):
                chunk = group[start:start + self.chunk_frames]
                owners = [(f, track_id, face) for f, faces in chunk for track_id, face in faces]
                crops = [align_crop(f.image, face, size, self.crop_scale) for f, _, face in owners]  # 4.
                outputs: list[np.ndarray] = []
                if crops:
                    batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)[:, None] / 255.0  # (F, 1, 3, S, S)
                    outputs = self.backend(np.ascontiguousarray(batch))  # 5.
                report.frames += len(chunk)
                report.faces += len(crops)
                row = 0
                for f, faces in chunk:  # 6.
                    if not faces:
                        report.frames_without_face += 1
                        yield {"frame": f.index + 1, "face_id": 0, "timestamp": round(f.time, 4), "confidence": 0,
                               "success": 0, **self.zeros}
                    for track_id, face in faces:
                        track_ids.add(track_id)
                        yield {"frame": f.index + 1, "face_id": track_id, "timestamp": round(f.time, 4),
                               "confidence": round(face.score, 4), "success": 1, **_box(face),
                               **face_values(self.specs, outputs, row)}
                        row += 1
                if progress is not None:
                    progress(len(chunk))
        report.tracks = len(track_ids)

    def predict_file(self, path: Path, out_dir: Path, fps: float | None = None, every: int = 1,
                     timeline: bool = True, name: str | None = None,
                     sink: Callable[[dict[str, Any]], None] | None = None,
                     progress: Callable[[int, int | None], None] | None = None) -> FileReport:
        """Predicts ``path``: rows to ``<out_dir>/<name>.csv`` (``name`` defaults to the file's stem; see
        ``output_names``), or to ``sink`` when given (a combined CSV); per track of a video a timeline
        ``<out_dir>/<name>_timeline_face<id>.png``. ``progress(done, total)`` reports frames as they are done."""
        report = FileReport(path)
        start = time.perf_counter()
        try:
            frames, reader = frames_of(path, fps, every)  # 1.
        except (DataError, VideoDecodeError) as error:
            report.skipped = True
            report.problems.append(str(error))
            return report
        name = name or path.stem
        total, done = expected_frames(reader, fps, every), 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        rows_for_plot: list[dict[str, Any]] = []
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns, restval="")
        if sink is None:
            writer.writeheader()
        for row in self.rows(frames, report, advance):
            if sink is None:
                writer.writerow(row)
            else:
                sink(row)
            if reader is not None and timeline:
                rows_for_plot.append(row)
        if sink is None:
            target = out_dir / f"{name}.csv"
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, buffer.getvalue())  # a CSV is whole or absent
            report.csv = target
        if reader is not None and reader.problem:
            report.problems.append(reader.problem)
        if report.frames == 0:
            report.problems.append(f"{path}: no frame could be read")
        if rows_for_plot:
            report.timelines = self.write_timelines(rows_for_plot, out_dir, name, path.name)
        report.seconds = time.perf_counter() - start
        return report

    def write_timelines(self, rows: list[dict[str, Any]], out_dir: Path, name: str, title: str,
                        max_tracks: int = 10) -> list[Path]:
        """One AU timeline per track of at least two frames (the ``max_tracks`` longest), on the video's time axis."""
        import matplotlib.pyplot as plt

        from affectlab.plots import au_timeline_figure

        lengths: dict[int, int] = {}
        for r in rows:
            if r.get("success"):
                lengths[r["face_id"]] = lengths.get(r["face_id"], 0) + 1
        tracks = sorted((t for t, n in lengths.items() if n >= 2), key=lambda t: (-lengths[t], t))[:max_tracks]
        paths = []
        for track_id in tracks:
            figure = au_timeline_figure(rows, title=f"{title}, face {track_id}", face_id=track_id)
            target = out_dir / f"{name}_timeline_face{track_id}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(target, dpi=110)
            plt.close(figure)
            paths.append(target)
        return paths


def predict_files(predictor: FacePredictor, files: list[Path], out_dir: Path, fps: float | None = None,
                  every: int = 1, timeline: bool = True, combined: bool = False,
                  on_file: Callable[[Path | None], None] | None = None,
                  on_frames: Callable[[int, int | None], None] | None = None) -> list[FileReport]:
    """Every file through ``predictor.predict_file``, named by ``output_names``; with ``combined``, all rows in
    one ``<out_dir>/predictions.csv`` whose first column ``source`` is the input's path relative to the files'
    common folder. ``on_file(path)`` before each file and ``on_file(None)`` after it; ``on_frames(done, total)``
    as a file's frames are done."""
    names = output_names(files)
    buffer, writer = io.StringIO(), None
    if combined:
        writer = csv.DictWriter(buffer, ["source", *predictor.columns], restval="")
        writer.writeheader()
    reports = []
    for path in files:
        if on_file is not None:
            on_file(path)
        source = names[path] if names[path].endswith(path.suffix) else names[path] + path.suffix
        sink = (lambda row, source=source: writer.writerow({"source": source, **row})) if writer else None
        reports.append(predictor.predict_file(path, out_dir, fps, every, timeline, name=names[path], sink=sink,
                                              progress=on_frames))
        if on_file is not None:
            on_file(None)
    if writer is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "predictions.csv", buffer.getvalue())  # whole or absent
    return reports


def _box(face: DetectedFace) -> dict[str, float]:
    x1, y1, x2, y2 = face.box
    return {"face_x": round(x1, 1), "face_y": round(y1, 1), "face_width": round(x2 - x1, 1),
            "face_height": round(y2 - y1, 1)}
