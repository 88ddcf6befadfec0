"""ConCluGen's reconstruction loss: MSE per modality, summed."""

from __future__ import annotations

import pytest
import torch

from affectlab.losses import reconstruction_loss


def test_reconstruction_loss_by_hand():
    # video: ((1 - 0)^2 + (2 - 0)^2) / 2 = 2.5;  audio: three errors of 1, mean 1;  total 2.5 + 1 = 3.5 (summed).
    recon = {"video": torch.tensor([[1.0, 2.0]]), "audio": torch.zeros(1, 3)}
    targets = {"video": torch.zeros(1, 2), "audio": torch.ones(1, 3), "text": torch.ones(1, 4)}  # extra keys ignored
    total, per_modality = reconstruction_loss(recon, targets)
    assert total.item() == pytest.approx(3.5)
    assert {m: v.item() for m, v in per_modality.items()} == {"video": 2.5, "audio": 1.0}


def test_reconstruction_loss_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    recon = {m: torch.randn(3, d, generator=g, dtype=torch.float64) for m, d in (("video", 4), ("text", 2))}
    targets = {m: torch.randn_like(v) for m, v in recon.items()}
    expected = 0.0
    for m, x_hat in recon.items():
        flat_hat, flat = x_hat.flatten().tolist(), targets[m].flatten().tolist()
        expected += sum((a - b) ** 2 for a, b in zip(flat_hat, flat)) / len(flat)
    assert reconstruction_loss(recon, targets)[0].item() == pytest.approx(expected, rel=1e-12)


def test_reconstruction_loss_rejects_missing_or_mismatched_targets():
    with pytest.raises(ValueError, match="audio"):
        reconstruction_loss({"audio": torch.zeros(2, 3)}, {"video": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="video"):
        reconstruction_loss({"video": torch.zeros(2, 3)}, {"video": torch.zeros(2, 1)})  # would broadcast silently
    with pytest.raises(ValueError, match="at least one"):
        reconstruction_loss({}, {})


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_reconstruction_gradients_are_finite(fill):
    x_hat = torch.full((4, 5), fill, requires_grad=True)
    total, _ = reconstruction_loss({"audio": x_hat}, {"audio": torch.zeros(4, 5)})
    (grad,) = torch.autograd.grad(total, x_hat)
    assert torch.isfinite(total) and torch.isfinite(grad).all()


def test_reconstruction_loss_falls_over_a_few_steps():
    g = torch.Generator().manual_seed(1)
    recon = {m: torch.randn(8, 6, generator=g).requires_grad_() for m in ("video", "audio")}
    targets = {m: torch.randn(8, 6, generator=g) for m in recon}
    opt = torch.optim.SGD(list(recon.values()), lr=0.5)
    first = reconstruction_loss(recon, targets)[0].item()
    for _ in range(5):
        opt.zero_grad()
        reconstruction_loss(recon, targets)[0].backward()
        opt.step()
    assert reconstruction_loss(recon, targets)[0].item() < first
