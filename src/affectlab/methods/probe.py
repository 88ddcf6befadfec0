"""Implements the linear evaluation protocol of ConCluGen (arXiv 2404.10904, Sec. 4).

A pretrained method is judged by how well a linear classifier reads emotions off its frozen representations.
The backbone is any module with ``represent(batch) -> {modality: (B, D_m)}`` and ``representation_dims``
(every AffectLab method that learns representations: ``SupervisedClassifier``, ``ConCluGen``, ...), built
from its own config and loaded from its pretraining checkpoint; without a checkpoint it is the randomly
initialised backbone, the floor of the paper's tables.

Algorithm, per batch:
1. represent:   v_m = backbone.represent(x)_m for m in modalities          (B, D_m), frozen: no gradient
2. concatenate: z = [v_m]_m                                                (B, sum D_m)
3. classify:    logits = W dropout(z) + b                                  (B, C)
4. loss:        class-weighted cross-entropy, w_c = N / (C n_c) from the labelled train counts n_c;
                multi-label: BCE with pos_weight_l = negatives_l / positives_l.

Two departures from the released code, both deliberate: its CAER class weights were proportional to class
frequency, which weights the frequent classes up instead of down (METHODS.md, seed 000 defects); here they
are inverse. And ``freeze=False`` fine-tunes the backbone too (not in the paper), at a smaller learning rate.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.data.contract import EMOTIONS
from affectlab.errors import ConfigError
from affectlab.io import load_checkpoint
from affectlab.methods.base import BaseMethod, OptimizerInit, SchedulerInit, check_modalities
from affectlab.metrics.classification import (
    classification_metrics,
    confusion_matrix,
    expand_per_class,
    multilabel_metrics,
)

STAGES = ("val", "test")


def inverse_frequency_weights(counts: torch.Tensor) -> torch.Tensor:
    """Class weights ``N / (C n_c)`` from counts ``[C]``: 1 for every class when balanced, larger when rarer.

    A class without samples is weighted as if it had one (it cannot be learnt, and a weight of 0 would make
    the mean loss of a batch holding only that class 0/0).
    """
    counts = counts.double().clamp(min=1)
    return (counts.sum() / (len(counts) * counts)).float()


def positive_weights(counts: torch.Tensor) -> torch.Tensor:
    """BCE ``pos_weight`` per label, negatives / positives, from counts ``[L, 2]`` (without, with the label)."""
    counts = counts.double()
    return (counts[:, 0] / counts[:, 1].clamp(min=1)).float()


class LinearProbe(BaseMethod):
    """A linear classifier (or fine-tuning) on a pretrained backbone's concatenated representations.

    Args:
        backbone: a module with ``represent(batch)`` and ``representation_dims``, e.g. a whole
            ``SupervisedClassifier`` or ``ConCluGen`` config.
        checkpoint_path: a Lightning checkpoint of the backbone's pretraining run; its ``state_dict`` must
            match the backbone's keys exactly. None keeps the random initialisation (the floor).
        freeze: True: the linear protocol, the backbone frozen and in eval mode (no dropout, no BatchNorm
            statistics updates); False: fine-tune it too, at ``backbone_lr_scale`` times the learning rate.
        modalities: whose representations are concatenated; None uses all the backbone has. The batch must
            still hold every modality the backbone reads.
        task: the target to predict (a key of ``batch["targets"]``).
        num_classes: classes of ``task``, or labels if ``multi_label``.
        multi_label: independent 0/1 labels (``[B, L]`` targets, e.g. CMU-MOSEI's six emotions) instead of one
            class per sample.
        dropout: on the concatenated representation, before the linear layer (0.5 in the paper).
        class_weighting: weight the loss by inverse class frequency of the labelled train samples (from the
            data module's ``class_counts``); multi-label: ``pos_weight`` = negatives / positives per label.
        backbone_lr_scale: the backbone's learning rate relative to the classifier's when fine-tuning.
        cache_representations: with a frozen backbone, compute each sample's representation once and reuse it
            in later epochs (exact: the frozen backbone runs in eval mode on un-augmented inputs). Sample ids
            must then be unique across the splits the probe sees, as AffectLab's data modules make them.
        optimizer_init: see ``BaseMethod``. With ``freeze=False`` the backbone's parameters form a second param
            group of each optimiser, at ``backbone_lr_scale`` times its learning rate.
        lr_scheduler_init: see ``BaseMethod``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        checkpoint_path: str | None = None,
        freeze: bool = True,
        modalities: list[str] | None = None,
        task: str = "emotion",
        num_classes: int = 7,
        multi_label: bool = False,
        dropout: float = 0.5,
        class_weighting: bool = True,
        backbone_lr_scale: float = 0.1,
        cache_representations: bool = True,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(optimizer_init, lr_scheduler_init)
        if not (hasattr(backbone, "represent") and hasattr(backbone, "representation_dims")):
            raise ConfigError(
                f"model.init_args.backbone: {type(backbone).__name__} has no represent()/representation_dims; "
                "give a method that learns representations (e.g. affectlab.methods.SupervisedClassifier)"
            )
        self.backbone = backbone
        if checkpoint_path is not None:
            load_backbone_weights(backbone, checkpoint_path)
        dims = dict(backbone.representation_dims)
        self.probed_modalities = check_modalities(modalities, list(dims), "model.init_args.modalities")
        self.freeze = freeze
        self.cache_representations = cache_representations
        # Sample id -> concatenated representation; only for a frozen backbone, whose output never changes.
        self._cache: dict[int, torch.Tensor] = {}
        self.backbone_lr_scale = backbone_lr_scale
        if freeze:
            backbone.requires_grad_(False)
            backbone.eval()  # already now: a representation cached before training must be the eval one
        self.task = task
        self.num_classes = num_classes
        self.multi_label = multi_label
        if multi_label:
            self.class_names = [str(i) for i in range(num_classes)]
        else:
            self.class_names = list(EMOTIONS) if num_classes == len(EMOTIONS) else [str(i) for i in range(num_classes)]
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(sum(dims[m] for m in self.probed_modalities), num_classes)
        self.class_weighting = class_weighting
        # Set from the data at setup; saved with the checkpoint so a reloaded probe evaluates the same loss.
        self.register_buffer("class_weights", torch.ones(num_classes))
        # Metrics per stage; torchmetrics accumulates over the epoch and syncs across processes.
        make = multilabel_metrics if multi_label else classification_metrics
        self.metrics = nn.ModuleDict({stage: make(num_classes, True) for stage in STAGES})
        if not multi_label:
            self.confusion = nn.ModuleDict({stage: confusion_matrix(num_classes) for stage in STAGES})

    @property
    def modalities(self) -> list[str]:
        """What the batch must hold: everything the backbone reads, not only the probed subset."""
        return list(getattr(self.backbone, "modalities", self.probed_modalities))

    @property
    def tasks(self) -> list[str]:
        return [self.task]

    def frozen_modules(self) -> list[nn.Module]:
        # The frozen backbone runs in eval mode: no dropout, BatchNorm statistics stay those of pretraining.
        return [self.backbone] if self.freeze else []

    def param_groups(self, parameters: list[nn.Parameter]) -> list[dict]:
        # A second group rather than a second optimiser: two optimisers would switch Lightning to manual
        # optimisation, which drops gradient clipping and accumulation.
        in_backbone = {id(p) for p in self.backbone.parameters()}
        return [
            {"params": [p for p in parameters if id(p) not in in_backbone]},
            {"params": [p for p in parameters if id(p) in in_backbone], "lr_scale": self.backbone_lr_scale},
        ]

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        self.class_names = self.data_class_names(self.task, self.num_classes) or self.class_names
        if self.class_weighting and stage == "fit":
            if not hasattr(datamodule, "class_counts"):
                raise ConfigError(
                    f"model.init_args.class_weighting needs the class counts of the data; {type(datamodule).__name__} "
                    "has no class_counts(task); set model.init_args.class_weighting: false"
                )
            counts = datamodule.class_counts(self.task)
            if not self.multi_label and len(counts) < self.num_classes:  # bincount ends at the last class seen
                counts = torch.cat([counts, counts.new_zeros(self.num_classes - len(counts))])
            weights = positive_weights(counts) if self.multi_label else inverse_frequency_weights(counts)
            self.class_weights.copy_(weights)

    # -- the probe ----------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Logits ``(B, C)`` of the linear classifier on the concatenated representations."""
        z = self._cached(batch) if self.freeze and self.cache_representations else None
        if z is None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):  # frozen: keep no graph
                vectors = self.backbone.represent(batch)  # 1. (B, D_m) per modality
            z = torch.cat([vectors[m] for m in self.probed_modalities], dim=-1)  # 2. (B, sum D_m)
            if self.freeze and self.cache_representations:
                self._cache.update(zip(batch["id"].tolist(), z.detach()))
        return self.classifier(self.dropout(z))  # 3. (B, C)

    def _cached(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """This batch's representations if every sample's was computed before (a frozen backbone in eval
        mode gives every sample the same vector each epoch), else None."""
        ids = batch["id"].tolist()
        if not all(i in self._cache for i in ids):
            return None
        return torch.stack([self._cache[i] for i in ids])

    def loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """4. The (class-weighted) loss over the samples that carry the label; 0 when none does."""
        labelled = batch["target_mask"][self.task]  # (B,)
        if not labelled.any():  # a batch of unlabelled samples (unlabelled: mask) teaches the probe nothing
            return logits.sum() * 0.0
        target = batch["targets"][self.task][labelled]
        weights = self.class_weights if self.class_weighting else None
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits[labelled], target.float(), pos_weight=weights)
        return F.cross_entropy(logits[labelled], target, weight=weights)

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch), batch)
        batch_size = int(batch["target_mask"][self.task].sum())
        if batch_size:
            self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=batch_size)
        return loss

    # -- evaluation -----------------------------------------------------------------------------------------------
    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch)
        labelled = batch["target_mask"][self.task]
        if not labelled.any():
            return
        target = batch["targets"][self.task][labelled]
        loss = self.loss(logits, batch)
        self.log(f"{stage}/loss", loss, on_epoch=True, sync_dist=True, batch_size=int(labelled.sum()))
        self.metrics[stage].update(logits[labelled], target.long() if self.multi_label else target)
        if not self.multi_label:
            self.confusion[stage].update(logits[labelled], target)

    def evaluation_epoch_end(self, stage: str) -> None:
        values = expand_per_class(self.metrics[stage].compute(), self.class_names)
        self.metrics[stage].reset()
        self.log_dict({f"{stage}/{name}": value for name, value in values.items()})
        if not self.multi_label:
            self.log_confusion(stage, self.confusion[stage], self.class_names)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self(batch)
        if self.multi_label:
            probabilities = logits.sigmoid()  # (B, L)
            predicted = (probabilities >= 0.5).long()
        else:
            probabilities = logits.softmax(dim=-1)  # (B, C)
            predicted = probabilities.argmax(dim=-1)
        prediction = {"id": batch["id"], "prediction": predicted, "probabilities": probabilities}
        if self.task in batch.get("targets", {}):
            prediction["target"] = batch["targets"][self.task]
        return prediction


def load_backbone_weights(backbone: nn.Module, path: str) -> None:
    """Load ``backbone``'s weights from the ``state_dict`` of the Lightning checkpoint at ``path``, strictly.

    Loaded through ``affectlab.io.load_checkpoint`` (``weights_only=True``: tensors and plain data only).
    """
    key = "model.init_args.checkpoint_path"
    checkpoint = load_checkpoint(path, key=key)
    if not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"{key}: {path} holds no 'state_dict'; give a Lightning checkpoint of the pretraining run")
    state = checkpoint["state_dict"]
    expected = set(backbone.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ConfigError(
            f"{key}: the weights in {path} do not fit {type(backbone).__name__} (model.init_args.backbone): "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}; "
            "was it saved from another method or configuration?"
        )
    try:
        backbone.load_state_dict(state, strict=True)
    except RuntimeError as error:  # same keys, other shapes
        raise ConfigError(f"{key}: the weights in {path} do not fit model.init_args.backbone: {error}") from None
