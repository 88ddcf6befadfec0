"""Emotions as action units and as points in valence-arousal space, and their course over a clip.

The prototypes follow EMFACS (Friesen & Ekman, 1983) restricted to the 12 DISFA action units: each emotion has
core AUs, always active at its apex, and optional AUs (in parentheses in EMFACS), active in some clips only.
AU 23 (lip tightener, part of anger) is not a DISFA unit and is left out, which is one reason anger and
disgust are easy to confuse from the face alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectlab.data.contract import ACTION_UNITS, EMOTIONS

# (valence, arousal) of each emotion in [-1, 1]^2, placed after Russell's circumplex (Russell, 1980).
EMOTION_VA: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.8, 0.45),
    "sad": (-0.7, -0.55),
    "surprise": (0.25, 0.8),
    "fear": (-0.65, 0.65),
    "disgust": (-0.6, 0.15),
    "anger": (-0.55, 0.85),
}

# EMFACS prototypes: AUs active at the apex of every clip of the emotion ...
CORE_AUS: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happy": (6, 12),
    "sad": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 26),
    "disgust": (9, 15),
    "anger": (4, 5),
}
# ... and AUs that join in some clips only.
OPTIONAL_AUS: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happy": (25,),
    "sad": (17,),
    "surprise": (25,),
    "fear": (25,),
    "disgust": (17,),
    "anger": (17,),
}
P_OPTIONAL = 0.5

_AU_INDEX = {au: i for i, au in enumerate(ACTION_UNITS)}


@dataclass(frozen=True)
class ExpressionProfile:
    """How one identity expresses: a gain per AU and a resting level of a few idiosyncratic AUs.

    Attributes:
        gain: ``[12]`` multiplier of each AU's intensity (some people smile broadly, others barely).
        rest: ``[12]`` intensity held in every frame, also when neutral (a habitual frown, parted lips).
    """

    gain: np.ndarray
    rest: np.ndarray


def sample_profile(rng: np.random.Generator, variation: float = 0.25) -> ExpressionProfile:
    """Draws one identity's expression profile.

    Args:
        rng: the identity's random generator.
        variation: standard deviation of the log-gain per AU; 0 gives every identity the same gains.
    """
    gain = np.exp(rng.normal(0.0, variation, len(ACTION_UNITS))).clip(0.5, 1.6)
    rest = np.zeros(len(ACTION_UNITS))
    idiosyncratic = rng.choice(len(ACTION_UNITS), size=rng.integers(1, 3), replace=False)
    rest[idiosyncratic] = rng.uniform(0.2, 0.9, len(idiosyncratic)) * (variation > 0)
    return ExpressionProfile(gain=gain, rest=rest)


def envelope(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """An onset-apex-offset curve over a clip, 0 at rest and 1 at the apex.

    The apex plateau spans the middle of the clip and lasts at least one frame, so every expressive clip shows
    its apex in some frame; onset and offset timing and ramp lengths are random.

    Returns:
        ``[T]`` float in [0, 1].
    """
    apex_start = rng.uniform(0.2, 0.5)
    apex_end = max(rng.uniform(0.5, 0.85), apex_start + 1.0 / num_frames)  # holds a frame centre
    onset = apex_start - rng.uniform(0.1, 0.4)
    offset = apex_end + rng.uniform(0.1, 0.4)
    t = (np.arange(num_frames) + 0.5) / num_frames  # frame centres in clip time [0, 1]
    rise = np.clip((t - onset) / (apex_start - onset), 0.0, 1.0)
    fall = np.clip((offset - t) / (offset - apex_end), 0.0, 1.0)
    ramp = np.minimum(rise, fall)
    return ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: muscles ease in and out


def au_trajectory(
    emotion: int,
    profile: ExpressionProfile,
    num_frames: int,
    rng: np.random.Generator,
    intensity_range: tuple[float, float] = (1.5, 5.0),
    jitter: float = 0.1,
) -> np.ndarray:
    """Per-frame intensities of the 12 DISFA AUs for one clip of ``emotion``.

    Args:
        emotion: index into ``EMOTIONS``.
        profile: the identity's expression profile.
        num_frames: frames in the clip (T).
        rng: the clip's random generator.
        intensity_range: range of the clip's apex intensity, before the identity's gains (FACS A..E is 1..5).
        jitter: standard deviation of frame-to-frame noise on active AUs.

    Returns:
        ``[T, 12]`` float32 in [0, 5], columns in ``ACTION_UNITS`` order.
    """
    name = EMOTIONS[emotion]
    weight = np.zeros(len(ACTION_UNITS))
    for au in CORE_AUS[name]:
        weight[_AU_INDEX[au]] = rng.uniform(0.75, 1.0)
    for au in OPTIONAL_AUS[name]:
        if rng.random() < P_OPTIONAL:
            weight[_AU_INDEX[au]] = rng.uniform(0.35, 0.8)
    apex = rng.uniform(*intensity_range)
    curve = envelope(num_frames, rng)
    au = apex * (weight * profile.gain)[None, :] * curve[:, None] + profile.rest[None, :]  # (T, 12)
    active = au > 0
    au = au + active * rng.normal(0.0, jitter, au.shape)
    return np.clip(au, 0.0, 5.0).astype(np.float32)


def clip_affect(emotion: int, rng: np.random.Generator, jitter: float = 0.12) -> tuple[float, float]:
    """The clip's own (valence, arousal): the emotion's point plus jitter, kept in [-1, 1]."""
    valence, arousal = EMOTION_VA[EMOTIONS[emotion]]
    valence, arousal = np.clip(np.array([valence, arousal]) + rng.normal(0.0, jitter, 2), -1.0, 1.0)
    return float(valence), float(arousal)
