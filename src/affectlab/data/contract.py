"""The batch contract every data module serves and every method reads (docs/architecture.md).

A batch is a dict:

- one entry per modality the data module serves, under its name, with ``<name>_mask`` (bool) marking
  real (True) versus padded (False) steps:
    ``video``  frames ``[B, T, C, H, W]`` float, or features ``[B, T, D]`` / ``[B, D]``; mask ``[B, T]``
    ``audio``  waveform ``[B, S]`` float in [-1, 1], or features ``[B, T, D]``; mask ``[B, S]`` / ``[B, T]``
    ``text``   token ids ``[B, L]`` long (0 = padding), or features ``[B, L, D]``; mask ``[B, L]``
    ``pose``   keypoints ``[B, T, K, C]``; mask ``[B, T]``
- ``targets``: dict task -> tensor (``emotion`` ``[B]`` long, ``au`` ``[B, 12]`` float 0/1, ``au_intensity``
  ``[B, 12]`` float 0..5, ``sentiment`` ``[B]`` float in [-3, 3], ...);
- ``target_mask``: dict task -> ``[B]`` bool, which samples carry that label (semi-supervised, multi-task);
- ``domain`` ``[B]`` long (render style or corpus), ``subject`` ``[B]`` long (identity), ``id`` ``[B]`` long
  (sample index in its data set).
"""

from __future__ import annotations

MODALITIES = ("video", "audio", "text", "pose")

# The 7 basic emotions in AffectLab's canonical order; readers map their data set's order onto this one.
EMOTIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")

# The 12 DISFA action units, in DISFA order.
ACTION_UNITS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def mask_key(modality: str) -> str:
    """Key of the padding mask that travels with ``modality``."""
    return f"{modality}_mask"

# An AU counts as present (occurrence label 1) at intensity >= 2 (the "B" level of FACS), DISFA's usual cut.
AU_OCCURRENCE_THRESHOLD = 2.0
