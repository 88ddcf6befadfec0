"""Subject-aware splits: identity-disjoint, k-fold over subjects, leave one subject or corpus out."""

from __future__ import annotations

import numpy as np
import pytest

from affectlab.data.splits import check_disjoint, cross_validation_split, identity_split, subject_folds
from affectlab.errors import DataError


def _subjects(n_subjects=9, per_subject=(3, 5, 8)):
    rng = np.random.default_rng(0)
    return np.concatenate([np.full(rng.choice(per_subject), s) for s in range(n_subjects)])


def test_subject_folds_cover_every_subject_once_and_balance_samples():
    subjects = _subjects(27)
    folds = subject_folds(subjects, 3, seed=1)
    together = np.concatenate(folds)
    assert sorted(together.tolist()) == list(range(27))  # each subject in exactly one fold
    sizes = [np.isin(subjects, f).sum() for f in folds]
    assert max(sizes) - min(sizes) <= 8  # at most one subject's samples apart
    assert [f.tolist() for f in subject_folds(subjects, 3, seed=1)] == [f.tolist() for f in folds]


@pytest.mark.parametrize("kind, folds", [("kfold", 3), ("loso", 9)])
def test_every_fold_is_subject_disjoint_and_tests_each_sample_once(kind, folds):
    subjects = _subjects(9)
    tested = []
    for fold in range(folds):
        split = cross_validation_split(subjects, kind, fold, num_folds=3, seed=0)
        check_disjoint(split, subjects)
        assert sum(len(v) for v in split.values()) == len(subjects)
        assert len(np.unique(subjects[split["val"]])) >= 1
        tested += split["test"].tolist()
    assert sorted(tested) == list(range(len(subjects)))
    if kind == "loso":
        assert all(len(np.unique(subjects[cross_validation_split(subjects, kind, f)["test"]])) == 1 for f in range(9))


def test_leave_one_corpus_out_drops_held_out_subjects_from_training():
    subjects = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    corpus = np.array([0, 1, 0, 0, 1, 1, 0, 0, 0, 0])  # subject 0 recorded in both corpora
    split = cross_validation_split(subjects, "loco", fold=1, groups=corpus, val_fraction=0.34)
    assert split["test"].tolist() == [1, 4, 5]
    used = np.concatenate(list(split.values()))
    assert 0 not in used  # subject 0's corpus-0 clip: neither trained on nor tested
    check_disjoint(split, subjects)


def test_bad_folds_are_clear_errors():
    subjects = _subjects(4)
    with pytest.raises(DataError, match="fold 3 is not one of the 3 folds"):
        cross_validation_split(subjects, "kfold", 3)
    with pytest.raises(DataError, match="leave-one-subject-out has 4 folds"):
        cross_validation_split(subjects, "loso", 4)
    with pytest.raises(DataError, match="needs the corpus"):
        cross_validation_split(subjects, "loco", 0)
    with pytest.raises(DataError, match="not one of kfold, loso, loco, lodo"):
        cross_validation_split(subjects, "random", 0)
    with pytest.raises(DataError, match="need 2 to 4"):
        subject_folds(subjects, 5)


def test_leaking_split_is_refused():
    subjects = np.array([0, 0, 1, 1])
    with pytest.raises(DataError, match="identity 0 appears in both"):
        check_disjoint({"train": np.array([0, 2]), "test": np.array([1, 3])}, subjects)
    assert identity_split(np.arange(10) % 5, seed=0)  # the default split still works


@pytest.mark.parametrize("split, fold", [("kfold", 2), ("loso", 0), ("lodo", 1)])
def test_affectsynth_serves_a_cross_validation_fold(tiny_data, split, fold):
    from conftest import TINY_DATA

    from affectlab.data.synth.datamodule import AffectSynthDataModule

    module = AffectSynthDataModule(root=str(tiny_data), split=split, fold=fold, **TINY_DATA)
    module.setup()
    subjects = np.asarray(module.arrays.identity)
    check_disjoint(module.splits, subjects)
    test = module.splits["test"]
    if split == "lodo":  # the held-out style only, on unseen people; no training clip of that style
        assert not np.isin(np.asarray(module.arrays.domain)[module.splits["train"]], np.unique(module.arrays.domain)[fold]).any()
        assert np.unique(np.asarray(module.arrays.domain)[test]).tolist() == [np.unique(module.arrays.domain)[fold]]
    if split == "loso":
        assert len(np.unique(subjects[test])) == 1
    batch = next(iter(module.test_dataloader()))
    assert set(batch["subject"].tolist()) <= set(subjects[test].tolist())


def test_affectsynth_refuses_unknown_split_kind(tiny_data):
    from affectlab.data.synth.datamodule import AffectSynthDataModule
    from affectlab.errors import ConfigError

    with pytest.raises(ConfigError, match="data.init_args.split: 'folds' is not one of"):
        AffectSynthDataModule(root=str(tiny_data), split="folds")


def test_leave_one_corpus_out_with_shared_subjects_points_to_lodo():
    subjects = np.repeat(np.arange(4), 2)
    domains = np.tile([0, 1], 4)
    with pytest.raises(DataError, match="use lodo"):
        cross_validation_split(subjects, "loco", 0, groups=domains)
