"""Implements the supervised multimodal baseline: an encoder per modality, fusion, a classification head.

Beside the fused head, each modality's pooled vector feeds a unimodal head trained with the same loss
(weight ``unimodal_weight`` each). Their test scores are the per-modality figures of the results table, so
one run shows how much fusion adds. They also keep every encoder learning: trained through the fused head
alone, the slow video encoder stays near chance while text and audio carry the loss (measured on
AffectSynth: video head 20 % with a weight of 1/6 per head, 30 % with 1).

Algorithm, per batch:
1. encode each modality:      v_m = pool(E_m(x_m, mask_m))                   (B, D_m)
2. fuse:                      z = F([v_m]_m)                                  (B, D)
3. classify:                  logits = H(z), logits_m = H_m(v_m)              (B, C)
4. loss = CE(logits, y) + unimodal_weight * sum_m CE(logits_m, y), over samples that carry the label.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from affectlab.data.contract import EMOTIONS
from affectlab.errors import ConfigError
from affectlab.methods.base import MultimodalMethod, OptimizerInit, SchedulerInit
from affectlab.metrics.classification import classification_metrics, confusion_matrix
from affectlab.nn.fusion import create_fusion
from affectlab.nn.heads import ClassificationHead

FUSED = "fused"
NO_FUSION = "none"


class _OneModality(nn.Module):
    """``fusion: none``: the one modality's pooled vector is the representation, as a plain image classifier
    (CluP's ResNet-18 -> Linear(512, 7), whose 512-d vector its teacher clusters)."""

    def __init__(self, modality: str, dim: int) -> None:
        super().__init__()
        self.modality, self.num_features = modality, dim

    def forward(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        return vectors[self.modality]  # (B, D_m)


class SupervisedClassifier(MultimodalMethod):
    """Supervised classification from any subset of the modalities the data module serves.

    Args:
        encoders: one encoder per modality, keyed by the batch entry it reads (``video``, ``audio``, ...).
        modalities: the subset of ``encoders`` to use; None uses them all.
        task: the target to predict (a key of ``batch["targets"]``).
        num_classes: number of classes of ``task``.
        fusion: ``concat`` or ``mean`` (see ``affectlab.nn.fusion``), or ``none`` with one modality: its
            encoder's vector feeds the head directly (``fusion_dim`` is then unused).
        fusion_dim: size of the fused representation.
        dropout: before every classification head.
        unimodal_weight: weight of each per-modality head's loss; 0 trains only the fused head.
        label_smoothing: of the cross-entropy.
        weight_norm: reparametrise the final Linear of the fused head as w_c = g_c v_c / ||v_c|| (Salimans and
            Kingma 2016; ``torch.nn.utils.parametrizations.weight_norm``, one g per class row), so each class
            row's norm is the learnt g_c. CluP's original asked for it but never applied it; here the
            parametrisation is on the module that computes the logits (``head.linear``; its state-dict keys
            become ``head.linear.parametrizations.weight.original0`` (g) and ``original1`` (v)).
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    def __init__(
        self,
        encoders: dict[str, nn.Module],
        modalities: list[str] | None = None,
        task: str = "emotion",
        num_classes: int = 7,
        fusion: str = "concat",
        fusion_dim: int = 256,
        dropout: float = 0.2,
        unimodal_weight: float = 1.0,
        label_smoothing: float = 0.0,
        weight_norm: bool = False,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(encoders=encoders, modalities=modalities, optimizer_init=optimizer_init,
                         lr_scheduler_init=lr_scheduler_init)
        self.task = task
        self.num_classes = num_classes
        self.class_names = list(EMOTIONS) if num_classes == len(EMOTIONS) else [str(i) for i in range(num_classes)]
        dims = self.representation_dims
        if fusion == NO_FUSION:
            if len(dims) != 1:
                raise ConfigError(f"model.init_args.fusion: 'none' needs exactly one modality, got {sorted(dims)}; "
                                  "set model.init_args.modalities to one of them or choose concat / mean")
            ((modality, fusion_dim),) = dims.items()
            self.fusion: nn.Module = _OneModality(modality, fusion_dim)
        else:
            self.fusion = create_fusion(fusion, dims, fusion_dim, dropout)
        self.head = ClassificationHead(fusion_dim, num_classes, dropout)
        self.weight_norm = weight_norm
        if weight_norm:
            parametrizations.weight_norm(self.head.linear, name="weight", dim=0)  # g: (C, 1), v: (C, D)
        self.unimodal_weight = unimodal_weight
        self.unimodal_heads = nn.ModuleDict({m: ClassificationHead(d, num_classes, dropout) for m, d in dims.items()})
        self.label_smoothing = label_smoothing
        # Metrics per stage and per head; torchmetrics accumulates over the epoch and syncs across processes.
        heads = [FUSED, *dims]
        self.metrics = nn.ModuleDict(
            {
                stage: nn.ModuleDict({head: classification_metrics(num_classes) for head in heads})
                for stage in ("val", "test")
            }
        )
        self.confusion = nn.ModuleDict({stage: confusion_matrix(num_classes) for stage in ("val", "test")})

    @property
    def tasks(self) -> list[str]:
        return [self.task]

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.class_names = self.data_class_names(self.task, self.num_classes) or self.class_names

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        vectors = self.represent(batch)  # 1. (B, D_m) per modality
        fused = self.fusion(vectors)  # (B, D)
        outputs = {"embedding": fused, FUSED: self.head(fused)}  # logits (B, C)
        for m, vector in vectors.items():
            outputs[m] = self.unimodal_heads[m](vector)
        return outputs

    def _losses(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labelled = batch["target_mask"][self.task]  # (B,)
        target = batch["targets"][self.task][labelled]

        def ce(logits: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits[labelled], target, label_smoothing=self.label_smoothing)

        losses = {"loss_fused": ce(outputs[FUSED])}
        unimodal = [ce(outputs[m]) for m in self.encoders]
        losses["loss_unimodal"] = torch.stack(unimodal).sum()
        losses["loss"] = losses["loss_fused"] + self.unimodal_weight * losses["loss_unimodal"]
        return losses

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        outputs = self(batch)
        losses = self._losses(outputs, batch)
        batch_size = int(batch["target_mask"][self.task].sum())
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=True, batch_size=batch_size)
        return losses["loss"]

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        outputs = self(batch)
        losses = self._losses(outputs, batch)
        labelled = batch["target_mask"][self.task]
        target = batch["targets"][self.task][labelled]
        self.log_dict(
            {f"{stage}/{k}": v for k, v in losses.items()},
            on_epoch=True, sync_dist=True, batch_size=int(labelled.sum()),
        )
        for head, metrics in self.metrics[stage].items():
            metrics.update(outputs[head][labelled], target)
        self.confusion[stage].update(outputs[FUSED][labelled], target)

    def evaluation_epoch_end(self, stage: str) -> None:
        values = {}
        for head, metrics in self.metrics[stage].items():
            prefix = f"{stage}/" if head == FUSED else f"{stage}/{head}/"
            values.update({prefix + name: value for name, value in metrics.compute().items()})
            metrics.reset()
        self.log_dict(values)
        self.log_confusion(stage, self.confusion[stage], self.class_names)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        probabilities = self(batch)[FUSED].softmax(dim=-1)  # (B, C)
        prediction = {"id": batch["id"], "prediction": probabilities.argmax(dim=-1), "probabilities": probabilities}
        if self.task in batch.get("targets", {}):
            prediction["target"] = batch["targets"][self.task]
        return prediction
