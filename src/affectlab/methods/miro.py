"""Implements MIRO, mutual-information regularisation with an oracle (Cha et al., ECCV 2022, arXiv
2203.10789), on the ``AUModel`` it holds, as seed 001 (FaceFlow) uses it for domain generalisation.

The oracle is a frozen copy of the backbone as it was at the start of training (the pretrained model, in the
paper). For every feature stage s of the backbone, with the current features f_s and the oracle's g_s:
1. mean encoder   mu_s(f_s) = f_s                                  (identity, as in the paper's default)
2. variance       var_s = softplus(b_s) + 1e-5, b_s one learnable value per channel (var_s starts at 0.1)
3. regulariser    R = sum_s mean over samples, channels, positions of
                      ((g_s - mu_s(f_s))^2 / var_s + log var_s) / 2
                  (the negative log-likelihood of the oracle's features under a Gaussian centred on the
                  current ones: a variational lower bound of their mutual information, up to constants)
4. total          L = L_task + lambda R
The variance parameters learn at ``encoder_lr_scale`` times the learning rate (their own parameter group).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from affectlab.errors import ConfigError
from affectlab.losses.miro import VAR_EPS, miro_regulariser
from affectlab.methods.au import AUModel, AUTrainingMethod


class MiroAU(AUTrainingMethod):
    """An AUModel trained with the MIRO regulariser.

    Args:
        au_model: the AU model to train (in a config: ``au_model: au.yaml``; see ``AUTrainingMethod``); the
            oracle copies its backbone as built, so with ``backbone_init`` it is the pretrained backbone.
        miro_weight: lambda, the regulariser's weight.
        var_init: the initial variance of every channel.
        encoder_lr_scale: learning rate of the variance parameters relative to the model's.
    """

    def __init__(self, au_model: AUModel, miro_weight: float = 0.1, var_init: float = 0.1,
                 encoder_lr_scale: float = 10.0) -> None:
        super().__init__(au_model)
        if miro_weight < 0 or var_init <= VAR_EPS:
            raise ConfigError(f"model.init_args: miro_weight must be >= 0 and var_init > {VAR_EPS}")
        self.miro_weight, self.encoder_lr_scale = miro_weight, encoder_lr_scale
        backbone = au_model.backbone
        self.oracle = copy.deepcopy(backbone).requires_grad_(False)  # the initial backbone, frozen
        raw = math.log(math.expm1(var_init - VAR_EPS))  # softplus^-1, so that var starts at var_init
        self.log_var_raw = nn.ParameterList([nn.Parameter(torch.full((c,), raw)) for c in backbone.stage_channels])

    def frozen_modules(self) -> list[nn.Module]:
        return [self.oracle]  # no BatchNorm statistics updates: it stays the initial backbone

    def param_groups(self, parameters: list[nn.Parameter]) -> list[dict]:
        variances = {id(p) for p in self.log_var_raw.parameters()}
        return [
            {"params": [p for p in parameters if id(p) not in variances]},
            {"params": [p for p in parameters if id(p) in variances], "lr_scale": self.encoder_lr_scale},
        ]

    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        model = self.au_model
        frames = model.training_frames(batch).flatten(0, 1)  # (B*T, 3, H, W), the oracle sees the same view
        features = model.backbone.forward_stages(frames)  # per stage (B*T, C_s, H_s, W_s)
        with torch.no_grad():
            oracle = self.oracle.forward_stages(frames)
        B, T = batch["video"].shape[:2]
        losses = model.head_losses(model.apply_heads(features[-1], B, T), batch)
        regulariser = miro_regulariser(features, oracle, list(self.log_var_raw))
        total = losses["loss"] + self.miro_weight * regulariser  # 4.
        self.log_dict({"train/loss": total, "train/task": losses["loss"], "train/miro": regulariser},
                      on_step=True, on_epoch=True, batch_size=B)
        return total
