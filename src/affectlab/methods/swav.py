"""Implements SwAV (Caron et al., NeurIPS 2020, arXiv 2006.09882): self-supervised image representations by
predicting the cluster code of one view of an image from another view, on unlabelled faces (CluP's target
pretraining, seed 004). The loss and the codes are pure functions in ``losses/swav.py``.

Per training batch (the paper's Algorithm 1, with multi-crop and the queue):
1. normalise the prototypes   c_k <- c_k / ||c_k||                           (K, D) rows, before the step
2. multi-crop views           2 large crops + N small crops of every image    (B, 3, S, S) per view
3. embed and project          z = normalize(P(E(x)))                          (B, D) per view
4. score                      s = z C^T                                       (B, K) per view
5. codes of the large crops   q = Sinkhorn-Knopp([queue C^T; s]) [-B:]        (B, K), no gradient
6. swapped prediction         L = mean over (large i, view j != i) of CE(q_i, softmax(s_j / tau))
7. enqueue the large crops' z (the newest first; the queue is read from ``queue_start_epoch`` on)
8. the prototypes' gradient is zeroed for the first ``freeze_prototypes_iterations`` steps
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from affectlab.data.contract import mask_key
from affectlab.errors import ConfigError, DataError
from affectlab.losses.swav import sinkhorn_knopp, swav_loss
from affectlab.methods.base import BaseMethod, OptimizerInit, SchedulerInit


def crop_transform(size: int, scale: tuple[float, float]) -> v2.Compose:
    """One multi-crop view of a ``[3, H, W]`` image in [0, 1]: SwAV's (and solo-learn's) augmentations."""
    kernel = max(3, int(0.1 * size) // 2 * 2 + 1)  # about a tenth of the crop, odd
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=scale, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
    ])


class SwAV(BaseMethod):
    """SwAV on the images (``video`` as one-frame clips ``[B, 1, 3, H, W]``, or ``[B, 3, H, W]``) of any image
    data set; labels are never read.

    Checkpoint layout: the backbone is the attribute ``encoder`` (a ``FrameEncoder``), so its weights are the
    ``encoder.*`` keys of the state dict (``encoder.backbone.conv1.weight``, ...), beside ``projector.*``,
    ``prototypes.weight`` and, with a queue, ``queue``/``queue_rows``. CluP's student loads its backbone from
    the ``encoder.`` keys of this method's ``best.ckpt``; ``represent`` gives the encoder's pooled vector, what
    a linear probe reads.

    Args:
        encoder: the image backbone (``FrameEncoder``, e.g. ResNet-18 with ``stem: clup``).
        projection_hidden_dim: the projector's hidden width (solo-learn's Linear-BN-ReLU-Linear: 2048).
        projection_dim: D, the projections' and prototypes' size (128).
        num_prototypes: K (5000 in CluP's target models, 3000 in the paper's ImageNet runs).
        temperature: tau of the swapped prediction (0.1).
        sinkhorn_epsilon: the codes' entropy weight (0.05).
        sinkhorn_iterations: Sinkhorn-Knopp iterations (3).
        num_large_crops: large crops per image; their codes are the targets (2).
        num_small_crops: small crops per image, predicting the large ones' codes (the paper: 6; 0 turns multi-crop off).
        large_crop_size: side of a large crop, pixels.
        small_crop_size: side of a small crop, pixels.
        large_crop_scale: area range of a large crop, as a fraction of the image (the paper: 0.14 to 1).
        small_crop_scale: area range of a small crop (the paper: 0.05 to 0.14).
        queue_size: projections of earlier batches kept per large crop and scored with the batch for the codes,
            so K prototypes can be balanced over more than B samples (0: no queue; solo-learn: 3840).
        queue_start_epoch: the epoch from which the queue is read (the paper starts it after 15 epochs of 800).
        freeze_prototypes_iterations: steps at the start whose prototype gradient is zeroed (the paper: its
            first epoch, 313 steps), as the prototypes otherwise chase the still random projections.
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        projection_hidden_dim: int = 2048,
        projection_dim: int = 128,
        num_prototypes: int = 5000,
        temperature: float = 0.1,
        sinkhorn_epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        num_large_crops: int = 2,
        num_small_crops: int = 6,
        large_crop_size: int = 160,
        small_crop_size: int = 64,
        large_crop_scale: tuple[float, float] = (0.14, 1.0),
        small_crop_scale: tuple[float, float] = (0.05, 0.14),
        queue_size: int = 0,
        queue_start_epoch: int = 15,
        freeze_prototypes_iterations: int = 313,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(optimizer_init=optimizer_init, lr_scheduler_init=lr_scheduler_init)
        if num_large_crops < 1 or num_large_crops + num_small_crops < 2:
            raise ConfigError(f"model.init_args.num_large_crops: SwAV needs at least one large crop and two views, "
                              f"got {num_large_crops} large and {num_small_crops} small")
        if queue_size < 0 or num_prototypes < 1:
            raise ConfigError("model.init_args.queue_size must be >= 0 and num_prototypes >= 1")
        self.encoder = encoder
        features = int(encoder.num_features)
        self.projector = nn.Sequential(
            nn.Linear(features, projection_hidden_dim), nn.BatchNorm1d(projection_hidden_dim), nn.ReLU(),
            nn.Linear(projection_hidden_dim, projection_dim),
        )
        self.prototypes = nn.Linear(projection_dim, num_prototypes, bias=False)  # rows: the c_k
        self.temperature, self.sinkhorn_epsilon, self.sinkhorn_iterations = temperature, sinkhorn_epsilon, sinkhorn_iterations
        self.num_large_crops, self.num_small_crops = num_large_crops, num_small_crops
        self.large_crop = crop_transform(large_crop_size, tuple(large_crop_scale))
        self.small_crop = crop_transform(small_crop_size, tuple(small_crop_scale))
        self.queue_size, self.queue_start_epoch = queue_size, queue_start_epoch
        self.freeze_prototypes_iterations = freeze_prototypes_iterations
        if queue_size:  # in the checkpoint, so a resumed run continues with the same queue
            self.register_buffer("queue", torch.zeros(num_large_crops, queue_size, projection_dim))
            self.register_buffer("queue_rows", torch.zeros((), dtype=torch.long))  # rows filled so far

    @property
    def modalities(self) -> list[str]:
        return ["video"]

    @property
    def representation_dims(self) -> dict[str, int]:
        return {"video": int(self.encoder.num_features)}

    def represent(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"video": self.encoder(batch["video"], batch.get(mask_key("video")))}  # (B, D_e)

    # -- the algorithm --------------------------------------------------------------------------------------
    def views(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """Step 2: the large crops, then the small ones, each ``[B, 3, S, S]``, drawn per image."""
        images = batch["video"]
        if images.ndim == 5:
            if images.shape[1] != 1:
                raise DataError(f"SwAV reads one face per sample, got clips of {images.shape[1]} frames; serve "
                                "single frames (data.init_args.sample_unit: frame, or num_frames: 1)")
            images = images[:, 0]  # (B, 3, H, W)
        crops = [self.large_crop] * self.num_large_crops + [self.small_crop] * self.num_small_crops
        return [torch.stack([crop(image) for image in images]) for crop in crops]

    def project(self, views: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Steps 3-4: per view the unit projections z ``(B, D)`` and scores s = z C^T ``(B, K)``. Views of one
        size go through the backbone together, as the paper's code does (one BatchNorm batch per resolution)."""
        B, z = views[0].shape[0], []
        for start, stop in ((0, self.num_large_crops), (self.num_large_crops, len(views))):
            if stop > start:
                embedded = self.encoder(torch.cat(views[start:stop]))  # (n*B, D_e)
                z += list(F.normalize(self.projector(embedded), dim=1).split(B))  # (B, D) each
        prototypes = F.normalize(self.prototypes.weight, dim=1) if not self.training else self.prototypes.weight
        return z, [zi @ prototypes.T for zi in z]

    @torch.no_grad()
    def codes(self, scores: list[torch.Tensor], use_queue: bool) -> list[torch.Tensor]:
        """Step 5: Sinkhorn-Knopp codes of the large crops, over the queue's rows and the batch."""
        result = []
        for i, s in enumerate(scores[: self.num_large_crops]):
            if use_queue:
                queued = self.queue[i, : int(self.queue_rows)]  # (Q, D), only rows already written
                s = torch.cat([queued @ self.prototypes.weight.T, s])  # (Q + B, K)
            result.append(sinkhorn_knopp(s, self.sinkhorn_epsilon, self.sinkhorn_iterations)[-scores[i].shape[0]:])
        return result

    @torch.no_grad()
    def enqueue(self, z: list[torch.Tensor]) -> None:
        """Step 7: the large crops' projections in front, the oldest dropped."""
        n = min(z[0].shape[0], self.queue_size)  # a batch larger than the queue fills it with its first rows
        self.queue[:, n:] = self.queue[:, : self.queue_size - n].clone()
        self.queue[:, :n] = torch.stack(z[: self.num_large_crops]).detach()[:, :n]  # (L, n, D)
        self.queue_rows.fill_(min(int(self.queue_rows) + n, self.queue_size))

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        with torch.no_grad():  # step 1
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        z, scores = self.project(self.views(batch))
        use_queue = bool(self.queue_size) and self.current_epoch >= self.queue_start_epoch
        loss = swav_loss(scores, self.codes(scores, use_queue), self.temperature)  # step 6
        if self.queue_size:
            self.enqueue(z)
        B = len(batch["id"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=B)
        if self.queue_size:
            self.log("train/queue_used", float(use_queue), on_step=False, on_epoch=True, batch_size=B)
        return loss

    def on_after_backward(self) -> None:
        if self.global_step < self.freeze_prototypes_iterations:  # step 8
            for parameter in self.prototypes.parameters():
                parameter.grad = None

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        """The swapped prediction loss of fresh views, codes from the batch alone (the queue holds training
        projections and is left as it is)."""
        _, scores = self.project(self.views(batch))
        loss = swav_loss(scores, self.codes(scores, use_queue=False), self.temperature)
        self.log(f"{stage}/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(batch["id"]))
