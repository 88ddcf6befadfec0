"""CluP's cluster-level pseudo-labelling (arXiv 2210.05246, Sec. 3) as pure functions, free of Lightning.

The frozen source model (the teacher) gives every target training sample an embedding ``e_i`` ``[D]`` and a
hard prediction ``p_i`` (argmax of its logits). Then:

1. rows:      r_i = [e_i, 1] / |[e_i, 1]|            (N, D + 1): a column of ones appended, L2-normalised
              (the original's; the ones keep near-zero embeddings from pointing anywhere at random)
2. k-means:   a_i in [0, K) on the rows, Euclidean, k-means++ seeded, ``restarts`` fits, the lowest inertia kept
              (``kmeans``: the original called scikit-learn 1.1.2's ``KMeans(n_clusters=K)`` with every default:
              k-means++, n_init=10, max_iter=300, tol=1e-4; the same settings are this module's defaults)
3. purity:    h_kc = |{i : a_i = k, p_i = c}| / |{i : a_i = k}|          (K, C): cluster k's histogram
              y_k = argmax_c h_kc (the first class on ties), purity_k = max_c h_kc
              every member inherits y_i = y_{a_i}, confidence_i = purity_{a_i} and soft label h_{a_i}
              (``soft-purity``: the histogram of the members' *hard* predictions, trained with KL)
4. outliers:  with ``drop_outliers``, confidence_i = 0 where y_i != p_i
5. selection: per pseudo-class c, the top int(fraction * n_c) members by confidence (``select_per_class``)
6. rounds:    ``iter_clusters`` > 1 repeats 2-5 on the samples not yet selected only; their labels are
              replaced by the new round's, the selected ones keep the label of the round that chose them.

Members of one cluster share one confidence, so the selection's order among them is a tie: here it is made
deterministic (a stable sort, the lower sample index first); the original's ``torch.topk`` broke it
arbitrarily, so selections compare modulo ties (docs/clup.md, "Cross-check").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from affectlab.losses.clustering import kmeans_plusplus

MODES = ("purity", "soft-purity")


def teacher_rows(embeddings: torch.Tensor) -> torch.Tensor:
    """``[N, D + 1]``: each embedding ``[N, D]`` with a 1 appended, divided by its L2 norm (step 1)."""
    rows = torch.cat([embeddings.float(), embeddings.new_ones(len(embeddings), 1, dtype=torch.float32)], dim=1)
    return rows / rows.norm(p=2, dim=1, keepdim=True)  # (N, D + 1); never zero: the appended 1


def _nearest(x: torch.Tensor, c: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of each row of ``x`` ``[N, D]`` among ``c`` ``[K, D]``: ``(assign [N], dist2 [N])``.

    |x - c|^2 = |x|^2 - 2 x.c + |c|^2, so argmin_k = argmax_k (x.c_k - |c_k|^2 / 2): one matmul per chunk of rows,
    which bounds the ``[chunk, K]`` buffer (91,000 x 5000 floats would be 1.8 GB at once).
    """
    half_sq = 0.5 * (c * c).sum(dim=1)  # (K,)
    assign = torch.empty(len(x), dtype=torch.long, device=x.device)
    best = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), chunk):
        scores = torch.addmm(half_sq, x[start:start + chunk], c.T, beta=-1)  # (chunk, K): x.c - |c|^2 / 2
        best[start:start + chunk], assign[start:start + chunk] = scores.max(dim=1)
    dist2 = ((x * x).sum(dim=1) - 2 * best).clamp_min(0)  # (N,)
    return assign, dist2


def _lloyd(x: torch.Tensor, c: torch.Tensor, iterations: int, tol: float, chunk: int) -> tuple[torch.Tensor, float]:
    """Lloyd steps from centroids ``c`` ``[K, D]`` until the squared centre shift is <= ``tol`` or the labels stop
    changing (scikit-learn's two stopping rules), at most ``iterations``; returns ``(assign [N], inertia)``."""
    k = len(c)
    previous = None
    for _ in range(iterations):
        assign, dist2 = _nearest(x, c, chunk)
        if previous is not None and torch.equal(assign, previous):
            break  # strict convergence: the centroids below would be the same
        counts = torch.bincount(assign, minlength=k)  # (K,)
        sums = torch.zeros_like(c).index_add_(0, assign, x)  # (K, D)
        new = sums / counts.clamp_min(1).unsqueeze(1).to(x.dtype)  # (K, D): member means
        empty = (counts == 0).nonzero().flatten()
        if len(empty):  # scikit-learn relocates empty clusters to the points farthest from their centres
            far = torch.topk(dist2, len(empty)).indices
            new[empty] = x[far]
        shift = float(((new - c) ** 2).sum())
        c, previous = new, assign
        if shift <= tol:
            break
    assign, dist2 = _nearest(x, c, chunk)  # labels consistent with the returned centres, as scikit-learn's
    return assign, float(dist2.sum())


@torch.no_grad()
def kmeans(
    x: torch.Tensor, num_clusters: int, restarts: int = 10, iterations: int = 300, tol: float = 1e-4,
    generator: torch.Generator | None = None, chunk: int = 8192,
) -> torch.Tensor:
    """Euclidean k-means on unit rows ``x`` ``[N, D]`` (``teacher_rows``): ``[N]`` long cluster ids.

    Each of ``restarts`` fits is seeded by greedy k-means++ (``losses.clustering.kmeans_plusplus``, scikit-learn's
    ``_kmeans_plusplus``; exact on unit rows, which these are) and run by Lloyd steps; the fit with the lowest
    inertia (sum of squared distances to the assigned centre) is kept. ``tol`` is relative, as scikit-learn's:
    tol * mean per-dimension variance of ``x``. Float32 throughout, on ``x``'s device.
    """
    n = len(x)
    if num_clusters < 1 or num_clusters > n:
        raise ValueError(f"k-means needs 1 <= clusters <= points, got {num_clusters} clusters for {n} points")
    x = x.float()
    tol_abs = tol * float(x.var(dim=0, unbiased=False).mean())
    best_assign, best_inertia = None, float("inf")
    for _ in range(restarts):
        c = kmeans_plusplus(x, num_clusters, generator)  # (K, D)
        assign, inertia = _lloyd(x, c, iterations, tol_abs, chunk)
        if inertia < best_inertia:
            best_assign, best_inertia = assign, inertia
    return best_assign


@dataclass
class ClusterLabels:
    """Step 3-4's output for N samples: ``labels`` ``[N]`` long, ``confidences`` ``[N]`` (the cluster's purity,
    0 for a dropped outlier), ``soft_labels`` ``[N, C]`` (the cluster's histogram of hard predictions)."""

    labels: torch.Tensor
    confidences: torch.Tensor
    soft_labels: torch.Tensor


def purity_labels(assignments: torch.Tensor, predictions: torch.Tensor, num_clusters: int, num_classes: int,
                  drop_outliers: bool = False) -> ClusterLabels:
    """Cluster-level pseudo-labels (steps 3-4) from ``assignments`` ``[N]`` in [0, K) and the teacher's hard
    ``predictions`` ``[N]`` in [0, C)."""
    assignments, predictions = assignments.long(), predictions.long()
    histogram = torch.zeros(num_clusters, num_classes, dtype=torch.float32, device=assignments.device)
    histogram.index_put_((assignments, predictions), torch.ones(len(assignments), device=assignments.device),
                         accumulate=True)  # (K, C) counts
    share = histogram / histogram.sum(dim=1, keepdim=True).clamp_min(1)  # (K, C); an empty cluster has no member
    purity, cluster_label = share.max(dim=1)  # (K,), (K,): torch returns the first maximum on ties
    labels = cluster_label[assignments]  # (N,)
    confidences = purity[assignments].clone()  # (N,)
    if drop_outliers:
        confidences[labels != predictions] = 0.0
    return ClusterLabels(labels, confidences, share[assignments])


def select_per_class(labels: torch.Tensor, confidences: torch.Tensor, fraction: float,
                     num_classes: int) -> torch.Tensor:
    """Step 5: positions (``[M]`` long, ascending within each class, classes in order) of the top
    ``int(fraction * n_c)`` samples of each pseudo-class c by confidence; ties keep the lower position first."""
    chosen = []
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()  # (n_c,) ascending
        count = int(fraction * len(members))
        order = torch.sort(confidences[members], descending=True, stable=True).indices[:count]
        chosen.append(members[order])
    return torch.cat(chosen) if chosen else labels.new_empty(0)


@dataclass
class Selection:
    """What the student trains on: ``indices`` ``[M]`` (positions in the teacher pass, every round's in order),
    their ``labels`` ``[M]``, ``soft_labels`` ``[M, C]`` and ``confidences`` ``[M]``; the labels of every sample
    after the last round (``all_labels`` ``[N]``, ``all_confidences`` ``[N]``); and per round the positions it
    selected (``rounds``)."""

    indices: torch.Tensor
    labels: torch.Tensor
    soft_labels: torch.Tensor
    confidences: torch.Tensor
    all_labels: torch.Tensor
    all_confidences: torch.Tensor
    rounds: list[torch.Tensor] = field(default_factory=list)


def cluster_and_select(
    rows: torch.Tensor, predictions: torch.Tensor, num_clusters: int, fraction: float, num_classes: int,
    drop_outliers: bool = False, iter_clusters: int = 1,
    cluster: Callable[[torch.Tensor, int], torch.Tensor] = kmeans,
) -> Selection:
    """Steps 2-6 over ``rows`` ``[N, D]`` (``teacher_rows``) and hard ``predictions`` ``[N]``.

    ``cluster(rows_subset, K) -> [n]`` ids is ``kmeans`` by default (a test passes fixed assignments). Each round
    clusters only the samples no earlier round selected, relabels them and selects among them.
    """
    if iter_clusters < 1:
        raise ValueError(f"iter_clusters must be at least 1, got {iter_clusters}")
    n = len(rows)
    all_labels = torch.full((n,), -1, dtype=torch.long, device=rows.device)
    all_confidences = torch.zeros(n, device=rows.device)
    soft = torch.zeros(n, num_classes, device=rows.device)
    selected = torch.zeros(n, dtype=torch.bool, device=rows.device)
    rounds = []
    for _ in range(iter_clusters):
        rest = (~selected).nonzero().flatten()  # (n_r,) ascending
        if len(rest) < num_clusters:
            raise ValueError(f"round {len(rounds) + 1} of iter_clusters has {len(rest)} samples left for "
                             f"{num_clusters} clusters")
        assignments = cluster(rows[rest], num_clusters)
        found = purity_labels(assignments, predictions[rest], num_clusters, num_classes, drop_outliers)
        all_labels[rest], all_confidences[rest], soft[rest] = found.labels, found.confidences, found.soft_labels
        chosen = rest[select_per_class(found.labels, found.confidences, fraction, num_classes)]
        selected[chosen] = True
        rounds.append(chosen)
    indices = torch.cat(rounds)
    return Selection(indices, all_labels[indices], soft[indices], all_confidences[indices], all_labels,
                     all_confidences, rounds)
