"""MIRO's regulariser by hand, and that it falls as the features approach the oracle's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from affectlab.losses.miro import VAR_EPS, miro_regulariser


def test_regulariser_by_hand():
    f = [torch.tensor([[[[1.0]], [[2.0]]]])]  # (N=1, C=2, 1, 1)
    g = [torch.tensor([[[[3.0]], [[2.0]]]])]
    raw = [torch.tensor([0.0, 1.0])]
    var = F.softplus(raw[0]) + VAR_EPS
    expected = ((4.0 / var[0] + var[0].log()) + (0.0 / var[1] + var[1].log())) / 2 / 2  # mean over 2 channels, / 2
    assert torch.isclose(miro_regulariser(f, g, raw), expected)


def test_regulariser_falls_as_features_approach_the_oracle():
    torch.manual_seed(0)
    oracle = [torch.randn(4, 3, 2, 2), torch.randn(4, 5, 1, 1)]
    features = [torch.zeros_like(g, requires_grad=True) for g in oracle]
    raw = [torch.zeros(g.shape[1], requires_grad=True) for g in oracle]
    optimiser = torch.optim.Adam([*features, *raw], lr=0.1)
    losses = []
    for _ in range(50):
        loss = miro_regulariser(features, oracle, raw)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5
