"""Prediction on images and videos: faces found, cropped, aligned, and read by a trained face model.

Per input file (``predict_file``), in chunks of frames so memory stays flat on long videos:
1. frames      an image is one frame; a video is decoded in order (``data/video.py``), optionally subsampled
2. faces       MTCNN boxes, scores and landmarks per frame (``data/face_detection.py``)
3. crops       each face cut square, eyes levelled, resized to the model's input size    (F, S, S, 3) uint8
4. model       the run's heads on the crops, in PyTorch or onnxruntime (``ModelBackend``)  per head (F, A_h)
5. rows        one row per face per frame, OpenFace 2.0 column names; a frame without a face still gets a
               row, with ``success`` 0 and empty values, so a timeline has no silent holes

Columns (``csv_columns``): ``frame`` (from 1, as OpenFace), ``face_id``, ``timestamp`` (s), ``confidence``,
``success``, ``face_x/y/width/height`` (pixels), then per AU ``AU01_r`` (intensity 0-5), ``AU01_c`` (presence
0/1 at the model's validated threshold), ``AU01_p`` (presence probability, not in OpenFace), then
``emotion_<name>`` probabilities when the model has an emotion head.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.data.contract import EMOTIONS
from affectlab.data.media.face_detection import DetectedFace, FaceDetector, align_crop
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


def csv_columns(specs: list[HeadSpec], emotion_names: tuple[str, ...] = EMOTIONS) -> list[str]:
    columns = ["frame", "face_id", "timestamp", "confidence", "success", "face_x", "face_y", "face_width", "face_height"]
    intensity = sorted({au for s in specs if s.task == "au_intensity" for au in s.aus})
    presence = sorted({au for s in specs if s.task == "au" for au in s.aus})
    columns += [f"AU{au:02d}_r" for au in intensity]
    columns += [f"AU{au:02d}_c" for au in presence]
    columns += [f"AU{au:02d}_p" for au in presence]
    if any(s.task == "emotion" for s in specs):
        columns += [f"emotion_{name}" for name in emotion_names]
    return columns


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
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: bool = False
    csv: Path | None = None
    timeline: Path | None = None


def iterate_inputs(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, and the images and videos inside folders (recursively, sorted)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        else:
            yield path


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


def _chunks(frames: Iterator[VideoFrame], size: int) -> Iterator[list[VideoFrame]]:
    chunk: list[VideoFrame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class FacePredictor:
    """Steps 1-5 for any number of files; ``predict_file`` writes one CSV (and a timeline for a video)."""

    def __init__(self, backend: ModelBackend, detector: FaceDetector, specs: list[HeadSpec],
                 crop_scale: float = 1.3, chunk_frames: int = 32) -> None:
        self.backend, self.detector, self.specs = backend, detector, specs
        self.crop_scale, self.chunk_frames = crop_scale, chunk_frames
        self.columns = csv_columns(specs)

    def rows(self, frames: Iterator[VideoFrame], report: FileReport) -> Iterator[dict[str, Any]]:
        size = self.backend.image_size
        for chunk in _chunks(frames, self.chunk_frames):
            detections = self.detector.detect([f.image for f in chunk])  # 2.
            crops, owners = [], []
            for f, faces in zip(chunk, detections):
                for face_id, face in enumerate(faces):
                    crops.append(align_crop(f.image, face, size, self.crop_scale))  # 3.
                    owners.append((f, face_id, face))
            outputs: list[np.ndarray] = []
            if crops:
                batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)[:, None] / 255.0  # (F, 1, 3, S, S)
                outputs = self.backend(np.ascontiguousarray(batch))  # 4.
            report.frames += len(chunk)
            report.faces += len(crops)
            by_frame: dict[int, list[int]] = {}
            for row, (f, _, _) in enumerate(owners):
                by_frame.setdefault(f.index, []).append(row)
            for f in chunk:  # 5.
                if f.index not in by_frame:
                    report.frames_without_face += 1
                    yield {"frame": f.index + 1, "face_id": "", "timestamp": round(f.time, 4), "confidence": "",
                           "success": 0}
                    continue
                for row in by_frame[f.index]:
                    _, face_id, face = owners[row]
                    yield {"frame": f.index + 1, "face_id": face_id, "timestamp": round(f.time, 4),
                           "confidence": round(face.score, 4), "success": 1, **_box(face),
                           **face_values(self.specs, outputs, row)}

    def predict_file(self, path: Path, out_dir: Path, fps: float | None = None, every: int = 1,
                     timeline: bool = True) -> FileReport:
        report = FileReport(path)
        start = time.perf_counter()
        try:
            frames, reader = frames_of(path, fps, every)  # 1.
        except (DataError, VideoDecodeError) as error:
            report.skipped = True
            report.problems.append(str(error))
            return report
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{path.stem}.csv"
        rows_for_plot: list[dict[str, Any]] = []
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns, restval="")
        writer.writeheader()
        for row in self.rows(frames, report):
            writer.writerow(row)
            if reader is not None and timeline:
                rows_for_plot.append(row)
        atomic_write_text(target, buffer.getvalue())  # a CSV is whole or absent
        report.csv = target
        if reader is not None and reader.problem:
            report.problems.append(reader.problem)
        if report.frames == 0:
            report.problems.append(f"{path}: no frame could be read")
        if rows_for_plot and any(r.get("success") for r in rows_for_plot):
            from affectlab.plots import au_timeline_figure

            figure = au_timeline_figure(rows_for_plot, title=path.name)
            report.timeline = out_dir / f"{path.stem}_timeline.png"
            figure.savefig(report.timeline, dpi=110)
            import matplotlib.pyplot as plt

            plt.close(figure)
        report.seconds = time.perf_counter() - start
        return report


def _box(face: DetectedFace) -> dict[str, float]:
    x1, y1, x2, y2 = face.box
    return {"face_x": round(x1, 1), "face_y": round(y1, 1), "face_width": round(x2 - x1, 1),
            "face_height": round(y2 - y1, 1)}
