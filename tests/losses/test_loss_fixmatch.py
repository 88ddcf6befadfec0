"""FixMatch's pseudo-label loss by hand, and that it falls when the strong view learns the pseudo-labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from affectlab.losses import pseudo_label_loss


def test_pseudo_label_loss_by_hand():
    weak = torch.tensor([[4.0, 0.0], [-4.0, 3.5]])  # sigmoid: 0.982, 0.5 | 0.018, 0.971
    strong = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    loss, rate = pseudo_label_loss(weak, strong, p_cutoff=0.95)
    # Kept: (0,0) target 1, (1,0) target 0, (1,1) target 1; (0,1) is unsure (0.5) and dropped.
    expected = (F.softplus(torch.tensor(-1.0)) + F.softplus(torch.tensor(0.5)) + F.softplus(torch.tensor(1.0))) / 4
    assert torch.isclose(loss, expected) and rate == 0.75
    weak.requires_grad_(True)
    strong.requires_grad_(True)
    pseudo_label_loss(weak, strong, 0.95)[0].backward()
    assert weak.grad is None or torch.all(weak.grad == 0)  # no gradient through the pseudo-labels
    assert strong.grad[0, 1] == 0 and strong.grad[0, 0] != 0


def test_loss_falls_as_the_strong_view_fits_the_pseudo_labels():
    torch.manual_seed(0)
    weak = torch.randn(16, 5) * 4
    strong = torch.zeros(16, 5, requires_grad=True)
    optimiser = torch.optim.SGD([strong], lr=50.0)  # the mean over N*A entries makes each gradient small
    losses = []
    for _ in range(20):
        loss = pseudo_label_loss(weak, strong, 0.95)[0]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
