"""Losses as pure functions, one file per method family, the paper's equation in each docstring."""

from affectlab.losses.clustering import FeatureQueue, cluster_means, clustering_loss, cosine_kmeans, kmeans_plusplus
from affectlab.losses.contrastive import mcn_pair_loss, nt_xent_loss, ring_contrastive_loss
from affectlab.losses.fixmatch import pseudo_label_loss
from affectlab.losses.miro import miro_regulariser
from affectlab.losses.reconstruction import reconstruction_loss

__all__ = [
    "FeatureQueue",
    "cluster_means",
    "clustering_loss",
    "cosine_kmeans",
    "kmeans_plusplus",
    "mcn_pair_loss",
    "miro_regulariser",
    "nt_xent_loss",
    "pseudo_label_loss",
    "reconstruction_loss",
    "ring_contrastive_loss",
]
