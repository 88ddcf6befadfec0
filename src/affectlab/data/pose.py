"""Reading ``.pose`` files (pose-format) and preprocessing them into the batch contract's ``pose`` arrays.

Every pose a translation data module serves (PHOENIX-2014T's files, AffectSynth sign's generated poses, the
estimators' outputs) goes through ``pose_arrays`` here, so they all get the same preprocessing: pose-format's
OWN operations, in the order seed 003's pipeline applies them (``../shared/METHODS.md``, "Seed 003"):

1. ``hide_legs``: ``pose_format.utils.generic.pose_hide_legs`` (zeroes knees, ankles, heels, feet and, since
   pose-format's Feb 2025 change, the hips; their confidence becomes 0, so they are masked here);
2. ``reduce_holistic``: ``generic.reduce_holistic`` (MediaPipe Holistic to 8 body + 128 face contour + 21 + 21
   hand points = 178; world landmarks dropped). A file without a body component is reduced with
   ``Pose.get_components`` to the same face contour (pose-format's own function needs the body);
3. ``normalize``: ``Pose.normalize(generic.pose_normalization_info(header))`` (centred on the shoulders'
   midpoint, scaled by their mean width). A file without shoulders (or with none ever detected) cannot be
   normalised this way: it is served as read and reported (``PoseArrays.notes``);
4. per-frame flattening (``K x C`` values per frame, 534 for reduced holistic) is the model's mapper's job:
   the contract keeps ``[T, K, C]`` so masks stay per keypoint; ``frame_size`` says the flattened width.

The served arrays follow a fixed ``layout`` (a list of ``(component, point)`` names), by default reduced
MediaPipe Holistic: a file from another estimator, or with only some components (a body without face or
hands), is placed point by point by name, and every point it lacks is 0 with ``points_mask`` False. Channels
are always ``C = 3``: x, y, z (a 2-D file's z is 0); confidence only decides the masks. A keypoint is real
where pose-format has it unmasked with confidence > 0; a frame is real (``frame_mask``) where at least one
keypoint is, so frames the estimator found nobody in stay frames of the sequence, masked, not zeros.

MediaPipe is never imported: the holistic header (point names and limbs, as ``pose_format.utils.holistic``
builds them from MediaPipe's enums) is written out below, so the main environment reads, writes and
preprocesses holistic poses without it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affectlab.errors import ConfigError, DataError

CHANNELS = 3  # x, y, z; a 2-D file's z is 0

# MediaPipe's PoseLandmark and HandLandmark names in enum order (what pose_format.utils.holistic reads from them).
BODY_POINTS = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE", "RIGHT_EYE_OUTER",
    "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW",
    "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX",
    "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE",
    "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)
BODY_LIMBS = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
    (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20), (11, 23),
    (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31),
    (28, 32),
)
HAND_POINTS = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP", "INDEX_FINGER_PIP",
    "INDEX_FINGER_DIP", "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP",
    "MIDDLE_FINGER_TIP", "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP", "PINKY_MCP",
    "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)
HAND_LIMBS = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12), (9, 13),
    (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)
FACE_POINTS = 468  # the face mesh; its points are named by index ("0" .. "467")
# The face mesh's contour points, as reduce_holistic keeps them (sorted FACEMESH_CONTOURS indices).
FACE_CONTOUR = tuple(str(p) for p in (
    0, 7, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80, 81, 82, 84, 87,
    88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157,
    158, 159, 160, 161, 162, 163, 172, 173, 176, 178, 181, 185, 191, 234, 246, 249, 251, 263, 267, 269, 270, 276,
    282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332,
    334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389,
    390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
))
HOLISTIC_COMPONENTS = ("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS",
                       "POSE_WORLD_LANDMARKS")
LAYOUTS = ("holistic", "file")


def holistic_header(width: int = 256, height: int = 256, components: Sequence[str] = HOLISTIC_COMPONENTS[:4],
                    face: Sequence[str] | None = None, point_format: str = "XYZC") -> Any:
    """A pose-format header for MediaPipe Holistic's ``components`` (as ``holistic_components`` builds it,
    without MediaPipe); ``face`` the face points to hold (None: the whole mesh; ``FACE_CONTOUR``: the contour)."""
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    face_points = [str(i) for i in range(FACE_POINTS)] if face is None else list(face)
    made = {
        "POSE_LANDMARKS": (list(BODY_POINTS), list(BODY_LIMBS), [(255, 0, 0)]),
        "FACE_LANDMARKS": (face_points, [], [(128, 0, 0)]),
        "LEFT_HAND_LANDMARKS": (list(HAND_POINTS), list(HAND_LIMBS), [(0, 255, 0)]),
        "RIGHT_HAND_LANDMARKS": (list(HAND_POINTS), list(HAND_LIMBS), [(0, 0, 255)]),
        "POSE_WORLD_LANDMARKS": (list(BODY_POINTS), list(BODY_LIMBS), [(255, 0, 0)]),
    }
    unknown = [c for c in components if c not in made]
    if unknown:
        raise ValueError(f"holistic_header: {unknown} are not MediaPipe Holistic components {list(made)}")
    parts = [PoseHeaderComponent(name, *made[name][:2], made[name][2], point_format) for name in components]
    depth = 1000 if "Z" in point_format else 0
    return PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=width, height=height, depth=depth),
                      components=parts)


def make_pose(header: Any, data: np.ndarray, confidence: np.ndarray, fps: float) -> Any:
    """A pose-format ``Pose`` of one person: ``data`` ``[T, K, D]`` float32, ``confidence`` ``[T, K]``
    (0 = not detected: masked, as pose-format's readers mask it)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody

    data = np.asarray(data, dtype=np.float32)[:, None]  # (T, 1, K, D)
    confidence = np.asarray(confidence, dtype=np.float32)[:, None]  # (T, 1, K)
    return Pose(header, NumPyPoseBody(fps=float(fps), data=data, confidence=confidence))


def pose_bytes(pose: Any) -> bytes:
    """The ``.pose`` file of ``pose``, as pose-format writes it."""
    buffer = io.BytesIO()
    pose.write(buffer)
    return buffer.getvalue()


def read_pose(source: str | Path | bytes, start_ms: int | None = None, end_ms: int | None = None) -> Any:
    """A ``.pose`` file read by pose-format (``start_ms``/``end_ms``: a time window; None or 0/0 the whole
    file, multimodalhugs' convention). Raises DataError naming the file when pose-format cannot read it."""
    from pose_format import Pose

    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        buffer = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as error:
        raise DataError(f"{name}: cannot be read ({error})") from None
    window = {}
    if start_ms or end_ms:  # 0/0 means the whole file
        window["start_time"] = int(start_ms or 0)
        if end_ms:
            window["end_time"] = int(end_ms)
    try:
        return Pose.read(buffer, **window)
    except Exception as error:  # struct.error, reshape and index errors on a truncated or foreign file
        raise DataError(f"{name}: not a readable .pose file ({type(error).__name__}: {error})") from None


def components(pose_or_header: Any) -> dict[str, int]:
    """The file's components and their point counts (what ``data check`` reports per file)."""
    header = getattr(pose_or_header, "header", pose_or_header)
    return {c.name: len(c.points) for c in header.components}


@dataclass(frozen=True)
class PoseOptions:
    """How poses are preprocessed (module docstring); each flag one of pose-format's operations.

    Args:
        hide_legs: ``pose_hide_legs`` (legs and hips zeroed and masked).
        reduce_holistic: ``reduce_holistic`` (178 MediaPipe points).
        normalize: shoulder normalisation (``Pose.normalize``).
        layout: ``holistic`` (the keypoints of MediaPipe Holistic after the steps above, whatever estimator
            wrote the file: what it lacks is masked) or ``file`` (each file's own points, in its order; every
            file of a data set must then have the same ones).
    """

    hide_legs: bool = True
    reduce_holistic: bool = True
    normalize: bool = True
    layout: str = "holistic"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"data.init_args.keypoints: {self.layout!r} is not one of {list(LAYOUTS)} (holistic: "
                              "MediaPipe Holistic's keypoints, missing ones masked; file: each file's own)")


@dataclass
class PoseArrays:
    """One preprocessed pose: ``data`` ``[T, K, 3]`` float32 (0 where not real), ``frame_mask`` ``[T]`` bool,
    ``points_mask`` ``[T, K]`` bool, the file's ``components`` and what could not be done (``notes``)."""

    data: np.ndarray
    frame_mask: np.ndarray
    points_mask: np.ndarray
    components: dict[str, int]
    fps: float
    notes: list[str] = field(default_factory=list)


def preprocess(pose: Any, options: PoseOptions) -> tuple[Any, list[str]]:
    """``pose`` after the options' pose-format operations (module docstring), and notes on steps that could
    not apply to this file (unknown estimator, no shoulders)."""
    pose, notes, known = _per_frame(pose, options)
    if known is not None and options.normalize:
        pose = _normalise(pose, notes)
    return pose, notes


def _per_frame(pose: Any, options: PoseOptions) -> tuple[Any, list[str], str | None]:
    """The operations that act frame by frame (hide legs, reduce holistic); the estimator's format."""
    from pose_format.utils.generic import detect_known_pose_format, pose_hide_legs, reduce_holistic

    notes: list[str] = []
    try:
        known = detect_known_pose_format(pose)
    except ValueError:
        notes.append(f"unknown estimator (components {sorted(components(pose))}): served without hide_legs, "
                     "reduce_holistic and normalize")
        return pose, notes, None
    if options.hide_legs:
        pose = pose_hide_legs(pose)
    if options.reduce_holistic and known == "holistic":
        names = [c.name for c in pose.header.components]
        if "POSE_LANDMARKS" in names:
            pose = reduce_holistic(pose)
        else:  # reduce_holistic needs the body; the same reduction of what is there
            kept = [n for n in names if n != "POSE_WORLD_LANDMARKS"]
            face = {"FACE_LANDMARKS": [p for p in FACE_CONTOUR if p in _points(pose, "FACE_LANDMARKS")]}
            pose = pose.get_components(kept, face if "FACE_LANDMARKS" in kept else None)
    return pose, notes, known


def _normalise(pose: Any, notes: list[str]) -> Any:
    """pose-format's shoulder normalisation of the whole sequence (a note where it cannot apply)."""
    from pose_format.utils.generic import pose_normalization_info

    try:
        info = pose_normalization_info(pose.header)
    except (ValueError, NotImplementedError, IndexError):
        notes.append("no shoulders: not normalised")
        return pose
    shoulders = pose.body.data[:, 0, [info.p1, info.p2]]  # (T, 2, D) masked
    conf = pose.body.confidence[:, 0, [info.p1, info.p2]]
    seen = (~np.ma.getmaskarray(shoulders).any(axis=-1) & (conf > 0)).all(axis=-1)  # (T,)
    if not seen.any():
        notes.append("shoulders never detected: not normalised")
        return pose
    return pose.normalize(info)


def _points(pose: Any, component: str) -> list[str]:
    return next((list(c.points) for c in pose.header.components if c.name == component), [])


def layout_of(header: Any) -> list[tuple[str, str]]:
    """The ``(component, point)`` names of ``header``'s keypoints, in its order."""
    return [(c.name, p) for c in header.components for p in c.points]


_HOLISTIC_LAYOUTS: dict[tuple[bool, bool], list[tuple[str, str]]] = {}


def holistic_layout(options: PoseOptions) -> list[tuple[str, str]]:
    """The keypoints of a full MediaPipe Holistic pose after ``options``' operations (178 with the defaults)."""
    key = (options.hide_legs, options.reduce_holistic)
    if key not in _HOLISTIC_LAYOUTS:
        header = holistic_header(components=HOLISTIC_COMPONENTS)
        points = header.total_points()
        pose = make_pose(header, np.ones((1, points, 3)), np.ones((1, points)), fps=25)
        reduced, _ = preprocess(pose, PoseOptions(options.hide_legs, options.reduce_holistic, normalize=False))
        _HOLISTIC_LAYOUTS[key] = layout_of(reduced.header)
    return _HOLISTIC_LAYOUTS[key]


def pose_arrays(pose: Any, options: PoseOptions, layout: Sequence[tuple[str, str]] | None = None) -> PoseArrays:
    """Preprocess ``pose`` and place it in ``layout`` (None: ``holistic_layout`` or, with ``layout: file``,
    the file's own points): the contract's arrays of person 0 (module docstring)."""
    done, notes = preprocess(pose, options)
    return _placed(done, components(pose), notes, options, layout)


def _placed(done: Any, found: dict[str, int], notes: list[str], options: PoseOptions,
            layout: Sequence[tuple[str, str]] | None) -> PoseArrays:
    """A preprocessed pose placed point by point in ``layout`` (module docstring)."""
    own = layout_of(done.header)
    if layout is None:
        layout = holistic_layout(options) if options.layout == "holistic" else own
    data = np.ma.getdata(done.body.data)[:, 0].astype(np.float32)  # (T, P, D)
    masked = np.ma.getmaskarray(done.body.data)[:, 0].any(axis=-1)  # (T, P)
    real = ~masked & (np.asarray(done.body.confidence)[:, 0] > 0)  # (T, P)
    frames = data.shape[0]
    out = np.zeros((frames, len(layout), CHANNELS), dtype=np.float32)
    points_mask = np.zeros((frames, len(layout)), dtype=bool)
    index = {name: i for i, name in enumerate(own)}
    target = [(k, index[name]) for k, name in enumerate(layout) if name in index]
    if target:
        slots, sources = (np.array(v) for v in zip(*target))
        dims = min(data.shape[-1], CHANNELS)
        out[:, slots, :dims] = data[:, sources, :dims]
        points_mask[:, slots] = real[:, sources]
    out[~points_mask] = 0.0  # masked points hold 0 (never meaningful)
    if len(target) < len(layout):
        missing = sorted({c for c, _ in layout} - {c for c, _ in (layout[k] for k, _ in target)})
        if missing:
            notes.append(f"no {', '.join(missing)}: masked")
    return PoseArrays(out, points_mask.any(axis=1), points_mask, found, float(done.body.fps), notes)


def pose_sample(data: np.ndarray, frame_mask: np.ndarray, points_mask: np.ndarray, translation: str, gloss: str,
                subject: int, index: int) -> dict[str, Any]:
    """One sample of the pose contract (``collate_pose`` batches them)."""
    return {"pose": torch.from_numpy(np.ascontiguousarray(data)), "pose_mask": torch.from_numpy(frame_mask.copy()),
            "pose_points_mask": torch.from_numpy(points_mask.copy()),
            "targets": {"translation": translation, "gloss": gloss}, "subject": int(subject), "id": int(index)}


def collate_pose(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch pose samples: frames zero-padded to the longest (``pose_mask`` False there), sentences as lists;
    unreadable samples (``{"skipped": path}``) travel in ``batch["skipped"]`` (``data/unreadable.py``)."""
    skipped = [s["skipped"] for s in samples if "skipped" in s]
    good = [s for s in samples if "skipped" not in s]
    if not good:
        return {"skipped": skipped, "id": torch.zeros(0, dtype=torch.long)}
    frames = max(s["pose"].shape[0] for s in good)
    size, points = len(good), good[0]["pose"].shape[1]
    pose = torch.zeros(size, frames, points, CHANNELS)  # (B, T, K, 3)
    mask = torch.zeros(size, frames, dtype=torch.bool)  # (B, T)
    points_mask = torch.zeros(size, frames, points, dtype=torch.bool)  # (B, T, K)
    for i, s in enumerate(good):
        length = s["pose"].shape[0]
        pose[i, :length], mask[i, :length], points_mask[i, :length] = s["pose"], s["pose_mask"], s["pose_points_mask"]
    batch = {
        "pose": pose, "pose_mask": mask, "pose_points_mask": points_mask,
        "targets": {task: [s["targets"][task] for s in good] for task in ("translation", "gloss")},
        "target_mask": {"translation": torch.ones(size, dtype=torch.bool)},
        "subject": torch.tensor([s["subject"] for s in good], dtype=torch.long),
        "id": torch.tensor([s["id"] for s in good], dtype=torch.long),
    }
    if skipped:
        batch["skipped"] = skipped
    return batch
