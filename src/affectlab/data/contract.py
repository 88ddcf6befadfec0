"""The batch contract every data module serves and every method reads (docs/architecture.md).

A batch is a dict:

- one entry per modality the data module serves, under its name, with ``<name>_mask`` (bool) marking
  real (True) versus padded (False) steps:
    ``video``  frames ``[B, T, C, H, W]`` float, or features ``[B, T, D]`` / ``[B, D]``; mask ``[B, T]``
    ``audio``  waveform ``[B, S]`` float in [-1, 1], or features ``[B, T, D]``; mask ``[B, S]`` / ``[B, T]``
    ``text``   token ids ``[B, L]`` long (0 = padding), or features ``[B, L, D]``; mask ``[B, L]``
    ``pose``   keypoints ``[B, T, K, C]`` float (C = 3: x, y, z; ``data/pose.py``); mask ``[B, T]`` (real
               frames), and ``pose_points_mask`` ``[B, T, K]`` bool (True where the keypoint exists); padded
               frames and missing keypoints hold 0 and are never meaningful
    ``x``      tabular features ``[B, D]`` float (an MLP trunk's input: compositeSine); mask ``[B, 1]``
- ``targets``: dict task -> tensor (``emotion`` ``[B]`` long, ``au`` ``[B, 12]`` float 0/1, ``au_intensity``
  ``[B, 12]`` float 0..5, ``sentiment`` ``[B]`` float in [-3, 3], ...), or, for the text targets
  (``TEXT_TARGETS``: ``translation``, ``gloss``), a ``list[str]`` of B untokenised strings;
- ``target_mask``: dict task -> ``[B]`` bool, which samples carry that label (semi-supervised, multi-task);
- ``domain`` ``[B]`` long (render style or corpus), ``subject`` ``[B]`` long (identity), ``id`` ``[B]`` long
  (sample index in its data set).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from affectlab.errors import DataError

MODALITIES = ("video", "audio", "text", "pose", "x")

# The 7 basic emotions in AffectLab's canonical order; readers map their data set's order onto this one.
EMOTIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")

# The 12 DISFA action units, in DISFA order.
ACTION_UNITS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def mask_key(modality: str) -> str:
    """Key of the padding mask that travels with ``modality``."""
    return f"{modality}_mask"

# An AU counts as present (occurrence label 1) at intensity >= 2 (the "B" level of FACS), DISFA's usual cut.
AU_OCCURRENCE_THRESHOLD = 2.0


# Task -> (dtype kind, dimensions after the batch one): the tasks whose form the contract fixes; any other task
# only has to be a tensor with one entry per sample.
TASK_FORMS = {
    "emotion": ("long", 0),
    "sentiment_class": ("long", 0),
    "au": ("float", 1),
    "au_intensity": ("float", 1),
    "sentiment": ("float", 0),
    "emotion_presence": ("float", 1),
    "emotion_intensity": ("float", 1),
    "valence": ("float", 0),  # AffectNet: in [-1, 1]
    "arousal": ("float", 0),
}
# Targets that are strings, one per sample (the spoken-language sentence; space-separated glosses).
TEXT_TARGETS = ("translation", "gloss")
# Modality -> the dimensions its value may have (batch included).
MODALITY_DIMS = {"video": (2, 3, 5), "audio": (2, 3), "text": (2, 3), "pose": (4,), "x": (2,)}


def check_batch(batch: Any, modalities: Sequence[str], tasks: Sequence[str]) -> None:
    """Check that ``batch`` keeps the contract above for the ``modalities`` and ``tasks`` its data module
    declares; a batch of labelled and unlabelled halves (``{"labelled", "unlabelled"}``) is checked half by half.

    Raises:
        DataError: naming the key and what its shape or dtype is against what the contract wants.
    """
    import torch

    if isinstance(batch, dict) and set(batch) == {"labelled", "unlabelled"}:
        for part in ("labelled", "unlabelled"):
            check_batch(batch[part], modalities, tasks)
        return
    if not isinstance(batch, dict):
        raise DataError(f"batch: a {type(batch).__name__}, not a dict of tensors")
    if not modalities:
        raise DataError("batch: the data module declares no modality; every batch serves at least one")
    size = None

    def tensor(key: str, value: Any) -> torch.Tensor:
        nonlocal size
        if not isinstance(value, torch.Tensor):
            raise DataError(f"batch[{key!r}]: a {type(value).__name__}, not a tensor")
        if value.ndim == 0:
            raise DataError(f"batch[{key!r}]: a scalar, not one entry per sample")
        if size is None:
            size = value.shape[0]
        elif value.shape[0] != size:
            raise DataError(f"batch[{key!r}]: {value.shape[0]} samples (shape {list(value.shape)}), the batch "
                            f"holds {size}")
        return value

    for modality in modalities:
        if modality not in MODALITIES:
            raise DataError(f"batch: {modality!r} is not a modality of the contract {list(MODALITIES)}")
        if modality not in batch:
            raise DataError(f"batch: no {modality!r}, which the data module declares (keys: {sorted(batch)})")
        value = tensor(modality, batch[modality])
        if value.ndim not in MODALITY_DIMS[modality]:
            raise DataError(f"batch[{modality!r}]: shape {list(value.shape)}; the contract wants "
                            f"{' or '.join(f'{n} dimensions' for n in MODALITY_DIMS[modality])}")
        ids = modality == "text" and value.ndim == 2
        if ids and value.dtype != torch.long:
            raise DataError(f"batch['text']: token ids of dtype {value.dtype}, not torch.int64")
        if not ids and not value.is_floating_point():
            raise DataError(f"batch[{modality!r}]: dtype {value.dtype}, not a floating point type")
        key = mask_key(modality)
        if key not in batch:
            raise DataError(f"batch: no {key!r}, the padding mask of {modality!r}")
        mask = tensor(key, batch[key])
        if mask.dtype != torch.bool:
            raise DataError(f"batch[{key!r}]: dtype {mask.dtype}, not torch.bool")
        steps = value.shape[:2] if value.ndim > 2 or modality in ("audio", "text") else None
        if mask.ndim != 2 or (steps is not None and tuple(mask.shape) != tuple(steps)):
            raise DataError(f"batch[{key!r}]: shape {list(mask.shape)}, not [B, T] of {modality} "
                            f"{list(value.shape)}")
        if modality == "pose":
            points = batch.get("pose_points_mask")
            if not isinstance(points, torch.Tensor) or points.dtype != torch.bool or tuple(points.shape) != tuple(
                    value.shape[:3]):
                what = (f"{points.dtype} of shape {list(points.shape)}" if isinstance(points, torch.Tensor)
                        else "missing" if points is None else type(points).__name__)
                raise DataError(f"batch['pose_points_mask']: {what}; the contract wants bool [B, T, K] = "
                                f"{list(value.shape[:3])} (True where the keypoint exists)")
    if tasks:
        for name in ("targets", "target_mask"):
            if not isinstance(batch.get(name), dict):
                raise DataError(f"batch: no {name!r} dict (task -> tensor) for the tasks {list(tasks)}")
    for task in tasks:
        if task not in batch["targets"]:
            raise DataError(f"batch['targets']: no {task!r}, which the data module declares "
                            f"(targets: {sorted(batch['targets'])})")
        if task in TEXT_TARGETS:
            strings = batch["targets"][task]
            if not isinstance(strings, (list, tuple)) or not all(isinstance(x, str) for x in strings):
                raise DataError(f"batch['targets'][{task!r}]: a {type(strings).__name__}; the contract wants a "
                                "list of B strings")
            if size is not None and len(strings) != size:
                raise DataError(f"batch['targets'][{task!r}]: {len(strings)} strings, the batch holds {size}")
            size = len(strings) if size is None else size
        else:
            value = tensor(f"targets.{task}", batch["targets"][task])
        if task in TASK_FORMS:
            kind, extra = TASK_FORMS[task]
            right = value.dtype == torch.long if kind == "long" else value.is_floating_point()
            if not right or value.ndim != 1 + extra:
                want = "[B]" if extra == 0 else "[B, K]"
                raise DataError(f"batch['targets'][{task!r}]: {value.dtype} of shape {list(value.shape)}; the "
                                f"contract wants {kind} {want}")
        if task not in batch["target_mask"]:
            raise DataError(f"batch['target_mask']: no {task!r}, which says which samples carry its label")
        mask = tensor(f"target_mask.{task}", batch["target_mask"][task])
        if mask.dtype != torch.bool or mask.ndim != 1:
            raise DataError(f"batch['target_mask'][{task!r}]: {mask.dtype} of shape {list(mask.shape)}, not bool [B]")
    if "id" not in batch:
        raise DataError("batch: no 'id', the samples' indices in their data set")
    for task in TEXT_TARGETS:  # served beside the declared tasks (gloss with translation): still one per sample
        strings = batch.get("targets", {}).get(task) if isinstance(batch.get("targets"), dict) else None
        if strings is not None and task not in tasks:
            if not isinstance(strings, (list, tuple)) or len(strings) != size or not all(isinstance(x, str) for x in strings):
                raise DataError(f"batch['targets'][{task!r}]: not a list of {size} strings")
    for key in ("id", "subject", "domain"):
        if key in batch:
            value = tensor(key, batch[key])
            if value.dtype != torch.long or value.ndim != 1:
                raise DataError(f"batch[{key!r}]: {value.dtype} of shape {list(value.shape)}, not long [B]")
