"""CluP's pseudo-labelling on a hand-built example: clusters + teacher predictions -> labels, confidences, soft
labels, the per-class selection, drop_outliers and iter_clusters; and the k-means against scikit-learn's."""

from __future__ import annotations

import pytest
import torch

from affectlab.methods.clup_labels import cluster_and_select, kmeans, purity_labels, select_per_class, teacher_rows

# 12 samples, 4 clusters, 3 classes. Cluster 0: predictions 1,1,1,0 -> label 1, purity 3/4; cluster 1: 2,2,0 ->
# label 2, purity 2/3; cluster 2: 0,1,2 -> a three-way tie, the first class (0), purity 1/3; cluster 3: 1,1 ->
# label 1, purity 1.
ASSIGN = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
PRED = torch.tensor([1, 1, 1, 0, 2, 2, 0, 0, 1, 2, 1, 1])
LABELS = [1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 1, 1]
CONF = [3 / 4] * 4 + [2 / 3] * 3 + [1 / 3] * 3 + [1.0] * 2


def test_purity_labels_confidences_and_soft_labels():
    found = purity_labels(ASSIGN, PRED, num_clusters=4, num_classes=3)
    assert found.labels.tolist() == LABELS
    assert found.confidences.tolist() == pytest.approx(CONF)
    assert found.soft_labels[0].tolist() == pytest.approx([1 / 4, 3 / 4, 0])  # the histogram of hard predictions
    assert found.soft_labels[7].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert torch.allclose(found.soft_labels.sum(dim=1), torch.ones(12))


def test_drop_outliers_zeroes_members_that_disagree_with_their_cluster():
    found = purity_labels(ASSIGN, PRED, num_clusters=4, num_classes=3, drop_outliers=True)
    assert found.labels.tolist() == LABELS  # labels unchanged
    dropped = {3, 6, 8, 9}  # own prediction != cluster label
    assert [i for i, c in enumerate(found.confidences.tolist()) if c == 0] == sorted(dropped)
    kept = [i for i in range(12) if i not in dropped]
    assert found.confidences[kept].tolist() == pytest.approx([CONF[i] for i in kept])


def test_selection_per_class_by_purity():
    found = purity_labels(ASSIGN, PRED, num_clusters=4, num_classes=3)
    # class 0: 3 members -> int(1.5) = 1 (a tie: the lowest index); class 1: 6 -> 3, both of cluster 3 (purity 1)
    # before one of cluster 0; class 2: 3 -> 1.
    assert select_per_class(found.labels, found.confidences, 0.5, 3).tolist() == [7, 10, 11, 0, 4]
    assert select_per_class(found.labels, found.confidences, 0.0, 3).tolist() == []
    assert len(select_per_class(found.labels, found.confidences, 1.0, 3)) == 12
    dropped = purity_labels(ASSIGN, PRED, num_clusters=4, num_classes=3, drop_outliers=True)
    # 0.9 of class 1's six members -> 5: the outlier 3 (confidence 0) ranks last and is left out; class 0 keeps
    # 7 (1/3) before the outliers 8 and 9 (0, a tie: 8 first)
    assert select_per_class(dropped.labels, dropped.confidences, 0.9, 3).tolist() == [7, 8, 10, 11, 0, 1, 2, 4, 5]


def test_iter_clusters_reclusters_only_the_samples_not_yet_selected():
    calls = []

    def cluster(rows: torch.Tensor, k: int) -> torch.Tensor:
        calls.append(len(rows))
        if len(calls) == 1:
            return ASSIGN
        # round 2 sees the 7 samples left, [1, 2, 3, 5, 6, 8, 9] (predictions 1, 1, 0, 2, 0, 1, 2): clusters
        # {1, 2} -> 1 (purity 1), {3, 5, 6} -> 0 (2/3), {8, 9} -> a tie, 1 (1/2)
        return torch.tensor([0, 0, 1, 1, 1, 2, 2])

    rows = teacher_rows(torch.randn(12, 5))
    selection = cluster_and_select(rows, PRED, num_clusters=4, fraction=0.5, num_classes=3, iter_clusters=2,
                                   cluster=cluster)
    assert calls == [12, 7]
    assert [r.tolist() for r in selection.rounds] == [[7, 10, 11, 0, 4], [3, 1, 2]]
    assert selection.indices.tolist() == [7, 10, 11, 0, 4, 3, 1, 2]
    # a sample keeps the label of the round that selected it; round 2 relabelled sample 3 (was 1) as 0
    assert selection.labels.tolist() == [0, 1, 1, 1, 2, 0, 1, 1]
    assert selection.confidences.tolist() == pytest.approx([1 / 3, 1, 1, 3 / 4, 2 / 3, 2 / 3, 1, 1])
    assert selection.all_labels.tolist() == [1, 1, 1, 0, 2, 0, 0, 0, 1, 1, 1, 1]
    one = cluster_and_select(rows, PRED, 4, 0.5, 3, iter_clusters=1, cluster=lambda r, k: ASSIGN)
    assert one.indices.tolist() == [7, 10, 11, 0, 4] and one.soft_labels.shape == (5, 3)


def test_teacher_rows_append_ones_and_normalise():
    rows = teacher_rows(torch.tensor([[3.0, 0.0], [0.0, 0.0]]))
    assert rows.flatten().tolist() == pytest.approx([3 / 10 ** 0.5, 0, 1 / 10 ** 0.5, 0, 0, 1])


def test_kmeans_matches_scikit_learn_inertia():
    sklearn = pytest.importorskip("sklearn.cluster")
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(8, 16, generator=generator) * 3
    x = teacher_rows(centres.repeat_interleave(40, 0) + torch.randn(320, 16, generator=generator))
    assign = kmeans(x, 8, restarts=10, generator=torch.Generator().manual_seed(1))

    def inertia(a: torch.Tensor) -> float:
        means = torch.zeros(8, x.shape[1]).index_add_(0, a, x) / torch.bincount(a, minlength=8)[:, None]
        return float(((x - means[a]) ** 2).sum())

    reference = sklearn.KMeans(8, n_init=10, random_state=0).fit(x.double().numpy())
    truth = torch.arange(8).repeat_interleave(40)
    # the blobs are separable: both recover them exactly (one cluster per blob), at the same inertia
    assert len({(int(a), int(t)) for a, t in zip(assign, truth)}) == 8
    assert inertia(assign) == pytest.approx(reference.inertia_, rel=1e-4)
    with pytest.raises(ValueError, match="clusters"):
        kmeans(x[:3], 8)
