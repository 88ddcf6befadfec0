"""Face detectors by name (MTCNN by default) and alignment: what turns a photo or a video frame into a crop.

A detector is any object with ``detect(images: list[[H, W, 3] uint8 RGB]) -> list[list[DetectedFace]]``
(``FaceDetectorProtocol``). ``create_detector(name, weights=..., **options)`` builds one by name: the ones in
``DETECTORS`` (``mtcnn``, the default; ``yunet``, an ONNX file the user provides, run in onnxruntime), those a
user adds with ``@register_detector("name")``, or any class given by its dotted path (``mypkg.faces.MyDetector``).
Weights always come from a local path: nothing is ever fetched.

MTCNN (Zhang et al. 2016, the cascade P-Net -> R-Net -> O-Net) comes from facenet-pytorch, whose three small
networks' weights ship inside its wheel: nothing is fetched at run time. facenet-pytorch pins an old torch, so
the Makefile installs it with ``--no-deps`` beside our pinned torch (its code runs unchanged on it).

Per image: ``FaceDetector.detect`` gives every face's box, score and five landmarks (eyes, nose, mouth corners);
``align_crop`` cuts a square around the box, rotated so the eyes are level (roll removed), resized to the
model's input size. Images of different sizes are detected in separate batches (MTCNN batches need one size),
so a video whose frame size changes mid-stream, or a folder of mixed photos, needs nothing special.
"""

from __future__ import annotations

import importlib
import inspect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from affectlab.errors import ConfigError

INSTALL_HINT = ("face detection needs facenet-pytorch (MTCNN): `make .venv/.installed` installs it, or "
                "`pip install --no-deps facenet-pytorch==2.6.0` (--no-deps: it pins an old torch)")


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    score: float  # MTCNN's O-Net face probability
    landmarks: np.ndarray  # (5, 2) x, y: eye, eye, nose, mouth corner, mouth corner (image left to right)

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


class FaceDetectorProtocol(Protocol):
    """What ``affectlab predict`` needs of a detector."""

    def detect(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces in each ``[H, W, 3]`` uint8 RGB image, largest first."""
        ...


DETECTORS: dict[str, type] = {}


def register_detector(name: str) -> Callable[[type], type]:
    """Class decorator: makes a detector class available to ``create_detector(name)`` and ``--detector name``."""

    def register(cls: type) -> type:
        if name in DETECTORS and DETECTORS[name] is not cls:
            raise ConfigError(f"detector name {name!r} is taken by {DETECTORS[name].__qualname__}")
        DETECTORS[name] = cls
        return cls

    return register


def create_detector(name: str = "mtcnn", weights: str | Path | None = None, **options: Any) -> FaceDetectorProtocol:
    """The detector called ``name`` (a registered name or a dotted class path), given ``weights`` (a local file,
    for detectors that take one) and those of ``options`` its constructor accepts (so ``min_face_size`` and
    ``largest_only`` reach every detector that has them)."""
    cls = DETECTORS.get(name)
    if cls is None and "." in name:
        module, _, attribute = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"detector {name!r}: cannot import it ({error})") from None
    if cls is None:
        raise ConfigError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}, or a class's dotted "
                          "path (module.Class) with a detect(images) method")
    accepted = inspect.signature(cls).parameters
    if weights is not None:
        if "weights" not in accepted:
            raise ConfigError(f"detector {name!r} takes no weights file (its weights ship with it)")
        options["weights"] = weights
    elif "weights" in accepted and accepted["weights"].default is inspect.Parameter.empty:
        raise ConfigError(f"detector {name!r} needs its weights: give --detector-weights PATH (a local file; "
                          "nothing is downloaded)")
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    return cls(**{k: v for k, v in options.items() if takes_any or k in accepted})


@register_detector("mtcnn")
class FaceDetector:
    """MTCNN on the CPU (or ``device``), the default detector.

    Args:
        min_face_size: smallest face side in pixels searched for (smaller is slower: more pyramid levels).
        thresholds: P-Net, R-Net and O-Net score thresholds (MTCNN's defaults).
        min_score: faces scoring below this are dropped.
        largest_only: keep only the largest face of each image.
        batch_size: images per MTCNN batch.
        device: torch device.
    """

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 min_score: float = 0.9, largest_only: bool = False, batch_size: int = 16,
                 device: str = "cpu") -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError:
            raise ConfigError(INSTALL_HINT) from None
        self.mtcnn = MTCNN(min_face_size=min_face_size, thresholds=list(thresholds), keep_all=True,
                           select_largest=True, post_process=False, device=device)
        self.min_score, self.largest_only, self.batch_size = min_score, largest_only, batch_size

    def detect(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces in each ``[H, W, 3]`` uint8 RGB image, largest first."""
        import torch

        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"image {i}: expected [H, W, 3] RGB, got shape {image.shape}")
            by_size[image.shape].append(i)
        found: list[list[DetectedFace]] = [[] for _ in images]
        for indices in by_size.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                with torch.inference_mode():
                    boxes, scores, points = self.mtcnn.detect(np.stack([images[i] for i in chunk]), landmarks=True)
                for i, b, s, p in zip(chunk, boxes, scores, points):
                    if b is None:
                        continue
                    faces = [DetectedFace(tuple(float(v) for v in box), float(score), np.asarray(pts, np.float32))
                             for box, score, pts in zip(b, s, p) if score is not None and score >= self.min_score]
                    found[i] = faces[:1] if self.largest_only else faces
        return found


MTCNNDetector = FaceDetector


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best score first."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if not order:
            break
        rest = np.array(order)
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda i: (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])  # noqa: E731
        iou = inter / np.maximum(area(best) + area(rest) - inter, 1e-9)
        order = [int(i) for i, o in zip(rest, iou) if o <= threshold]
    return keep


@register_detector("yunet")
class YuNetDetector:
    """YuNet (Wu et al. 2023, OpenCV's ``FaceDetectorYN``) from an ONNX file the user provides, in onnxruntime.

    The graph's I/O are OpenCV Zoo's ``face_detection_yunet_2023mar.onnx``: input ``[1, 3, H, W]`` float BGR
    in 0-255 (no normalisation); per stride s in 8, 16, 32 outputs ``cls_s``, ``obj_s`` ``[1, N_s, 1]``,
    ``bbox_s`` ``[1, N_s, 4]``, ``kps_s`` ``[1, N_s, 10]``, N_s = (H/s)(W/s) cells in row-major order. Decoding
    as OpenCV's: score = sqrt(clip(cls) clip(obj)); centre = (cell + bbox[:2]) s; size = exp(bbox[2:]) s;
    landmark k = (cell + kps[2k:2k+2]) s; then non-maximum suppression. A graph with a fixed input size gets
    the image letterboxed into it (scaled, padded right and bottom); a dynamic one gets it padded to a
    multiple of 32, after scaling its longer side down to ``max_side``. Landmarks come in MTCNN's order (eyes,
    nose, mouth corners, image left to right).

    Args:
        weights: the ``.onnx`` file.
        score_threshold: faces scoring below this are dropped (OpenCV's default 0.9).
        nms_threshold: IoU above which the lower-scoring of two boxes is dropped.
        min_face_size: faces whose longer side is smaller (pixels) are dropped.
        largest_only: keep only the largest face of each image.
        max_side: longest image side fed to a dynamic-size graph (larger images are scaled down).
        threads: onnxruntime intra-op threads (None: its default).
    """

    STRIDES = (8, 16, 32)

    def __init__(self, weights: str | Path, score_threshold: float = 0.9, nms_threshold: float = 0.3,
                 min_face_size: int = 0, largest_only: bool = False, max_side: int = 640,
                 threads: int | None = 1) -> None:
        import onnxruntime

        path = Path(weights)
        if not path.is_file():
            raise ConfigError(f"YuNet weights {path}: no such file (give the local path of the .onnx file)")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        height, width = graph_input.shape[2], graph_input.shape[3]
        self.fixed_size = (height, width) if isinstance(height, int) and isinstance(width, int) else None
        names = {o.name for o in self.session.get_outputs()}
        missing = [f"{k}_{s}" for s in self.STRIDES for k in ("cls", "obj", "bbox", "kps") if f"{k}_{s}" not in names]
        if missing:
            raise ConfigError(f"{path}: not a YuNet graph (outputs {', '.join(missing)} missing)")
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold
        self.min_face_size, self.largest_only, self.max_side = min_face_size, largest_only, max_side

    def _input(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        from PIL import Image

        h, w = image.shape[:2]
        if self.fixed_size is not None:
            scale = min(self.fixed_size[0] / h, self.fixed_size[1] / w)
            padded_h, padded_w = self.fixed_size
        else:
            scale = min(1.0, self.max_side / max(h, w))
            padded_h, padded_w = (-(-round(h * scale) // 32) * 32, -(-round(w * scale) // 32) * 32)
        if scale != 1.0:
            image = np.asarray(Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                             Image.Resampling.BILINEAR))
        canvas = np.zeros((padded_h, padded_w, 3), np.float32)
        canvas[:image.shape[0], :image.shape[1]] = image[..., ::-1]  # RGB -> BGR
        return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]), scale

    def detect(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        found = []
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"image {i}: expected [H, W, 3] RGB, got shape {image.shape}")
            blob, scale = self._input(image)
            outputs = dict(zip([o.name for o in self.session.get_outputs()],
                               self.session.run(None, {self.input_name: blob})))
            boxes, scores, points = [], [], []
            for s in self.STRIDES:
                columns = blob.shape[3] // s
                score = np.sqrt(np.clip(outputs[f"cls_{s}"][0, :, 0], 0, 1) * np.clip(outputs[f"obj_{s}"][0, :, 0], 0, 1))
                cells = np.arange(len(score))
                cell = np.stack([cells % columns, cells // columns], 1).astype(np.float32)  # (x, y) per cell
                bbox, kps = outputs[f"bbox_{s}"][0], outputs[f"kps_{s}"][0].reshape(-1, 5, 2)
                centre, size = (cell + bbox[:, :2]) * s, np.exp(bbox[:, 2:]) * s
                boxes.append(np.concatenate([centre - size / 2, centre + size / 2], 1))
                points.append((cell[:, None, :] + kps) * s)
                scores.append(score)
            boxes_, scores_, points_ = (np.concatenate(boxes) / scale, np.concatenate(scores),
                                        np.concatenate(points) / scale)
            keep = [k for k in np.flatnonzero(scores_ >= self.score_threshold)]
            kept = [keep[j] for j in _nms(boxes_[keep], scores_[keep], self.nms_threshold)] if keep else []
            faces = [DetectedFace(tuple(float(v) for v in boxes_[k]), float(scores_[k]), points_[k].astype(np.float32))
                     for k in kept]
            faces = sorted((f for f in faces if f.size >= self.min_face_size), key=lambda f: -f.size)
            found.append(faces[:1] if self.largest_only else faces)
        return found


def align_crop(image: np.ndarray, face: DetectedFace, size: int, scale: float = 1.3) -> np.ndarray:
    """A ``[size, size, 3]`` uint8 crop: a square of side ``scale * face.size`` centred on the box, rotated
    about its centre so that the eyes are level. ``scale`` 1.3 frames brows to chin as AffectSynth's frames
    (and common AU data sets' crops) do; pixels outside the image are black."""
    from PIL import Image

    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    roll = float(np.arctan2(ry - ly, rx - lx))  # the eye line's angle in the image, y down
    k = scale * face.size / size  # source pixels per output pixel
    cos, sin, half = k * np.cos(roll), k * np.sin(roll), size / 2.0 - 0.5
    # Output pixel (u, v) samples the source at centre + R(roll) * k * (u - half, v - half) (PIL's inverse map).
    coefficients = (cos, -sin, cx - cos * half + sin * half, sin, cos, cy - sin * half - cos * half)
    crop = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, coefficients,
                                            resample=Image.Resampling.BILINEAR)
    return np.asarray(crop)
