"""A clip's audio track (data/media/audio.py): decoded sample-accurately (PCM in AVI, as export_caer writes),
close to the exported waveform through a lossy codec (AAC in MP4, as export_meld writes), mixed to mono without
changing the level, resampled to 16 kHz; a clip without audio is None, not an error; the log-mel spectrogram
has METHODS.md's settings and the same filters as the audio encoders' front end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectlab.data.media.audio import (
    SAMPLE_RATE,
    has_audio,
    log_mel,
    mel_filterbank,
    read_audio,
    write_clip,
)
from affectlab.data.media.video import VideoDecodeError, write_video

FRAMES = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)


def _speech(rate: int = 8000, seconds: float = 1.0) -> np.ndarray:
    """``[S]`` int16: the AffectSynth voice the exporters write."""
    from affectlab.data.synth.audio import sample_voice, synthesize

    rng = np.random.default_rng(3)
    return synthesize(0.3, 0.5, sample_voice(rng), rng, sample_rate=rate, seconds=seconds)


def _upsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Band-limited (ideal) resampling by an integer factor, the reference for FFmpeg's resampler."""
    return np.fft.irfft(np.fft.rfft(x), n=factor * len(x)) * factor


def test_pcm_track_decodes_sample_accurately_and_resamples_to_16k(tmp_path):
    wave = _speech()
    path = write_clip(tmp_path / "clip.avi", FRAMES, 25, "mpeg4", wave, 8000, "pcm_s16le")
    native = read_audio(path, sample_rate=8000)
    assert native.source_rate == 8000 and native.channels == 1 and native.problem is None
    assert np.array_equal(native.waveform, wave.astype(np.float32) / 32768.0)  # s16 -> float: k / 32768 exactly
    track = read_audio(path)
    assert track.sample_rate == SAMPLE_RATE and track.waveform.dtype == np.float32 and len(track.waveform) == 16000
    assert np.abs(track.waveform[::2] - native.waveform).max() < 1e-6  # the original samples kept, in between
    reference = _upsample(wave / 32768.0, 2)  # interpolated by FFmpeg's windowed sinc, near the ideal one
    assert np.corrcoef(track.waveform, reference)[0, 1] > 0.99
    assert np.abs(track.waveform).max() <= 1.0
    assert len(read_audio(path, max_seconds=0.25).waveform) == 4000


def test_aac_stereo_track_is_the_waveform_in_mono_at_its_level(tmp_path):
    wave = _speech()
    path = write_clip(tmp_path / "clip.mp4", FRAMES, 25, "libx264", wave, 8000, "aac", channels=2)
    track = read_audio(path)
    assert track.channels == 2 and len(track.waveform) == 16000  # the decoder's padding after the end is cut
    reference = _upsample(wave / 32768.0, 2)
    assert np.corrcoef(track.waveform, reference)[0, 1] > 0.99  # lossy, but aligned (no codec delay left)
    level = np.sqrt(np.mean(track.waveform ** 2)) / np.sqrt(np.mean(reference ** 2))
    assert 0.95 < level < 1.05  # equal channels averaged, not summed at -3 dB each (FFmpeg's own down-mix)


def test_a_clip_without_audio_is_none_and_an_unreadable_file_names_itself(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", FRAMES)
    assert read_audio(silent) is None and not has_audio(silent)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00garbage" * 40)
    with pytest.raises(VideoDecodeError, match=r"garbage.mp4: cannot open"):
        read_audio(garbage)


def test_log_mel_has_the_methods_settings_and_the_encoders_filters():
    from affectlab.nn.encoders.audio import mel_filterbank as encoder_filters

    assert torch.allclose(mel_filterbank(), encoder_filters(16000, 2048, 128), atol=1e-4)  # float32 rounding there
    t = np.arange(8000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = log_mel(tone)
    assert mel.shape == (8000 // 160 + 1, 128) and mel.dtype == np.float32
    hz = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 130) / 2595) - 1)  # filter centres
    assert abs(hz[1:-1][int(mel[10:-10].mean(axis=0).argmax())] - 1000) < 60
    assert log_mel(np.zeros(0, np.float32)).shape == (0, 128)
    assert log_mel(np.zeros(100, np.float32)).shape == (1, 128)  # shorter than one window: zero-padded
