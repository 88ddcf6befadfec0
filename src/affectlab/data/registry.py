"""Data sets by name: the one place a name given on the command line or in a recipe is looked up.

``--data NAME``, ``affectlab data check|prepare|export NAME`` and the recipes call the functions below;
nothing else dispatches on a data set's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectlab.data.layouts import LAYOUTS, DatasetLayout, dataset_layout, layout_error
from affectlab.errors import ConfigError

DatasetSpec = DatasetLayout
MAX_ROWS = 500  # feature rows kept per sample by default when a feature data set is read or prepared

__all__ = ["MAX_ROWS", "DatasetSpec", "check_dataset", "dataset_names", "export_dataset", "get_dataset", "layout_error",
           "prepare_dataset"]


def dataset_names() -> list[str]:
    return list(LAYOUTS)


def get_dataset(name: str) -> DatasetSpec:
    """The spec of data set ``name``; an unknown name is a DataError listing the known ones."""
    return dataset_layout(name)


def check_dataset(name: str, root: str | Path, decode: bool = True) -> int:
    """Validate data set ``name`` under ``root`` and print its report; the exit status (0 fine, 1 errors)."""
    from affectlab.data.check import check_command

    return check_command(name, str(root), decode=decode)


def prepare_dataset(name: str, raw: str | Path, out: str | Path, **options: Any) -> None:
    """Convert data set ``name`` as distributed under ``raw`` once into a feature store at ``out``."""
    from affectlab.data.store.prepare import prepare

    shard_samples = options.pop("shard_samples", None)
    max_rows = options.pop("max_rows", MAX_ROWS)
    prepare(name, str(raw), str(out), shard_samples, max_rows, **options)


def export_dataset(name: str, out: str | Path, *, cache: str | Path = "data/affectsynth", num_clips: int = 1200,
                   seed: int = 0, num_identities: int = 60, num_frames: int = 8, image_size: int = 64,
                   styles: list[str] | None = None, frames_per_clip: int | None = None) -> dict[str, int]:
    """Write AffectSynth at ``out`` in data set ``name``'s native layout; the sample count per split."""
    from affectlab.data.synth.datamodule import AffectSynthDataModule
    from affectlab.data.readers.folders import FOLDER_LAYOUTS
    from affectlab.data.synth.export import VIDEO_EXPORTERS, export_afe, export_folder_dataset

    exportable = [*FOLDER_LAYOUTS, "afe", *VIDEO_EXPORTERS]
    if name not in exportable:
        raise ConfigError(f"data export: {name!r} is not one of {exportable}")
    styles = styles or (["shaded"] if name in VIDEO_EXPORTERS else None)
    synth = AffectSynthDataModule(root=str(cache), num_clips=num_clips, num_identities=num_identities,
                                  num_frames=num_frames, image_size=image_size, synth_seed=seed,
                                  synth_options={"styles": styles} if styles else None)
    synth.prepare_data()  # generates the cache once, or verifies and opens it
    if name in VIDEO_EXPORTERS:
        return VIDEO_EXPORTERS[name](synth.arrays, out, frames_per_clip=frames_per_clip)
    if name == "afe":
        return export_afe(synth.arrays, out)
    return export_folder_dataset(synth.arrays, name, out)
