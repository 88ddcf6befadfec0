"""Implements SHOT, source hypothesis transfer (Liang et al., 2020, arXiv 2002.08546), on an AffectLab source model.

Source-free domain adaptation: a classifier trained on a labelled source domain is adapted to an unlabelled
target domain without the source data. The source model is a ``SupervisedClassifier`` (its run's
``best.ckpt``, loaded with ``weights_only=True``); its *hypothesis* (the classification head) is frozen and its
*feature extractor* (the encoder, the backbone, and the fusion layer, the bottleneck) is trained on the target
images. The objective and the pseudo-labels are the pure functions of ``losses/shot.py``.

Algorithm (the paper's Algorithm 1):
1. start from the source model: g_t = g_s (encoder + bottleneck), h frozen.
2. at the start of every ``label_every_n_epochs``-th epoch, with the current model frozen and in eval mode, embed
   and classify every target training sample *without augmentation*; SHOT's pseudo-labels y^ come from
   prediction-weighted centroids in feature space, cosine distance, and ``refinements`` (the paper's one)
   rounds of hard-label centroids.
3. per batch of (augmented) target images: L = L_ent + L_div + beta CE(h(g_t(x)), y^), beta 0.3 (Eq. 7);
   only g_t's parameters move, the backbone at ``backbone_lr_scale`` (0.1, as the authors' code) of the rate.

Target labels are never trained on. Where the target data carries them (AffectSynth, a labelled target set used
for evaluation), each labelling round logs how accurate the pseudo-labels and the classifier's own predictions
are (``train/pseudo_label_acc``, ``train/prediction_acc``), and ``best.ckpt`` is selected by ``val/acc`` on the
target's validation split (never on its test split).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.data.loaders import split_loader
from affectlab.data.transforms import augment_frames
from affectlab.errors import ConfigError
from affectlab.io import load_checkpoint
from affectlab.losses.shot import information_maximisation, shot_objective, shot_pseudo_labels
from affectlab.methods.base import BaseMethod, OptimizerInit, SchedulerInit
from affectlab.methods.supervised import FUSED, SupervisedClassifier
from affectlab.metrics.classification import classification_metrics, confusion_matrix

CHECKPOINT_KEY = "model.init_args.source_checkpoint"


class SHOT(BaseMethod):
    """A source classifier's feature extractor adapted to unlabelled target data by SHOT.

    Args:
        source: the source model's architecture (in a config: the source run's model config, e.g.
            ``source: supervised_image.yaml``); it must match ``source_checkpoint``'s weights.
        source_checkpoint: the source run's ``best.ckpt`` (a Lightning checkpoint of ``source``), loaded when
            fit starts; required to fit (a resumed fit then continues from its own ``last.ckpt``).
        beta: weight of the pseudo-label cross-entropy (0.3 in the paper).
        entropy_weight: weight of L_ent (1 in the paper).
        diversity_weight: weight of L_div (1 in the paper; 0 drops it).
        refinements: hard-label centroid rounds after the weighted one (1 in the paper).
        threshold: a class is a pseudo-label candidate only while it holds more than this many samples.
        label_every_n_epochs: how often the pseudo-labels are recomputed (every epoch by default).
        augment: random crop, flip, brightness and contrast on the training images (``data/transforms.py``).
        backbone_lr_scale: the encoders' learning rate relative to the bottleneck's.
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        source: SupervisedClassifier,
        source_checkpoint: str | None = None,
        beta: float = 0.3,
        entropy_weight: float = 1.0,
        diversity_weight: float = 1.0,
        refinements: int = 1,
        threshold: int = 0,
        label_every_n_epochs: int = 1,
        augment: bool = True,
        backbone_lr_scale: float = 0.1,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(optimizer_init, lr_scheduler_init)
        if not isinstance(source, SupervisedClassifier):
            raise ConfigError(f"model.init_args.source: got {type(source).__name__}, not a SupervisedClassifier; give "
                              "the source run's model config (e.g. source: supervised_image.yaml)")
        if label_every_n_epochs < 1 or refinements < 0 or beta < 0:
            raise ConfigError(f"model.init_args: label_every_n_epochs ({label_every_n_epochs}) must be >= 1, "
                              f"refinements ({refinements}) and beta ({beta}) >= 0")
        self.source = source
        self.source_checkpoint = source_checkpoint
        self.beta, self.entropy_weight, self.diversity_weight = beta, entropy_weight, diversity_weight
        self.refinements, self.threshold, self.label_every_n_epochs = refinements, threshold, label_every_n_epochs
        self.augment, self.backbone_lr_scale = augment, backbone_lr_scale
        self.task, self.num_classes = source.task, source.num_classes
        self.class_names = source.class_names
        # 1. the hypothesis h never trains (nor do the per-modality heads, which SHOT does not use)
        for frozen in self.frozen_modules():
            frozen.requires_grad_(False)
        self.pseudo_labels: torch.Tensor | None = None  # (max id + 1,) long, -1 where no sample has the id
        self.metrics = nn.ModuleDict({stage: classification_metrics(self.num_classes) for stage in ("val", "test")})
        self.confusion = nn.ModuleDict({stage: confusion_matrix(self.num_classes) for stage in ("val", "test")})

    @property
    def modalities(self) -> list[str]:
        return self.source.modalities

    @property
    def tasks(self) -> list[str]:
        return [self.task]  # read by validation and test only: training never reads a target label

    def frozen_modules(self) -> list[nn.Module]:
        return [self.source.head, self.source.unimodal_heads]

    def deployed_model(self) -> SupervisedClassifier:
        return self.source  # the adapted classifier: export and predict run it as any supervised run

    def param_groups(self, parameters: list[nn.Parameter]) -> list[dict]:
        in_encoders = {id(p) for p in self.source.encoders.parameters()}
        return [{"params": [p for p in parameters if id(p) not in in_encoders]},
                {"params": [p for p in parameters if id(p) in in_encoders], "lr_scale": self.backbone_lr_scale}]

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.class_names = self.data_class_names(self.task, self.num_classes) or self.class_names
        if stage == "fit":  # before Lightning restores a resumed fit's own checkpoint, which then wins
            self.load_source()

    def load_source(self) -> None:
        if not self.source_checkpoint:
            raise ConfigError(f"SHOT adapts a trained source model: set {CHECKPOINT_KEY} to the source run's best.ckpt "
                              "(a SupervisedClassifier run of the same model config as model.init_args.source)")
        state = load_checkpoint(self.source_checkpoint, key=CHECKPOINT_KEY).get("state_dict")
        if not isinstance(state, dict):
            raise ConfigError(f"{CHECKPOINT_KEY}: {self.source_checkpoint} holds no 'state_dict'; give a Lightning "
                              "checkpoint of the source run")
        try:
            self.source.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ConfigError(f"{CHECKPOINT_KEY}: the weights in {self.source_checkpoint} do not fit "
                              f"model.init_args.source (was the source trained with another model config?): {error}") from None

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.source(batch)

    # 2. pseudo-labels of the whole target training set, from the current model frozen
    def on_train_epoch_start(self) -> None:
        if self.pseudo_labels is None or self.current_epoch % self.label_every_n_epochs == 0:
            self.log_dict(self.relabel(), on_step=False, on_epoch=True)

    @torch.no_grad()
    def relabel(self) -> dict[str, torch.Tensor | float]:
        """Recompute ``pseudo_labels``; returns the round's diagnostics (how many classes the labels use and,
        where the target's labels are known, the accuracy of the labels and of the classifier's predictions)."""
        datamodule = self.trainer.datamodule
        dataset = datamodule.dataset("train")
        # In index order with a private generator (split_loader's evaluation loader): no RNG is drawn, so training
        # stays deterministic; every process labels the whole set, so no gather is needed under DDP.
        loader = split_loader(dataset, "val", datamodule.batch_size, datamodule.num_workers, datamodule.collate())
        was_training = self.training
        self.eval()
        ids, features, probabilities, targets, known = [], [], [], [], []
        for batch in loader:
            batch = self.trainer.strategy.batch_to_device(batch)
            outputs = self.source(batch)
            ids.append(batch["id"])
            features.append(outputs["embedding"].float())  # (B, D) g^(x)
            probabilities.append(outputs[FUSED].float().softmax(dim=-1))  # (B, K) delta(f^(x))
            targets.append(batch["targets"][self.task])
            known.append(batch["target_mask"][self.task])
        self.train(was_training)
        ids, probabilities = torch.cat(ids), torch.cat(probabilities)
        labels = shot_pseudo_labels(torch.cat(features), probabilities, self.refinements, self.threshold)
        self.pseudo_labels = torch.full((int(ids.max()) + 1,), -1, dtype=torch.long, device=ids.device)
        self.pseudo_labels[ids] = labels
        targets, known = torch.cat(targets), torch.cat(known).bool()
        values = {"train/pseudo_label_classes": float(labels.unique().numel())}
        if known.any():  # diagnostics only: how right the labels SHOT trains on are, where the truth is known
            values["train/pseudo_label_acc"] = (labels[known] == targets[known]).float().mean()
            values["train/prediction_acc"] = (probabilities.argmax(1)[known] == targets[known]).float().mean()
        return values

    # 3. the objective on a batch of target images
    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        labels = self.pseudo_labels[batch["id"]]  # (B,)
        if (labels < 0).any():
            raise ConfigError("SHOT: a training sample has no pseudo-label (its id was not served when the labels "
                              "were computed); the data module's train split must serve the same samples each pass")
        view = {**batch, "video": augment_frames(batch["video"])} if self.augment and "video" in batch else batch
        terms = shot_objective(self(view)[FUSED], labels, self.beta, self.entropy_weight, self.diversity_weight)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_step=True, on_epoch=True, batch_size=len(labels))
        return terms["loss"]

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        logits = self(batch)[FUSED]  # (B, K)
        labelled = batch["target_mask"][self.task]
        target = batch["targets"][self.task][labelled]
        entropy, diversity = information_maximisation(logits)
        values = {"loss": F.cross_entropy(logits[labelled], target), "entropy": entropy, "diversity": diversity}
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, on_epoch=True, batch_size=int(labelled.sum()))
        self.metrics[stage].update(logits[labelled], target)
        self.confusion[stage].update(logits[labelled], target)

    def evaluation_epoch_end(self, stage: str) -> None:
        self.log_dict({f"{stage}/{name}": value for name, value in self.metrics[stage].compute().items()})
        self.metrics[stage].reset()
        self.log_confusion(stage, self.confusion[stage], self.class_names)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self.source.predict_step(batch, batch_idx)
