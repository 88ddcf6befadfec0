"""Data: the batch contract, readers, AffectSynth, splits and data modules.

The data modules are served from here (``affectlab.data.FolderDataModule``, the class path configs use),
imported on first use so that importing the contract does not import every reader's dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

from affectlab.data import aliases

DATA_MODULES: dict[str, str] = {
    "AffectSynthDataModule": "affectlab.data.synth.datamodule",
    "AffectSynthSignDataModule": "affectlab.data.synth.sign",
    "AfeDataModule": "affectlab.data.readers.afe",
    "AffectNetDataModule": "affectlab.data.readers.affectnet",
    "CaerDataModule": "affectlab.data.readers.caer",
    "CaerSDataModule": "affectlab.data.readers.caer_s",
    "CompositeSineDataModule": "affectlab.data.synth.composite_sine",
    "DisfaDataModule": "affectlab.data.readers.disfa",
    "ExpwDataModule": "affectlab.data.readers.expw",
    "FeatureStoreDataModule": "affectlab.data.store.feature_store",
    "Fer2013DataModule": "affectlab.data.readers.fer2013",
    "FolderDataModule": "affectlab.data.readers.folders",
    "FrameTableDataModule": "affectlab.data.readers.frame_tables",
    "MeldDataModule": "affectlab.data.readers.meld",
    "MmsaDataModule": "affectlab.data.readers.mmsa",
    "MoseiDataModule": "affectlab.data.readers.mosei",
    "PhoenixDataModule": "affectlab.data.readers.phoenix",
    "MultiTaskDataModule": "affectlab.data.multitask",
    "RafdbDataModule": "affectlab.data.readers.rafdb",
    "VoxCeleb2DataModule": "affectlab.data.readers.voxceleb2",
}

__all__ = sorted(DATA_MODULES)

aliases.install()


def __getattr__(name: str) -> Any:
    if name in DATA_MODULES:
        return getattr(importlib.import_module(DATA_MODULES[name]), name)
    raise AttributeError(f"module 'affectlab.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *DATA_MODULES])
