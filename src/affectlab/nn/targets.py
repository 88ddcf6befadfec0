"""Reconstruction targets: fixed summaries of a modality's raw input, for ConCluGen's generative loss when
the encoders train end to end.

The original reconstructs each frozen backbone's features, which carry what the backbone learnt elsewhere.
Trained from scratch, an encoder's own output is no target (it would collapse to a constant), and the output of
a frozen copy of its random initial state carries only what a random network keeps of the input: little more
than the random-init floor already has (docs/results.md, "ConCluGen ablation"). These targets are computed from
the input itself, with no learnt parameters:

- video: where and how each part of the face moves over the clip;
- audio: the spectral envelope and its variation (pitch, loudness and timbre live there);
- text: which words the utterance uses.

Every target ends in a per-dimension standardisation (BatchNorm without affine parameters, running statistics
in eval), so each modality's MSE is on the same scale and no modality's loss outweighs the others by its units.
Each maps ``(x, mask) -> [B, num_features]``, the encoders' interface.
"""

from __future__ import annotations

import torch
from torch import nn

from affectlab.nn.encoders.audio import LogMel
from affectlab.nn.pooling import downsample_mask, masked_mean


def _standardise(norm: nn.BatchNorm1d, values: torch.Tensor) -> torch.Tensor:
    """``norm(values)``, but a training batch of one sample uses the running statistics (it has no spread)."""
    if norm.training and values.shape[0] < 2:
        return nn.functional.batch_norm(values, norm.running_mean, norm.running_var, training=False, eps=norm.eps)
    return norm(values)


class FrameMotionTarget(nn.Module):
    """Frames ``[B, T, C, H, W]`` -> how each cell of a ``size x size`` grid moves: ``[B, 2 * C * size^2]``.

    motion_t = pool(frame_t) - mean_t pool(frame_t)    (what stays still, identity and background, cancels)
    target   = [ sqrt(mean_t motion_t^2),  motion_apex ]

    The first half says where something moves, the second which way at the apex (the frame of most motion),
    the two things an expression is made of.

    Args:
        size: cells per side of the pooling grid.
        channels: colour channels of the frames.
    """

    def __init__(self, size: int = 8, channels: int = 3) -> None:
        super().__init__()
        self.size = size
        self.num_features = 2 * channels * size * size
        self.standardise = nn.BatchNorm1d(self.num_features, affine=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] < 2:
            raise ValueError(f"FrameMotionTarget needs clips [B, T >= 2, C, H, W], got {tuple(x.shape)}")
        B, T, C = x.shape[:3]
        if 2 * C * self.size**2 != self.num_features:
            raise ValueError(f"FrameMotionTarget was built for {self.num_features // (2 * self.size**2)} channels, the "
                             f"frames have {C}: set its channels to {C}")
        pooled = nn.functional.adaptive_avg_pool2d(x.flatten(0, 1).float(), self.size).reshape(B, T, -1)  # (B, T, C*s*s)
        motion = pooled - masked_mean(pooled, mask).unsqueeze(1)  # (B, T, C*s*s)
        if mask is not None:
            motion = motion * mask.unsqueeze(-1)  # padded frames neither move nor become the apex
        rms = masked_mean(motion.pow(2), mask).sqrt()  # (B, C*s*s)
        apex = motion.pow(2).sum(dim=-1).argmax(dim=1)  # (B,)
        at_apex = motion[torch.arange(B, device=x.device), apex]  # (B, C*s*s)
        return _standardise(self.standardise, torch.cat([rms, at_apex], dim=1))  # (B, 2*C*s*s)


class LogMelStatsTarget(nn.Module):
    """Waveform ``[B, S]`` -> mean and standard deviation over time of each log-mel band: ``[B, 2 * n_mels]``.

    Args:
        sample_rate: of the input waveform.
        n_mels: mel bands.
        n_fft: FFT size (window length) in samples.
        hop_length: hop between frames in samples.
    """

    def __init__(self, sample_rate: int = 8000, n_mels: int = 40, n_fft: int = 256, hop_length: int = 80) -> None:
        super().__init__()
        self.frontend = LogMel(sample_rate, n_fft, hop_length, n_mels)
        self.num_features = 2 * n_mels
        self.standardise = nn.BatchNorm1d(self.num_features, affine=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        spectrum = self.frontend(x.float()).transpose(1, 2)  # (B, F, n_mels)
        frames = None if mask is None else downsample_mask(mask, spectrum.shape[1])  # (B, F)
        mean = masked_mean(spectrum, frames)  # (B, n_mels)
        std = (masked_mean((spectrum - mean.unsqueeze(1)).pow(2), frames) + 1e-6).sqrt()  # (B, n_mels)
        return _standardise(self.standardise, torch.cat([mean, std], dim=1))  # (B, 2*n_mels)


class TokenHistogramTarget(nn.Module):
    """Token ids ``[B, L]`` -> each vocabulary entry's share of the utterance's real tokens: ``[B, vocab_size]``.

    Args:
        vocab_size: size of the token vocabulary (ids at or above it are an error).
    """

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.num_features = vocab_size
        self.standardise = nn.BatchNorm1d(self.num_features, affine=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if int(x.max()) >= self.vocab_size:
            raise ValueError(f"token id {int(x.max())} is outside TokenHistogramTarget's vocab_size {self.vocab_size}")
        real = (x != 0) if mask is None else mask  # (B, L)
        counts = torch.zeros(x.shape[0], self.vocab_size, device=x.device)
        counts.scatter_add_(1, x, real.float())  # (B, V)
        return _standardise(self.standardise, counts / real.sum(dim=1, keepdim=True).clamp(min=1))  # (B, V)
