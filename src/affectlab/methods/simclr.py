"""Implements SimCLR (Chen et al., ICML 2020, arXiv 2002.05709) on the video modality, as ConCluGen's
single-modality baseline: the same Gated Embedding Unit and projection head, the NT-Xent loss at
temperature 0.07 between two augmented views of each clip.

Per batch:
1. two views          x', x'' = aug(x), aug(x)         raw frames; on precomputed features (the original
                                                      set-up) two distinct stored views of the sample,
                                                      ``video`` and ``video_view2`` (a feature store prepared
                                                      with ``--views K >= 2``, served with ``pair_views: true``)
2. represent          r = GEU(E(x))                  (B, R)    what downstream probes read
3. project            z = P(r)                       (B, Q)
4. loss               NT-Xent(z', z''; tau)          (SimCLR eq. 1, over the 2B views)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from affectlab.data.contract import mask_key
from affectlab.data.store.feature_store import second_view_key
from affectlab.data.transforms import augment_frames
from affectlab.errors import DataError
from affectlab.losses import nt_xent_loss
from affectlab.methods.base import MultimodalMethod, OptimizerInit, SchedulerInit
from affectlab.nn.heads import GatedEmbeddingUnit, ProjectionHead


class SimCLR(MultimodalMethod):
    """Video-only contrastive pretraining between two augmented views.

    Args:
        encoder: the video encoder, giving ``[B, D]``.
        freeze_encoder: train only the heads on a frozen backbone's features (the original set-up).
        representation_dim: output of the Gated Embedding Unit.
        projection_dim: output of the projection head.
        projection_hidden_dim: width of its hidden layer; None: representation_dim / 8 (see ``ProjectionHead``).
        temperature: of NT-Xent (the original: 0.07).
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        freeze_encoder: bool = False,
        representation_dim: int = 256,
        projection_dim: int = 128,
        projection_hidden_dim: int | None = None,
        temperature: float = 0.07,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(encoders={"video": encoder}, freeze_encoders=freeze_encoder, optimizer_init=optimizer_init,
                         lr_scheduler_init=lr_scheduler_init)
        self.representation = nn.ModuleDict({"video": GatedEmbeddingUnit(encoder.num_features, representation_dim)})
        self.projection = ProjectionHead(representation_dim, projection_dim, projection_hidden_dim)
        self.representation_dim = representation_dim
        self.temperature = temperature

    @property
    def representation_dims(self) -> dict[str, int]:
        return {"video": self.representation_dim}

    def represent(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        features = self.encode(batch)["video"]  # (B, D)
        return {"video": self.representation["video"](features)}  # (B, R)

    def views(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Step 1: the batch's two views of each sample."""
        second = second_view_key("video")
        if second in batch:  # precomputed: the store's two views
            return [batch, dict(batch, video=batch[second], video_mask=batch.get(mask_key(second)))]
        if batch["video"].ndim != 5:  # features [B, T, D] or [B, D]: no augmentation makes a second view of them
            raise DataError(
                "SimCLR: the batch holds video features and no second view of them (batch['video_view2']); serve "
                "two stored views per sample with data.init_args.pair_views: true on a feature store prepared "
                "with 'affectlab data prepare NAME ... --views N' (N >= 2)"
            )
        return [dict(batch, video=augment_frames(batch["video"])) for _ in range(2)]

    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        views = self.views(batch)
        z1, z2 = (self.projection(self.represent(view)["video"]) for view in views)  # (B, Q) each
        return nt_xent_loss(z1, z2, self.temperature)

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(batch["id"]))
        return loss

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        self.log(f"{stage}/loss", self._loss(batch), on_epoch=True, sync_dist=True, batch_size=len(batch["id"]))
