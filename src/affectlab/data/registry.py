"""Data sets by name: the one place a name given on the command line or in a recipe is looked up.

``--data NAME``, ``affectlab data check|prepare|export NAME`` and the recipes call the functions below;
nothing else dispatches on a data set's name. Each reader declares its data sets' specs in its own file
(``SPEC`` or ``SPECS``, see ``data/spec.py``); they are listed here, explicitly, in the order listings show.
``synth`` is AffectSynth (generated on first use); the others are read from the user's own copy, laid out as
their authors distribute them.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from affectlab.data.readers import (afe, affectnet, caer, caer_s, disfa, expw, fer2013, frame_tables, meld, mmsa, mosei,
                                    phoenix, rafdb, voxceleb2)
from affectlab.data.spec import MAX_ROWS, DatasetSpec
from affectlab.data.synth import datamodule as synth
from affectlab.data.synth import sign as synth_sign
from affectlab.errors import ConfigError, DataError

__all__ = ["MAX_ROWS", "DatasetSpec", "check_dataset", "dataset_names", "export_dataset", "get_dataset", "layout_error",
           "prepare_dataset", "specs"]

_SPECS = (synth.SPEC, caer.SPEC, meld.SPEC, mosei.SPEC, disfa.SPEC, *frame_tables.SPECS, mmsa.SPEC, afe.SPEC,
          voxceleb2.SPEC, rafdb.SPEC, fer2013.SPEC, expw.SPEC, affectnet.SPEC, caer_s.SPEC, synth_sign.SPEC, phoenix.SPEC)


def _index(listed: tuple[DatasetSpec, ...]) -> dict[str, DatasetSpec]:
    index: dict[str, DatasetSpec] = {}
    for spec in listed:
        if spec.name in index:
            raise ValueError(f"data set {spec.name!r} is declared twice")
        index[spec.name] = spec
    return index


DATASETS = _index(_SPECS)


def dataset_names() -> list[str]:
    return list(DATASETS)


def specs() -> list[DatasetSpec]:
    return list(DATASETS.values())


def get_dataset(name: str) -> DatasetSpec:
    """The spec of data set ``name``; an unknown name is a DataError listing the known ones."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def names_with(kind: str, path: str | None = None) -> list[str]:
    """The data sets that have a ``kind`` function (``check``, ``prepare``, ``export``), or that very one."""
    return [s.name for s in DATASETS.values() if getattr(s, kind) is not None and path in (None, getattr(s, kind))]


def video_sets() -> list[str]:
    """The data sets whose clips ``data prepare`` turns into face crops."""
    return names_with("prepare", "affectlab.data.store.video_prepare.prepare_clips")


def layout_error(name: str, root: str | Path | None = None) -> DataError:
    """The error for a data set that cannot serve what was asked (unlabelled data sets where labels are
    needed): where it is read from and what it expects there."""
    spec = get_dataset(name)
    root = root or spec.default_root
    what = ("unlabelled: it serves self-supervised pretraining only, with no labels to train or test on"
            if not spec.labelled else "not usable here")
    return DataError(f"{name} ({spec.description}) is {what}. It is read ({spec.reader}) from {root}, "
                     f"laid out as distributed:\n{spec.tree(root)}")


def check_dataset(name: str, root: str | Path, decode: bool = True) -> int:
    """Validate data set ``name`` under ``root`` and print its report; the exit status (0 fine, 1 errors)."""
    from rich.console import Console

    from affectlab.data.check import print_report

    spec = get_dataset(name)
    report = spec.function("check")(name=name, root=str(root), decode=decode)
    if report is None:  # readers opened in full print their own summary; a hard error raised
        return 0
    print_report(report, Console())
    return 1 if report.errors else 0


def prepare_dataset(name: str, raw: str | Path, out: str | Path, **options: Any) -> None:
    """Convert data set ``name`` as distributed under ``raw`` once into a feature store at ``out``."""
    spec = get_dataset(name)
    shard_samples = options.pop("shard_samples", None)
    max_rows = options.pop("max_rows", MAX_ROWS)
    video = video_sets()
    if spec.prepare is None:
        features = names_with("prepare", "affectlab.data.store.prepare.prepare_features")
        others = [n for n in names_with("prepare") if n not in video and n not in features]
        raise DataError(f"data prepare: {name} holds face images, which its reader serves directly (--data {name}); "
                        f"prepare converts feature data sets ({', '.join(features)}) and video data sets "
                        f"({', '.join(video)}), and extracts the face frames of {', '.join(others)}")
    takes = inspect.signature(spec.function("prepare")).parameters  # a preparer's own options reach it (disfa's)
    unknown = [key for key in options if key not in takes and not any(p.kind is p.VAR_KEYWORD for p in takes.values())]
    if unknown:
        flags = ", ".join("--" + key.replace("_", "-") for key in unknown)
        raise ConfigError(f"data prepare: {flags} only apply to video data sets ({', '.join(video)}), not to {name}")
    spec.function("prepare")(name, str(raw), str(out), shard_samples=shard_samples, max_rows=max_rows, **options)


def export_dataset(name: str, out: str | Path, *, cache: str | Path = "data/affectsynth", num_clips: int = 1200,
                   seed: int = 0, num_identities: int = 60, num_frames: int = 8, image_size: int = 64,
                   styles: list[str] | None = None, frames_per_clip: int | None = None) -> dict[str, int]:
    """Write AffectSynth at ``out`` in data set ``name``'s native layout; the sample count per split (``all``
    for layouts that are not split by folder)."""
    spec = get_dataset(name)
    if spec.export is None:
        raise ConfigError(f"data export: {name!r} is not one of {names_with('export')}")
    if "arrays" not in inspect.signature(spec.function("export")).parameters:  # draws its own data (synth_sign)
        return spec.function("export")(out, num_sentences=num_clips, num_signers=num_identities, seed=seed,
                                       **spec.export_args)
    styles = styles or (list(spec.export_styles) if spec.export_styles else None)
    synth_data = synth.AffectSynthDataModule(root=str(cache), num_clips=num_clips, num_identities=num_identities,
                                             num_frames=num_frames, image_size=image_size, synth_seed=seed,
                                             synth_options={"styles": styles} if styles else None)
    synth_data.prepare_data()  # generates the cache once, or verifies and opens it
    options = dict(spec.export_args)
    export = spec.function("export")
    if frames_per_clip is not None and "frames_per_clip" in inspect.signature(export).parameters:
        options["frames_per_clip"] = frames_per_clip  # the video layouts' clip length; images have none
    counts = export(synth_data.arrays, out=out, **options)
    return counts if isinstance(counts, dict) else {"all": int(counts)}
