"""Reconstruction targets: each against values computed by hand, padding ignored, standardisation per dimension."""

from __future__ import annotations

import math

import pytest
import torch

from affectlab.nn.encoders.audio import LogMel
from affectlab.nn.targets import FrameMotionTarget, LogMelStatsTarget, TokenHistogramTarget


def _clip(levels: list[float]) -> torch.Tensor:
    """One clip ``[1, T, 1, 2, 2]`` whose frame t is the constant levels[t]."""
    return torch.tensor(levels).view(1, -1, 1, 1, 1).expand(1, len(levels), 1, 2, 2).clone()


def _raw(target: torch.nn.Module) -> torch.nn.Module:
    """Fresh running statistics are mean 0, variance 1: in eval the standardisation is (up to eps) the identity."""
    return target.eval()


def test_frame_motion_is_rms_and_apex_of_the_frames_minus_their_mean():
    target = _raw(FrameMotionTarget(size=1, channels=1))
    out = target(_clip([1.0, 2.0, 6.0]))  # mean 3, motion -2, -1, 3: apex is the last frame
    expected = torch.tensor([[math.sqrt((4 + 1 + 9) / 3), 3.0]])
    assert torch.allclose(out, expected, atol=1e-4)


def test_frame_motion_ignores_padded_frames_and_still_frames():
    target = _raw(FrameMotionTarget(size=1, channels=1))
    padded = target(_clip([1.0, 2.0, 6.0, 100.0]), torch.tensor([[True, True, True, False]]))
    assert torch.allclose(padded, target(_clip([1.0, 2.0, 6.0])), atol=1e-4)
    assert torch.allclose(target(_clip([5.0, 5.0, 5.0])), torch.zeros(1, 2), atol=1e-6)  # who stands still: nothing


def test_frame_motion_refuses_single_images():
    with pytest.raises(ValueError, match="T >= 2"):
        FrameMotionTarget()(torch.rand(2, 1, 3, 8, 8))
    with pytest.raises(ValueError, match="set its channels to 1"):
        FrameMotionTarget(channels=3)(torch.rand(2, 4, 1, 8, 8))


def test_log_mel_stats_are_mean_and_std_over_time_of_each_band():
    target = _raw(LogMelStatsTarget(sample_rate=8000, n_mels=8, n_fft=128, hop_length=64))
    wave = torch.sin(torch.arange(4000) / 8000 * 2 * math.pi * 440).unsqueeze(0) * torch.linspace(0.1, 1, 4000)
    spectrum = LogMel(8000, 128, 64, 8)(wave)  # (1, 8, F)
    expected = torch.cat([spectrum.mean(-1), spectrum.std(-1, unbiased=False)], dim=1)
    assert torch.allclose(target(wave), expected, atol=1e-3)


def test_token_histogram_is_each_tokens_share_of_the_real_tokens():
    target = _raw(TokenHistogramTarget(vocab_size=8))
    out = target(torch.tensor([[3, 3, 5, 7]]), torch.tensor([[True, True, True, False]]))
    expected = torch.zeros(1, 8)
    expected[0, 3], expected[0, 5] = 2 / 3, 1 / 3
    assert torch.allclose(out, expected, atol=1e-4)
    with pytest.raises(ValueError, match="vocab_size 8"):
        target(torch.tensor([[9, 1]]))


def test_training_standardises_each_dimension_and_tolerates_a_batch_of_one():
    target = TokenHistogramTarget(vocab_size=6).train()
    tokens = torch.randint(1, 6, (64, 10))
    out = target(tokens)  # (64, 6)
    assert torch.allclose(out.mean(0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(out[:, 1:].var(0, unbiased=False), torch.ones(5), atol=1e-2)
    assert torch.equal(out[:, 0], torch.zeros(64))  # id 0 never occurs: a constant dimension stays 0, no NaN
    assert target(tokens[:1]).shape == (1, 6)  # no spread to standardise by: the running statistics
