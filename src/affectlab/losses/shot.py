"""SHOT's objective (Liang et al., 2020, "Do We Really Need to Access the Source Data?", arXiv 2002.08546).

The source hypothesis (classifier) h is frozen; the target feature extractor g_t is trained, f_t = h o g_t,
delta the softmax, K classes. Information maximisation (Eq. 2 and 3) over target samples x_t:

    L_ent = - E_x sum_k delta_k(f_t(x)) log delta_k(f_t(x))          (each prediction confident)
    L_div = sum_k p_k log p_k,   p = E_x delta(f_t(x))                (= KL(p || 1/K) - log K: the classes used
                                                                         evenly; minimal, -log K, at uniform p)

Self-supervised pseudo-labels (Eq. 4 to 6), from the current model frozen (g^, f^) over the whole target set:

    c_k^(0) = sum_x delta_k(f^(x)) g^(x) / sum_x delta_k(f^(x))       (centroids weighted by the predictions)
    y^(x)   = argmin_k D(g^(x), c_k^(0))                              (D: cosine distance)
    c_k^(1) = sum_x [y^(x) = k] g^(x) / sum_x [y^(x) = k],   y^(x) = argmin_k D(g^(x), c_k^(1))

and the full objective (Eq. 7): L = L_ent + L_div - beta E_x sum_k [y^(x) = k] log delta_k(f_t(x)), beta 0.3.

As the authors' code (``obtain_label`` in tim-learn/SHOT): a column of ones is appended to every feature and
each row is L2-normalised before the distances, and only classes that hold more than ``threshold`` samples
(by the labels of the previous round; the classifier's argmax in the first) are candidate labels, so an
empty class, whose centroid would be 0/0, is never chosen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPSILON = 1e-5  # inside the logarithms, as the authors' code


def information_maximisation(logits: torch.Tensor, epsilon: float = EPSILON) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_ent, L_div)`` of ``[N, K]`` logits (Eq. 2, 3); L_IM = L_ent + L_div."""
    if logits.ndim != 2:
        raise ValueError(f"information_maximisation: logits must be [N, K], got {tuple(logits.shape)}")
    p = logits.softmax(dim=-1)  # (N, K)
    entropy = -(p * torch.log(p + epsilon)).sum(dim=-1).mean()
    mean = p.mean(dim=0)  # (K,)
    diversity = (mean * torch.log(mean + epsilon)).sum()
    return entropy, diversity


def weighted_centroids(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``[K, D]`` centroids c_k = sum_i w_ik f_i / sum_i w_ik of features ``[N, D]`` and weights ``[N, K]``
    (probabilities, Eq. 4, or one-hot labels, Eq. 6)."""
    return (weights.T @ features) / (weights.sum(dim=0)[:, None] + 1e-8)


def shot_features(features: torch.Tensor) -> torch.Tensor:
    """``[N, D + 1]``: each feature with a 1 appended, L2-normalised (the authors' cosine set-up)."""
    augmented = torch.cat([features, features.new_ones(len(features), 1)], dim=1)
    return F.normalize(augmented, dim=1)


def shot_pseudo_labels(features: torch.Tensor, probabilities: torch.Tensor, refinements: int = 1,
                       threshold: int = 0) -> torch.Tensor:
    """SHOT's pseudo-labels ``[N]`` (long) of every target sample, Eq. 4 to 6.

    Args:
        features: ``[N, D]`` bottleneck features g^(x) of the frozen current model.
        probabilities: ``[N, K]`` its softmax predictions delta(f^(x)).
        refinements: rounds of hard-label centroids after the weighted one (the paper's one).
        threshold: a class is a candidate label only while it holds more than this many samples.
    """
    if features.ndim != 2 or probabilities.ndim != 2 or len(features) != len(probabilities):
        raise ValueError(f"shot_pseudo_labels: features [N, D] and probabilities [N, K] of the same N, got "
                         f"{tuple(features.shape)} and {tuple(probabilities.shape)}")
    unit = shot_features(features.double())  # (N, D + 1)
    weights = probabilities.double()  # (N, K): round 0 weighs by the predictions
    labels = probabilities.argmax(dim=1)
    num_classes = probabilities.shape[1]
    for _ in range(1 + refinements):
        counts = torch.bincount(labels, minlength=num_classes)  # (K,) by the previous round's labels
        candidates = torch.nonzero(counts > threshold).flatten()
        if len(candidates) == 0:
            raise ValueError(f"shot_pseudo_labels: no class holds more than threshold {threshold} of the {len(labels)} "
                             "samples; lower the threshold")
        centroids = weighted_centroids(unit, weights)[candidates]  # (K', D + 1)
        cosine = unit @ F.normalize(centroids, dim=1).T  # (N, K'): argmin of 1 - cos is argmax of cos
        labels = candidates[cosine.argmax(dim=1)]
        weights = F.one_hot(labels, num_classes).double()
    return labels


def shot_objective(logits: torch.Tensor, pseudo_labels: torch.Tensor, beta: float = 0.3, entropy_weight: float = 1.0,
                   diversity_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Eq. 7 on a batch: ``loss`` = entropy_weight L_ent + diversity_weight L_div + beta CE(f_t(x), y^), and each
    term (``entropy``, ``diversity``, ``pseudo_label``) from logits ``[N, K]`` and pseudo-labels ``[N]``."""
    if pseudo_labels.shape != logits.shape[:1]:
        raise ValueError(f"shot_objective: pseudo_labels must be [N] for logits [N, K], got {tuple(pseudo_labels.shape)} "
                         f"and {tuple(logits.shape)}")
    entropy, diversity = information_maximisation(logits)
    pseudo = F.cross_entropy(logits, pseudo_labels)
    loss = entropy_weight * entropy + diversity_weight * diversity + beta * pseudo
    return {"loss": loss, "entropy": entropy, "diversity": diversity, "pseudo_label": pseudo}
