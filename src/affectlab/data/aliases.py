"""Old module paths of the data layer, kept loadable: configs and code written before ``data/`` was split
into ``readers/``, ``media/``, ``store/`` and ``synth/`` name classes by their module-level path
(``affectlab.data.folders.FolderDataModule``). Each old path imports the module that now holds its code, so an
old class path resolves to the very same class (``isinstance`` and checkpoints agree)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

MOVED_MODULES: dict[str, str] = {
    "affectlab.data.afe": "affectlab.data.readers.afe",
    "affectlab.data.caer": "affectlab.data.readers.caer",
    "affectlab.data.disfa": "affectlab.data.readers.disfa",
    "affectlab.data.folders": "affectlab.data.readers.folders",
    "affectlab.data.frame_tables": "affectlab.data.readers.frame_tables",
    "affectlab.data.meld": "affectlab.data.readers.meld",
    "affectlab.data.mmsa": "affectlab.data.readers.mmsa",
    "affectlab.data.mosei": "affectlab.data.readers.mosei",
    "affectlab.data.voxceleb2": "affectlab.data.readers.voxceleb2",
    "affectlab.data.affectsynth": "affectlab.data.synth.datamodule",
    "affectlab.data.video": "affectlab.data.media.video",
    "affectlab.data.video_clips": "affectlab.data.media.video_clips",
    "affectlab.data.face_detection": "affectlab.data.media.face_detection",
    "affectlab.data.feature_store": "affectlab.data.store.feature_store",
    "affectlab.data.prepare": "affectlab.data.store.prepare",
    "affectlab.data.video_prepare": "affectlab.data.store.video_prepare",
}


class _MovedModuleLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import machinery stamped the old name's spec on the module: give it back its own.
        module.__spec__ = self.own_spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds each old path of ``MOVED_MODULES`` as the module it moved to."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedModuleLoader(MOVED_MODULES[fullname]))


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
