"""Implements the cross-modal contrastive loss of Multimodal Clustering Networks (https://arxiv.org/abs/2104.12671)
as used by ConCluGen (https://arxiv.org/abs/2404.10904), and SimCLR's NT-Xent (https://arxiv.org/abs/2002.05709).

MCN's contrastive term is the masked-margin softmax (MMS) loss: for the L2-normalised projections
``p_a``, ``p_b`` of two modalities of the same B clips, with S = p_a p_b^T and margin delta,

    L(a, b) = -1/B sum_i log( e^{(S_ii - delta)/tau} / sum_j e^{(S_ij - delta [i=j])/tau} )     (clip -> clips)
              -1/B sum_i log( e^{(S_ii - delta)/tau} / sum_j e^{(S_ji - delta [i=j])/tau} )     (clip <- clips)

with tau = 1 in MCN and ConCluGen (no temperature).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mcn_pair_loss(
    p_a: torch.Tensor, p_b: torch.Tensor, margin: float = 0.001, temperature: float | None = None
) -> torch.Tensor:
    """MMS loss of one modality pair: cross-entropy over the rows of S plus cross-entropy over its columns.

    The two directions are each averaged over the batch and then *summed* (not averaged), as in MCN's code:
    an aligned batch therefore has twice the per-direction loss.

    Args:
        p_a: ``[B, D]`` L2-normalised projections of modality a (normalised by the projection head, not here).
        p_b: ``[B, D]`` the same clips' projections of modality b.
        margin: delta, subtracted from the positives' cosine similarity (before the temperature, so it stays in
            cosine units whatever the temperature).
        temperature: tau; ``None`` means 1 (MCN, ConCluGen).

    Returns:
        The scalar loss.
    """
    if p_a.shape != p_b.shape or p_a.ndim != 2:
        raise ValueError(f"expected two [B, D] tensors of the same shape, got {tuple(p_a.shape)}, {tuple(p_b.shape)}")
    s = p_a @ p_b.T  # (B, B): S_ij = cos(a_i, b_j)
    s = s - margin * torch.eye(s.shape[0], dtype=s.dtype, device=s.device)
    if temperature is not None:
        s = s / temperature
    targets = torch.arange(s.shape[0], device=s.device)
    return F.cross_entropy(s, targets) + F.cross_entropy(s.T, targets)


def ring_contrastive_loss(
    projections: dict[str, torch.Tensor], margin: float = 0.001, temperature: float | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`mcn_pair_loss` over modality pairs in a ring, summed: L = sum_m L(m, next(m)).

    The ring follows the dict's order: video, audio, text gives ``video-audio``, ``audio-text``,
    ``text-video``; two modalities give their one pair (a ring of two would count it twice).

    Args:
        projections: modality -> ``[B, D]`` L2-normalised projections, at least two modalities.
        margin: see :func:`mcn_pair_loss`.
        temperature: see :func:`mcn_pair_loss`.

    Returns:
        ``(total, per_pair)``: the sum over pairs and each pair's loss keyed ``"<a>-<b>"``.
    """
    names = list(projections)
    if len(names) < 2:
        raise ValueError(f"the contrastive loss needs at least two modalities, got {names}")
    pairs = [(names[i], names[(i + 1) % len(names)]) for i in range(len(names) if len(names) > 2 else 1)]
    per_pair = {f"{a}-{b}": mcn_pair_loss(projections[a], projections[b], margin, temperature) for a, b in pairs}
    return torch.stack(list(per_pair.values())).sum(), per_pair


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """SimCLR's NT-Xent (eq. 1) over the 2B views of B samples, averaged over all 2B anchors.

    With z = normalise([z1; z2]) ``[2B, D]``, the positive of anchor i is the other view of the same sample,
    and the anchor itself is left out of the denominator:

        l(i, j) = -log( e^{z_i . z_j / tau} / sum_{k != i} e^{z_i . z_k / tau} ),   L = 1/2B sum_i l(i, pos(i)).

    Args:
        z1: ``[B, D]`` first views (need not be normalised).
        z2: ``[B, D]`` second views of the same samples, in the same order.
        temperature: tau (0.07 in ConCluGen's SimCLR variant).

    Returns:
        The scalar loss.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two [B, D] tensors of the same shape, got {tuple(z1.shape)}, {tuple(z2.shape)}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D)
    s = (z @ z.T) / temperature  # (2B, 2B)
    # -inf removes self-similarity from the softmax (exp(-inf) = 0) and has a zero gradient.
    s = s.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=s.device), float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(s.device)  # (2B,): the other view
    return F.cross_entropy(s, targets)
