"""``.pose`` files written by pose-format, read and preprocessed by ``data/pose.py``: pose-format's own operations,
missing components and keypoints masked (never zeros taken for points), other estimators' files read."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from affectlab.data.pose import (BODY_POINTS, FACE_CONTOUR, PoseOptions, holistic_header, holistic_layout, make_pose,
                                 pose_arrays, pose_bytes, read_pose)
from affectlab.errors import ConfigError, DataError


def _holistic(frames: int = 6, components=("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                                           "RIGHT_HAND_LANDMARKS"), face=None, seed: int = 0):
    header = holistic_header(200, 200, components=components, face=face)
    points = header.total_points()
    rng = np.random.default_rng(seed)
    data = rng.uniform(20, 180, (frames, points, 3)).astype(np.float32)
    return header, data, np.ones((frames, points), dtype=np.float32)


def _written(header, data, confidence, fps=25.0):
    return read_pose(pose_bytes(make_pose(header, data, confidence, fps)))


def test_reduced_holistic_is_seed_003s_178_points_of_534_values():
    layout = holistic_layout(PoseOptions())
    counts = {c: sum(1 for name, _ in layout if name == c) for c in dict.fromkeys(name for name, _ in layout)}
    assert counts == {"POSE_LANDMARKS": 8, "FACE_LANDMARKS": 128, "LEFT_HAND_LANDMARKS": 21, "RIGHT_HAND_LANDMARKS": 21}
    assert len(layout) * 3 == 534
    assert len(holistic_layout(PoseOptions(reduce_holistic=False))) == 33 + 468 + 21 + 21 + 33


def test_the_preprocessing_is_pose_formats_own():
    from pose_format.utils.generic import pose_hide_legs, pose_normalization_info, reduce_holistic

    header, data, confidence = _holistic(face=None, components=("POSE_LANDMARKS", "FACE_LANDMARKS",
                                                                "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS",
                                                                "POSE_WORLD_LANDMARKS"))
    pose = _written(header, data, confidence)
    ours = pose_arrays(copy.deepcopy(pose), PoseOptions())
    theirs = reduce_holistic(pose_hide_legs(copy.deepcopy(pose)))
    theirs = theirs.normalize(pose_normalization_info(theirs.header))
    expected = np.ma.getdata(theirs.body.data)[:, 0]
    real = ours.points_mask
    assert np.allclose(ours.data[real], expected[real], atol=1e-6)
    hips = [i for i, (c, p) in enumerate(holistic_layout(PoseOptions())) if p.endswith("_HIP")]
    assert len(hips) == 2 and not real[:, hips].any() and (ours.data[:, hips] == 0).all()  # hidden, masked
    shoulders = ours.data[:, :2, :2]  # LEFT_SHOULDER, RIGHT_SHOULDER after normalisation: centred, unit width
    assert np.allclose(shoulders.mean(axis=(0, 1)), 0, atol=1e-5)
    assert np.isclose(np.linalg.norm(ours.data[:, 0] - ours.data[:, 1], axis=-1).mean(), 1.0, atol=1e-5)


def test_a_body_without_face_or_hands_is_read_with_them_masked():
    header, data, confidence = _holistic(components=("POSE_LANDMARKS",))
    arrays = pose_arrays(_written(header, data, confidence), PoseOptions())
    assert arrays.data.shape == (6, 178, 3) and arrays.components == {"POSE_LANDMARKS": 33}
    assert arrays.points_mask[:, :6].all() and not arrays.points_mask[:, 8:].any()
    assert (arrays.data[:, 8:] == 0).all() and arrays.frame_mask.all()
    assert any("no FACE_LANDMARKS, LEFT_HAND_LANDMARKS, RIGHT_HAND_LANDMARKS" in n for n in arrays.notes)


def test_hands_alone_are_placed_by_name_and_reported_unnormalised():
    header, data, confidence = _holistic(components=("RIGHT_HAND_LANDMARKS",))
    arrays = pose_arrays(_written(header, data, confidence), PoseOptions())
    right = [i for i, (c, _) in enumerate(holistic_layout(PoseOptions())) if c == "RIGHT_HAND_LANDMARKS"]
    assert np.array_equal(arrays.data[:, right], data) and arrays.points_mask[:, right].all()
    assert arrays.points_mask.sum() == 6 * 21 and "no shoulders: not normalised" in arrays.notes


def test_undetected_points_and_frames_stay_masks_not_zeros():
    header, data, confidence = _holistic(face=FACE_CONTOUR)
    confidence[2] = 0  # nobody found in frame 2
    left = header.get_point_index("LEFT_HAND_LANDMARKS", "WRIST")
    confidence[4, left:left + 21] = 0  # the left hand lost in frame 4
    arrays = pose_arrays(_written(header, data, confidence), PoseOptions(normalize=False))
    assert arrays.frame_mask.tolist() == [True, True, False, True, True, True]
    assert not arrays.points_mask[2].any() and (arrays.data[2] == 0).all()
    slots = [i for i, (c, _) in enumerate(holistic_layout(PoseOptions())) if c == "LEFT_HAND_LANDMARKS"]
    assert not arrays.points_mask[4, slots].any() and arrays.points_mask[3, slots].all()


def test_another_estimators_2d_file_is_read_with_z_zero():
    from pose_format.utils.openpose import OpenPose_Components
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    header = PoseHeader(0.2, PoseHeaderDimensions(200, 200), copy.deepcopy(OpenPose_Components))
    points = header.total_points()
    data = np.random.default_rng(1).uniform(10, 190, (4, points, 2)).astype(np.float32)
    pose = _written(header, data, np.ones((4, points), dtype=np.float32))
    own = pose_arrays(copy.deepcopy(pose), PoseOptions(layout="file", hide_legs=False, normalize=False))
    assert own.data.shape == (4, points, 3) and (own.data[..., 2] == 0).all()
    assert np.array_equal(own.data[..., :2], data)
    holistic = pose_arrays(pose, PoseOptions())
    assert holistic.data.shape == (4, 178, 3) and not holistic.points_mask.any()  # none of its points is holistic's


def test_a_time_window_and_a_damaged_file():
    header, data, confidence = _holistic(frames=50)
    buffer = pose_bytes(make_pose(header, data, confidence, fps=25))
    assert len(read_pose(buffer).body.data) == 50
    window = read_pose(buffer, start_ms=400, end_ms=1200)  # frames 10 to 30 at 25 fps
    assert len(window.body.data) == 20
    assert np.array_equal(np.ma.getdata(window.body.data)[0, 0], data[10])
    with pytest.raises(DataError, match="not a readable .pose file"):
        read_pose(buffer[: len(buffer) // 3])
    with pytest.raises(ConfigError, match="keypoints"):
        PoseOptions(layout="openpose")


def test_holistic_body_points_are_mediapipes():
    assert len(BODY_POINTS) == 33 and BODY_POINTS[11:13] == ("LEFT_SHOULDER", "RIGHT_SHOULDER")
