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


# -- cross-validation over subjects and corpora ----------------------------------------------------------------
SPLIT_KINDS = ("identity", "kfold", "loso", "loco", "lodo")


def subject_folds(subjects: np.ndarray, num_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Partition the subjects into ``num_folds`` groups of about equal sample counts (DISFA's 3-fold
    convention: every subject in exactly one test fold).

    Subjects are taken in a seeded random order and each goes to the fold with the fewest samples so far
    (greedy balancing), so folds differ by at most one subject's samples.

    Returns:
        Per fold, the subject ids it tests on, sorted.
    """
    identities, counts = np.unique(subjects, return_counts=True)
    if num_folds < 2 or num_folds > len(identities):
        raise DataError(f"{num_folds} subject folds need 2 to {len(identities)} (the number of subjects) folds")
    order = np.random.default_rng(seed).permutation(len(identities))
    folds: list[list[int]] = [[] for _ in range(num_folds)]
    sizes = np.zeros(num_folds, dtype=np.int64)
    for i in order:
        target = int(np.argmin(sizes))
        folds[target].append(int(identities[i]))
        sizes[target] += counts[i]
    return [np.sort(np.asarray(f)) for f in folds]


def fold_count(subjects: np.ndarray, kind: str, num_folds: int = 3, groups: np.ndarray | None = None) -> int:
    """How many folds ``cross_validation_split`` has for ``kind``: ``num_folds`` (kfold), one per subject
    (loso), one per corpus or domain in ``groups`` (loco, lodo)."""
    if kind == "kfold":
        return num_folds
    if kind == "loso":
        return len(np.unique(subjects))
    if kind in ("loco", "lodo"):
        if groups is None:
            raise DataError(f"{kind} needs the corpus (or domain) of every sample")
        return len(np.unique(groups))
    raise DataError(f"split kind {kind!r} is not one of {', '.join(SPLIT_KINDS[1:])}")


def cross_validation_split(
    subjects: np.ndarray,
    kind: str,
    fold: int,
    num_folds: int = 3,
    groups: np.ndarray | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Train/val/test sample indices for one fold of a subject- or corpus-disjoint cross-validation.

    Args:
        subjects: identity per sample ``[N]``.
        kind: ``kfold`` (test on one of ``num_folds`` subject folds), ``loso`` (leave one subject out: test
            on the ``fold``-th subject in sorted order), ``loco`` (leave one corpus out: test on the
                ``fold``-th value of ``groups`` in sorted order; the held-out corpus's subjects are left out of
            training), ``lodo`` (leave one domain out, for domains that share subjects such as AffectSynth's
            render styles: subjects split identity-disjoint as ``identity_split`` does, the test split is the
            test subjects' samples of the held-out domain, train and val the other subjects' samples of the
            other domains).
        fold: which fold is the test split.
        groups: corpus (or domain) per sample, for ``loco``.
        val_fraction: of the remaining subjects held out for validation (at least one), never of samples.
        seed: of the fold assignment and of the validation subjects.

    Returns:
        Sorted sample indices per split; no subject is in two splits (checked).
    """
    subjects = np.asarray(subjects)
    if kind == "kfold":
        folds = subject_folds(subjects, num_folds, seed)
        if not 0 <= fold < num_folds:
            raise DataError(f"fold {fold} is not one of the {num_folds} folds (0 to {num_folds - 1})")
        test = np.isin(subjects, folds[fold])
    elif kind == "loso":
        identities = np.unique(subjects)
        if not 0 <= fold < len(identities):
            raise DataError(f"fold {fold}: leave-one-subject-out has {len(identities)} folds (0 to {len(identities) - 1})")
        test = subjects == identities[fold]
    elif kind == "loco":
        if groups is None:
            raise DataError("leave-one-corpus-out needs the corpus (or domain) of every sample")
        names = np.unique(groups)
        if not 0 <= fold < len(names):
            raise DataError(f"fold {fold}: leave-one-corpus-out has {len(names)} folds, one per corpus {names.tolist()}")
        test = np.asarray(groups) == names[fold]
    elif kind == "lodo":
        if groups is None:
            raise DataError("leave-one-domain-out needs the domain of every sample")
        names = np.unique(groups)
        if not 0 <= fold < len(names):
            raise DataError(f"fold {fold}: leave-one-domain-out has {len(names)} folds, one per domain {names.tolist()}")
        held_out = np.asarray(groups) == names[fold]
        by_subject = identity_split(subjects, (1 - 2 * val_fraction, val_fraction, val_fraction), seed)
        test_subjects = np.zeros(len(subjects), dtype=bool)
        test_subjects[by_subject["test"]] = True
        val = np.zeros(len(subjects), dtype=bool)
        val[by_subject["val"]] = True
        splits = {"train": np.flatnonzero(~test_subjects & ~val & ~held_out),
                  "val": np.flatnonzero(val & ~held_out), "test": np.flatnonzero(test_subjects & held_out)}
        check_disjoint(splits, subjects)
        return splits
    else:
        raise DataError(f"split kind {kind!r} is not one of {', '.join(SPLIT_KINDS[1:])}")
    # A subject of the test split (in another corpus, for loco) is left out of train and val altogether.
    unused = np.isin(subjects, np.unique(subjects[test])) & ~test
    rest = np.unique(subjects[~test & ~unused])
    if len(rest) < 2:
        hint = " (subjects appear in every corpus: use lodo, leave one domain out)" if kind == "loco" else ""
        raise DataError(f"fold {fold} of {kind} leaves {len(rest)} subject(s) for train and val; need 2 or more{hint}")
    n_val = min(len(rest) - 1, max(1, round(val_fraction * len(rest))))
    val_subjects = np.random.default_rng(seed + 1).permutation(rest)[:n_val]
    val = np.isin(subjects, val_subjects) & ~test & ~unused
    train = ~test & ~val & ~unused
    splits = {"train": np.flatnonzero(train), "val": np.flatnonzero(val), "test": np.flatnonzero(test)}
    check_disjoint(splits, subjects)
    return splits


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Which samples keep their label: ``max(1, round(fraction * n_c))`` of the ``n_c`` samples of each class c.

    Rounded half up, per class, so the subset can exceed ``fraction`` of the samples when classes are small.
    Each class's samples are drawn in one seeded random order whatever the fraction, so with one seed a
    smaller fraction's subset is contained in a larger one's (label-efficiency curves add labels, never swap).

    Args:
        labels: class index per sample ``[N]``.
        fraction: of each class's samples to keep, in (0, 1].
        seed: of the draw.

    Returns:
        Boolean mask ``[N]``, True for the samples that keep their label.
    """
    keep = np.zeros(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):  # sorted: the draw does not depend on the order of the samples' classes
        members = rng.permutation(np.flatnonzero(labels == label))
        keep[members[: max(1, int(np.floor(fraction * len(members) + 0.5)))]] = True
    return keep


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a seeded, per-class ``fraction`` of the samples (at least one of any class with two)."""
    mask = np.zeros(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(fraction * len(members)))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        mask[members[:count]] = True
    return mask
