"""Implements ConCluGen (Halawa, Blume et al., CVPR 2024 workshops, arXiv 2404.10904): multi-modal
self-supervised learning with a contrastive, a clustering and a generative (reconstruction) loss, built on
Multimodal Clustering Networks (MCN, arXiv 2104.12671).

Per batch of unlabelled clips, for every modality m:
1. encode         f_m = E_m(x_m)                          (B, D_m)  frozen backbone (the original) or trainable
2. represent      r_m = GEU_m(f_m)                        (B, R)    what downstream probes read
3. project        q_m = P(r_m), p_m = q_m / |q_m|         (B, Q)    P shared by all modalities
4. contrastive    L_con = sum over the ring of pairs (m, n) of MCN(p_m, p_n)
5. cluster        c_m = C(q_m) (B, K), C shared; joint c = mean_m c_m; spherical k-means on a FIFO queue of past
                  c plus this batch's gives this batch's assignments a (pseudo-labels) and, as the originals,
                  centroids mu_k = plain means of the (unnormalised) members;
                  L_clu = CE(c mu^T - margin [k = a], a)   (``clustering_similarity: cosine``: on normalised c, mu)
                  individual mode: sum over m of the same with c_m in place of c (ConCluGen; MCN's mean with
                  ``clustering_individual_reduction: mean``)
6. reconstruct    L_gen = sum_m MSE(G_m(r_m), t_m), t_m the modality's input features: the frozen backbone's
                  output; when the encoders train, a fixed summary of the raw input (``reconstruction_targets``,
                  see affectlab.nn.targets) or else the output of a frozen copy of the encoders' initial state
                  (reconstructing a trainable encoder's own output would let it collapse to a constant)
7. total          L = mean over the switched-on terms t of w_t L_t  (a term with weight 0 is off)
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from lightning.pytorch import Callback
from torch import nn

from affectlab.data.contract import mask_key
from affectlab.data.transforms import augment_audio, augment_frames, drop_tokens
from affectlab.losses import FeatureQueue, cluster_means, clustering_loss, cosine_kmeans, reconstruction_loss, ring_contrastive_loss
from affectlab.methods.base import MultimodalMethod, OptimizerInit, SchedulerInit
from affectlab.methods.callbacks import LossCurves, RepresentationMap
from affectlab.nn.encoders import PrecomputedFeatures
from affectlab.nn.heads import GatedEmbeddingUnit, ProjectionHead, ReconstructionHead

TERMS = ("contrastive", "clustering", "reconstruction")


def augment_batch(batch: dict[str, Any], modalities: list[str]) -> dict[str, Any]:
    """One random view of each raw modality (features pass through: the original drew precomputed views)."""
    view = dict(batch)
    if "video" in modalities and batch["video"].ndim == 5:
        view["video"] = augment_frames(batch["video"])
    if "audio" in modalities and batch["audio"].ndim == 2:
        view["audio"] = augment_audio(batch["audio"])
    if "text" in modalities and batch["text"].dtype == torch.long:
        view["text"] = drop_tokens(batch["text"], batch[mask_key("text")])
    return view


class ConCluGen(MultimodalMethod):
    """Multi-modal self-supervised pretraining; the eight ablation variants are configs of this class.

    Args:
        encoders: one encoder per modality (``video``, ``audio``, ``text``), each giving ``[B, D_m]``.
        modalities: the subset of ``encoders`` to use; None uses them all.
        freeze_encoders: the original set-up: frozen backbones, one pooled vector per clip and modality.
        representation_dim: R, output of each Gated Embedding Unit.
        projection_dim: Q, output of the shared projection head.
        projection_hidden_dim: width of the projection head's hidden layer; None: R / 8, as the original (which
            had R = 4096; at small R that is a bottleneck, see ``ProjectionHead``).
        num_clusters: K, output of the shared cluster head and number of k-means clusters.
        reconstruction_dim: hidden size of each reconstruction head.
        reconstruction_targets: per modality, a module computing the reconstruction target from the raw input
            (``(x, mask) -> [B, D]``, e.g. ``affectlab.nn.targets.FrameMotionTarget``); a modality without one
            reconstructs its frozen encoder's features, or those of a frozen copy of its initial encoder.
        loss_weight_contrastive: w of the contrastive term; 0 switches it off.
        loss_weight_clustering: w of the clustering term; 0 switches it off.
        loss_weight_reconstruction: w of the reconstruction term; 0 switches it off.
        contrastive_margin: subtracted from the matching pairs' similarity (MCN: 0.001).
        contrastive_temperature: divides the similarities; None as in the original (no temperature).
        clustering_mode: ``joint`` (fused vector) or ``individual`` (one term per modality).
        clustering_individual_reduction: how individual mode combines its per-modality terms: ``sum`` (ConCluGen)
            or ``mean`` (MCN), M times smaller for M modalities.
        clustering_similarity: ``dot`` (the originals: raw dot products with the plain member means) or
            ``cosine`` (both normalised; bounded, see ``affectlab.losses.clustering``).
        clustering_margin: subtracted from the assigned centroid's similarity.
        clustering_temperature: divides the centroid similarities; None as in the original (no temperature).
        kmeans_start_epoch: the clustering term is off before this epoch.
        kmeans_queue_size: batches of past fused vectors k-means sees beside the current one.
        kmeans_iterations: Lloyd iterations per training step.
        kmeans_warm_start: start each step's k-means from the previous step's centroids instead of a fresh
            k-means++ seeding (the queue moves slowly, so few iterations then suffice); the originals re-seed.
        augment: draw a random view of every raw input per step.
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    def __init__(
        self,
        encoders: dict[str, nn.Module],
        modalities: list[str] | None = None,
        freeze_encoders: bool = False,
        representation_dim: int = 256,
        projection_dim: int = 128,
        projection_hidden_dim: int | None = None,
        num_clusters: int = 32,
        reconstruction_dim: int = 256,
        reconstruction_targets: dict[str, nn.Module] | None = None,
        loss_weight_contrastive: float = 1.0,
        loss_weight_clustering: float = 1.0,
        loss_weight_reconstruction: float = 1.0,
        contrastive_margin: float = 0.001,
        contrastive_temperature: float | None = None,
        clustering_mode: str = "joint",
        clustering_individual_reduction: str = "sum",
        clustering_similarity: str = "dot",
        clustering_margin: float = 0.001,
        clustering_temperature: float | None = None,
        kmeans_start_epoch: int = 0,
        kmeans_queue_size: int = 16,
        kmeans_iterations: int = 20,
        kmeans_warm_start: bool = False,
        augment: bool = True,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(encoders=encoders, modalities=modalities, freeze_encoders=freeze_encoders,
                         optimizer_init=optimizer_init, lr_scheduler_init=lr_scheduler_init)
        used = list(self.encoders)
        self.weights = {"contrastive": loss_weight_contrastive, "clustering": loss_weight_clustering,
                        "reconstruction": loss_weight_reconstruction}
        if not any(self.weights.values()):
            raise ValueError("all three loss weights are 0: switch on at least one of contrastive, clustering, reconstruction")
        if self.weights["contrastive"] and len(used) < 2:
            raise ValueError(f"the contrastive loss needs two modalities or more; model.init_args.modalities is {used}")
        if clustering_mode not in ("joint", "individual"):
            raise ValueError(f"clustering_mode must be 'joint' or 'individual', got {clustering_mode!r}")
        if clustering_individual_reduction not in ("sum", "mean"):
            raise ValueError(f"clustering_individual_reduction must be 'sum' or 'mean', got {clustering_individual_reduction!r}")
        if clustering_similarity not in ("dot", "cosine"):
            raise ValueError(f"clustering_similarity must be 'dot' or 'cosine', got {clustering_similarity!r}")
        dims = {m: encoder.num_features for m, encoder in self.encoders.items()}
        self.representation = nn.ModuleDict({m: GatedEmbeddingUnit(d, representation_dim) for m, d in dims.items()})
        self.projection = ProjectionHead(representation_dim, projection_dim, projection_hidden_dim)
        self.cluster_head = nn.Linear(projection_dim, num_clusters, bias=False)
        targets = reconstruction_targets or {}
        unknown = sorted(set(targets) - set(used))
        if unknown:
            raise ValueError(f"model.init_args.reconstruction_targets names {unknown}, which are not among the "
                             f"modalities {used}; remove them or add the modalities")
        self.reconstruction_targets = nn.ModuleDict({m: targets[m] for m in used if m in targets})
        target_dims = {m: getattr(self.reconstruction_targets[m], "num_features", None) if m in self.reconstruction_targets
                       else d for m, d in dims.items()}
        missing = [m for m, d in target_dims.items() if d is None]
        if missing:
            raise ValueError(f"reconstruction_targets for {missing} have no num_features (the size of their output)")
        self.reconstruction = nn.ModuleDict(
            {m: ReconstructionHead(representation_dim, reconstruction_dim, d) for m, d in target_dims.items()}
        )
        # Fixed reconstruction targets when the encoders train and no input summary is given: a frozen copy of
        # their initial state.
        self.target_encoders = None
        copied = [m for m in used if m not in self.reconstruction_targets]
        if self.weights["reconstruction"] and not freeze_encoders and copied:
            self.target_encoders = copy.deepcopy(nn.ModuleDict({m: self.encoders[m] for m in copied})).requires_grad_(False)
        self.representation_dim = representation_dim
        self.num_clusters = num_clusters
        self.contrastive_margin, self.contrastive_temperature = contrastive_margin, contrastive_temperature
        self.clustering_mode, self.clustering_margin = clustering_mode, clustering_margin
        self.clustering_temperature = clustering_temperature
        self.clustering_individual_reduction, self.clustering_similarity = clustering_individual_reduction, clustering_similarity
        self.kmeans_warm_start = kmeans_warm_start
        self.kmeans_start_epoch, self.kmeans_queue_size = kmeans_start_epoch, kmeans_queue_size
        self.kmeans_iterations = kmeans_iterations
        self.augment = augment
        self.queue: FeatureQueue | None = None  # built at the first step, when the batch size is known
        # The loss's centroids (member means, or unit centroids under cosine) and k-means' own unit centroids
        # (the warm start of the next fit).
        self.register_buffer("centroids", torch.zeros(0, num_clusters), persistent=False)
        self.register_buffer("kmeans_centroids", torch.zeros(0, num_clusters), persistent=False)

    # -- the representation downstream methods read ---------------------------------------------------------
    @property
    def representation_dims(self) -> dict[str, int]:
        return {m: self.representation_dim for m in self.encoders}

    def frozen_modules(self) -> list[nn.Module]:
        return [*super().frozen_modules(), *([self.target_encoders] if self.target_encoders is not None else [])]

    def represent(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        features = self.encode(batch)
        return {m: self.representation[m](f) for m, f in features.items()}  # (B, R)

    # -- the losses -------------------------------------------------------------------------------------------
    def _losses(self, batch: dict[str, Any], stage: str) -> dict[str, torch.Tensor]:
        features = self.encode(batch)  # (B, D_m)
        represented = {m: self.representation[m](f) for m, f in features.items()}  # (B, R)
        projected = {m: self.projection(r) for m, r in represented.items()}  # (B, Q), before normalisation
        losses: dict[str, torch.Tensor] = {}
        if self.weights["contrastive"]:
            normalised = {m: nn.functional.normalize(q, dim=-1) for m, q in projected.items()}
            losses["contrastive"], pairs = ring_contrastive_loss(normalised, self.contrastive_margin, self.contrastive_temperature)
            losses.update({f"contrastive/{pair}": value for pair, value in pairs.items()})
        if self.weights["clustering"] and self.current_epoch >= self.kmeans_start_epoch:
            clustered = {m: self.cluster_head(q) for m, q in projected.items()}  # (B, K)
            term = self._clustering(clustered, stage)
            if term is not None:
                losses["clustering"] = term
        if self.weights["reconstruction"]:
            with torch.no_grad():
                targets = dict(features)  # frozen encoders: their own features
                if self.target_encoders is not None:
                    targets.update(self.encode(batch, self.target_encoders))
                targets.update({m: target(batch[m], batch.get(mask_key(m))) for m, target in self.reconstruction_targets.items()})
            rebuilt = {m: self.reconstruction[m](r) for m, r in represented.items()}
            losses["reconstruction"], per_modality = reconstruction_loss(rebuilt, {m: t.detach() for m, t in targets.items()})
            losses.update({f"reconstruction/{m}": value for m, value in per_modality.items()})
        active = [self.weights[t] * losses[t] for t in TERMS if t in losses]
        losses["loss"] = torch.stack(active).mean()
        return losses

    def _clustering(self, clustered: dict[str, torch.Tensor], stage: str) -> torch.Tensor | None:
        fused = torch.stack(list(clustered.values())).mean(dim=0)  # (B, K)
        if stage == "train":
            B = fused.shape[0]
            if self.queue is None:
                self.queue = FeatureQueue(self.num_clusters, self.kmeans_queue_size * B).to(fused.device)
            points = torch.cat([self.queue.values(), fused.detach()])  # (N + B, K)
            # Seeded by the step: deterministic, and the same after a resume.
            generator = torch.Generator(fused.device).manual_seed(int(self.global_step))
            warm = self.kmeans_warm_start and self.kmeans_centroids.shape[0] == self.num_clusters
            unit, assignments = cosine_kmeans(points, self.num_clusters, self.kmeans_iterations, generator=generator,
                                              init=self.kmeans_centroids if warm else None)
            self.queue.push(fused.detach())
            self.kmeans_centroids = unit.detach()
            self.centroids = cluster_means(points, assignments, self.num_clusters) if self.clustering_similarity == "dot" else unit.detach()
            assignments = assignments[-B:]
        elif self.centroids.shape[0] == self.num_clusters:  # evaluation: the last training step's centroids
            assignments = self._nearest_centroid(fused.detach())
        else:
            return None
        vectors = [fused] if self.clustering_mode == "joint" else list(clustered.values())
        terms = torch.stack([clustering_loss(v, self.centroids, assignments, self.clustering_margin,
                                             self.clustering_temperature, self.clustering_similarity) for v in vectors])
        return terms.sum() if self.clustering_individual_reduction == "sum" else terms.mean()

    def _nearest_centroid(self, fused: torch.Tensor) -> torch.Tensor:
        """``(B,)`` the k-means assignment of fused cluster-head outputs: the nearest (cosine) of the last fit's unit
        centroids, the rule by which k-means labelled the training points."""
        return (nn.functional.normalize(fused, dim=-1) @ self.kmeans_centroids.T).argmax(-1)

    def on_train_epoch_start(self) -> None:
        if self.queue is not None:
            self.queue.clear()  # as the original: k-means sees only this epoch's vectors

    def _view(self, batch: dict[str, Any]) -> dict[str, Any]:
        if not (self.augment and self.training):
            return batch
        # Precomputed features are not signals: pooled audio features [B, D] would pass for a waveform.
        raw = [m for m, encoder in self.encoders.items() if not isinstance(encoder, PrecomputedFeatures)]
        return augment_batch(batch, raw)

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self._losses(self._view(batch), "train")
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=True, batch_size=len(batch["id"]))
        return losses["loss"]

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        losses = self._losses(batch, stage)
        self.log_dict({f"{stage}/{k}": v for k, v in losses.items()}, on_epoch=True, sync_dist=True, batch_size=len(batch["id"]))

    # -- pictures: callbacks any method can use ----------------------------------------------------------------
    def configure_callbacks(self) -> list[Callback]:
        return [LossCurves(("loss", *TERMS), "ConCluGen loss terms per epoch"), RepresentationMap("test")]

    def cluster_assignments(self, represented: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Each clip's nearest centroid ``(B,)`` from its modalities' mean cluster-head output; None before
        k-means has run."""
        if self.centroids.shape[0] != self.num_clusters:
            return None
        projected = torch.stack([self.cluster_head(self.projection(r)) for r in represented.values()]).mean(0)
        return self._nearest_centroid(projected)
