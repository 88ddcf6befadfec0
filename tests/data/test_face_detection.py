"""MTCNN face detection and eye-levelled crops (data/face_detection.py) on rendered faces."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import face_scene

from affectlab.data.media.face_detection import FaceDetector, align_crop


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
