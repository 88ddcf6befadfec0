"""MCN's pairwise contrastive loss, its modality ring and SimCLR's NT-Xent: hand-computed values, limits, gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from affectlab.losses import mcn_pair_loss, nt_xent_loss, ring_contrastive_loss


def reference_mcn(a: list[list[float]], b: list[list[float]], margin: float, tau: float | None) -> float:
    """MCN's MMS loss in plain Python, written from the paper's equation, independent of the implementation."""
    n, t = len(a), tau or 1.0
    s = [[sum(x * y for x, y in zip(a[i], b[j])) - (margin if i == j else 0.0) for j in range(n)] for i in range(n)]
    s_t = [[s[j][i] for j in range(n)] for i in range(n)]

    def cross_entropy(m):  # mean over rows of -log softmax(row / t)[own index]
        return sum(math.log(sum(math.exp(v / t) for v in m[i])) - m[i][i] / t for i in range(n)) / n

    return cross_entropy(s) + cross_entropy(s_t)


def reference_nt_xent(z1: list[list[float]], z2: list[list[float]], tau: float) -> float:
    """SimCLR eq. 1 in plain Python: every view is an anchor, its partner the positive, itself excluded."""
    z = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in z1 + z2]
    n, total = len(z1), 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        sim = [sum(x * y for x, y in zip(z[i], z[k])) / tau for k in range(2 * n)]
        total += math.log(sum(math.exp(sim[k]) for k in range(2 * n) if k != i)) - sim[pos]
    return total / (2 * n)


def test_mcn_pair_loss_by_hand():
    # S = p_a p_b^T = [[0.6, 1.0], [0.8, 0.0]]; minus 0.001 on the diagonal: [[0.599, 1.0], [0.8, -0.001]].
    # rows:    log(e^.599 + e^1) - .599 = 0.913614,  log(e^.8 + e^-.001) + .001 = 1.171791  -> mean 1.042703
    # columns: log(e^.599 + e^.8) - .599 = 0.798689,  log(e^1 + e^-.001) + .001 = 1.313993  -> mean 1.056341
    # loss = sum of the two means = 2.099043
    p_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p_b = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    assert mcn_pair_loss(p_a, p_b).item() == pytest.approx(2.0990432, abs=1e-6)


def test_mcn_directions_are_summed_not_averaged():
    # Aligned one-hot pair: every row and column is log(1 + e^-(1 - 0.001)) = 0.313531; summed: 0.627061.
    p = torch.eye(2)
    assert mcn_pair_loss(p, p).item() == pytest.approx(0.6270615, abs=1e-6)


@pytest.mark.parametrize("margin, tau", [(0.001, None), (0.0, None), (0.2, 0.1)])
def test_mcn_pair_loss_matches_loop_reference(margin, tau):
    g = torch.Generator().manual_seed(0)
    p_a = F.normalize(torch.randn(5, 3, generator=g, dtype=torch.float64), dim=1)
    p_b = F.normalize(torch.randn(5, 3, generator=g, dtype=torch.float64), dim=1)
    expected = reference_mcn(p_a.tolist(), p_b.tolist(), margin, tau)
    assert mcn_pair_loss(p_a, p_b, margin, tau).item() == pytest.approx(expected, rel=1e-10)


def test_aligned_modalities_give_the_minimum_over_all_shufflings():
    p = torch.eye(4)  # orthogonal unit rows: S is a permutation matrix
    aligned = mcn_pair_loss(p, p)
    for perm in itertools.permutations(range(4)):
        if list(perm) != [0, 1, 2, 3]:
            assert aligned < mcn_pair_loss(p, p[list(perm)])


def test_ring_pairs_and_total():
    g = torch.Generator().manual_seed(1)
    proj = {m: F.normalize(torch.randn(4, 6, generator=g), dim=1) for m in ("video", "audio", "text")}
    total, per_pair = ring_contrastive_loss(proj)
    assert list(per_pair) == ["video-audio", "audio-text", "text-video"]
    assert per_pair["audio-text"] == mcn_pair_loss(proj["audio"], proj["text"])
    assert total.item() == pytest.approx(sum(v.item() for v in per_pair.values()), rel=1e-6)

    total, per_pair = ring_contrastive_loss({"video": proj["video"], "text": proj["text"]})
    assert list(per_pair) == ["video-text"]  # one pair, not a ring of two counting it twice
    assert total == mcn_pair_loss(proj["video"], proj["text"])

    with pytest.raises(ValueError, match="at least two"):
        ring_contrastive_loss({"video": proj["video"]})


def test_nt_xent_by_hand():
    # z1 = z2 = one-hot e1, e2; views [e1, e2, e1, e2]. Anchor e1: positive sim 1, two negatives sim 0, self
    # excluded: -log(e^(1/t) / (e^(1/t) + 2)). t = 1: log(e + 2) - 1 = 0.551445; t = 0.5: log(e^2 + 2) - 2 = 0.239545.
    z = torch.eye(2)
    assert nt_xent_loss(z, z, temperature=1.0).item() == pytest.approx(0.5514447, abs=1e-6)
    assert nt_xent_loss(z, z, temperature=0.5).item() == pytest.approx(0.2395448, abs=1e-6)
    assert nt_xent_loss(3 * z, 0.5 * z, temperature=0.5).item() == pytest.approx(0.2395448, abs=1e-6)  # normalised


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_nt_xent_matches_loop_reference(tau):
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    assert nt_xent_loss(z1, z2, tau).item() == pytest.approx(reference_nt_xent(z1.tolist(), z2.tolist(), tau), rel=1e-9)


def test_nt_xent_identical_views_beat_shuffled_views():
    z = torch.eye(4)
    assert nt_xent_loss(z, z) < nt_xent_loss(z, z[[1, 2, 3, 0]])


CASES = {
    "random": lambda: torch.randn(4, 8),
    "identical rows": lambda: torch.ones(4, 8),
    "zero vectors": lambda: torch.zeros(4, 8),
}


@pytest.mark.parametrize("case", CASES)
def test_gradients_are_finite(case):
    a, b = CASES[case]().requires_grad_(), CASES[case]().requires_grad_()
    losses = [
        mcn_pair_loss(a, b),
        mcn_pair_loss(a, b, temperature=0.07),
        ring_contrastive_loss({"video": a, "audio": b, "text": a + b})[0],
        nt_xent_loss(a, b),
    ]
    for loss in losses:
        grad_a, grad_b = torch.autograd.grad(loss, [a, b])
        assert torch.isfinite(loss) and torch.isfinite(grad_a).all() and torch.isfinite(grad_b).all()


@pytest.mark.parametrize("name", ["mcn", "ring", "nt_xent"])
def test_loss_falls_over_a_few_steps(name):
    g = torch.Generator().manual_seed(3)
    params = [torch.randn(8, 16, generator=g).requires_grad_() for _ in range(3)]
    losses = {
        "mcn": lambda p: mcn_pair_loss(F.normalize(p[0], dim=1), F.normalize(p[1], dim=1), temperature=0.1),
        "ring": lambda p: ring_contrastive_loss({m: F.normalize(x, dim=1) for m, x in zip("vat", p)})[0],
        "nt_xent": lambda p: nt_xent_loss(p[0], p[1]),
    }
    opt = torch.optim.SGD(params, lr=0.5)
    first = losses[name](params).item()
    for _ in range(10):
        opt.zero_grad()
        losses[name](params).backward()
        opt.step()
    assert losses[name](params).item() < first
