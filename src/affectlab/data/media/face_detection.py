"""Face detection (MTCNN) and alignment: what turns a photo or a video frame into a model's input crop.

MTCNN (Zhang et al. 2016, the cascade P-Net -> R-Net -> O-Net) comes from facenet-pytorch, whose three small
networks' weights ship inside its wheel: nothing is fetched at run time. facenet-pytorch pins an old torch, so
the Makefile installs it with ``--no-deps`` beside our pinned torch (its code runs unchanged on it).

Per image: ``FaceDetector.detect`` gives every face's box, score and five landmarks (eyes, nose, mouth corners);
``align_crop`` cuts a square around the box, rotated so the eyes are level (roll removed), resized to the
model's input size. Images of different sizes are detected in separate batches (MTCNN batches need one size),
so a video whose frame size changes mid-stream, or a folder of mixed photos, needs nothing special.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

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


class FaceDetector:
    """MTCNN on the CPU (or ``device``).

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
