"""Face tracks: detections linked across a video's frames, so that ``face_id`` names one person, as in OpenFace.

Per detected frame (``FaceTracker.update``):
1. predict   each live track's box at this frame, constant velocity: ``b_t = b_s + v (t - s)``, ``s`` the frame
             it was last matched at, ``v`` its box velocity (pixels per frame, smoothed:
             ``v <- (v + (b_t - b_s) / (t - s)) / 2``), so two faces that cross keep their ids
2. match     cost ``1 - IoU(predicted box, detection)``; the assignment of least total cost (Hungarian,
             ``scipy.optimize.linear_sum_assignment``) when scipy is installed, else greedily by highest IoU;
             a pair with ``IoU < min_iou`` is matched only where nothing overlaps enough and the centres lie
             within ``max_shift`` face sizes of each other (sizes within 1.5x): a new track has no velocity yet,
             and a fast face can leave its box between two detections
3. update    a matched track takes the detection's box; an unmatched detection starts a new track (ids 0, 1,
             2, ... in order of first appearance, never reused); a track unmatched for more than
             ``max_missed`` frames is lost (a face that comes back later gets a new id, as in OpenFace)

Between detected frames (``interpolate_faces``): with detection every k frames, a frame between two detected
frames takes each track's box and landmarks linearly interpolated between them; a track seen at only one of
the two is carried from it to the frames nearer to it than to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectlab.data.media.face_detection import DetectedFace


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` ``[N, 4]`` with every box in ``b`` ``[M, 4]`` (x1, y1, x2, y2)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_boxes(iou: np.ndarray, min_iou: float, hungarian: bool | None = None) -> list[tuple[int, int]]:
    """Pairs (row, column) of ``iou`` ``[N, M]`` maximising total IoU, each row and column at most once, every
    pair at least ``min_iou``. ``hungarian`` None: the Hungarian algorithm when scipy is installed, else greedy."""
    if iou.size == 0:
        return []
    if hungarian is None or hungarian:
        try:
            from scipy.optimize import linear_sum_assignment
        except ImportError:
            if hungarian:
                raise
        else:
            rows, columns = linear_sum_assignment(1.0 - iou)
            return [(int(r), int(c)) for r, c in zip(rows, columns) if iou[r, c] >= min_iou]
    pairs, used_rows, used_columns = [], set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < min_iou:
            break
        if r not in used_rows and c not in used_columns:
            pairs.append((r, c))
            used_rows.add(r)
            used_columns.add(c)
    return sorted(pairs)


@dataclass
class Track:
    """One face followed across frames."""

    track_id: int
    face: DetectedFace  # at ``last_seen``
    last_seen: int  # frame position of the last match
    velocity: np.ndarray  # (4,) box change per frame

    def predicted_box(self, position: int) -> np.ndarray:
        return np.asarray(self.face.box, np.float64) + self.velocity * (position - self.last_seen)


class FaceTracker:
    """Links each frame's detections to tracks (see the module docstring for the steps).

    Args:
        min_iou: the least IoU between a track's predicted box and a detection for them to be matched.
        max_missed: frames a track may go unmatched before it is lost.
        hungarian: True forces scipy's Hungarian assignment, False the greedy one, None picks scipy if installed.
    """

    def __init__(self, min_iou: float = 0.2, max_missed: int = 10, hungarian: bool | None = None,
                 max_shift: float = 0.75) -> None:
        if not 0.0 <= min_iou <= 1.0:
            raise ValueError(f"min_iou must lie in [0, 1], got {min_iou}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be at least 0, got {max_missed}")
        self.min_iou, self.max_missed, self.hungarian, self.max_shift = min_iou, max_missed, hungarian, max_shift
        self.tracks: list[Track] = []
        self.next_id = 0

    def update(self, faces: list[DetectedFace], position: int) -> list[int]:
        """The track id of each of ``faces`` (detected at frame ``position``), in their order."""
        self.tracks = [t for t in self.tracks if position - t.last_seen - 1 <= self.max_missed]
        predicted = np.array([t.predicted_box(position) for t in self.tracks]).reshape(-1, 4)
        detected = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        pairs = match_boxes(iou_matrix(predicted, detected), self.min_iou, self.hungarian)
        rest_tracks = [r for r in range(len(predicted)) if r not in {r for r, _ in pairs}]
        rest_faces = [c for c in range(len(detected)) if c not in {c for _, c in pairs}]
        if rest_tracks and rest_faces:  # near but not overlapping enough: the closest, as a similarity in (0, 1]
            near = np.array([[_nearness(predicted[r], detected[c], self.max_shift) for c in rest_faces]
                             for r in rest_tracks])
            pairs += [(rest_tracks[r], rest_faces[c]) for r, c in match_boxes(near, 1e-9, self.hungarian)]
        ids: list[int | None] = [None] * len(faces)
        for r, c in pairs:
            track = self.tracks[r]
            step = (detected[c] - np.asarray(track.face.box)) / max(position - track.last_seen, 1)
            track.velocity = step if not track.velocity.any() else (track.velocity + step) / 2.0
            track.face, track.last_seen = faces[c], position
            ids[c] = track.track_id
        for c, face in enumerate(faces):
            if ids[c] is None:
                self.tracks.append(Track(self.next_id, face, position, np.zeros(4)))
                ids[c] = self.next_id
                self.next_id += 1
        return [int(i) for i in ids]


def _nearness(a: np.ndarray, b: np.ndarray, max_shift: float) -> float:
    """1 - d / (max_shift s) for boxes whose centres lie d apart, s their mean size, when d < max_shift s and
    their sizes differ less than 1.5x; else 0."""
    size_a, size_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    if max_shift <= 0 or min(size_a, size_b) <= 0 or max(size_a, size_b) > 1.5 * min(size_a, size_b):
        return 0.0
    distance = float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2))
    return max(0.0, 1.0 - distance / (max_shift * (size_a + size_b) / 2))


def interpolate_faces(before: dict[int, DetectedFace], after: dict[int, DetectedFace], fraction: float
                      ) -> dict[int, DetectedFace]:
    """Each track's face at ``fraction`` (0 at ``before``'s frame, 1 at ``after``'s) of the way between two
    detected frames: box, landmarks and score linearly interpolated where the track is in both; a track in
    one only is carried from it to the frames nearer to it (``fraction <= 0.5`` for ``before``)."""
    faces: dict[int, DetectedFace] = {}
    for track_id in sorted(set(before) | set(after)):
        a, b = before.get(track_id), after.get(track_id)
        if a is not None and b is not None:
            box = tuple(float(x) for x in (1 - fraction) * np.asarray(a.box) + fraction * np.asarray(b.box))
            faces[track_id] = DetectedFace(box, (1 - fraction) * a.score + fraction * b.score,
                                           ((1 - fraction) * a.landmarks + fraction * b.landmarks).astype(np.float32))
        elif a is not None and fraction <= 0.5:
            faces[track_id] = a
        elif b is not None and fraction > 0.5:
            faces[track_id] = b
    return faces
