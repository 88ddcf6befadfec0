"""Audio encoders: a log-mel front end computed in torch, then a small 1D convolutional stack."""

from __future__ import annotations

import math

import torch
from torch import nn

from affectlab.nn.encoders.base import Encoder, register_encoder
from affectlab.nn.pooling import downsample_mask


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Triangular mel filters (HTK mel scale), ``[n_mels, n_fft // 2 + 1]``."""

    def hz_to_mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    mels = torch.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]  # (n_mels, 1) each
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class LogMel(nn.Module):
    """Waveform ``[B, S]`` -> log-mel spectrogram ``[B, n_mels, F]`` with F = S // hop + 1."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filters", mel_filterbank(sample_rate, n_fft, n_mels), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            waveform, self.n_fft, self.hop_length, window=self.window, return_complex=True
        )  # (B, n_fft//2+1, F)
        power = spec.real.pow(2) + spec.imag.pow(2)
        return torch.log(self.filters @ power + 1e-6)  # (B, n_mels, F)


@register_encoder
class AudioConvEncoder(Encoder):
    """Encode a waveform ``[B, S]`` in [-1, 1]: log-mel, then strided conv-BN-ReLU blocks.

    Args:
        sample_rate: of the input waveform; travels with the weights.
        n_mels: mel bands of the front end.
        n_fft: FFT size (window length) in samples.
        hop_length: hop between frames in samples.
        channels: width of the convolutional blocks and size of the output.
        num_blocks: each halves the time resolution.
    """

    modality = "audio"

    def __init__(
        self,
        sample_rate: int = 8000,
        n_mels: int = 40,
        n_fft: int = 256,
        hop_length: int = 80,
        channels: int = 64,
        num_blocks: int = 3,
    ) -> None:
        super().__init__()
        self.frontend = LogMel(sample_rate, n_fft, hop_length, n_mels)
        self.norm = nn.BatchNorm1d(n_mels)  # log-mel levels vary by orders of magnitude across bands
        blocks, width = [], n_mels
        for _ in range(num_blocks):
            blocks += [nn.Conv1d(width, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels), nn.ReLU()]
            width = channels
        self.blocks = nn.Sequential(*blocks)
        self.num_features = channels
        self.reduction = hop_length * 2**num_blocks

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        spec = self.norm(self.frontend(x))  # (B, n_mels, F)
        features = self.blocks(spec).transpose(1, 2)  # (B, F', D)
        if mask is not None:
            mask = downsample_mask(mask, features.shape[1])  # (B, F')
        return features, mask
