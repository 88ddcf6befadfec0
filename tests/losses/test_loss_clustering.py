"""MCN's clustering loss, the spherical k-means that labels it and the FIFO queue that feeds the k-means."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from affectlab.losses import FeatureQueue, clustering_loss, cosine_kmeans


def reference_clustering(z: list[list[float]], c: list[list[float]], y: list[int], margin: float, tau) -> float:
    """The module's equation in plain Python: normalise, cosine to each centroid, margin on the assigned one."""
    unit = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in z]
    cent = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in c]
    t, total = tau or 1.0, 0.0
    for i, row in enumerate(unit):
        s = [(sum(a * b for a, b in zip(row, ck)) - (margin if k == y[i] else 0.0)) / t for k, ck in enumerate(cent)]
        total += math.log(sum(math.exp(v) for v in s)) - s[y[i]]
    return total / len(z)


def test_clustering_loss_by_hand():
    # [1, 0] vs centroids e1, e2, assigned 0: logits [1 - .001, 0]      -> log(1 + e^-.999)           = 0.313531
    # [3, 4] -> [.6, .8], assigned 1:          logits [.6, .8 - .001]   -> log(e^.6 + e^.799) - .799 = 0.598589
    z = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    c = torch.eye(2)
    assert clustering_loss(z[:1], c, torch.tensor([0])).item() == pytest.approx(0.3135307, abs=1e-6)
    assert clustering_loss(z[1:], c, torch.tensor([1])).item() == pytest.approx(0.5985892, abs=1e-6)
    assert clustering_loss(z, c, torch.tensor([0, 1])).item() == pytest.approx((0.3135307 + 0.5985892) / 2, abs=1e-6)


@pytest.mark.parametrize("margin, tau", [(0.001, None), (0.3, 0.1)])
def test_clustering_loss_matches_loop_reference(margin, tau):
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 2, 2, 1, 0, 2])
    expected = reference_clustering(z.tolist(), c.tolist(), y.tolist(), margin, tau)
    assert clustering_loss(z, c, y, margin, tau).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("case", ["random", "identical rows", "zero vectors"])
def test_clustering_loss_gradients_are_finite(case):
    z = {"random": torch.randn(5, 4), "identical rows": torch.ones(5, 4), "zero vectors": torch.zeros(5, 4)}[case]
    z.requires_grad_()
    c = torch.cat([F.normalize(torch.randn(3, 4), dim=1), torch.zeros(1, 4)])  # (4, 4): a zero centroid too
    y = torch.zeros(5, dtype=torch.long)  # clusters 1..3 are empty in this batch
    loss = clustering_loss(z, c, y, temperature=0.1)
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
