"""Implements the clustering loss of Multimodal Clustering Networks (https://arxiv.org/abs/2104.12671) as used by
ConCluGen (https://arxiv.org/abs/2404.10904), with the spherical k-means and the FIFO queue that feed it.

Each step, k-means (cosine) is fitted on a queue of past detached fused vectors plus the current batch; the
batch's cluster assignments y_i are pseudo-labels, and with z_i, c_k the normalised vectors and centroids,

    L = -1/B sum_i log( e^{(z_i . c_{y_i} - delta)/tau} / sum_k e^{(z_i . c_k - delta [k = y_i])/tau} ),

delta = 0.001 and tau = 1 in MCN and ConCluGen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _kmeans_pp(x: torch.Tensor, k: int, generator: torch.Generator | None, acc: torch.dtype) -> torch.Tensor:
    """k-means++ seeding of unit rows ``x`` ``[N, D]``; returns ``[K, D]`` rows of x.

    Sampling proportional to the cosine distance 1 - x . c is k-means++'s squared Euclidean distance on the
    sphere (|x - c|^2 = 2 (1 - x . c)). One inverse-CDF draw per step keeps it on x's device with no host sync,
    whatever device the generator lives on.
    """
    n = x.shape[0]
    gen_device = generator.device if generator is not None else x.device
    centroids = x.new_empty(k, x.shape[1])  # (K, D)
    dist = torch.full((n,), 2.0, dtype=acc, device=x.device)  # (N,): 2 = the largest cosine distance
    for j in range(k):
        # Every point already chosen (K > distinct points): fall back to uniform rather than a zero-sum draw.
        weights = torch.where(dist.sum() > 0, dist, torch.ones_like(dist))
        cdf = weights.cumsum(0)  # (N,)
        u = torch.rand(1, generator=generator, device=gen_device, dtype=acc).to(x.device) * cdf[-1]
        i = torch.searchsorted(cdf, u, right=True).clamp_max(n - 1)  # (1,); right=True skips zero weights
        centroids[j : j + 1] = x.index_select(0, i)
        dist = torch.minimum(dist, (1 - x @ centroids[j]).to(acc).clamp_min(0))
    return centroids


@torch.no_grad()
def cosine_kmeans(
    x: torch.Tensor,
    num_clusters: int,
    iterations: int = 20,
    generator: torch.Generator | None = None,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means: k-means++ seeding, then Lloyd steps on cosine similarity.

    Each step costs one ``[N, D] x [D, K]`` matmul (assign to argmax_k x . c_k) and one ``index_add_``
    (centroid = normalised sum of its members). An empty cluster is re-seeded with the point farthest from its
    centroid (farthest first when several are empty). The returned assignments are recomputed against the
    returned centroids, so each point's assigned centroid is its nearest one.

    Args:
        x: ``[N, D]`` vectors (any float dtype, any device; normalised here, gradients are not tracked).
        num_clusters: K.
        iterations: Lloyd steps, always all of them (no convergence test, so no host sync for it).
        generator: torch generator for the seeding (deterministic given its state); ``None`` uses the global RNG.
        init: optional ``[K, D]`` initial centroids instead of k-means++.

    Returns:
        ``(centroids, assignments)``: ``[K, D]`` unit-norm centroids (x's dtype) and ``[N]`` long cluster ids.
    """
    n, d = x.shape
    if n == 0 or num_clusters < 1:
        raise ValueError(f"k-means needs points and clusters, got {n} points and {num_clusters} clusters")
    # Sums of thousands of unit vectors lose too much precision in half types; float32 and up are kept.
    acc = torch.promote_types(x.dtype, torch.float32)
    x = F.normalize(x, dim=1)  # (N, D)
    x_acc = x.to(acc)  # (N, D); the same tensor when x is float32
    c = _kmeans_pp(x, num_clusters, generator, acc) if init is None else F.normalize(init.to(x), dim=1)  # (K, D)
    sims = x.new_empty(n, num_clusters)  # (N, K), reused by every step
    for _ in range(iterations):
        best, assign = torch.mm(x, c.T, out=sims).max(dim=1)  # (N,), (N,)
        sums = torch.zeros(num_clusters, d, dtype=acc, device=x.device).index_add_(0, assign, x_acc)  # (K, D)
        c = F.normalize(sums, dim=1).to(x.dtype)
        empty = torch.bincount(assign, minlength=num_clusters) == 0  # (K,)
        if empty.any():  # one host sync per step, so the re-seed below only runs when needed
            e = int(empty.sum())
            far = torch.topk(best, min(e, n), largest=False).indices  # farthest first; cycled when K > N
            c[empty] = x[far[torch.arange(e, device=x.device) % len(far)]]
    return c, torch.mm(x, c.T, out=sims).argmax(dim=1)


class FeatureQueue(nn.Module):
    """FIFO of the newest ``size`` detached ``[dim]`` vectors (a ring buffer; :meth:`values` is oldest first)."""

    def __init__(self, dim: int, size: int):
        super().__init__()
        # Not persistent: ConCluGen clears the queue every epoch and checkpoints are written at epoch ends, so a
        # saved queue would add size x dim floats to every checkpoint only to be cleared on resume.
        self.register_buffer("queue", torch.zeros(size, dim), persistent=False)
        self.size, self._next, self._filled = size, 0, 0

    @torch.no_grad()
    def push(self, x: torch.Tensor) -> None:
        """Append ``[n, dim]`` rows, dropping the oldest beyond ``size``."""
        x = x.detach().to(self.queue)[-self.size :]  # (n', dim): only the newest `size` rows can survive
        head = min(len(x), self.size - self._next)  # rows that fit before the end of the ring
        self.queue[self._next : self._next + head] = x[:head]
        self.queue[: len(x) - head] = x[head:]
        self._next = (self._next + len(x)) % self.size
        self._filled = min(self.size, self._filled + len(x))

    def values(self) -> torch.Tensor:
        """The ``[filled, dim]`` stored rows, oldest first."""
        if self._filled < self.size or self._next == 0:  # not wrapped: already in order, no copy
            return self.queue[: self._filled]
        return torch.cat([self.queue[self._next :], self.queue[: self._next]])  # (size, dim)

    def clear(self) -> None:
        """Forget every row (the memory is reused)."""
        self._next = self._filled = 0

    def __len__(self) -> int:
        return self._filled


def clustering_loss(
    logits_or_features: torch.Tensor,
    centroids: torch.Tensor,
    assignments: torch.Tensor,
    margin: float = 0.001,
    temperature: float | None = None,
) -> torch.Tensor:
    """Cross-entropy of centroid similarities with the k-means assignments as targets (the module's equation).

    Args:
        logits_or_features: ``[B, K']`` cluster-head outputs (or any vectors), normalised here.
        centroids: ``[K, K']`` centroids (normalised here; detached, as k-means' output is).
        assignments: ``[B]`` long pseudo-labels in [0, K).
        margin: delta, subtracted from the assigned centroid's cosine similarity (before the temperature).
        temperature: tau; ``None`` means 1 (MCN, ConCluGen).

    Returns:
        The scalar loss.
    """
    z = F.normalize(logits_or_features, dim=1)  # (B, K')
    s = z @ F.normalize(centroids, dim=1).T  # (B, K)
    s = s - margin * F.one_hot(assignments, centroids.shape[0]).to(s.dtype)
    if temperature is not None:
        s = s / temperature
    return F.cross_entropy(s, assignments)
