"""Face detection (data/media/face_detection.py): MTCNN and eye-levelled crops on rendered faces; detectors by name."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import face_scene

from affectlab.data.media.face_detection import (DETECTORS, DetectedFace, FaceDetector, align_crop, create_detector,
                                                 register_detector)
from affectlab.errors import ConfigError


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def test_finds_the_face_where_it_was_placed(detector):
    scene = face_scene(seed=0, at=(70, 40))  # a 96 px face in a 240 x 180 scene
    (face,) = detector.detect([scene])[0]
    x1, y1, x2, y2 = face.box
    assert 70 <= x1 < x2 <= 70 + 96 and 40 <= y1 < y2 <= 40 + 96 + 10
    assert face.score > 0.9 and face.landmarks.shape == (5, 2)
    left_eye, right_eye, nose = face.landmarks[:3]
    assert left_eye[0] < nose[0] < right_eye[0] and nose[1] > max(left_eye[1], right_eye[1])


def test_no_face_in_an_empty_scene_and_mixed_sizes_in_one_call(detector):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    found = detector.detect([face_scene(seed=1), noise, face_scene(seed=3, scene=(200, 200))])
    assert [len(f) for f in found] == [1, 0, 1]  # images of two sizes: detected in separate batches
    with pytest.raises(ValueError, match="expected \\[H, W, 3\\]"):
        detector.detect([noise[..., 0]])


def test_crops_level_the_eyes_of_a_tilted_face(detector):
    scene = face_scene(seed=1, roll_degrees=20)
    (face,) = detector.detect([scene])[0]
    (lx, ly), (rx, ry) = face.landmarks[:2]
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) > 12  # tilted in the scene
    crop = align_crop(scene, face, 96, scale=1.6)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    (again,) = detector.detect([crop])[0]
    (lx, ly), (rx, ry) = again.landmarks[:2]
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) < 5  # level after alignment
    assert abs((again.box[0] + again.box[2]) / 2 - 48) < 8  # and centred


# Detectors by name: the registry, a user's class, and YuNet's decoding on a tiny graph with YuNet's I/O.



@register_detector("test_brightest_square")
class BrightestSquare:
    """A user's detector, registered from this test module: one face at the bounding box of pure-white pixels."""

    def __init__(self, min_face_size: int = 0) -> None:
        self.min_face_size = min_face_size

    def detect(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        found = []
        for image in images:
            ys, xs = np.nonzero(image.min(axis=2) == 255)
            if len(xs) == 0 or np.ptp(xs) + 1 < self.min_face_size:
                found.append([])
                continue
            x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
            eyes = [[x1 + 0.3 * (x2 - x1), y1 + 0.4 * (y2 - y1)], [x1 + 0.7 * (x2 - x1), y1 + 0.4 * (y2 - y1)]]
            found.append([DetectedFace((x1, y1, x2, y2), 1.0, np.array(eyes + [[0, 0]] * 3, np.float32))])
        return found


def white_square(at: tuple[int, int], side: int, canvas: tuple[int, int] = (200, 150)) -> np.ndarray:
    image = np.zeros((canvas[1], canvas[0], 3), np.uint8)
    image[at[1]:at[1] + side, at[0]:at[0] + side] = 255
    return image


def test_detectors_are_chosen_by_name_or_class_path():
    assert {"mtcnn", "yunet", "test_brightest_square"} <= set(DETECTORS)
    by_name = create_detector("test_brightest_square", min_face_size=10, largest_only=True)  # options it lacks are dropped
    assert isinstance(by_name, BrightestSquare) and by_name.min_face_size == 10
    (face,) = by_name.detect([white_square((40, 30), 32)])[0]
    assert face.box == (40.0, 30.0, 72.0, 62.0)
    assert isinstance(create_detector(f"{__name__}.BrightestSquare"), BrightestSquare)  # a dotted path, unregistered too
    with pytest.raises(ConfigError, match="unknown detector 'retina'; known: mtcnn, "):
        create_detector("retina")
    with pytest.raises(ConfigError, match="takes no weights file"):
        create_detector("mtcnn", weights="mtcnn.pt")
    with pytest.raises(ConfigError, match="needs its weights: give --detector-weights"):
        create_detector("yunet")
    with pytest.raises(ConfigError, match="no such file"):
        create_detector("yunet", weights="missing.onnx")


class TinyYuNet:
    """Builds a graph with YuNet's I/O (input [1, 3, H, W] BGR 0-255; cls/obj/bbox/kps per stride 8, 16, 32)
    that finds white 32 x 32 cells on the stride-32 grid: cls = 1 where the cell's mean is >= 90 % white, 0 on the
    finer strides; bbox = (0.5, 0.5, log 1, log 1), a box exactly the cell; kps at fixed fractions of it."""

    KPS = np.array([0.3, 0.4, 0.7, 0.4, 0.5, 0.6, 0.35, 0.8, 0.65, 0.8], np.float32)

    @classmethod
    def export(cls, path, dynamic: bool = True) -> None:
        import torch

        kps, bbox = torch.from_numpy(cls.KPS), torch.tensor([0.5, 0.5, 0.0, 0.0])

        class Graph(torch.nn.Module):
            def forward(self, image):
                outputs = []
                for stride in (8, 16, 32):
                    cells = torch.nn.functional.avg_pool2d(image.mean(1, keepdim=True), stride)  # [1, 1, h, w]
                    flat = cells.flatten(2).transpose(1, 2) / 255.0  # [1, N, 1], row-major cells
                    on = (flat >= 0.9).float() * (1.0 if stride == 32 else 0.0)
                    outputs += [on, torch.ones_like(flat), torch.ones_like(flat).repeat(1, 1, 4) * bbox,
                                torch.ones_like(flat).repeat(1, 1, 10) * kps]
                return tuple(outputs)

        names = [f"{k}_{s}" for s in (8, 16, 32) for k in ("cls", "obj", "bbox", "kps")]
        axes = {"input": {2: "height", 3: "width"}} if dynamic else None
        torch.onnx.export(Graph(), (torch.zeros(1, 3, 640, 640),), str(path), input_names=["input"],
                          output_names=names, dynamic_axes=axes, dynamo=False)


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic-size", "fixed-640"])
def test_yunet_decodes_its_graph_outputs_into_boxes_and_landmarks(tmp_path, dynamic):
    pytest.importorskip("onnx")
    TinyYuNet.export(tmp_path / "yunet.onnx", dynamic=dynamic)
    detector = create_detector("yunet", weights=tmp_path / "yunet.onnx", min_face_size=0)
    # 1280 x 960: scaled by 0.5 into the graph (letterboxed into 640 x 640, or to 640 x 480 when dynamic), so
    # the two 64 px squares become 32 px cells of the stride-32 grid; boxes come back in the image's pixels.
    image = white_square((128, 192), 64, canvas=(1280, 960))
    image[192:256, 320:384] = 255
    faces = detector.detect([image, np.zeros((960, 1280, 3), np.uint8)])
    assert len(faces[1]) == 0
    boxes = sorted(f.box for f in faces[0])
    assert boxes == [pytest.approx((128, 192, 192, 256), abs=0.01), pytest.approx((320, 192, 384, 256), abs=0.01)]
    face = min(faces[0], key=lambda f: f.box[0])
    assert face.score == pytest.approx(1.0)
    assert face.landmarks == pytest.approx(np.array([128, 192], np.float32) + 64 * TinyYuNet.KPS.reshape(5, 2), abs=0.01)
    largest = create_detector("yunet", weights=tmp_path / "yunet.onnx", largest_only=True, min_face_size=65)
    assert largest.detect([image]) == [[]]  # both 64 px: below min_face_size
