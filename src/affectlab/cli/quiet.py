"""Silence messages that say nothing to an AffectLab user, so the ones that matter are seen."""

from __future__ import annotations

import logging
import re
import warnings

_NOISE = (
    "💡 Tip:",  # Lightning advertising its cloud logger
    "LightningCLI's args parameter",  # we pass args on purpose: `affectlab run` strips the sub-command
    "isinstance(treespec, LeafSpec)",  # Lightning 2.6 against torch 2.14; harmless
    "module(s) in eval mode at the start of training",  # a probe keeps its frozen encoders in eval on purpose
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in _NOISE)


def silence_noise() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_DropNoise())
    for noise in _NOISE:
        warnings.filterwarnings("ignore", message=f".*{re.escape(noise)}.*")
    warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
