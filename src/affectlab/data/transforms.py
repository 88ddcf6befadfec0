"""Batch-level augmentations of frame tensors, run inside the method (on the accelerator, whole batches).

They draw from torch's global RNG, which ``EpochSeed`` reseeds every epoch, so augmented runs stay
deterministic and resume to the same numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_frames(
    video: torch.Tensor, max_shift: float = 0.1, scale: tuple[float, float] = (0.85, 1.0),
    flip: float = 0.5, brightness: float = 0.2, contrast: float = 0.2,
) -> torch.Tensor:
    """Random zoom-and-shift crop, horizontal flip, brightness and contrast, one draw per clip (the same for
    all its frames, so motion is untouched).

    Args:
        video: ``[B, T, C, H, W]`` in [0, 1].
        max_shift: largest translation as a fraction of the image size.
        scale: range of the zoom (fraction of the image kept).
        flip: probability of a horizontal flip.
        brightness: largest additive change.
        contrast: largest relative change of the deviation from the clip's mean.
    """
    B, T, C, H, W = video.shape
    device, dtype = video.device, video.dtype
    zoom = torch.empty(B, device=device).uniform_(*scale)
    shift = torch.empty(B, 2, device=device).uniform_(-max_shift, max_shift) * 2  # grid units span [-1, 1]
    mirror = torch.where(torch.rand(B, device=device) < flip, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3, device=device)
    theta[:, 0, 0] = zoom * mirror
    theta[:, 1, 1] = zoom
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.repeat_interleave(T, 0), (B * T, C, H, W), align_corners=False)  # (B*T, H, W, 2)
    out = F.grid_sample(video.reshape(B * T, C, H, W), grid.to(dtype), padding_mode="reflection", align_corners=False)
    out = out.view(B, T, C, H, W)
    mean = out.mean(dim=(1, 2, 3, 4), keepdim=True)
    gain = 1 + torch.empty(B, 1, 1, 1, 1, device=device).uniform_(-contrast, contrast)
    offset = torch.empty(B, 1, 1, 1, 1, device=device).uniform_(-brightness, brightness)
    return ((out - mean) * gain + mean + offset).clamp(0, 1)


def augment_audio(waveform: torch.Tensor, gain: float = 0.3, noise: float = 0.01) -> torch.Tensor:
    """Random gain and additive noise per clip on ``[B, S]`` waveforms."""
    B = waveform.shape[0]
    scale = 1 + torch.empty(B, 1, device=waveform.device).uniform_(-gain, gain)
    return (waveform * scale + noise * torch.randn_like(waveform)).clamp(-1, 1)


def drop_tokens(tokens: torch.Tensor, mask: torch.Tensor, probability: float = 0.1) -> torch.Tensor:
    """Replace a random ``probability`` of the real tokens of ``[B, L]`` ids by the unknown id 1."""
    dropped = (torch.rand(tokens.shape, device=tokens.device) < probability) & mask
    return torch.where(dropped, torch.ones_like(tokens), tokens)


def strong_augment_frames(video: torch.Tensor, cutout: float = 0.4, noise: float = 0.05) -> torch.Tensor:
    """FixMatch's strong view: a wider crop and colour change than ``augment_frames``, a per-channel colour
    shift, Gaussian noise and a cut-out square (a fraction ``cutout`` of the side) filled with grey.

    Args:
        video: ``[B, T, C, H, W]`` in [0, 1].
    """
    B, T, C, H, W = video.shape
    out = augment_frames(video, max_shift=0.15, scale=(0.7, 1.0), brightness=0.4, contrast=0.5)
    colour = torch.empty(B, 1, C, 1, 1, device=video.device).uniform_(-0.15, 0.15)
    out = out + colour + noise * torch.randn_like(out)
    side = max(1, int(cutout * min(H, W)))
    top = torch.randint(0, H - side + 1, (B,), device=video.device)
    left = torch.randint(0, W - side + 1, (B,), device=video.device)
    rows = torch.arange(H, device=video.device)[None, :, None]
    cols = torch.arange(W, device=video.device)[None, None, :]
    hole = ((rows >= top[:, None, None]) & (rows < (top + side)[:, None, None])
            & (cols >= left[:, None, None]) & (cols < (left + side)[:, None, None]))  # (B, H, W)
    out = torch.where(hole[:, None, None], torch.full_like(out, 0.5), out)
    return out.clamp(0, 1)
