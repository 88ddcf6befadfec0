"""What to generate (``SynthConfig``) and the cache's array layout that follows from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from affectlab.data.contract import ACTION_UNITS
from affectlab.data.synth.faces import RENDER_STYLES


@dataclass(frozen=True)
class SynthConfig:
    """Size, seed and difficulty of an AffectSynth data set. Equal configs give byte-identical caches.

    Attributes:
        num_clips: clips (N).
        num_identities: people; clips are dealt to them in shuffled rounds, so each gets N / num_identities.
        num_frames: video frames per clip (T).
        image_size: frame height and width in pixels.
        sample_rate: audio samples per second.
        audio_seconds: audio duration per clip.
        max_text_len: token slots per utterance (L); longer utterances are cut.
        seed: the seed; clip i is drawn from ``np.random.default_rng([seed, i])`` alone.
        styles: render styles (domains) to draw from, a subset of ``RENDER_STYLES``.
        intensity_range: range of a clip's apex AU intensity before the identity's gains; low values make
            faces subtle.
        identity_variation: spread of per-identity AU gains (log scale) and whether identities have
            idiosyncratic resting AUs (0 turns both off).
        pose_jitter: scales head position, scale, roll and yaw jitter (0 gives centred frontal faces).
        face_noise: pixel noise standard deviation (0..1 scale) added in every style.
        audio_noise: background noise standard deviation in the waveform (peak speech is about 0.15..0.5).
        prosody_jitter: relative per-clip spread of the prosodic parameters.
        affect_jitter: standard deviation of a clip's valence and arousal around its emotion's point.
        p_neutral_text: probability that an emotional clip's utterance is neutral.
        p_conflict: probability that an emotional clip's utterance carries another emotion.
        sentiment_noise: standard deviation of the noise on the sentiment score (scale -3..3).
    """

    num_clips: int = 1200
    num_identities: int = 60
    num_frames: int = 8
    image_size: int = 64
    sample_rate: int = 8000
    audio_seconds: float = 1.0
    max_text_len: int = 12
    seed: int = 0
    styles: tuple[str, ...] = RENDER_STYLES
    intensity_range: tuple[float, float] = (2.0, 5.0)
    identity_variation: float = 0.3
    pose_jitter: float = 1.0
    face_noise: float = 0.03
    audio_noise: float = 0.05
    prosody_jitter: float = 0.15
    affect_jitter: float = 0.12
    p_neutral_text: float = 0.35
    p_conflict: float = 0.05
    sentiment_noise: float = 0.4

    def __post_init__(self) -> None:
        # JSON (the manifest, a CLI) gives lists; keep tuples so configs compare and hash by value.
        object.__setattr__(self, "styles", tuple(self.styles))
        object.__setattr__(self, "intensity_range", tuple(float(v) for v in self.intensity_range))
        unknown = set(self.styles) - set(RENDER_STYLES)
        if unknown or not self.styles:
            raise ValueError(f"styles must be a non-empty subset of {RENDER_STYLES}, got {self.styles}")
        for name in ("num_clips", "num_identities", "num_frames", "image_size", "sample_rate", "max_text_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        low, high = self.intensity_range
        if not 0.0 <= low <= high <= 5.0:
            raise ValueError(f"intensity_range must lie in [0, 5] with low <= high, got {self.intensity_range}")
        if not 0.0 <= self.p_neutral_text + self.p_conflict <= 1.0 or min(self.p_neutral_text, self.p_conflict) < 0:
            raise ValueError("p_neutral_text and p_conflict must be probabilities summing to at most 1")

    @property
    def num_samples(self) -> int:
        """Audio samples per clip (S)."""
        return int(round(self.sample_rate * self.audio_seconds))

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (what the manifest stores)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SynthConfig:
        """The config stored by ``to_dict``; unknown keys raise ``TypeError``."""
        return cls(**values)


def array_layout(config: SynthConfig) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Name -> (shape, dtype) of every array in a cache of ``config``, in the order they are written."""
    n, t, s = config.num_clips, config.num_frames, config.image_size
    return {
        "frames": ((n, t, s, s, 3), np.dtype(np.uint8)),
        "audio": ((n, config.num_samples), np.dtype(np.int16)),
        "text": ((n, config.max_text_len), np.dtype(np.int32)),
        "text_len": ((n,), np.dtype(np.int32)),
        "emotion": ((n,), np.dtype(np.int64)),
        "au_intensity": ((n, t, len(ACTION_UNITS)), np.dtype(np.float32)),
        "sentiment": ((n,), np.dtype(np.float32)),
        "valence": ((n,), np.dtype(np.float32)),
        "arousal": ((n,), np.dtype(np.float32)),
        "identity": ((n,), np.dtype(np.int64)),
        "domain": ((n,), np.dtype(np.int64)),
    }
