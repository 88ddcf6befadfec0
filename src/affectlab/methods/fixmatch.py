"""Implements FixMatch (Sohn et al., 2020, arXiv 2001.07685) and DeFixMatch (Schmutz et al., 2022, arXiv
2203.07512) for multi-label action unit occurrence, as in seed 001 (FaceFlow), of the ``AUModel`` it holds.

Per step, a labelled batch (x_l, y) and an unlabelled batch x_u (``unlabelled: separate`` data):
1. views        weak(x_l), strong(x_l) (DeFixMatch only), weak(x_u), strong(x_u): one forward pass for all
2. supervised   L_s = loss of every head on weak(x_l)   (DeFixMatch: the mean over weak(x_l) and strong(x_l))
3. pseudo-label for each occurrence head (``losses/fixmatch.py``), p = sigmoid(logits of weak(x_u)), no gradient;
                per AU and sample keep = p >= tau or p <= 1 - tau (confident either way), target = [p >= 0.5]
4. unsupervised L_u = mean over samples and AUs of keep * BCE(logits of strong(x_u), target)
5. total        FixMatch: L = L_s + lambda_u L_u
                DeFixMatch: L = L_s + lambda_u (L_u - L_anti), L_anti the same pseudo-label loss on the
                *labelled* batch (pseudo-labels from weak(x_l), loss on strong(x_l)), which removes the bias
                that confirmation of its own guesses adds; FaceFlow computed it on the weak labelled logits,
                which makes it a different quantity (a defect).
Intensity heads learn from the labelled batch only (pseudo-labelling is defined for occurrence).
"""

from __future__ import annotations

from typing import Any

import torch

from affectlab.data.transforms import augment_frames, strong_augment_frames
from affectlab.errors import ConfigError
from affectlab.losses.fixmatch import pseudo_label_loss
from affectlab.methods.au import AUModel, AUTrainingMethod


class FixMatchAU(AUTrainingMethod):
    """An AUModel trained with FixMatch or DeFixMatch on labelled and unlabelled batches.

    Args:
        au_model: the AU model to train (in a config: ``au_model: au.yaml``, the one AU architecture, with its
            optimiser; see ``AUTrainingMethod``).
        p_cutoff: confidence threshold tau of the pseudo-labels (0.95 in FixMatch and FaceFlow).
        lambda_u: weight of the unsupervised term.
        debiased: DeFixMatch's anti term and its supervised loss over both views.
    """

    def __init__(self, au_model: AUModel, p_cutoff: float = 0.95, lambda_u: float = 1.0,
                 debiased: bool = False) -> None:
        super().__init__(au_model)
        if not 0.5 < p_cutoff < 1:
            raise ConfigError(f"model.init_args.p_cutoff: {p_cutoff} must lie in (0.5, 1)")
        self.p_cutoff, self.lambda_u, self.debiased = p_cutoff, lambda_u, debiased

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if "labelled" not in batch or "unlabelled" not in batch:
            raise ConfigError("FixMatch needs labelled and unlabelled batches side by side: set "
                              "data.init_args.unlabelled: separate (and label_fraction below 1)")
        labelled, unlabelled = batch["labelled"], batch["unlabelled"]
        x_l, x_u = labelled["video"], unlabelled["video"]
        views = [self.au_model.training_frames(labelled)]  # the weak view of AUModel's own training
        if self.debiased:
            views.append(strong_augment_frames(x_l))
        views += [augment_frames(x_u), strong_augment_frames(x_u)]
        sizes = [len(v) for v in views]
        outputs = [torch.split(o, sizes) for o in self({"video": torch.cat(views)})]  # 1. one pass, split per view
        weak_l = [o[0] for o in outputs]
        supervised = self.au_model.head_losses(weak_l, labelled)["loss"]  # 2.
        if self.debiased:
            strong_l = [o[1] for o in outputs]
            supervised = (supervised + self.au_model.head_losses(strong_l, labelled)["loss"]) / 2
        unsup, anti, kept = [], [], []
        for task, o in zip(self.au_model.head_tasks, outputs):
            if not task.pseudo_labelled:
                continue
            head = task.head
            loss, rate = pseudo_label_loss(o[-2][..., 0], o[-1][..., 0], self.p_cutoff)  # 3.-4.
            unsup.append(head.weight * loss)
            kept.append(rate)
            if self.debiased:
                anti.append(head.weight * pseudo_label_loss(o[0][..., 0], o[1][..., 0], self.p_cutoff)[0])
        if not unsup:
            raise ConfigError("FixMatch pseudo-labels AU occurrence: give at least one OccurrenceHead")
        unsupervised = torch.stack(unsup).sum()
        anti_term = torch.stack(anti).sum() if anti else torch.zeros_like(unsupervised)
        total = supervised + self.lambda_u * (unsupervised - anti_term)  # 5.
        size = len(x_l) + len(x_u)
        self.log_dict({"train/loss": total, "train/supervised": supervised, "train/unsupervised": unsupervised,
                       "train/anti": anti_term, "train/mask_rate": torch.stack(kept).mean()},
                      on_step=True, on_epoch=True, batch_size=size)
        return total
