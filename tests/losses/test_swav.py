"""SwAV's loss and Sinkhorn-Knopp codes (losses/swav.py) against values worked out by hand, and the codes'
normalisation: each sample's code sums to 1, each prototype's column to B/K (the paper's Q, scaled by B)."""

from __future__ import annotations

import math

import pytest
import torch

from affectlab.losses.swav import sinkhorn_knopp, swav_loss


def test_sinkhorn_one_iteration_by_hand():
    # exp(S / eps) = [[1, 2], [3, 4]] (B = 2 samples, K = 2 prototypes). Q = that^T / 10 = [[.1, .3], [.2, .4]];
    # rows to 1/2: [[1/8, 3/8], [1/6, 1/3]]; columns to 1/2: [[3/14, 9/34], [4/14, 8/34]]; times B, transposed:
    scores = torch.log(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    codes = sinkhorn_knopp(scores, epsilon=1.0, iterations=1)
    assert torch.allclose(codes, torch.tensor([[3 / 7, 4 / 7], [9 / 17, 8 / 17]]), atol=1e-6)
    # epsilon scales the scores: eps = 0.5 on S / 2 is the same problem
    assert torch.allclose(sinkhorn_knopp(scores / 2, epsilon=0.5, iterations=1), codes, atol=1e-6)


# The paper's 3 iterations leave the prototypes' shares within 30 % of equal on this batch (measured: 28 %);
# more iterations converge to the polytope (10: 2.5 %, 50: below 1e-6).
@pytest.mark.parametrize(("iterations", "tolerance"), [(3, 0.3), (10, 0.03), (50, 1e-4)])
def test_sinkhorn_codes_are_doubly_stochastic(iterations, tolerance):
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(64, 16), dim=1)  # (B, D)
    prototypes = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)  # (K, D)
    codes = sinkhorn_knopp(z @ prototypes.T, epsilon=0.05, iterations=iterations)  # (B, K)
    assert codes.shape == (64, 8) and (codes >= 0).all()
    assert torch.allclose(codes.sum(dim=1), torch.ones(64), atol=1e-5)  # each sample's code sums to 1
    shares = codes.sum(dim=0) / (64 / 8)  # each prototype's share of the batch, 1 = the equal partition B/K
    assert torch.allclose(shares, torch.ones(8), atol=tolerance), shares


def test_sinkhorn_spreads_a_batch_that_prefers_one_prototype():
    # every sample scores prototype 0 highest: the argmax would collapse, the equal-partition constraint does not
    scores = torch.tensor([[0.9, 0.5], [0.8, 0.1], [0.9, 0.6], [0.7, 0.0]])
    codes = sinkhorn_knopp(scores, epsilon=0.05, iterations=100)
    assert torch.allclose(codes.sum(dim=0), torch.tensor([2.0, 2.0]), atol=1e-3)
    assert codes[:, 1].argsort(descending=True)[:2].tolist() == [2, 0]  # the ones closest to prototype 1 take it


def test_swav_loss_two_views_by_hand():
    # tau = 0.5; view 1 scores [0, 0] -> softmax [1/2, 1/2]; view 2 scores [0, 0.5 ln 3] -> /tau [0, ln 3] ->
    # softmax [1/4, 3/4]. Code 1 = [1, 0] predicted from view 2: ln 4; code 2 = [1/2, 1/2] from view 1: ln 2.
    p1, p2 = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.5 * math.log(3)]])
    q1, q2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]])
    loss = swav_loss([p1, p2], [q1, q2], temperature=0.5)
    assert loss.item() == pytest.approx((math.log(4) + math.log(2)) / 2, abs=1e-6)


def test_swav_loss_multi_crop_averages_every_code_against_every_other_view():
    # a small crop p3 predicts both codes; the codes are never predicted from their own view
    p1, p2, p3 = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.5 * math.log(3)]]), torch.tensor([[0.5 * math.log(3), 0.0]])
    q1, q2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]])
    # (q1 <- p2) ln 4, (q1 <- p3) -ln(3/4), (q2 <- p1) ln 2, (q2 <- p3) -(ln(3/4) + ln(1/4)) / 2
    expected = (math.log(4) - math.log(3 / 4) + math.log(2) - (math.log(3 / 4) + math.log(1 / 4)) / 2) / 4
    assert swav_loss([p1, p2, p3], [q1, q2], temperature=0.5).item() == pytest.approx(expected, abs=1e-6)


def test_swav_loss_falls_when_views_learn_to_agree():
    torch.manual_seed(0)
    prototypes = torch.nn.Parameter(torch.randn(8, 16))
    z = torch.nn.Parameter(torch.randn(32, 16))
    optimiser = torch.optim.SGD([prototypes, z], lr=0.5)
    losses = []
    for _ in range(40):
        c = torch.nn.functional.normalize(prototypes, dim=1)
        views = [torch.nn.functional.normalize(z + 0.1 * torch.randn_like(z), dim=1) @ c.T for _ in range(2)]
        codes = [sinkhorn_knopp(v.detach()) for v in views]
        loss = swav_loss(views, codes, temperature=0.1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same \\[B, K\\]"):
        swav_loss([torch.zeros(2, 3), torch.zeros(2, 4)], [torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="at least 2 views"):
        swav_loss([torch.zeros(2, 3)], [torch.zeros(2, 3)])
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        sinkhorn_knopp(torch.zeros(2, 3, 4))
