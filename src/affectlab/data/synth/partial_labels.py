"""Partial labels on AffectSynth: each training clip carries only some of its labels, as when one model learns
emotion, action units and sentiment from corpora that each annotate some of them (issue 20, point 5).

``AffectSynthDataModule(partial_labels={...})`` (``configs/data/synth_multitask.yaml``):

- ``groups``: label groups, each its tasks and the share of train clips in it, e.g.
  ``[{tasks: [emotion], share: 0.5}, {tasks: [au, au_intensity], share: 0.3}, {tasks: [emotion, au,
  au_intensity], share: 0.2}]``: half the clips carry only their emotion, 30 % only their AU occurrence and
  intensity, 20 % both. Every clip falls in at most one group (the shares sum to at most 1; the rest carry
  none of the grouped tasks). (A list, not a mapping keyed by task combinations: a run's config keys become
  MLflow parameter names, which cannot hold ``+`` or ``,``.)
- ``text_fraction``: the share of train clips that keep their transcript (default 1: all of them); the others
  are served without text (token ids 0, ``text_mask`` all False), as a video-only corpus would be.
- ``sentiment_from_text``: sentiment is labelled on exactly the clips that keep their transcript (default
  True, as sentiment corpora are transcribed), so ``sentiment`` is in no group then.
- ``seed``: of the assignment, independent of the split and training seeds.

The clips are dealt to groups in a seeded random order, exact counts (shares times the train clips, rounded
at the cumulative boundaries). Validation and test clips keep every label and their transcript: every task is
evaluated on every clip. The targets stay in the samples (fixed shapes for collation); ``target_mask[task]``
says where a method may read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from affectlab.data.contract import mask_key
from affectlab.errors import ConfigError

KEYS = ("groups", "text_fraction", "sentiment_from_text", "seed")
GROUP_KEYS = ("tasks", "share")


@dataclass(frozen=True)
class PartialLabels:
    """Per train clip (in train-split order), which tasks it carries and whether it keeps its transcript.

    Attributes:
        masks: task -> ``[N]`` bool.
        has_text: ``[N]`` bool.
    """

    masks: dict[str, np.ndarray]
    has_text: np.ndarray

    def apply(self, sample: dict[str, Any], item: int) -> dict[str, Any]:
        """Set ``sample``'s ``target_mask`` (and withhold its text) as clip ``item`` of the train split has it."""
        sample["target_mask"] = {task: bool(mask[item]) for task, mask in self.masks.items()}
        if "text" in sample and not self.has_text[item]:
            sample["text"] = torch.zeros_like(sample["text"])  # (L,) all padding
            sample[mask_key("text")] = torch.zeros_like(sample[mask_key("text")])
        return sample

    def counts(self) -> dict[str, int]:
        """Labelled train clips per task (and ``text``: clips keeping their transcript)."""
        return {**{task: int(mask.sum()) for task, mask in self.masks.items()}, "text": int(self.has_text.sum())}


def _is_share(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 <= value <= 1.0


def _group(index: int, group: Any, tasks: Sequence[str]) -> tuple[list[str], float]:
    """Group ``index``'s tasks and share, checked."""
    where = f"data.init_args.partial_labels.groups[{index}]"
    if not isinstance(group, Mapping) or set(group) != set(GROUP_KEYS):
        raise ConfigError(f"{where}: {group!r} is not {{tasks: [...], share: ...}} (e.g. {{tasks: [emotion, au], "
                          "share: 0.2}})")
    members = list(group["tasks"]) if isinstance(group["tasks"], (list, tuple)) else [group["tasks"]]
    unknown = [m for m in members if m not in tasks]
    if unknown or not members or len(set(members)) != len(members):
        raise ConfigError(f"{where}.tasks: {members} names {unknown or 'no task, or a task twice'}; a group lists "
                          f"tasks of {list(tasks)}, each once")
    if not _is_share(group["share"]):
        raise ConfigError(f"{where}.share: {group['share']!r} is not a share from 0 to 1")
    return members, float(group["share"])


def assign_partial_labels(config: Mapping[str, Any], num_clips: int, tasks: Sequence[str]) -> PartialLabels:
    """The masks of ``num_clips`` train clips for ``config`` (module docstring); a ConfigError names a bad key."""
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ConfigError(f"data.init_args.partial_labels: unknown key(s) {unknown}; the keys are {list(KEYS)}")
    groups = [_group(i, g, tasks) for i, g in enumerate(config.get("groups") or [])]
    text_fraction = config.get("text_fraction", 1.0)
    from_text = bool(config.get("sentiment_from_text", True))
    seed = int(config.get("seed", 0))
    total = sum(share for _, share in groups)
    if total > 1.0 + 1e-9:
        raise ConfigError(f"data.init_args.partial_labels.groups: the shares sum to {total:g}, more than 1; every "
                          "clip is in at most one group")
    if not _is_share(text_fraction):
        raise ConfigError(f"data.init_args.partial_labels.text_fraction: {text_fraction!r} is not a share from 0 to 1")
    if from_text and "sentiment" in tasks and any("sentiment" in members for members, _ in groups):
        raise ConfigError("data.init_args.partial_labels: sentiment is in a group and sentiment_from_text is true; "
                          "set sentiment_from_text: false to label sentiment by group")
    rng = np.random.default_rng([seed, num_clips])
    order = rng.permutation(num_clips)  # clips dealt to groups in this order
    masks = {task: np.zeros(num_clips, dtype=bool) for task in tasks}
    start, cumulative = 0, 0.0
    for members, share in groups:
        cumulative += share
        end = min(int(round(cumulative * num_clips)), num_clips)
        for task in members:
            masks[task][order[start:end]] = True
        start = end
    has_text = np.zeros(num_clips, dtype=bool)
    has_text[rng.permutation(num_clips)[: int(round(float(text_fraction) * num_clips))]] = True
    if from_text and "sentiment" in tasks:
        masks["sentiment"] = has_text.copy()
    return PartialLabels(masks, has_text)
