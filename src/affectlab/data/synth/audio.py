"""A voiced, speech-like signal whose prosody follows the clip's valence and arousal.

A harmonic sum on a pitch contour is shaped by two formants per syllable (a vowel) and by a syllable envelope.
The mapping follows the vocal-affect literature (Scherer, 2003; Juslin & Laukka, 2003): arousal raises pitch
level, pitch range, loudness, speaking rate and spectral brightness; valence has smaller effects (a rising or
falling contour, a wider range and slightly raised formants when smiling). So arousal is easy to hear and
valence is not, and the high-arousal negative emotions (fear, anger) are hard to tell apart by ear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (F1, F2) in Hz of the vowels a, e, i, o, u (Peterson & Barney, 1952, adult averages).
_VOWELS = np.array([[730, 1090], [530, 1840], [270, 2290], [570, 840], [300, 870]], np.float32)
_MAX_HARMONICS = 40


@dataclass(frozen=True)
class Voice:
    """One identity's voice.

    Attributes:
        base_f0: resting pitch in Hz.
        formant_scale: vocal tract length factor (shorter tracts, higher formants).
        tilt: spectral tilt exponent at rest (harmonic k has amplitude ``k ** -tilt``).
    """

    base_f0: float
    formant_scale: float
    tilt: float


def sample_voice(rng: np.random.Generator) -> Voice:
    """Draws one identity's voice: a lower or a higher register, then individual variation."""
    high = rng.random() < 0.5
    return Voice(
        base_f0=float(rng.uniform(170, 240) if high else rng.uniform(95, 145)),
        formant_scale=float(rng.uniform(1.05, 1.2) if high else rng.uniform(0.9, 1.05)),
        tilt=float(rng.uniform(1.2, 1.8)),
    )


def _resonance(freq: np.ndarray, centre: np.ndarray, bandwidth: float) -> np.ndarray:
    """Magnitude response of a formant, a Lorentzian peak at ``centre``."""
    return 1.0 / (1.0 + ((freq - centre) / bandwidth) ** 2)


def synthesize(
    valence: float,
    arousal: float,
    voice: Voice,
    rng: np.random.Generator,
    sample_rate: int = 8000,
    seconds: float = 1.0,
    noise: float = 0.05,
    jitter: float = 0.15,
) -> np.ndarray:
    """Synthesises one clip's utterance.

    Args:
        valence: the clip's valence in [-1, 1].
        arousal: the clip's arousal in [-1, 1].
        voice: the identity's voice.
        rng: the clip's random generator.
        sample_rate: samples per second.
        seconds: duration.
        noise: standard deviation of the background noise (pink-ish), independent of the voice's loudness, so
            quiet (sad) speech has the worst signal-to-noise ratio.
        jitter: relative per-clip spread of every prosodic parameter, so the same emotion never sounds the same.

    Returns:
        ``[S]`` int16 waveform (float in [-1, 1] times 32767).
    """
    num = int(round(sample_rate * seconds))
    spread = lambda: 1.0 + jitter * rng.normal()  # noqa: E731
    # 1. Prosody from affect.
    f0_level = voice.base_f0 * 2.0 ** ((0.5 * arousal + 0.08 * valence) * spread())  # up to +-6 semitones
    f0_range = np.clip((4.0 + 3.0 * arousal + 1.5 * valence) * spread(), 0.5, 10.0)  # semitones
    loudness = 0.22 * 2.0 ** (1.2 * arousal * spread())
    rate = 4.0 * 2.0 ** (0.55 * arousal * spread())  # syllables per second
    tilt = voice.tilt - 0.4 * arousal * spread()  # aroused voices are brighter (flatter spectrum)
    slope = (0.6 * valence - 0.4) * f0_range  # semitones over the utterance: negative declines

    # 2. Syllables: onset times, vowels and accents.
    t = np.arange(num, dtype=np.float32) / sample_rate
    gaps = rng.uniform(0.75, 1.25, int(rate * seconds) + 3) / rate
    onsets = np.cumsum(gaps) - gaps[0] * rng.uniform(0.2, 1.0)
    syllable = np.clip(np.searchsorted(onsets, t) - 1, 0, len(onsets) - 1)  # (S,) index of current syllable
    phase = np.clip((t - onsets[syllable]) / gaps[syllable], 0.0, 1.0)
    voiced = rng.uniform(0.55, 0.8, len(onsets))[syllable]  # vowel fraction of each syllable
    envelope = np.where(phase < voiced, np.sin(np.pi * phase / voiced), 0.0) ** 0.7
    envelope *= (t >= onsets[0]) & (t < onsets[-1])
    accent = rng.uniform(-0.5, 1.0, len(onsets))[syllable] * np.sin(np.pi * phase)  # pitch hump per syllable

    # 3. Pitch contour and the harmonic source shaped by the syllable's vowel formants.
    semitones = slope * (t / seconds - 0.5) + f0_range * 0.5 * accent
    f0 = (f0_level * 2.0 ** (semitones / 12.0) * (1.0 + 0.004 * rng.normal(size=num))).astype(np.float32)
    theta = 2.0 * np.pi * np.cumsum(f0) / sample_rate  # (S,) phase of the fundamental
    vowels = _VOWELS[rng.integers(len(_VOWELS), size=len(onsets))] * voice.formant_scale * (1 + 0.05 * valence)
    formant1, formant2 = vowels[syllable, 0], vowels[syllable, 1]
    num_harmonics = int(min(_MAX_HARMONICS, 0.45 * sample_rate / f0.min()))  # the rest would alias
    k = np.arange(1, num_harmonics + 1, dtype=np.float32)[:, None]  # (K, 1)
    freq = k * f0[None, :]  # (K, S)
    gain = k ** -tilt * (0.2 + _resonance(freq, formant1, 90.0) + 0.7 * _resonance(freq, formant2, 120.0))
    voice_signal = (gain * np.sin(k * theta[None, :])).sum(axis=0)
    voice_signal *= loudness * envelope / (np.abs(voice_signal).max() + 1e-6)

    # 4. Background noise: white noise through a leaky integrator mixed with white, roughly pink.
    white = rng.normal(0.0, 1.0, num).astype(np.float32)
    brown = np.cumsum(white) * 0.05
    brown -= np.convolve(brown, np.ones(64) / 64, mode="same")  # remove the drift, keep the low rumble
    background = noise * rng.uniform(0.5, 1.5) * (0.7 * white + brown / (brown.std() + 1e-6) * 0.7)
    wave = np.clip(voice_signal + background, -1.0, 1.0)
    return np.round(wave * 32767.0).astype(np.int16)
