"""Face tracks (data/media/face_tracking.py): ids stable across frames, through a crossing and an occlusion."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from affectlab.data.media.face_detection import DetectedFace, FaceDetector
from affectlab.data.media.face_tracking import FaceTracker, interpolate_faces, iou_matrix, match_boxes
from affectlab.data.media.video import VideoFrame
from affectlab.inference import FacePredictor


def face_at(x: float, y: float, side: float = 60.0, score: float = 0.99) -> DetectedFace:
    landmarks = np.array([[x + 0.3 * side, y + 0.4 * side], [x + 0.7 * side, y + 0.4 * side],
                          [x + 0.5 * side, y + 0.6 * side], [x + 0.35 * side, y + 0.8 * side],
                          [x + 0.65 * side, y + 0.8 * side]], np.float32)
    return DetectedFace((x, y, x + side, y + side), score, landmarks)


def crossing_boxes(frames: int = 20, hidden: tuple[int, ...] = (9, 10, 11)) -> list[list[tuple[str, DetectedFace]]]:
    """Two faces crossing: A moves right, B left, 20 px a frame; near the crossing B hides behind A (its
    detection is missing at ``hidden``). The detector lists the larger face first and the sizes swap
    half-way, as a detector's order does on real video: an id by rank mixes the two people."""
    sequence = []
    for t in range(frames):
        a = ("A", face_at(10 + 20 * t, 40, side=70 - t))
        b = ("B", face_at(400 - 20 * t, 60, side=50 + t))
        faces = [a] if t in hidden else [a, b]
        sequence.append(sorted(faces, key=lambda named: -named[1].size))
    return sequence


@pytest.mark.parametrize("hungarian", [True, False], ids=["hungarian", "greedy"])
def test_ids_follow_each_face_through_a_crossing_with_occlusion(hungarian):
    tracker = FaceTracker(max_missed=5, hungarian=hungarian)
    identity_of: dict[int, set[str]] = {}
    for t, faces in enumerate(crossing_boxes()):
        ids = tracker.update([face for _, face in faces], t)
        for track_id, (person, _) in zip(ids, faces):
            identity_of.setdefault(track_id, set()).add(person)
    assert identity_of == {0: {"A"}, 1: {"B"}}  # two tracks, one person each, B's id survives the occlusion


def test_a_track_is_lost_after_max_missed_frames():
    tracker = FaceTracker(max_missed=2)
    assert tracker.update([face_at(0, 0)], 0) == [0]
    assert tracker.update([], 1) == [] and tracker.update([], 2) == []
    assert tracker.update([face_at(0, 0)], 3) == [0]  # missed 2 frames: still the same face
    for t in (4, 5, 6):
        tracker.update([], t)
    assert tracker.update([face_at(0, 0)], 7) == [1]  # missed 3: lost, a new id (ids are never reused)


def test_a_new_fast_face_keeps_its_id_when_it_leaves_its_box_between_detections():
    for max_shift, expected in ((0.75, [0, 0, 0]), (0.0, [0, 1, 2])):  # 0: IoU alone, the old behaviour
        tracker = FaceTracker(max_shift=max_shift)
        ids = [tracker.update([face_at(100 + 42 * t, 50)], 5 * t)[0] for t in range(3)]  # IoU 0.17 after one step
        assert ids == expected, max_shift
    tracker = FaceTracker()
    tracker.update([face_at(0, 0), face_at(300, 0)], 0)
    assert tracker.update([face_at(120, 0)], 5) == [2]  # too far from both (2 sizes): a new face


def test_matching_maximises_total_overlap_and_refuses_small_overlaps():
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert match_boxes(iou, 0.2, hungarian=True) == [(0, 1), (1, 0)]  # 1.65 total, where greedy takes 0.9 + 0.1
    assert match_boxes(iou, 0.2, hungarian=False) == [(0, 0)]  # greedy: (1, 1) is below min_iou
    assert match_boxes(np.array([[0.1]]), 0.2) == []
    assert iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30]]) == pytest.approx(np.array([[1 / 3, 0.0]]))


def test_frames_between_detections_take_interpolated_faces():
    before, after = {0: face_at(0, 0), 1: face_at(100, 0)}, {0: face_at(40, 20), 2: face_at(200, 0)}
    middle = interpolate_faces(before, after, 0.25)
    assert middle[0].box == pytest.approx((10, 5, 70, 65))
    assert middle[0].landmarks == pytest.approx(0.75 * before[0].landmarks + 0.25 * after[0].landmarks)
    assert set(middle) == {0, 1}  # the face seen only before is carried to the frames nearer to it
    assert set(interpolate_faces(before, after, 0.75)) == {0, 2}


def synthetic_face(seed: int, side: int) -> np.ndarray:
    from affectlab.data.synth.faces import render_clip, sample_face, sample_pose

    rng = np.random.default_rng(seed)
    units = np.zeros((1, 12), np.float32)
    return render_clip(sample_face(rng), units, sample_pose(rng, 1, amount=0.0), "shaded", side, rng)[0]


@pytest.fixture(scope="module")
def crossing_video() -> list[VideoFrame]:
    """16 frames, 300 x 200: face 1 (90 px, shrinking) moves right 8 px a frame, face 3 (70 px, growing) left,
    lower and pasted on top, so at the crossing it hides part of face 1 and the larger face changes."""
    frames = []
    for t in range(16):
        a = t / 15
        scene = Image.new("RGB", (300, 200), (90, 120, 90))
        scene.paste(Image.fromarray(synthetic_face(1, round(90 - 20 * a))), (int(40 + 120 * a), 20))
        scene.paste(Image.fromarray(synthetic_face(3, round(70 + 20 * a))), (int(180 - 120 * a), 70))
        frames.append(VideoFrame(t, t / 10, np.asarray(scene).copy()))
    return frames


@pytest.mark.parametrize("detect_every", [1, 2])
def test_tracks_of_two_real_faces_crossing_keep_their_direction(crossing_video, detect_every):
    predictor = FacePredictor(backend=None, detector=FaceDetector(), specs=[], detect_every=detect_every)
    tracked = [item for group in predictor.tracked_frames(iter(crossing_video)) for item in group]
    assert [frame.index for frame, _ in tracked] == list(range(16))
    centres: dict[int, list[tuple[int, float]]] = {}
    for frame, faces in tracked:
        for track_id, face in faces:
            centres.setdefault(track_id, []).append((frame.index, (face.box[0] + face.box[2]) / 2))
    assert sorted(centres) == [0, 1]  # two people, two ids, none new after the crossing
    right, left = centres[0], centres[1]  # face 1 (left at the start) is found first
    assert right[0][1] + 80 < left[0][1] and right[-1][1] > left[-1][1] + 80  # they crossed
    assert all(np.diff([x for _, x in right]) > 0) and all(np.diff([x for _, x in left]) < 0)
    assert len(right) >= 14 and len(left) >= 14 and right[-1][0] == left[-1][0] == 15
