"""SHOT's information maximisation and centroid pseudo-labels (losses/shot.py) against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from affectlab.losses.shot import (
    information_maximisation,
    shot_features,
    shot_objective,
    shot_pseudo_labels,
    weighted_centroids,
)

# p = softmax: [0.5, 0.5] and [0.75, 0.25]
LOGITS = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])


def test_information_maximisation_by_hand():
    entropy, diversity = information_maximisation(LOGITS)
    h1 = math.log(2)  # 0.6931
    h2 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))  # 0.5623
    assert entropy.item() == pytest.approx((h1 + h2) / 2, abs=1e-4)  # 0.6277
    mean = (0.625, 0.375)  # E_x p
    assert diversity.item() == pytest.approx(sum(p * math.log(p) for p in mean), abs=1e-4)  # -0.6616
    # Uniform mean prediction: the diversity term is at its minimum, -log K
    _, uniform = information_maximisation(torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]))
    assert uniform.item() == pytest.approx(-math.log(3), abs=1e-4)


def test_objective_by_hand():
    terms = shot_objective(LOGITS, torch.tensor([0, 0]), beta=0.3)
    ce = (math.log(2) - math.log(0.75)) / 2  # 0.4904
    assert terms["pseudo_label"].item() == pytest.approx(ce, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(terms["entropy"].item() + terms["diversity"].item() + 0.3 * ce, abs=1e-6)
    with pytest.raises(ValueError, match="pseudo_labels must be"):
        shot_objective(LOGITS, torch.tensor([0, 0, 1]))


def test_features_get_a_one_and_unit_length():
    assert torch.allclose(shot_features(torch.tensor([[3.0, 4.0]])), torch.tensor([[3.0, 4.0, 1.0]]) / math.sqrt(26))


def test_weighted_centroids_by_hand():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    weights = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # c_0 = (f_0 + 0.5 f_1) / 1.5 = (2/3, 1/3); c_1 = (0.5 f_1 + f_2) / 1.5 = (2/3, 1)
    expected = torch.tensor([[2 / 3, 1 / 3], [2 / 3, 1.0]])
    assert torch.allclose(weighted_centroids(features, weights), expected, atol=1e-6)


def test_pseudo_labels_correct_a_wrong_prediction_by_hand():
    """Samples 0, 1 share a direction, 2, 3 another; the classifier gets sample 1 wrong.

    With the ones column, u0 = (2, 0, 1)/sqrt5 and u1 = (0, 2, 1)/sqrt5, u0.u1 = 1/5. Weighted centroids (Eq. 4):
    c_0 = (1.3 u0 + 0.5 u1)/1.8, c_1 = (0.7 u0 + 1.5 u1)/2.2; for u0 cos(u0, c_0) = 1.4/sqrt(2.2) = 0.944 against
    cos(u0, c_1) = 1.0/sqrt(3.16) = 0.563, so sample 1 becomes class 0; for u1 0.512 against 0.923: class 1.
    The refinement's hard centroids are then u0 and u1 themselves: the labels stay [0, 0, 1, 1].
    """
    features = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    probabilities = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    assert probabilities.argmax(1).tolist() == [0, 1, 1, 1]
    for refinements in (0, 1):
        assert shot_pseudo_labels(features, probabilities, refinements=refinements).tolist() == [0, 0, 1, 1]


def test_refinement_moves_a_sample_by_hand():
    """Unit features at 0, 60, 70 and 90 degrees; the classifier calls only the last one class 1 (p = 0.8).

    u_a = (cos a, sin a, 1)/sqrt2. Round 0 (Eq. 4): c_0 = (u_0 + u_60 + u_70 + 0.2 u_90)/3.2, c_1 = u_90 (the only
    sample weighing class 1); cosines to (c_0, c_1): u_0 0.849/0.500, u_60 0.986/0.933, u_70 0.962/0.970, u_90
    0.876/1.000, so labels [0, 0, 1, 1]. The refinement (Eq. 6): h_0 = mean(u_0, u_60), h_1 = mean(u_70, u_90);
    u_60 is at 0.935 of h_0 and 0.970 of h_1, and moves to class 1: [0, 1, 1, 1], the groups the angles show.
    """
    angles = torch.tensor([0.0, 60.0, 70.0, 90.0]).deg2rad()
    features = torch.stack([angles.cos(), angles.sin()], dim=1)
    probabilities = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.2, 0.8]])
    assert shot_pseudo_labels(features, probabilities, refinements=0).tolist() == [0, 0, 1, 1]
    assert shot_pseudo_labels(features, probabilities, refinements=1).tolist() == [0, 1, 1, 1]


def test_a_class_nobody_predicts_is_never_a_label():
    """Class 2 is nobody's argmax, but its weighted centroid sits exactly on sample 3 (the only sample giving it
    weight), which would take it at cosine 1; SHOT's candidate classes leave it out (threshold 0)."""
    features = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).repeat_interleave(torch.tensor([2, 1, 1]), 0)
    probabilities = torch.tensor([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.45, 0.1, 0.45]])
    labels = shot_pseudo_labels(features, probabilities)
    assert 2 not in labels.tolist() and labels[:3].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="lower the threshold"):
        shot_pseudo_labels(features, probabilities, threshold=10)


def test_loss_falls_as_the_features_adapt():
    """A frozen linear classifier on trainable features: the objective falls over a few gradient steps."""
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 4).requires_grad_(False)
    features = torch.randn(32, 8, requires_grad=True)
    optimiser = torch.optim.SGD([features], lr=20.0)  # the means over N make each sample's gradient small
    losses = []
    for _ in range(30):
        with torch.no_grad():
            labels = shot_pseudo_labels(features, head(features).softmax(1))
        loss = shot_objective(head(features), labels)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5  # 0.24 -> -0.56: entropy down, the classes still used evenly
