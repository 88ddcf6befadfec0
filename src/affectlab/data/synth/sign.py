"""AffectSynth sign: seeded synthetic sign-language sentences as MediaPipe-Holistic-like keypoint sequences.

The embedded default for pose-to-text translation (``../shared/DESIGN.md`` section 4), served as
``--data synth_sign`` and exportable in PHOENIX-2014T's layout with ``.pose`` files (``export_sign.py``):

- **Sentences** from a small grammar (``sign_grammar.py``): glosses in topic-comment, verb-final order,
  the German-like translation in V2 order with articles, case and inflections added.
- **Signs**: each gloss of the vocabulary is one sign, drawn once per seed: a path of 2-3 hand locations
  around the body (forehead, chin, chest, neutral space, ...), a handshape (finger curls) that may change,
  a wrist rotation, one or two hands (mirrored, or the other hand as a base), repeated once or twice;
  NICHT also shakes the head. Signs are joined by transitions (co-articulation) and the sentence starts and
  ends at rest.
- **Signers** (``num_signers``): body proportions (shoulder width, arm lengths, head and hand size), position
  in the frame, handedness (a left-handed signer's dominant hand is the left one: every sign mirrored) and a
  signing speed; each sentence adds its own speed change and each sign a little more, so the same sentence
  never has the same length twice.
- **Keypoints**: the MediaPipe Holistic layout (33 body points, 128 face-contour points, 21 per hand; x, y in
  pixels of a 256 x 256 frame, z toward the camera, confidence 1) with estimator-like jitter; a resting
  non-dominant hand often goes undetected, and a hand drops out of a frame now and then (confidence 0:
  masked, as MediaPipe's misses are).

Everything is drawn from generators seeded by ``(seed, what, index)``: sample ``i`` is the same whatever the
number of sentences, and the same seed gives the same bytes. The data module preprocesses the generated
poses with ``data/pose.py`` exactly as the PHOENIX reader preprocesses files, so ``--data synth_sign`` and
``--data phoenix`` on its export serve the same arrays. Splits: sentences drawn at random per split, signers
shared (``split: random``, as PHOENIX's official splits share signers), or signer-independent
(``split: signer``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from affectlab.data.base import BaseDataModule
from affectlab.data.pose import (CHANNELS, FACE_CONTOUR, HAND_POINTS, PoseOptions, collate_pose, holistic_header,
                                 holistic_layout, make_pose, pose_arrays, pose_sample)
from affectlab.data.spec import DatasetSpec
from affectlab.data.splits import SPLITS, identity_split
from affectlab.data.synth.sign_grammar import MAX_VOCABULARY, MIN_VOCABULARY, Sentence, draw_sentence, vocabulary
from affectlab.errors import ConfigError

log = logging.getLogger(__name__)

SIGN_SPLITS = ("random", "signer")
FRAME = 256  # width and height of the frame the keypoints are drawn in, pixels
FPS = 25.0
BODY, FACE, HAND = 33, len(FACE_CONTOUR), len(HAND_POINTS)
POINTS = BODY + FACE + 2 * HAND  # 203: POSE_LANDMARKS, FACE_LANDMARKS (contour), LEFT_ and RIGHT_HAND_LANDMARKS
LEFT_HAND, RIGHT_HAND = BODY + FACE, BODY + FACE + HAND  # first index of each hand's points
SIDE = {"left": 1.0, "right": -1.0}  # image x direction of the signer's left and right (a frontal view)

# Hand locations signs start at, (outward, down, toward camera) in shoulder half-widths from the shoulders' line.
ANCHORS = np.array([(0.15, -2.0, -0.2), (0.1, -1.2, -0.3), (0.45, -1.5, -0.2), (0.3, 0.4, -0.6), (0.6, 0.3, -1.0),
                    (0.3, 1.3, -0.5), (0.9, -0.1, -0.3), (1.3, 0.6, -0.4)])
# Finger curls (thumb, index, middle, ring, pinky): flat, fist, index, V, Y, C, L.
HANDSHAPES = np.array([(0, 0, 0, 0, 0), (0.5, 1, 1, 1, 1), (0.6, 0, 1, 1, 1), (0.8, 0, 0, 1, 1), (0, 1, 1, 1, 0),
                       (0.4, 0.5, 0.5, 0.5, 0.5), (0, 0, 1, 1, 1)], dtype=float)
REST = np.array([0.55, 2.3, -0.1])  # where a resting hand hangs
STATE = 20  # per frame: dominant hand (xyz, 5 curls, angle), other hand (same), head yaw, brows


@dataclass(frozen=True)
class SignConfig:
    """What AffectSynth sign draws (module docstring); ``seed`` fixes every byte."""

    num_sentences: int = 600
    num_signers: int = 6
    vocabulary_size: int = 24
    seed: int = 0
    p_time: float = 0.4
    p_adjective: float = 0.3
    p_negation: float = 0.2
    jitter: float = 0.6  # keypoint noise, pixels
    p_hand_dropout: float = 0.02  # per hand and frame: not detected

    def __post_init__(self) -> None:
        if self.num_sentences < 3:
            raise ValueError(f"num_sentences {self.num_sentences}: at least 3 (one per split)")
        if self.num_signers < 1:
            raise ValueError(f"num_signers {self.num_signers}: at least 1")
        if not MIN_VOCABULARY <= self.vocabulary_size <= MAX_VOCABULARY:
            raise ValueError(f"vocabulary_size {self.vocabulary_size}: between {MIN_VOCABULARY} and {MAX_VOCABULARY}")


@dataclass(frozen=True)
class Signer:
    """One signer's body and manner (module docstring); lengths in pixels."""

    centre: float
    shoulders: float  # y of the shoulders' line
    width: float  # half the shoulder width: the unit of sign locations
    head: float
    upper_arm: float
    forearm: float
    hand: float
    dominant: str  # "right" or "left"
    speed: float
    hides_rest_hand: float  # chance that a resting non-dominant hand is not detected in a sentence


@dataclass(frozen=True)
class Sign:
    """One gloss's sign: hand path (locations), handshapes and wrist angles at its start and end."""

    path: np.ndarray  # (k, 3) locations
    curls: np.ndarray  # (2, 5) start and end
    angles: np.ndarray  # (2,) radians, 0 = fingers up
    hands: str  # "one", "mirror" (both hands, mirrored) or "base" (the other hand still, as a base)
    repeats: int
    frames: int  # per repetition at speed 1
    headshake: bool


def draw_signer(seed: int, index: int) -> Signer:
    rng = np.random.default_rng([seed, 1, index])
    scale = rng.uniform(0.85, 1.15)
    width = 36.0 * scale * rng.uniform(0.9, 1.1)
    return Signer(
        centre=FRAME / 2 + rng.uniform(-18, 18), shoulders=118 + rng.uniform(-12, 12), width=width,
        head=22.0 * scale * rng.uniform(0.92, 1.08), upper_arm=width * rng.uniform(1.45, 1.7),
        forearm=width * rng.uniform(1.3, 1.55), hand=16.0 * scale * rng.uniform(0.9, 1.1),
        dominant="left" if rng.random() < 0.25 else "right", speed=rng.uniform(0.85, 1.2),
        hides_rest_hand=rng.uniform(0.2, 0.8),
    )


def draw_sign(seed: int, index: int, gloss: str) -> Sign:
    rng = np.random.default_rng([seed, 2, index])
    path = [ANCHORS[rng.integers(len(ANCHORS))] + rng.normal(0, 0.08, 3)]
    for _ in range(int(rng.integers(1, 3))):  # 1 or 2 movements
        step = rng.normal(0, 1, 3) * np.array([1, 1, 0.4])
        step *= rng.uniform(0.4, 1.0) / max(np.linalg.norm(step[:2]), 1e-6)
        path.append(np.clip(path[-1] + step, (-0.3, -2.3, -1.4), (1.6, 1.6, 0.2)))
    start = int(rng.integers(len(HANDSHAPES)))
    end = start if rng.random() < 0.7 else int(rng.integers(len(HANDSHAPES)))
    angle = rng.uniform(-1.0, 1.0)
    draw = rng.random()
    return Sign(path=np.array(path), curls=HANDSHAPES[[start, end]], angles=np.array([angle, angle + rng.uniform(-1, 1)]),
                hands="mirror" if draw < 0.35 else "base" if draw < 0.5 else "one",
                repeats=1 if rng.random() < 0.7 else 2, frames=int(rng.integers(7, 13)), headshake=gloss == "NICHT")


def _ease(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def _hand_state(position: np.ndarray, curls: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    return np.concatenate([position, curls, np.atleast_1d(angle)])


def _sign_states(sign: Sign, frames: int) -> np.ndarray:
    """The sign's states ``[frames, STATE]`` (dominant hand along its path, the other one by ``hands``)."""
    keys = list(sign.path) + [p for _ in range(sign.repeats - 1) for p in (sign.path[::-1][1:].tolist()
                                                                            + sign.path[1:].tolist())]
    keys = np.array(keys, dtype=float)  # (k, 3) the path, back and forth once per repetition
    t = np.linspace(0, 1, frames)
    pos = _ease(t) * (len(keys) - 1)
    low = np.minimum(pos.astype(int), len(keys) - 2)
    frac = _ease(pos - low)[:, None]
    dominant = keys[low] * (1 - frac) + keys[low + 1] * frac  # (F, 3)
    curls = sign.curls[0] * (1 - _ease(t)[:, None]) + sign.curls[1] * _ease(t)[:, None]  # (F, 5)
    angles = sign.angles[0] * (1 - t) + sign.angles[1] * t
    if sign.hands == "mirror":
        other, other_curls, other_angles = dominant, curls, angles
    elif sign.hands == "base":
        other = np.repeat(np.array([[0.2, 0.7, -0.6]]), frames, axis=0)
        other_curls, other_angles = np.zeros((frames, 5)), np.full(frames, 1.4)
    else:
        other, other_curls, other_angles = np.repeat(REST[None], frames, axis=0), np.full((frames, 5), 0.3), np.full(frames, np.pi)
    yaw = 0.5 * np.sin(t * 4 * np.pi) if sign.headshake else np.zeros(frames)
    return np.concatenate([dominant, curls, angles[:, None], other, other_curls, other_angles[:, None], yaw[:, None],
                           np.zeros((frames, 1))], axis=1)


def _rest_state() -> np.ndarray:
    rest = _hand_state(REST, np.full(5, 0.3), np.pi)
    return np.concatenate([rest, rest, [0.0, 0.0]])


def timeline(glosses: tuple[str, ...], signs: dict[str, Sign], speed: float, rng: np.random.Generator) -> np.ndarray:
    """The sentence's per-frame states ``[T, STATE]``: rest, signs joined by transitions, rest."""
    rest = _rest_state()
    parts = [np.repeat(rest[None], 3, axis=0)]
    for gloss in glosses:
        sign = signs[gloss]
        local = speed * rng.uniform(0.88, 1.14)  # each sign its own pace
        frames = max(4, int(round(sign.frames * sign.repeats / local)))
        states = _sign_states(sign, frames)
        gap = max(2, int(round(4 / local)))
        t = _ease(np.linspace(0, 1, gap + 2)[1:-1])[:, None]
        parts.append(parts[-1][-1] * (1 - t) + states[0] * t)
        parts.append(states)
    gap = max(2, int(round(4 / speed)))
    t = _ease(np.linspace(0, 1, gap + 2)[1:-1])[:, None]
    parts.append(parts[-1][-1] * (1 - t) + rest * t)
    parts.append(np.repeat(rest[None], 3, axis=0))
    return np.concatenate(parts)


def _rotate(angle: np.ndarray) -> np.ndarray:
    """Unit vectors ``[..., 2]`` at ``angle`` from straight up (image y points down)."""
    return np.stack([np.sin(angle), -np.cos(angle)], axis=-1)


# Finger directions relative to the hand's axis, thumb to pinky, and segment lengths in hand sizes.
FINGER_SPREAD = np.array([-1.0, -0.32, -0.05, 0.2, 0.45])
SEGMENTS = np.array([0.28, 0.22, 0.17])


def _hand_points(wrist: np.ndarray, curls: np.ndarray, angle: np.ndarray, size: float, side: float) -> np.ndarray:
    """The 21 MediaPipe hand points ``[F, 21, 3]`` of hands at ``wrist`` ``[F, 3]``."""
    frames = len(wrist)
    points = np.zeros((frames, HAND, 3))
    points[:, 0] = wrist
    for finger in range(5):
        spread = angle + side * FINGER_SPREAD[finger]
        base = wrist[:, :2] + size * (0.22 if finger == 0 else 0.48) * _rotate(spread)
        joints = [base]
        direction = spread.copy()
        for segment in range(3):
            bend = curls[:, finger] * (0.9 + 0.25 * segment)  # curling folds each segment further toward the palm
            direction = direction - side * bend
            length = size * SEGMENTS[segment] * (1 - 0.45 * curls[:, finger])
            joints.append(joints[-1] + length[:, None] * _rotate(direction))
        first = 1 + 4 * finger
        for j, joint in enumerate(joints):
            points[:, first + j, :2] = joint
            points[:, first + j, 2] = wrist[:, 2] - 0.3 * size * curls[:, finger] * (j > 0)
    return points


def _elbow(shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float, side: float) -> np.ndarray:
    """Where the elbow of an arm from ``shoulder`` to ``wrist`` ``[F, 2]`` bends (outward, two-link IK)."""
    reach = wrist - shoulder
    distance = np.clip(np.linalg.norm(reach, axis=1), 1e-3, upper + fore - 1e-3)
    cos = np.clip((upper ** 2 + distance ** 2 - fore ** 2) / (2 * upper * distance), -1, 1)
    bend = np.arccos(cos)
    heading = np.arctan2(reach[:, 1], reach[:, 0])
    out = heading - side * bend  # the elbow swings outward on the arm's own side
    return shoulder + upper * np.stack([np.cos(out), np.sin(out)], axis=1)


def _face_template() -> np.ndarray:
    """The 128 face-contour points ``[128, 2]`` in head radii: outline, eyes, brows, mouth (synthetic)."""
    parts = []
    t = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    parts.append(np.stack([0.9 * np.sin(t), 1.15 * np.cos(t)], axis=1))  # outline
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for x in (-0.38, 0.38):  # eyes
        parts.append(np.stack([x + 0.18 * np.sin(t), -0.2 + 0.07 * np.cos(t)], axis=1))
    for x in (-0.38, 0.38):  # brows
        s = np.linspace(-0.22, 0.22, 10)
        parts.append(np.stack([x + s, -0.42 - 0.05 * np.cos(s * 6)], axis=1))
    parts.append(np.stack([0.3 * np.sin(t), 0.55 + 0.1 * np.cos(t)], axis=1))  # mouth
    return np.concatenate(parts)


FACE_TEMPLATE = _face_template()
BROWS = slice(84, 104)


def render(states: np.ndarray, signer: Signer, rng: np.random.Generator, jitter: float,
           p_hand_dropout: float) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``[T, 203, 3]`` float32 and confidence ``[T, 203]`` of ``states`` signed by ``signer``."""
    frames = len(states)
    data = np.zeros((frames, POINTS, 3))
    w, cx, sy = signer.width, signer.centre, signer.shoulders
    other = "left" if signer.dominant == "right" else "right"
    hands = {}
    for name, offset in ((signer.dominant, 0), (other, 9)):
        side = SIDE[name]
        rel = states[:, offset:offset + 3]
        wrist = np.stack([cx + side * w * rel[:, 0], sy + w * rel[:, 1], w * rel[:, 2]], axis=1)
        angle = side * -states[:, offset + 8]  # mirrored on the other side of the body
        hands[name] = (wrist, _hand_points(wrist, states[:, offset + 3:offset + 8], angle, signer.hand, side))
    yaw, brows = states[:, 18], states[:, 19]
    head = np.stack([cx + yaw * signer.head * 0.35, np.full(frames, sy - 1.75 * w)], axis=1)  # (T, 2)
    body = data[:, :BODY]
    # MediaPipe's LEFT_* points are the signer's left: image right on a frontal view (x grows).
    face_x = np.array([0.0, 0.25, 0.35, 0.45, -0.25, -0.35, -0.45, 0.85, -0.85, 0.3, -0.3])  # head radii
    face_y = np.array([0.1, -0.2, -0.2, -0.2, -0.2, -0.2, -0.2, -0.1, -0.1, 0.55, 0.55])
    body[:, :11, 0] = head[:, :1] + face_x * signer.head
    body[:, :11, 1] = head[:, 1:] + face_y * signer.head
    for name, first in (("left", 11), ("right", 12)):
        side = SIDE[name]
        shoulder = np.array([cx + side * w, sy])
        wrist, points = hands[name]
        body[:, first, :2] = shoulder
        body[:, first + 2, :2] = _elbow(shoulder, wrist[:, :2], signer.upper_arm, signer.forearm, side)
        body[:, first + 4] = wrist
        body[:, first + 6] = points[:, 17]  # PINKY: the pinky's base
        body[:, first + 8] = points[:, 5]  # INDEX
        body[:, first + 10] = points[:, 2]  # THUMB
        for k, (dx, dy) in enumerate(((0.62, 2.7), (0.6, 4.3), (0.6, 5.8), (0.62, 6.0), (0.5, 6.2))):
            body[:, 23 + 2 * k + (name == "right"), :2] = (cx + side * w * dx, sy + w * dy)  # hips to feet
        first_hand = LEFT_HAND if name == "left" else RIGHT_HAND
        data[:, first_hand:first_hand + HAND] = points
    face = FACE_TEMPLATE[None] * signer.head + head[:, None]  # (T, 128, 2)
    face[:, :, 0] += yaw[:, None] * signer.head * 0.15  # the features turn further than the head's centre
    face[:, BROWS, 1] -= brows[:, None] * signer.head * 0.12
    data[:, BODY:BODY + FACE, :2] = face
    data[..., :2] += rng.normal(0, jitter, (frames, POINTS, 2))
    data[..., 2] += rng.normal(0, jitter, (frames, POINTS))
    confidence = np.ones((frames, POINTS))
    resting = np.linalg.norm(states[:, 9:12] - REST, axis=1) < 0.05  # the other hand hangs at rest
    unseen_rest = rng.random() < signer.hides_rest_hand
    for name, offset in ((signer.dominant, 0), (other, 9)):
        first = LEFT_HAND if name == "left" else RIGHT_HAND
        lost = rng.random(frames) < p_hand_dropout
        if name == other and unseen_rest:
            lost |= resting
        confidence[lost, first:first + HAND] = 0.0
        data[lost, first:first + HAND] = 0.0  # MediaPipe writes zeros for a hand it did not find
    return data.astype(np.float32), confidence.astype(np.float32)


@dataclass
class SignSample:
    """One generated sentence: its keypoints as pose-format will store them, and its labels."""

    data: np.ndarray  # (T, 203, 3) float32
    confidence: np.ndarray  # (T, 203) float32
    sentence: Sentence
    signer: int


def generate(config: SignConfig) -> list[SignSample]:
    """Every sample of ``config`` (module docstring: sample ``i`` depends on the seed and ``i`` only)."""
    words = vocabulary(config.vocabulary_size)
    signs = {gloss: draw_sign(config.seed, i, gloss) for i, gloss in enumerate(words.glosses)}
    signers = [draw_signer(config.seed, i) for i in range(config.num_signers)]
    samples = []
    for index in range(config.num_sentences):
        rng = np.random.default_rng([config.seed, 3, index])
        sentence = draw_sentence(rng, words, config.p_time, config.p_adjective, config.p_negation)
        signer = int(rng.integers(config.num_signers))
        speed = signers[signer].speed * float(np.exp(rng.normal(0, 0.12)))
        states = timeline(sentence.glosses, signs, speed, rng)
        data, confidence = render(states, signers[signer], rng, config.jitter, config.p_hand_dropout)
        samples.append(SignSample(data, confidence, sentence, signer))
    return samples


def sample_pose(sample: SignSample) -> Any:
    """The sample as a pose-format ``Pose`` (holistic header, face contour only, no world landmarks)."""
    header = holistic_header(FRAME, FRAME, face=FACE_CONTOUR)
    return make_pose(header, sample.data, sample.confidence, FPS)


def signer_name(signer: int) -> str:
    return f"Signer{signer + 1:02d}"  # PHOENIX's speaker column


def sample_name(index: int) -> str:
    return f"synthsign-{index:05d}"


class PoseTranslationDataset(Dataset):
    """In-memory preprocessed poses with their sentences: each item a dict of the batch contract.

    Args:
        poses: per sample ``(data [T, K, 3], frame_mask [T], points_mask [T, K])``, already cut to max_frames.
        translations, glosses: per sample its sentence and its space-separated glosses.
        subjects: per sample its signer id.
        ids: per sample its index in the data set.
    """

    def __init__(self, poses: list[tuple[np.ndarray, np.ndarray, np.ndarray]], translations: list[str],
                 glosses: list[str], subjects: list[int], ids: list[int]) -> None:
        self.poses, self.translations, self.glosses = poses, translations, glosses
        self.subjects, self.ids = subjects, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item: int) -> dict[str, Any]:
        data, frames, points = self.poses[item]
        return pose_sample(data, frames, points, self.translations[item], self.glosses[item], self.subjects[item],
                           self.ids[item])


def cut_frames(name: str, lengths: list[int], max_frames: int) -> None:
    """The log line that says how many sequences ``max_frames`` cuts (their first ``max_frames`` frames kept)."""
    over = sum(length > max_frames for length in lengths)
    if over:
        log.warning("%s: %d of %d sequences are longer than max_frames=%d frames and are cut to their first %d "
                    "(longest %d)", name, over, len(lengths), max_frames, max_frames, max(lengths))


class AffectSynthSignDataModule(BaseDataModule):
    """AffectSynth sign (module docstring) in the pose-translation contract.

    Args:
        root: folder where the preprocessed set is cached (``affectsynth-sign-v1-<hash>.npz``; generated on
            first use, then read back); None keeps it in memory only.
        num_sentences: samples (sentences, each signed once).
        num_signers: signers, the data set's identities (``subject``).
        vocabulary_size: glosses the grammar draws from (4 to 31; ``sign_grammar.vocabulary``).
        synth_seed: the generator's seed (the data), independent of the training seed.
        split: ``random`` (sentences drawn per split, signers shared, as PHOENIX) or ``signer`` (signer-disjoint).
        split_fractions: train, val, test fractions of the sentences (``random``) or signers (``signer``).
        split_seed: seed of the split.
        max_frames: frames per sequence at most; longer ones keep their first ``max_frames`` (a log line says
            how many).
        hide_legs, reduce_holistic, normalize, keypoints: the pose preprocessing (``data/pose.py``: pose-format's
            operations; ``keypoints`` is ``PoseOptions.layout``).
        batch_size, num_workers: the loaders'.
    """

    modalities = ("pose",)
    tasks = ("translation",)
    class_names: dict[str, tuple[str, ...]] = {}

    def __init__(self, root: str | None = "data/affectsynth", num_sentences: int = 600, num_signers: int = 6,
                 vocabulary_size: int = 24, synth_seed: int = 0, split: str = "random",
                 split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), split_seed: int = 0,
                 max_frames: int = 300, hide_legs: bool = True, reduce_holistic: bool = True, normalize: bool = True,
                 keypoints: str = "holistic", batch_size: int = 8, num_workers: int = 0) -> None:
        super().__init__(batch_size, num_workers, name="synth_sign")
        try:
            self.config = SignConfig(num_sentences=num_sentences, num_signers=num_signers,
                                     vocabulary_size=vocabulary_size, seed=synth_seed)
        except ValueError as error:
            raise ConfigError(f"data.init_args: {error}") from None
        if split not in SIGN_SPLITS:
            raise ConfigError(f"data.init_args.split: {split!r} is not one of {list(SIGN_SPLITS)} (random: sentences "
                              "per split, signers shared; signer: signer-disjoint splits)")
        if split == "signer" and num_signers < 3:
            raise ConfigError(f"data.init_args.num_signers: {num_signers}; split: signer needs at least 3 (one per split)")
        if max_frames < 1:
            raise ConfigError(f"data.init_args.max_frames: {max_frames}; at least 1")
        self.options = PoseOptions(hide_legs, reduce_holistic, normalize, keypoints)
        self.root, self.split, self.split_fractions, self.split_seed = root, split, tuple(split_fractions), split_seed
        self.max_frames = max_frames
        self.layout = holistic_layout(self.options) if keypoints == "holistic" else None
        self.splits: dict[str, np.ndarray] = {}
        self.arrays: dict[str, Any] | None = None

    @property
    def num_keypoints(self) -> int:
        self.setup()
        return int(self.arrays["data"].shape[1])

    num_channels = CHANNELS

    @property
    def frame_size(self) -> int:
        """Values per frame once flattened (``K x C``: 534 for reduced holistic), the mapper's input width."""
        return self.num_keypoints * CHANNELS

    def cache_path(self) -> Path | None:
        if self.root is None:
            return None
        key = {"config": asdict(self.config), "options": asdict(self.options), "version": 1}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        return Path(self.root) / f"affectsynth-sign-v1-{digest}.npz"

    def prepare_data(self) -> None:
        self.setup()

    def _build(self) -> dict[str, Any]:
        samples = generate(self.config)
        poses = [pose_arrays(sample_pose(s), self.options, self.layout) for s in samples]
        translations = [s.sentence.translation for s in samples]
        glosses = [s.sentence.gloss for s in samples]
        signers = [s.signer for s in samples]
        lengths = np.array([len(p.data) for p in poses])
        return {"data": np.concatenate([p.data for p in poses]), "frame_mask": np.concatenate([p.frame_mask for p in poses]),
                "points_mask": np.concatenate([p.points_mask for p in poses]), "lengths": lengths,
                "signers": np.array(signers), "translations": translations, "glosses": glosses}

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is None:
            path = self.cache_path()
            if path is not None and path.is_file():
                with np.load(path) as stored:
                    arrays = {key: stored[key] for key in stored.files if key != "text"}
                    text = json.loads(stored["text"].tobytes().decode())
                arrays.update(text)
            else:
                arrays = self._build()
                if path is not None:
                    from affectlab.io import atomic_write_bytes

                    buffer = io.BytesIO()
                    text = json.dumps({k: arrays[k] for k in ("translations", "glosses")}).encode()
                    np.savez(buffer, text=np.frombuffer(text, dtype=np.uint8),
                             **{k: v for k, v in arrays.items() if k not in ("translations", "glosses")})
                    atomic_write_bytes(path, buffer.getvalue())
            self.arrays = arrays
            self.offsets = np.concatenate([[0], np.cumsum(arrays["lengths"])])
            cut_frames("synth_sign", arrays["lengths"].tolist(), self.max_frames)
        if not self.splits:
            signers = np.asarray(self.arrays["signers"])
            if self.split == "signer":
                self.splits = identity_split(signers, self.split_fractions, self.split_seed)
            else:
                self.splits = identity_split(np.arange(len(signers)), self.split_fractions, self.split_seed)

    def sample_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample ``index``'s ``(data [T, K, 3], frame_mask [T], points_mask [T, K])``, cut to max_frames."""
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        end = min(end, start + self.max_frames)
        a = self.arrays
        return a["data"][start:end], a["frame_mask"][start:end], a["points_mask"][start:end]

    def dataset(self, split: str) -> PoseTranslationDataset:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.setup()
        indices = [int(i) for i in np.sort(self.splits[split])]
        a = self.arrays
        return PoseTranslationDataset([self.sample_arrays(i) for i in indices],
                                      [a["translations"][i] for i in indices], [a["glosses"][i] for i in indices],
                                      [int(a["signers"][i]) for i in indices], indices)

    def sentences(self, split: str) -> list[str]:
        """The translations of ``split``, in sample order (the tokenizer trains on ``train``'s only)."""
        self.setup()
        return [self.arrays["translations"][int(i)] for i in np.sort(self.splits[split])]

    def collate(self) -> Any:
        return collate_pose


SPEC = DatasetSpec(
    "synth_sign", "AffectSynth sign: synthetic sign-language sentences as holistic keypoints (generated on first use)",
    "data/affectsynth",
    "generated by affectlab: affectsynth-sign-v1-<hash>.npz (docs/sign.md); "
    "affectlab data export synth_sign writes the PHOENIX layout",
    reader="affectlab.data.AffectSynthSignDataModule", check="affectlab.data.check.check_generated",
    export="affectlab.data.synth.export_sign.export_sign",
)
