"""MCN's clustering loss, the spherical k-means that labels it and the FIFO queue that feeds the k-means."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from affectlab.losses import FeatureQueue, cluster_means, clustering_loss, cosine_kmeans, kmeans_plusplus
from affectlab.losses.clustering import member_sums


def original_cluster_contrast(fused: list[list[float]], queue: list[list[float]], labels: list[int]) -> float:
    """MCN's ``cluster_contrast`` / ConCluGen's ``ClusteringLoss`` from their equations, in plain Python: the
    centroids are the plain means of the queue's members (fast_pytorch_kmeans' centroids), S = fused . centroid
    (no normalisation), 0.001 off the assigned entry, loss = mean over rows of logsumexp(S_i) - S_i,label.
    The labels of the batch are the last len(fused) of the queue's."""
    k = max(labels) + 1
    centroids = []
    for j in range(k):
        members = [row for row, label in zip(queue, labels) if label == j]
        centroids.append([sum(col) / len(members) for col in zip(*members)])
    batch_labels = labels[-len(fused):]
    total = 0.0
    for row, label in zip(fused, batch_labels):
        s = [sum(a * b for a, b in zip(row, c)) - (0.001 if j == label else 0.0) for j, c in enumerate(centroids)]
        total += math.log(sum(math.exp(v) for v in s)) - s[label]
    return total / len(fused)


def reference_cosine(z: list[list[float]], c: list[list[float]], y: list[int], margin: float, tau) -> float:
    """The cosine option in plain Python: normalise, cosine to each centroid, margin on the assigned one."""
    unit = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in z]
    cent = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in c]
    t, total = tau or 1.0, 0.0
    for i, row in enumerate(unit):
        s = [(sum(a * b for a, b in zip(row, ck)) - (margin if k == y[i] else 0.0)) / t for k, ck in enumerate(cent)]
        total += math.log(sum(math.exp(v) for v in s)) - s[y[i]]
    return total / len(z)


def test_clustering_loss_by_hand():
    # dot (default): [3, 4] vs e1, e2, assigned 1: logits [3, 4 - .001]      -> log(1 + e^-.999)           = 0.313531
    # cosine: [3, 4] -> [.6, .8], assigned 1:      logits [.6, .8 - .001]    -> log(e^.6 + e^.799) - .799 = 0.598589
    z, c = torch.tensor([[3.0, 4.0]]), torch.eye(2)
    assert clustering_loss(z, c, torch.tensor([1])).item() == pytest.approx(0.3135307, abs=1e-6)
    assert clustering_loss(z, c, torch.tensor([1]), similarity="cosine").item() == pytest.approx(0.5985892, abs=1e-6)
    # unnormalised centroids count: doubling them doubles the dot logits, leaves the cosine ones
    assert clustering_loss(z, 2 * c, torch.tensor([1])).item() == pytest.approx(math.log(1 + math.exp(-1.999)), abs=1e-6)
    assert clustering_loss(z, 2 * c, torch.tensor([1]), similarity="cosine").item() == pytest.approx(0.5985892, abs=1e-6)


def test_clustering_loss_matches_the_originals_equation():
    """Centroids from cluster_means of a queue (past rows + this batch), the loss on the batch: against the loop."""
    g = torch.Generator().manual_seed(0)
    queue = 3 * torch.randn(20, 5, generator=g, dtype=torch.float64)  # (N + B, K'): the last 6 rows are the batch
    labels = torch.arange(20) % 4
    fused = queue[-6:].clone()
    centroids = cluster_means(queue, labels, 4)
    expected = original_cluster_contrast(fused.tolist(), queue.tolist(), labels.tolist())
    assert clustering_loss(fused, centroids, labels[-6:]).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("margin, tau", [(0.001, None), (0.3, 0.1)])
def test_cosine_option_matches_loop_reference(margin, tau):
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 2, 2, 1, 0, 2])
    expected = reference_cosine(z.tolist(), c.tolist(), y.tolist(), margin, tau)
    assert clustering_loss(z, c, y, margin, tau, similarity="cosine").item() == pytest.approx(expected, rel=1e-10)


def test_only_the_dot_form_can_fall_below_the_cosine_bound():
    """32 clusters, each point on its own centroid, the centroids a regular simplex (the best cosine layout):
    cosine logits are stuck at log(1 + 31 e^{-32/31}) = 2.49 > ... while the raw dot form goes to 0 as the
    vectors grow, as the originals' can."""
    k = 32
    simplex = torch.eye(k, dtype=torch.float64) - 1 / k  # (K, K): rows pairwise at cosine -1/(K - 1)
    y = torch.arange(k)
    bound = math.log(1 + (k - 1) * math.exp(-k / (k - 1)))
    assert bound == pytest.approx(2.488, abs=1e-3) and bound < math.log(k)
    for scale in (1.0, 10.0):
        z, c = scale * simplex, scale * simplex
        assert clustering_loss(z, c, y, margin=0.0, similarity="cosine").item() == pytest.approx(bound, rel=1e-9)
    assert clustering_loss(10 * simplex, 10 * simplex, y, margin=0.0).item() < 1e-3


def test_cluster_means_are_plain_means_and_empty_clusters_zero():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    means = cluster_means(x, torch.tensor([0, 0, 2]), 3)
    assert torch.equal(means, torch.tensor([[2.0, 1.0], [0.0, 0.0], [0.0, 5.0]]))


def test_clustering_loss_refuses_an_unknown_similarity():
    with pytest.raises(ValueError, match="similarity"):
        clustering_loss(torch.ones(2, 2), torch.eye(2), torch.tensor([0, 1]), similarity="euclid")


@pytest.mark.parametrize("case", ["random", "identical rows", "zero vectors"])
def test_clustering_loss_gradients_are_finite(case):
    z = {"random": torch.randn(5, 4), "identical rows": torch.ones(5, 4), "zero vectors": torch.zeros(5, 4)}[case]
    z.requires_grad_()
    c = torch.cat([F.normalize(torch.randn(3, 4), dim=1), torch.zeros(1, 4)])  # (4, 4): a zero centroid too
    y = torch.zeros(5, dtype=torch.long)  # clusters 1..3 are empty in this batch
    for similarity in ("dot", "cosine"):
        loss = clustering_loss(z, c, y, temperature=0.1, similarity=similarity)
        (grad,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_clustering_loss_falls_over_a_few_steps():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(16, 8, generator=g).requires_grad_()
    c, y = F.normalize(torch.randn(4, 8, generator=g), dim=1), torch.randint(4, (16,), generator=g)
    opt = torch.optim.SGD([z], lr=1.0)
    first = clustering_loss(z, c, y).item()
    for _ in range(10):
        opt.zero_grad()
        clustering_loss(z, c, y).backward()
        opt.step()
    assert clustering_loss(z, c, y).item() < first


def blobs(seed: int, per_blob: int = 50, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Three tight blobs around orthogonal directions, shuffled: ``[3 * per_blob, dim]`` points and their labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(per_blob)[torch.randperm(3 * per_blob, generator=g)]
    x = torch.eye(dim)[labels] + 0.05 * torch.randn(3 * per_blob, dim, generator=g)
    return 5.0 * x, labels  # scaled: k-means normalises


def same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when the labelings are equal up to renaming the clusters."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_recovers_separated_blobs(seed):
    x, labels = blobs(seed)
    centroids, assign = cosine_kmeans(x, 3, generator=torch.Generator().manual_seed(seed))
    assert same_partition(assign, labels)
    assert torch.allclose(centroids.norm(dim=1), torch.ones(3))
    # the returned assignments are the argmax against the returned centroids
    assert torch.equal(assign, (F.normalize(x, dim=1) @ centroids.T).argmax(dim=1))


def test_kmeans_is_deterministic_for_a_seeded_generator():
    x = torch.randn(300, 16)
    c1, a1 = cosine_kmeans(x, 7, generator=torch.Generator().manual_seed(4))
    c2, a2 = cosine_kmeans(x, 7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(c1, c2) and torch.equal(a1, a2)


@pytest.mark.parametrize("n", [2, 30])
def test_kmeans_with_more_clusters_than_distinct_points(n):
    x = torch.eye(4)[torch.arange(n) % 2]  # two distinct points, n copies in all
    centroids, assign = cosine_kmeans(x, 5, generator=torch.Generator().manual_seed(0))
    assert centroids.shape == (5, 4) and torch.isfinite(centroids).all()
    assert assign.shape == (n,) and 0 <= assign.min() and assign.max() < 5
    assert same_partition(assign, torch.arange(n) % 2)


def test_kmeans_reseeds_an_empty_cluster_with_the_farthest_point():
    x, labels = blobs(0)
    x, labels = x[labels < 2], labels[labels < 2]  # two blobs, around e1 and e2
    init = torch.zeros(2, 8)
    init[0, :2] = 1.0  # between the blobs: takes every point at the first step
    init[1, 3] = -1.0  # far from everything: empty after the first step
    centroids, _ = cosine_kmeans(x, 2, iterations=1, init=init)
    unit = F.normalize(x, dim=1)
    farthest = (unit @ F.normalize(init[0], dim=0)).argmin()
    assert torch.allclose(centroids[1], unit[farthest])
    centroids, assign = cosine_kmeans(x, 2, iterations=5, init=init)
    assert torch.isfinite(centroids).all() and same_partition(assign, labels)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_kmeans_other_dtypes(dtype):
    x, labels = blobs(1)
    centroids, assign = cosine_kmeans(x.to(dtype), 3, generator=torch.Generator().manual_seed(1))
    assert centroids.dtype == dtype and assign.dtype == torch.long
    assert same_partition(assign, labels)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_member_sums_add_as_index_add_does(dtype):
    """The CPU's sparse product adds each cluster's members in their order, as ``index_add_`` does: bit-equal,
    an empty cluster (here 3 and 6) a zero row, so Lloyd's results do not depend on which one ran."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4099, 33, generator=g, dtype=dtype)  # (N, D)
    assign = torch.randint(0, 7, (4099,), generator=g)
    assign[(assign == 3) | (assign == 6)] = 0
    counts = torch.bincount(assign, minlength=7)
    expected = torch.zeros(7, 33, dtype=dtype).index_add_(0, assign, x)
    sums = member_sums(x, assign, counts)
    assert sums.dtype == dtype and sums.shape == (7, 33) and not sums.is_sparse
    assert torch.equal(sums, expected)
    assert not sums[3].any() and not sums[6].any()


def test_seeding_draws_the_same_centres_as_the_textbook_step():
    """Each greedy step, written directly (every candidate's potential sum_x min(D(x)^2, |x - c|^2) by
    broadcasting, no matmul), picks the same centres as ``kmeans_plusplus``'s x @ c^T form."""
    x = F.normalize(torch.randn(500, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64), dim=1)
    centres = kmeans_plusplus(x, 6, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    first = (torch.rand(1, generator=g, dtype=torch.float64) * 500).long()
    chosen = [x[first[0]]]
    dist = ((x - chosen[0]) ** 2).sum(dim=1)  # (N,)
    for _ in range(5):
        cdf = dist.cumsum(0)
        candidates = torch.searchsorted(cdf, torch.rand(3, generator=g, dtype=torch.float64) * cdf[-1], right=True)
        to = ((x[None] - x[candidates][:, None]) ** 2).sum(dim=2)  # (T, N)
        potentials = torch.minimum(dist, to)
        best = potentials.sum(dim=1).argmin()
        chosen.append(x[candidates[best]])
        dist = potentials[best]
    assert torch.equal(centres, torch.stack(chosen))


def test_kmeans_rejects_empty_input():
    with pytest.raises(ValueError, match="points"):
        cosine_kmeans(torch.zeros(0, 4), 3)


def test_queue_keeps_the_newest_rows_in_order():
    q = FeatureQueue(dim=2, size=5)
    rows = torch.arange(24.0).view(12, 2)  # row i = [2i, 2i + 1]
    assert len(q) == 0 and q.values().shape == (0, 2)
    q.push(rows[:3])
    assert torch.equal(q.values(), rows[:3])
    q.push(rows[3:7])  # wraps around the ring
    assert torch.equal(q.values(), rows[2:7])
    q.push(rows[7:8])
    assert torch.equal(q.values(), rows[3:8])
    q.push(rows[:12])  # more than the queue holds at once: the last 5
    assert torch.equal(q.values(), rows[7:12])
    q.clear()
    assert len(q) == 0 and q.values().shape == (0, 2)


def test_queue_is_detached_and_not_checkpointed():
    q = FeatureQueue(dim=3, size=4)
    q.push(torch.randn(2, 3, requires_grad=True))
    assert not q.values().requires_grad
    assert "queue" not in q.state_dict()  # refilled every epoch (the original clears it), so not saved
    assert q.to(torch.float64).values().dtype == torch.float64  # moves with the module


# -- seeding and fit against scikit-learn on data with known clusters ----------------------------------------------
def known_clusters(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors in blobs around random directions: ``[N, D]`` points and their true labels ``[N]``."""
    spec = {  # (sizes per cluster, spreads per cluster, dim)
        "equal": ([60] * 8, [0.15] * 8, 16),
        "spreads": ([60] * 6, [0.02, 0.05, 0.1, 0.2, 0.3, 0.4], 16),
        "imbalanced": ([400, 150, 60, 20, 10, 6], [0.15] * 6, 16),
        "many": ([30] * 32, [0.2] * 32, 32),  # ConCluGen's K = 32
    }[name]
    sizes, spreads, dim = spec
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    centres = F.normalize(torch.randn(len(sizes), dim, generator=g, dtype=torch.float64), dim=1)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    noise = torch.randn(len(labels), dim, generator=g, dtype=torch.float64) / dim**0.5
    x = centres[labels] + torch.tensor(spreads, dtype=torch.float64)[labels, None] * noise
    order = torch.randperm(len(labels), generator=g)
    return F.normalize(x[order], dim=1), labels[order]


def inertia(x: torch.Tensor, assign: torch.Tensor, k: int) -> float:
    """Sum of squared Euclidean distances of each point to its cluster's mean (scikit-learn's ``inertia_``)."""
    return float(((x - cluster_means(x, assign, k)[assign]) ** 2).sum())


DATA_SETS = ("equal", "spreads", "imbalanced", "many")


@pytest.mark.parametrize("name", DATA_SETS)
def test_best_of_five_inertia_within_one_percent_of_sklearn(name):
    """Five starts each: our best spherical fit's inertia within 1 % of scikit-learn's KMeans(n_init=5)."""
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    x, labels = known_clusters(name)
    k = int(labels.max()) + 1
    ours = min(inertia(x, cosine_kmeans(x, k, 50, generator=torch.Generator().manual_seed(seed))[1], k)
               for seed in range(5))
    theirs = KMeans(n_clusters=k, n_init=5, random_state=0).fit(x.numpy()).inertia_
    assert ours <= 1.01 * theirs, (name, ours, theirs)


def coverage(name: str, seeding, draws: int = 40) -> int:
    """Draws (of ``draws``) in which ``seeding(x, k, seed) -> [K] row indices`` puts a centre in every true cluster."""
    x, labels = known_clusters(name)
    k = int(labels.max()) + 1
    return sum(len(set(labels[seeding(x, k, seed)].tolist())) == k for seed in range(draws))


def ours(local_trials: int | None = None):
    def seeding(x, k, seed):
        centres = kmeans_plusplus(x, k, torch.Generator().manual_seed(seed), local_trials=local_trials)
        return (centres @ x.T).argmax(dim=1)  # each centre is a data point: its index
    return seeding


def sklearn_seeding(x, k, seed):
    return pytest.importorskip("sklearn.cluster").kmeans_plusplus(x.numpy(), k, random_state=seed)[1]


@pytest.mark.parametrize("name", DATA_SETS)
def test_greedy_seeding_covers_the_true_clusters_as_often_as_sklearn(name):
    """Measured over 100 draws: ours 100 / 93 / 55 / 79 %, scikit-learn's 100 / 97 / 51 / 78 %, one candidate per
    step (plain k-means++) 54 / 65 / 13 / 3 %. Within 6 of 40 draws of scikit-learn's count."""
    assert coverage(name, ours()) >= coverage(name, sklearn_seeding) - 6


def test_the_coverage_check_fails_for_plain_kmeans_plusplus():
    """The test above would catch a regression to one candidate per step."""
    assert coverage("many", ours(local_trials=1)) < coverage("many", sklearn_seeding) - 6


def test_warm_start_from_converged_centroids_keeps_them():
    x, _ = known_clusters("equal")
    centroids, assign = cosine_kmeans(x, 8, 50, generator=torch.Generator().manual_seed(0))
    again, assign_again = cosine_kmeans(x, 8, 1, init=centroids)
    assert torch.equal(assign, assign_again) and torch.allclose(again, centroids)


@pytest.mark.parametrize("name", DATA_SETS)
def test_bfloat16_seeding_keeps_inertia_and_coverage(name):
    """The faster ``seeding_dtype=torch.bfloat16`` still fits within 1 % of scikit-learn (best of five) and covers
    the true clusters as often as scikit-learn's seeding; its centres are exact data points."""
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    x, labels = known_clusters(name)
    k = int(labels.max()) + 1
    fit = lambda seed: cosine_kmeans(x, k, 50, generator=torch.Generator().manual_seed(seed),  # noqa: E731
                                     seeding_dtype=torch.bfloat16)
    ours_inertia = min(inertia(x, fit(seed)[1], k) for seed in range(5))
    assert ours_inertia <= 1.01 * KMeans(n_clusters=k, n_init=5, random_state=0).fit(x.numpy()).inertia_

    def seeding(x, k, seed):
        centres = kmeans_plusplus(x, k, torch.Generator().manual_seed(seed), seed_dtype=torch.bfloat16)
        nearest = (centres @ x.T).argmax(dim=1)
        assert torch.equal(centres, x[nearest])  # exact rows of x, not bfloat16-rounded ones
        return nearest
    assert coverage(name, seeding) >= coverage(name, sklearn_seeding) - 6


def test_bfloat16_seeding_departs_from_the_exact_one():
    """The option really takes the low-precision path (so the test above tests it): for some seed it picks other
    centres than the exact seeding."""
    x, labels = known_clusters("many")
    k = int(labels.max()) + 1
    differs = [not torch.equal(kmeans_plusplus(x, k, torch.Generator().manual_seed(s)),
                               kmeans_plusplus(x, k, torch.Generator().manual_seed(s), seed_dtype=torch.bfloat16))
               for s in range(10)]
    assert any(differs)


def test_a_warm_start_from_unit_centroids_starts_exactly_there():
    """Normalising a unit vector again moves its last bits; the previous fit's centroids must come back
    unchanged from a fit with no Lloyd step (ConCluGen's warm-start test compared them bit for bit and flaked)."""

    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        x, start = torch.randn(64, 16, generator=g), F.normalize(torch.randn(8, 16, generator=g), dim=1)
        centroids, _ = cosine_kmeans(x, 8, 0, init=start)
        assert torch.equal(centroids, start)
    centroids, _ = cosine_kmeans(x, 8, 0, init=3 * start)  # a start that is not unit-norm is still normalised
    assert torch.allclose(centroids.norm(dim=1), torch.ones(8))
