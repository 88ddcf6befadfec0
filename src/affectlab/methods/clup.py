"""Implements CluP, source-free cross-domain expression recognition by cluster-level pseudo-labelling
(Conti et al., BMVC 2022, https://arxiv.org/abs/2210.05246).

Algorithm (the pseudo-labelling itself is ``methods/clup_labels.py``):
1. teacher pass (``on_fit_start``, once, before the first training batch): the frozen source model (a
   ``SupervisedClassifier`` run's checkpoint) embeds and classifies every target *training* sample, in order,
   *without augmentation* (the original predicted on its augmented training images: a defect);
   e_i = pooled backbone vector (B, D), p_i = argmax of the logits (B,)
2. k-means (``num_prototypes`` clusters, ``kmeans_restarts`` k-means++ restarts) on [e_i, 1] / |[e_i, 1]|,
   cluster-level labels (``mode`` purity or soft-purity, ``drop_outliers``), per-class selection of the top
   ``labeled_samples_size`` share by purity, ``iter_clusters`` rounds
3. the student (``student``: an image encoder, e.g. ResNet-18 with CluP's stem, initialised from a SwAV run's
   ``encoder.*`` weights by ``student_init``; a new linear head with weight norm, or the 512-128-C MLP head)
   trains on the selected subset only, with the fixed pseudo-labels: augmented frames, then mixup
   (``losses/mixup.py``: one l ~ Beta(alpha, alpha) per batch, + ``mixaug_alpha`` x the unmixed label's term),
   cross-entropy, or KL to the soft labels in soft-purity mode; optional SWA (Lightning's callback)
4. validation on the target's validation split with its true labels selects ``best.ckpt`` (``val/acc``); the
   test split is only tested (the original selected its checkpoints on test accuracy: a defect).

The selected subset is served by the data module's own train loader, replaced for this fit by one over the
selected samples with their pseudo-labels (``_SelectedSamples``): Lightning asks the data module for the train
loader after ``on_fit_start``, and the selection depends on the teacher, which the method owns. Labels, logs
and metrics all use the canonical class order (``contract.EMOTIONS``); a target data module with another order
is refused. Logged once per fit, per selection round r: ``clup/round<r>/selected/<class>`` and, where the
target's training labels exist (AffectSynth, ExpW, ...), ``clup/round<r>/pseudo_acc`` and per pseudo-class
``clup/round<r>/pseudo_acc/<class>`` (the share of the faces selected with that label that truly have it);
``clup/teacher_acc``; the pictures ``plots/clup_purity_round<r>.png`` (the round's selected faces) and
``plots/clup_purity_all.png`` (every train face after the last round): purity against the share of correct
pseudo-labels.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as apply_weight_norm
from torch.utils.data import Dataset

from affectlab.data.contract import EMOTIONS, mask_key
from affectlab.data.loaders import split_loader
from affectlab.data.transforms import augment_frames
from affectlab.errors import ConfigError
from affectlab.io import load_checkpoint
from affectlab.losses.mixup import divergence, mix, mixup_loss
from affectlab.methods.base import BaseMethod, OptimizerInit, SchedulerInit
from affectlab.methods.clup_labels import MODES, Selection, cluster_and_select, kmeans, teacher_rows
from affectlab.metrics.classification import classification_metrics, confusion_matrix
from affectlab.plots import log_figure

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def load_run_weights(module: nn.Module, value: str, prefix: str, key: str, trainer: Any = None) -> None:
    """Load ``prefix``-ed weights into ``module`` from a checkpoint given as a file, or as a run id of the run store
    the trainer logs to (its ``best.ckpt``, downloaded to a temporary folder removed after loading)."""
    path = Path(value).expanduser()
    if path.is_file():
        load_prefixed(module, path, prefix, key)
        return
    if RUN_ID.match(value) and trainer is not None:
        for logger in getattr(trainer, "loggers", ()):
            client = getattr(logger, "experiment", None)
            if hasattr(client, "download_artifacts") and getattr(logger, "run_id", None):
                with tempfile.TemporaryDirectory(prefix="clup-") as folder:
                    try:
                        downloaded = client.download_artifacts(value, "checkpoints/best.ckpt", folder)
                    except Exception as error:  # noqa: BLE001  (MLflow raises its own types for a missing run or file)
                        raise ConfigError(f"{key}: run {value} has no checkpoints/best.ckpt in this run store "
                                          f"({str(error).splitlines()[0]}); give the run id of a finished run, or a "
                                          "path to a .ckpt file") from None
                    load_prefixed(module, Path(downloaded), prefix, key)
                return
    raise ConfigError(f"{key}: {value} is neither a file nor a run id of this run store; give a .ckpt path "
                      "(runs/artifacts/<experiment>/<run id>/artifacts/checkpoints/best.ckpt) or the run id")


def load_prefixed(module: nn.Module, path: Path, prefix: str, key: str) -> None:
    """Load the ``prefix``-ed entries of ``path``'s ``state_dict`` into ``module`` (all of its keys, strictly)."""
    state = load_checkpoint(path, key=key).get("state_dict")
    if not isinstance(state, dict):
        raise ConfigError(f"{key}: {path} holds no 'state_dict'; give an AffectLab run's best.ckpt")
    weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"{key}: {path} does not fit ({first}); its '{prefix}*' weights must come from a run "
                          "with the same architecture") from None


def student_head(in_features: int, num_classes: int, weight_norm: bool, mlp_head: bool) -> nn.Module:
    """A new linear head ``[B, D] -> [B, C]``, or the original's MLP D-128-C; weight norm on the last layer
    (w = g v / |v| per class row: the parametrisation is what the optimiser sees, so it applies, unlike the
    original's flag on its SwAV student)."""
    last = nn.Linear(128 if mlp_head else in_features, num_classes)
    if weight_norm:
        last = apply_weight_norm(last)
    if mlp_head:
        return nn.Sequential(nn.Linear(in_features, 128), nn.ReLU(inplace=True), last)
    return last


class _Positions(Dataset):
    """A dataset's samples, each told its position (``position``), so the teacher pass knows whose output is
    whose even when unreadable samples leave a batch."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = self.dataset[item]
        if "skipped" not in sample:
            sample["position"] = item
        return sample


class _SelectedSamples(Dataset):
    """The selected samples of ``dataset`` with their pseudo-labels in place of the targets of ``task``; the
    soft label (``[C]``) as ``soft_target``, the true label (where there is one) kept as ``true_target``, the
    sample's position in ``dataset`` as ``position``."""

    def __init__(self, dataset: Dataset, task: str, positions: torch.Tensor, labels: torch.Tensor,
                 soft_labels: torch.Tensor) -> None:
        self.dataset, self.task = dataset, task
        self.positions, self.labels, self.soft_labels = positions.tolist(), labels.cpu(), soft_labels.cpu()

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, item: int) -> dict[str, Any]:
        sample = self.dataset[self.positions[item]]
        if "skipped" in sample:
            return sample
        sample["targets"] = dict(sample["targets"])
        sample["target_mask"] = dict(sample.get("target_mask", {}))
        sample["true_target"] = sample["targets"].get(self.task, -1)
        sample["targets"][self.task] = self.labels[item]
        sample["target_mask"][self.task] = torch.tensor(True)
        sample["soft_target"] = self.soft_labels[item]
        sample["position"] = self.positions[item]
        return sample


def purity_figure(confidences: torch.Tensor, correct: torch.Tensor, title: str) -> Any:
    """Share of correct pseudo-labels against purity (the sample's cluster purity), in 10 bins, with counts."""
    import matplotlib.pyplot as plt

    bins = torch.clamp((confidences * 10).long(), max=9)  # (N,)
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    centres, shares, counts = [], [], []
    for b in range(10):
        members = bins == b
        if members.any():
            centres.append((b + 0.5) / 10)
            shares.append(float(correct[members].float().mean()))
            counts.append(int(members.sum()))
    ax.bar(centres, shares, width=0.09, color="tab:blue", alpha=0.8)
    for x, y, n in zip(centres, shares, counts):
        ax.text(x, y + 0.01, str(n), ha="center", fontsize=6)
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="purity (confidence)", ylabel="pseudo-labels correct", title=title)
    fig.tight_layout()
    return fig


class CluP(BaseMethod):
    """The CluP student trained on the source model's cluster-level pseudo-labels of the target's train split.

    Args:
        teacher: the source model's architecture (a ``SupervisedClassifier`` config, e.g.
            ``configs/model/supervised_image.yaml``): ``represent(batch)`` gives the embeddings, its ``fused``
            logits the predictions.
        teacher_checkpoint: the source run's checkpoint (a ``.ckpt`` path, or the run id of a run in this run
            store, whose ``best.ckpt`` is used); loaded when fitting.
        student: the student's image encoder (``FrameEncoder``; ``[B, T, 3, H, W] -> [B, D]``).
        student_init: a SwAV run's checkpoint (path or run id) whose ``encoder.*`` weights start ``student``;
            None keeps its initialisation.
        student_init_prefix: the prefix of ``student_init``'s encoder weights: ``encoder.`` (SwAV), or
            ``encoders.video.`` to start the student from a ``SupervisedClassifier`` run (the source model itself:
            self-training, where no SwAV pretraining can be afforded; not the paper's protocol).
        task: the classification target (``emotion``).
        num_classes: classes of ``task``, in ``contract.EMOTIONS``' order.
        mode: ``purity`` (hard pseudo-labels, cross-entropy) or ``soft-purity`` (histograms, KL).
        num_prototypes: k-means clusters K.
        labeled_samples_size: share of each pseudo-class selected per round, by purity.
        drop_outliers: zero the confidence of members whose own prediction disagrees with their cluster's label.
        iter_clusters: selection rounds, each re-clustering the samples not selected yet.
        kmeans_restarts: k-means++ initialisations, the lowest inertia kept (the original: 10, scikit-learn
            1.1.2's default ``n_init``).
        kmeans_iterations: at most this many Lloyd steps per restart (the original: 300).
        kmeans_seed: seed of the k-means++ draws (deterministic selections).
        mixup_alpha: Beta(alpha, alpha) of mixup; None trains without mixup.
        mixaug_alpha: weight of the mixed input's loss against its unmixed label.
        weight_norm: weight normalisation on the head's last layer.
        mlp_head: the 512-128-C MLP head instead of a linear one.
        label_smoothing: of the hard-label cross-entropy (the original's ``--criterion_kw``; unused by KL).
        freeze_student: train the head only, the student's encoder frozen (the original's ``--freeze encoder``).
        swa: the arguments of Lightning's ``StochasticWeightAveraging`` (``swa_lrs`` required, e.g.
            ``{swa_lrs: 0.05, swa_epoch_start: 0.8}``), which turns it on; None: off (all four of the original's
            recipes). The original's ``--swa --swa_kw``.
        augment: train the student on augmented frames (``data/transforms.augment_frames``: crop, flip,
            brightness, contrast); the teacher never sees augmented frames.
        optimizer_init: see ``BaseMethod``.
        lr_scheduler_init: see ``BaseMethod``.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        teacher_checkpoint: str | None = None,
        student_init: str | None = None,
        student_init_prefix: str = "encoder.",
        task: str = "emotion",
        num_classes: int = 7,
        mode: str = "purity",
        num_prototypes: int = 1000,
        labeled_samples_size: float = 0.1,
        drop_outliers: bool = False,
        iter_clusters: int = 1,
        kmeans_restarts: int = 10,
        kmeans_iterations: int = 300,
        kmeans_seed: int = 0,
        mixup_alpha: float | None = 0.2,
        mixaug_alpha: float = 0.0,
        weight_norm: bool = True,
        mlp_head: bool = False,
        label_smoothing: float = 0.0,
        freeze_student: bool = False,
        swa: dict[str, Any] | None = None,
        augment: bool = True,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(optimizer_init, lr_scheduler_init)
        if mode not in MODES:
            raise ConfigError(f"model.init_args.mode: {mode!r} is not a CluP mode; use one of {list(MODES)}")
        if not (hasattr(teacher, "represent") and hasattr(teacher, "modalities")):
            raise ConfigError(f"model.init_args.teacher: {type(teacher).__name__} has no represent(); give the "
                              "source model's config (affectlab.methods.SupervisedClassifier)")
        if num_prototypes <= num_classes:
            raise ConfigError(f"model.init_args.num_prototypes: {num_prototypes} clusters for {num_classes} classes; "
                              "CluP needs more clusters than classes")
        if not 0 < labeled_samples_size <= 1:
            raise ConfigError(f"model.init_args.labeled_samples_size: {labeled_samples_size} is not a share in (0, 1]")
        self.teacher = teacher.requires_grad_(False)
        self.teacher_checkpoint, self.student_init = teacher_checkpoint, student_init
        self.student_init_prefix = student_init_prefix
        self.student = student
        self.head = student_head(int(student.num_features), num_classes, weight_norm, mlp_head)
        self.task, self.num_classes, self.mode = task, num_classes, mode
        self.class_names = list(EMOTIONS) if num_classes == len(EMOTIONS) else [str(i) for i in range(num_classes)]
        self.num_prototypes, self.labeled_samples_size = num_prototypes, labeled_samples_size
        self.drop_outliers, self.iter_clusters = drop_outliers, iter_clusters
        self.kmeans_restarts, self.kmeans_iterations, self.kmeans_seed = kmeans_restarts, kmeans_iterations, kmeans_seed
        self.mixup_alpha, self.mixaug_alpha = mixup_alpha, mixaug_alpha
        if swa is not None and "swa_lrs" not in swa:
            raise ConfigError("model.init_args.swa: give at least swa_lrs (e.g. {swa_lrs: 0.05}), the learning rate "
                              "of Lightning's StochasticWeightAveraging; null turns SWA off")
        self.swa, self.label_smoothing, self.freeze_student = swa, label_smoothing, freeze_student
        if freeze_student:
            self.student.requires_grad_(False)
        self.augment = augment
        self.selection: Selection | None = None
        self.metrics = nn.ModuleDict({stage: classification_metrics(num_classes) for stage in ("val", "test")})
        self.confusion = nn.ModuleDict({stage: confusion_matrix(num_classes) for stage in ("val", "test")})

    @property
    def modalities(self) -> list[str]:
        return ["video"]

    @property
    def tasks(self) -> list[str]:
        return [self.task]

    def frozen_modules(self) -> list[nn.Module]:
        return [self.teacher, self.student] if self.freeze_student else [self.teacher]

    def configure_callbacks(self) -> list:
        if self.swa is None:
            return []
        from lightning.pytorch.callbacks import StochasticWeightAveraging

        return [StochasticWeightAveraging(**self.swa)]

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.class_names = self.data_class_names(self.task, self.num_classes) or self.class_names
        if self.num_classes == len(EMOTIONS) and self.class_names != list(EMOTIONS):
            raise ConfigError(f"data: the {self.task!r} classes are {self.class_names}, not the canonical order "
                              f"{list(EMOTIONS)} that the source model's logits follow; serve the target through "
                              "an AffectLab reader (each maps its codes onto contract.EMOTIONS)")
        if stage != "fit":
            return
        # Before Lightning restores a resumed fit's checkpoint (which then overwrites both), after the trainer's
        # loggers exist (a run id is looked up through them).
        if self.teacher_checkpoint is None:
            raise ConfigError("model.init_args.teacher_checkpoint: CluP needs the source model; give its run's "
                              "best.ckpt path or its run id")
        load_run_weights(self.teacher, self.teacher_checkpoint, "", "model.init_args.teacher_checkpoint", self.trainer)
        if self.student_init is not None:
            load_run_weights(self.student, self.student_init, self.student_init_prefix, "model.init_args.student_init",
                             self.trainer)

    # -- 1-2. the teacher pass and the selection -------------------------------------------------------------
    @torch.no_grad()
    def teacher_pass(self, dataset: Dataset, batch_size: int, collate: Any = None,
                     progress: bool = True) -> dict[str, torch.Tensor]:
        """Every sample of ``dataset`` through the frozen teacher, in order, as served (no augmentation):
        ``embeddings`` ``[N, D]``, ``logits`` ``[N, C]``, ``targets`` ``[N]`` (-1 where unlabelled),
        ``positions`` ``[N]`` (into ``dataset``; unreadable samples are missing)."""
        from rich.progress import track

        loader = split_loader(_Positions(dataset), "val", batch_size, collate_fn=collate)  # in order, no shuffle
        was_training = self.teacher.training
        self.teacher.eval()
        parts: dict[str, list[torch.Tensor]] = {"embeddings": [], "logits": [], "targets": [], "positions": []}
        batches = track(loader, description="CluP teacher pass", disable=not progress, total=len(loader))
        for batch in batches:
            if "position" not in batch:  # every sample of this batch was unreadable
                continue
            batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            vectors = self.teacher.represent(batch)  # {modality: (B, D)}: the pooled backbone vectors
            parts["embeddings"].append(torch.cat([vectors[m] for m in self.teacher.modalities], dim=1).float())
            parts["logits"].append(self.teacher_logits(batch, vectors).float())  # (B, C)
            target = batch["targets"][self.task]
            known = batch.get("target_mask", {}).get(self.task, torch.ones_like(target, dtype=torch.bool))
            parts["targets"].append(torch.where(known.to(target.device), target, -1).long())
            parts["positions"].append(torch.as_tensor(batch["position"]).long())
        self.teacher.train(was_training)
        return {k: torch.cat(v).cpu() for k, v in parts.items()}

    def teacher_logits(self, batch: dict[str, Any], vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        """The teacher's class logits ``[B, C]``: a ``SupervisedClassifier``'s fused head on the vectors already
        computed (one backbone pass per batch), or its ``forward``'s ``fused`` output for any other teacher."""
        if hasattr(self.teacher, "fusion") and hasattr(self.teacher, "head"):
            return self.teacher.head(self.teacher.fusion(vectors))
        return self.teacher(batch)["fused"]

    def select(self, outputs: dict[str, torch.Tensor]) -> Selection:
        """Step 2 over a teacher pass's outputs; positions of ``Selection`` index the teacher pass."""
        generator = torch.Generator().manual_seed(self.kmeans_seed)

        def cluster(rows: torch.Tensor, k: int) -> torch.Tensor:
            return kmeans(rows, k, restarts=self.kmeans_restarts, iterations=self.kmeans_iterations,
                          generator=generator)

        try:
            return cluster_and_select(teacher_rows(outputs["embeddings"]), outputs["logits"].argmax(dim=1),
                                      self.num_prototypes, self.labeled_samples_size, self.num_classes,
                                      self.drop_outliers, self.iter_clusters, cluster)
        except ValueError as error:
            raise ConfigError(f"model.init_args.num_prototypes: {error}; lower num_prototypes or iter_clusters "
                              "for this target set") from None

    def selection_metrics(self, selection: Selection, targets: torch.Tensor) -> dict[str, float]:
        """Per round: selected samples per class and, where the targets are known, the pseudo-labels' accuracy
        (overall and per pseudo-class); the teacher's own accuracy is logged by ``on_fit_start``."""
        values: dict[str, float] = {}
        start = 0
        for r, chosen in enumerate(selection.rounds, start=1):
            # a sample's label is the one of the round that selected it (selection.labels, rounds in order)
            labels = selection.labels[start:start + len(chosen)]
            start += len(chosen)
            truth = targets[chosen]
            for c, name in enumerate(self.class_names):
                values[f"clup/round{r}/selected/{name}"] = float((labels == c).sum())
            known = truth >= 0
            if known.any():
                values[f"clup/round{r}/pseudo_acc"] = float((labels[known] == truth[known]).float().mean())
                for c, name in enumerate(self.class_names):
                    members = known & (labels == c)
                    if members.any():
                        values[f"clup/round{r}/pseudo_acc/{name}"] = float((truth[members] == c).float().mean())
        values["clup/selected"] = float(len(selection.indices))
        return values

    def on_fit_start(self) -> None:
        datamodule = self.trainer.datamodule
        dataset = datamodule.dataset("train")
        outputs = self.teacher_pass(dataset, datamodule.batch_size, datamodule.collate(),
                                    progress=self.trainer.is_global_zero)
        self.selection = self.select(outputs)
        targets = outputs["targets"]
        values = self.selection_metrics(self.selection, targets)
        known = targets >= 0
        if known.any():
            values["clup/teacher_acc"] = float((outputs["logits"].argmax(1)[known] == targets[known]).float().mean())
            for r, chosen in enumerate(self.selection.rounds, start=1):
                # the samples round r selected, with the label and purity that round gave them
                start = sum(len(c) for c in self.selection.rounds[: r - 1])
                labels = self.selection.labels[start:start + len(chosen)]
                confidences = self.selection.confidences[start:start + len(chosen)]
                truth = targets[chosen]
                kept = truth >= 0
                if kept.any():
                    figure = purity_figure(confidences[kept], labels[kept] == truth[kept],
                                           f"CluP round {r}: selected pseudo-labels")
                    log_figure(self.trainer, figure, f"plots/clup_purity_round{r}.png")
            figure = purity_figure(self.selection.all_confidences[known],
                                   self.selection.all_labels[known] == targets[known], "CluP: every train sample")
            log_figure(self.trainer, figure, "plots/clup_purity_all.png")
        for logger in self.trainer.loggers:
            logger.log_metrics(values, step=0)
        positions = outputs["positions"][self.selection.indices]  # teacher-pass order -> dataset positions
        selected = _SelectedSamples(dataset, self.task, positions, self.selection.labels, self.selection.soft_labels)

        def selected_loader() -> Any:
            trainer = self.trainer
            on_empty = datamodule.unreadable.empty if getattr(datamodule, "unreadable", None) is not None else None
            return split_loader(selected, "train", datamodule.batch_size, datamodule.num_workers,
                                datamodule.collate(), trainer.world_size, trainer.global_rank, on_empty=on_empty)

        # An instance attribute in front of the class's method: Lightning looks the hook up by name
        # (getattr(datamodule, "train_dataloader")) when the fit loop sets up its data, after on_fit_start.
        datamodule.train_dataloader = selected_loader

    def on_fit_end(self) -> None:
        datamodule = self.trainer.datamodule
        if "train_dataloader" in vars(datamodule):
            del datamodule.train_dataloader  # the data module serves its whole train split again

    # -- 3. the student ----------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Student logits ``[B, C]``."""
        return self.head(self.student(batch["video"], batch.get(mask_key("video"))))

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        video = batch["video"]  # (B, T, 3, H, W)
        if self.augment:
            video = augment_frames(video)
        target = batch["soft_target"] if self.mode == "soft-purity" else batch["targets"][self.task]
        if self.mixup_alpha is None:
            logits = self.head(self.student(video, batch.get(mask_key("video"))))
            loss = divergence(logits, target, self.label_smoothing)
        else:
            mixed, lam, perm = mix(video, self.mixup_alpha)
            logits = self.head(self.student(mixed, batch.get(mask_key("video"))))  # (B, C)
            loss = mixup_loss(logits, target, lam, perm, self.mixaug_alpha, self.label_smoothing)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(video))
        return loss

    # -- 4. validation and test on the target's true labels ----------------------------------------------------
    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        labelled = batch["target_mask"][self.task]
        logits = self(batch)[labelled]
        target = batch["targets"][self.task][labelled]
        self.log(f"{stage}/loss", F.cross_entropy(logits, target), on_epoch=True, batch_size=int(labelled.sum()))
        self.metrics[stage].update(logits, target)
        self.confusion[stage].update(logits, target)

    def evaluation_epoch_end(self, stage: str) -> None:
        self.log_dict({f"{stage}/{k}": v for k, v in self.metrics[stage].compute().items()})
        self.metrics[stage].reset()
        self.log_confusion(stage, self.confusion[stage], self.class_names)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        probabilities = self(batch).softmax(dim=-1)  # (B, C)
        prediction = {"id": batch["id"], "prediction": probabilities.argmax(dim=-1), "probabilities": probabilities}
        if self.task in batch.get("targets", {}):
            prediction["target"] = batch["targets"][self.task]
        return prediction
