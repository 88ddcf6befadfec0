"""The regulariser of MIRO, mutual-information regularisation with an oracle (Cha et al., ECCV 2022, arXiv
2203.10789).

For every feature stage s, with the current features f_s and the frozen oracle's g_s ``[N, C_s, H_s, W_s]``,
the identity mean encoder mu_s(f_s) = f_s and one learnable variance per channel var_s = softplus(b_s) + eps:

    R = sum_s mean over samples, channels, positions of ((g_s - mu_s(f_s))^2 / var_s + log var_s) / 2

the negative log-likelihood of the oracle's features under a Gaussian centred on the current ones: a
variational lower bound of their mutual information, up to constants.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

VAR_EPS = 1e-5


def miro_regulariser(features: list[torch.Tensor], oracle: list[torch.Tensor], log_var_raw: list[torch.Tensor]) -> torch.Tensor:
    """R over stages: ``features`` and ``oracle`` ``[N, C_s, H_s, W_s]``, ``log_var_raw`` the ``[C_s]``
    parameters b_s (var_s = softplus(b_s) + 1e-5)."""
    total = features[0].new_zeros(())
    for f, g, raw in zip(features, oracle, log_var_raw):
        var = (F.softplus(raw) + VAR_EPS).view(1, -1, *([1] * (f.ndim - 2)))
        total = total + (((g - f) ** 2) / var + var.log()).mean() / 2
    return total
