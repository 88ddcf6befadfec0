"""Implements the clustering loss of Multimodal Clustering Networks (https://arxiv.org/abs/2104.12671) as used by
ConCluGen (https://arxiv.org/abs/2404.10904), with the spherical k-means and the FIFO queue that feed it.

Each step, k-means (cosine assignments) is fitted on a queue of past detached fused cluster-head outputs plus the
current batch; the batch's cluster assignments y_i are pseudo-labels. With z_i the cluster-head output (B, K') and
c_k the centroids, two similarities are offered (``similarity``):

- ``dot`` (the default; what both originals compute, MCN's ``cluster_contrast`` and ConCluGen's
  ``ClusteringLoss``): s_ik = z_i . c_k, the raw dot product of the *unnormalised* output and the *unnormalised*
  centroid c_k = plain mean of the (unnormalised) members of cluster k (``cluster_means``; the originals' k-means,
  fast_pytorch_kmeans in cosine mode, keeps such means as its centroids);
- ``cosine`` (this project's earlier form, kept as an option): s_ik = (z_i / |z_i|) . (c_k / |c_k|).

Then, with delta the margin on the assigned centroid and tau the temperature,

    L = -1/B sum_i log( e^{(s_iy_i - delta)/tau} / sum_k e^{(s_ik - delta [k = y_i])/tau} ),

delta = 0.001 and tau = 1 (no temperature) in MCN and ConCluGen. Why the default changed: cosine logits lie in
[-1, 1] and K unit centroids are at best a regular simplex (cosine -1/(K - 1) between any two), so at tau = 1
the loss cannot fall below log(1 + (K - 1) e^{-K/(K - 1)}) (2.49 for K = 32, against the chance level
ln 32 = 3.47), which kept the term near ln K in every run; raw dot products are unbounded, so the cluster head can
sharpen them as the originals let it.

The k-means itself stays spherical (Lloyd steps on unit vectors, centroids = normalised sums of unit members),
seeded by scikit-learn's greedy k-means++; fast_pytorch_kmeans assigns by cosine to the raw member means, whose
direction weighs each member by its norm. Under ``dot`` only the assignments come from k-means and the loss's
centroids are the raw means of ``cluster_means``; under ``cosine`` they are k-means' unit centroids.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn


def kmeans_plusplus(
    x: torch.Tensor, k: int, generator: torch.Generator | None = None, acc: torch.dtype | None = None,
    local_trials: int | None = None, seed_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Greedy k-means++ seeding of unit rows ``x`` ``[N, D]`` (scikit-learn's ``_kmeans_plusplus``); ``[K, D]`` rows.

    The first centre is a uniform draw. Then, with D(x)^2 the squared distance of x to its nearest chosen centre
    and phi = sum_x D(x)^2 the potential, each step draws ``local_trials`` candidates (2 + floor(ln K) by
    default, as scikit-learn after Arthur & Vassilvitskii 2007) with probability D(x)^2 / phi and keeps the one
    whose addition lowers phi most: argmin_c sum_x min(D(x)^2, |x - c|^2). Plain k-means++ (one draw) missed
    true clusters much more often. On the sphere |x - c|^2 = 2 (1 - x . c), so each step is one
    ``[N, D] x [D, T]`` matmul; everything stays on x's device with no host sync, whatever device the generator
    lives on (its draws are moved). The product is taken as x @ c^T (``[N, T]``), not c @ x^T: the same dot
    products, but BLAS then streams x in its own row-major layout, which on MKL CPUs without AMX was 9x faster
    (2.8 against 25 ms a step for 32768 x 512, T = 6).

    That matmul reads all of x every step (K - 1 passes), so the seeding is bound by memory bandwidth on CPU.
    ``seed_dtype`` (e.g. ``torch.bfloat16``; default ``None``: exact, in x's precision) computes the candidates'
    products x . c on a copy of x in that dtype, accumulated in float32: half the bytes, and on CPUs with AMX or
    AVX512-BF16 (and GPUs) a faster kernel; 1.8x faster seeding on one core for the benchmark's 32768 x 512.
    The price: D(x)^2 = 2 - 2 x . c carries the rounding of x and c to bfloat16 (unit roundoff u = 2^-8), so
    |error| <= 4u = 2^-6 for unit rows and typically ~3e-4 at D = 512 (independent roundings average out); the
    draws' probabilities are perturbed by that much, the centres are still exact rows of x. Only use it where
    bfloat16 products are fast (on other CPUs they are slower than float32).
    """
    n = x.shape[0]
    acc = acc or torch.promote_types(x.dtype, torch.float32)
    trials = local_trials or 2 + int(math.log(k))
    gen_device = generator.device if generator is not None else x.device

    def draw(count: int) -> torch.Tensor:
        return torch.rand(count, generator=generator, device=gen_device, dtype=acc).to(x.device)

    centroids = x.new_empty(k, x.shape[1])  # (K, D)
    first = (draw(1) * n).long().clamp_max(n - 1)  # (1,)
    centroids[:1] = x.index_select(0, first)
    two = x.new_full((1, 1), 2.0)
    low = None if seed_dtype is None else x.to(seed_dtype)  # (N, D) copy for the candidates' products
    dist = (2 * (1 - x @ centroids[0])).to(acc).clamp_min(0)  # (N,): D(x)^2
    uniform = torch.arange(1, n + 1, dtype=acc, device=x.device)  # (N,): the cdf of a uniform draw
    for j in range(1, k):
        # Every point already chosen (K > distinct points): fall back to uniform rather than a zero-sum draw.
        cdf = dist.cumsum(0)  # (N,)
        cdf = torch.where(cdf[-1] > 0, cdf, uniform)
        u = draw(trials) * cdf[-1]  # (T,)
        candidates = torch.searchsorted(cdf, u, right=True).clamp_max(n - 1)  # (T,); right=True skips zero weights
        # 2 - 2 x . c in one addmm, the minimum in place after it: few passes over (N, T), since on a loaded CPU
        # each parallel pass costs a thread-pool wake-up. |x - c|^2 may round below 0 (x = c); the clamp comes
        # after the minimum, on the kept column only (max(min(d, t), 0) = min(d, max(t, 0)) for d >= 0), so the
        # candidates' sums carry those roundings (|.| ~ 1e-7) and the kept D(x)^2 is exactly as before.
        if low is None:
            to_candidates = torch.addmm(two, x, x.index_select(0, candidates).T, alpha=-2).to(acc)  # (N, T)
        else:  # 2 - 2 x . c from the low-precision copy, in acc from the product on
            to_candidates = (low @ low.index_select(0, candidates).T).to(acc).mul_(-2).add_(2)  # (N, T)
        potentials = torch.minimum(dist.unsqueeze(1), to_candidates, out=to_candidates)  # (N, T)
        best = potentials.sum(dim=0).argmin()  # (): the candidate lowering phi most
        centroids[j : j + 1] = x.index_select(0, candidates[best].view(1))
        dist = potentials[:, best].clamp_min(0)  # (N,)
    return centroids


def member_sums(x: torch.Tensor, assign: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``[K, D]``: row k is the sum of the rows of ``x`` ``[N, D]`` assigned to k (``assign`` ``[N]``, ``counts`` ``[K]``).

    On the CPU, ``index_add_`` adds one row at a time through a dispatched tensor operation (about 1.7 us each:
    57 ms for 32768 rows, more than the assignment's matmul), so there the sum is a CSR matrix of ones ``[K, N]``
    (row k lists k's members in their order, a stable sort) times x: one pass, the same additions in the same
    order (bit-equal to ``index_add_`` in the tests), 21 ms. Elsewhere (CUDA: atomics) ``index_add_`` stays.
    """
    k = counts.shape[0]
    if x.device.type != "cpu":
        return torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, assign, x)
    rows = torch.zeros(k + 1, dtype=torch.long)  # (K + 1,) CSR row offsets
    torch.cumsum(counts, 0, out=rows[1:])
    members = torch.argsort(assign, stable=True)  # (N,): the members of cluster 0, then of 1, ... in input order
    with warnings.catch_warnings():  # "sparse CSR support is in beta": this product is covered by our tests
        warnings.simplefilter("ignore", UserWarning)
        ones = torch.sparse_csr_tensor(rows, members, x.new_ones(x.shape[0]), size=(k, x.shape[0]),
                                       check_invariants=False)  # (K, N)
        return ones @ x  # (K, D)


class _Similarities:
    """``x @ c^T`` ``[N, K]`` for the fit's fixed ``x`` ``[N, D]`` and each step's centroids ``c`` ``[K, D]``.

    On the CPU in float32 the product goes through oneDNN (``mkldnn_linear``, x packed once per fit) rather than
    torch's ``mm`` (MKL's sgemm): on this project's AMD EPYC VM MKL takes its slow generic path, and oneDNN's
    kernel was 1.3x (two threads) to 1.8x (one) faster for 32768 x 512 by 64, paired and interleaved; the same
    dot products, summed in another order (|difference| < 1e-6, the same argmax in the tests). Elsewhere, or if
    oneDNN is unavailable, ``torch.mm`` into one reused buffer.
    """

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.packed = None
        if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
            self.packed = x.to_mkldnn()  # (N, D), packed once for the fit's iterations + 1 products
        self.out: torch.Tensor | None = None

    def __call__(self, c: torch.Tensor) -> torch.Tensor:
        if self.packed is not None:
            return torch._C._nn.mkldnn_linear(self.packed, c.contiguous().to_mkldnn(), None).to_dense()  # (N, K)
        if self.out is None or self.out.shape[1] != c.shape[0]:
            self.out = self.x.new_empty(self.x.shape[0], c.shape[0])  # (N, K), reused by every step
        return torch.mm(self.x, c.T, out=self.out)


@torch.no_grad()
def cosine_kmeans(
    x: torch.Tensor,
    num_clusters: int,
    iterations: int = 20,
    generator: torch.Generator | None = None,
    init: torch.Tensor | None = None,
    seeding_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means: greedy k-means++ seeding (``kmeans_plusplus``), then Lloyd steps on cosine similarity.

    Each step costs one ``[N, D] x [D, K]`` matmul (``_Similarities``; assign to argmax_k x . c_k) and one sum of each cluster's
    members (centroid = normalised sum; ``member_sums``). An empty cluster is re-seeded with the point farthest from its
    centroid (farthest first when several are empty). The returned assignments are recomputed against the
    returned centroids, so each point's assigned centroid is its nearest one.

    Args:
        x: ``[N, D]`` vectors (any float dtype, any device; normalised here, gradients are not tracked).
        num_clusters: K.
        iterations: Lloyd steps, always all of them (no convergence test, so no host sync for it).
        generator: torch generator for the seeding (deterministic given its state); ``None`` uses the global RNG.
        init: optional ``[K, D]`` initial centroids instead of k-means++ (e.g. the previous step's, to warm-start a
            fit on a slowly moving queue); normalised here.
        seeding_dtype: ``kmeans_plusplus``'s ``seed_dtype`` (``None``: exact; ``torch.bfloat16``: faster seeding
            where bfloat16 matmuls are fast, with D(x)^2 rounded as described there). The Lloyd steps stay exact.

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
    if init is None:
        c = kmeans_plusplus(x, num_clusters, generator, acc, seed_dtype=seeding_dtype)  # (K, D)
    else:
        # Rows already of unit norm (the previous fit's centroids) are kept bit for bit: normalising a unit vector
        # again moves its last bits, so a warm start would not start exactly where the last fit ended.
        c = init.to(x)  # (K, D)
        norm = c.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (K, 1)
        c = torch.where((norm - 1).abs() > 1e-6, c / norm, c)
    similarities = _Similarities(x)
    for _ in range(iterations):
        best, assign = similarities(c).max(dim=1)  # (N,), (N,)
        counts = torch.bincount(assign, minlength=num_clusters)  # (K,)
        c = F.normalize(member_sums(x_acc, assign, counts), dim=1).to(x.dtype)  # (K, D)
        empty = counts == 0  # (K,)
        if empty.any():  # one host sync per step, so the re-seed below only runs when needed
            e = int(empty.sum())
            far = torch.topk(best, min(e, n), largest=False).indices  # farthest first; cycled when K > N
            c[empty] = x[far[torch.arange(e, device=x.device) % len(far)]]
    return c, similarities(c).argmax(dim=1)


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


@torch.no_grad()
def cluster_means(x: torch.Tensor, assignments: torch.Tensor, num_clusters: int) -> torch.Tensor:
    """``[K, D]`` plain means of the rows of ``x`` ``[N, D]`` in each cluster (not normalised): the originals'
    centroids. A cluster without members gets the zero vector (logit 0 for every point)."""
    acc = torch.promote_types(x.dtype, torch.float32)
    sums = torch.zeros(num_clusters, x.shape[1], dtype=acc, device=x.device).index_add_(0, assignments, x.to(acc))
    counts = torch.bincount(assignments, minlength=num_clusters).clamp_min(1)  # (K,)
    return (sums / counts[:, None]).to(x.dtype)


def clustering_loss(
    features: torch.Tensor,
    centroids: torch.Tensor,
    assignments: torch.Tensor,
    margin: float = 0.001,
    temperature: float | None = None,
    similarity: str = "dot",
) -> torch.Tensor:
    """Cross-entropy of centroid similarities with the k-means assignments as targets (the module's equation).

    Args:
        features: ``[B, K']`` cluster-head outputs, as they are (``dot``) or normalised here (``cosine``).
        centroids: ``[K, K']`` centroids (``dot``: the plain member means of ``cluster_means``; ``cosine``:
            normalised here); detached, as k-means' output is.
        assignments: ``[B]`` long pseudo-labels in [0, K).
        margin: delta, subtracted from the assigned centroid's similarity (before the temperature).
        temperature: tau; ``None`` means 1 (MCN, ConCluGen).
        similarity: ``dot`` (raw dot products, the originals) or ``cosine`` (both sides normalised).

    Returns:
        The scalar loss.
    """
    if similarity == "dot":
        s = features @ centroids.T  # (B, K)
    elif similarity == "cosine":
        s = F.normalize(features, dim=1) @ F.normalize(centroids, dim=1).T  # (B, K)
    else:
        raise ValueError(f"similarity must be 'dot' or 'cosine', got {similarity!r}")
    s = s - margin * F.one_hot(assignments, centroids.shape[0]).to(s.dtype)
    if temperature is not None:
        s = s / temperature
    return F.cross_entropy(s, assignments)
