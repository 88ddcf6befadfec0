"""Subject-aware splits: no identity appears in two splits, and any split that would leak one is refused."""

from __future__ import annotations

import numpy as np

from affectlab.errors import DataError

SPLITS = ("train", "val", "test")


def identity_split(
    subjects: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, np.ndarray]:
    """Assign whole identities to train/val/test in the given proportions (of identities, not samples).

    Returns sample indices per split, each sorted. Every split gets at least one identity.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    identities = np.unique(subjects)
    if len(identities) < 3:
        raise DataError(f"an identity-disjoint train/val/test split needs at least 3 identities, got {len(identities)}")
    order = np.random.default_rng(seed).permutation(identities)
    n_val = max(1, round(fractions[1] * len(order)))
    n_test = max(1, round(fractions[2] * len(order)))
    n_train = len(order) - n_val - n_test
    if n_train < 1:
        raise DataError(f"{len(identities)} identities are too few for split fractions {fractions}")
    groups = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    splits = {name: np.flatnonzero(np.isin(subjects, ids)) for name, ids in groups.items()}
    check_disjoint(splits, subjects)
    return splits


def check_disjoint(splits: dict[str, np.ndarray], subjects: np.ndarray) -> None:
    """Raise if any identity has samples in two splits."""
    seen: dict[int, str] = {}
    for name, indices in splits.items():
        for subject in np.unique(subjects[indices]).tolist():
            if subject in seen and seen[subject] != name:
                raise DataError(f"identity {subject} appears in both the {seen[subject]!r} and {name!r} splits")
            seen[subject] = name
