"""Implements SwAV's swapped prediction loss and its Sinkhorn-Knopp codes (Caron et al., NeurIPS 2020,
arXiv 2006.09882), as the authors' code and solo-learn compute them.

For B samples, K prototypes c_k (unit rows of C, [K, D]) and the unit projections z of a view ([B, D]), the
scores are S = z C^T ([B, K]). The codes Q solve (SwAV eq. 3) max_Q Tr(Q^T C Z^T) + eps H(Q) over the
transportation polytope {Q in R+^{K x B} : Q 1_B = 1/K 1_K, Q^T 1_K = 1/B 1_B}: every prototype gets an equal
share of the batch. Its solution is Q* = Diag(u) exp(C Z^T / eps) Diag(v) (eq. 4), u and v found by a few
Sinkhorn-Knopp iterations. The loss of two views s, t predicting each other's code (eq. 1, 2):

    L(z_t, z_s) = l(z_t, q_s) + l(z_s, q_t),   l(z_t, q_s) = - sum_k q_s^(k) log p_t^(k),
    p_t^(k) = exp(z_t^T c_k / tau) / sum_k' exp(z_t^T c_k' / tau)

With multi-crop (section 3 of the paper) codes are computed on the large crops only, and each large crop's
code is predicted from every other crop, large and small; the terms are averaged.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's codes of a batch: Sinkhorn-Knopp on exp(scores / epsilon), equation 4 of the paper.

    With Q = exp(S^T / eps) / sum(exp(S^T / eps)) ([K, B]), each iteration scales the rows (prototypes) to sum
    1/K, then the columns (samples) to sum 1/B. The result is returned per sample, B Q^T ([B, K]): each row
    (a sample's soft assignment) sums to 1 exactly, since the last scaling is the columns'; each column (a
    prototype's share of the batch) sums to B/K up to the error the last column scaling leaves, which falls
    with the iterations (3 in the paper and solo-learn). No gradient flows through the codes.

    Args:
        scores: ``[B, K]`` scores z^T c_k of B samples against K prototypes (a queue's rows included).
        epsilon: the entropy weight; smaller gives sharper codes (0.05 in the paper).
        iterations: Sinkhorn-Knopp iterations.

    Returns:
        ``[B, K]`` codes.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, K], got shape {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"sinkhorn_knopp needs epsilon > 0 and iterations >= 1, got {epsilon}, {iterations}")
    scores = scores.float()  # exp(s / 0.05) of a cosine reaches e^20: half precision would overflow
    # subtracting the maximum changes nothing after the normalisations and keeps exp finite
    q = torch.exp((scores - scores.max()) / epsilon).T  # (K, B)
    B, K = q.shape[1], q.shape[0]
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True) * K  # rows: each prototype 1/K
        q /= q.sum(dim=0, keepdim=True) * B  # columns: each sample 1/B
    return (q * B).T  # (B, K)


def swav_loss(predictions: list[torch.Tensor], codes: list[torch.Tensor], temperature: float = 0.1) -> torch.Tensor:
    """The swapped prediction loss over multi-crop views, averaged over every (code, other view) pair.

    ``codes[i]`` is the code of view ``i`` (the large crops, first in ``predictions``); every other view ``j``
    predicts it: -1/B sum_b sum_k q_i[b, k] log softmax(s_j[b] / tau)_k. With two views and no small crops this
    is L(z_1, z_2) / 2 of equation 1.

    Args:
        predictions: per view ``[B, K]`` scores z^T c_k (large crops first, then small crops).
        codes: per large crop ``[B, K]`` codes (``sinkhorn_knopp``), ``len(codes) <= len(predictions)``.
        temperature: tau (0.1 in the paper).

    Returns:
        The scalar loss.
    """
    if not codes or len(codes) > len(predictions) or len(predictions) < 2:
        raise ValueError(f"swav_loss needs at least 2 views and 1 to {len(predictions)} codes, got "
                         f"{len(predictions)} views and {len(codes)} codes")
    shapes = {tuple(t.shape) for t in (*predictions, *codes)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every prediction and code must be the same [B, K], got shapes {sorted(shapes)}")
    terms = [
        -(code * torch.log_softmax(predictions[j] / temperature, dim=1)).sum(dim=1).mean()
        for i, code in enumerate(codes) for j in range(len(predictions)) if j != i
    ]
    return torch.stack(terms).mean()
