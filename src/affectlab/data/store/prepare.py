"""``affectlab data prepare NAME --raw DIR --out DIR``: convert a data set once into a feature store.

Data sets that hold precomputed features (``mosei``, ``mmsa``, ``openface``, ``pyfeat``) are read with their
reader and every sample of every split is written to the store (``data/store/feature_store.py``), with a progress
bar; an interrupted preparation resumes at its last finished shard, a finished one is not redone. Video data
sets (``meld``, ``caer``, ``voxceleb2``) are decoded, their faces detected, aligned and cropped, and the crops
stored per frame (``data/store/video_prepare.py``), or, with ``--encoder NAME``, a timm model's pooled features of
each crop (``--encoder-checkpoint``, ``--encoder-batch``).

A feature store records the options it was prepared with (``index.json`` ``source.options``, and with every
finished shard while unfinished: the data set, the raw data's path, ``--max-rows``); a
resumed preparation, or a second one on a complete store, with other options is refused, naming the option
that changed and how to start over, so one store never mixes two settings. A label that is not a finite
number (NaN) is never stored: it stops the preparation naming the sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from affectlab.data.store.feature_store import INDEX, FeatureStoreWriter, StoreSample, option_differences
from affectlab.data.spec import MAX_ROWS
from affectlab.data.splits import SPLITS
from affectlab.errors import ConfigError, DataError


def store_samples(module, start: int) -> Iterator[StoreSample]:
    """Every sample of ``module`` in a fixed order (train, val, test, each in index order), from ``start`` on."""
    position = 0
    for split in SPLITS:
        dataset = module.dataset(split)
        for item in range(len(dataset)):
            if position >= start:
                sample = dataset[item]
                features = {m: sample[m].numpy() for m in module.modalities}
                targets = {t: (sample["targets"][t].numpy() if bool(sample["target_mask"][t]) else None)
                           for t in sample["targets"]}
                bad = [t for t, v in targets.items() if v is not None and not np.isfinite(v).all()]
                if bad:
                    raise DataError(f"{split} sample {int(sample['id'])}: {', '.join(bad)} label {targets[bad[0]]} is "
                                    "not a finite number; fix the data set (affectlab data check names such labels)")
                yield StoreSample(int(sample["id"]), split, features, targets)
            position += 1


def refuse_other_options(writer: FeatureStoreWriter, options: dict[str, Any]) -> None:
    """A ConfigError when the store at ``writer.path`` (complete, or an unfinished one with a finished shard)
    was prepared with other ``options``; a store of an earlier AffectLab, which kept no options, is compared
    on what its ``source`` kept (name, raw, max_rows)."""
    if writer.complete:
        source = json.loads((writer.path / INDEX).read_text()).get("source", {})
        saved, state = source.get("options"), "a complete store"
    elif writer.done():
        source, saved, state = {}, (writer.saved_state() or {}).get("options"), "an unfinished preparation"
    else:
        return
    if saved is None:  # kept no options: compare what it kept
        saved = {key: source.get(key, options[key]) for key in options}
    if saved != options:
        changed = option_differences(saved, options)
        again = ("run it again with the same options" if state.startswith("an unfinished")
                 else "give the same options to leave it as it is")
        raise ConfigError(f"{writer.path} holds {state} made with {changed}; {again}, or choose another --out, or "
                          f"delete {writer.path} to start over with these options")


def prepare(name: str, raw: str, out: str, shard_samples: int | None = None, max_rows: int = MAX_ROWS,
            **video_options: Any) -> Path:
    """Prepare data set ``name`` from ``raw`` into the store ``out``, whatever its kind (the registry knows);
    ``video_options`` go to ``prepare_video`` for video data sets (``num_frames``, ``fps``, ``size``,
    ``no_face``, ..., and ``encoder``, ``encoder_checkpoint``, ``encoder_batch`` to store features instead of
    crops)."""
    from affectlab.data.registry import prepare_dataset

    prepare_dataset(name, raw, out, shard_samples=shard_samples, max_rows=max_rows, **video_options)
    return Path(out)


def prepare_features(name: str, raw: str, out: str, shard_samples: int | None = None, max_rows: int = MAX_ROWS) -> Path:
    """Every sample of every split of the feature data set ``name`` read from ``raw``, into the store ``out``."""
    from affectlab.data.registry import get_dataset

    shard_samples = shard_samples or 4096
    module = get_dataset(name).open(raw, max_rows=max_rows)
    module.setup()
    first = module.dataset("train")[0]
    dims = {m: int(first[m].shape[-1]) for m in module.modalities}
    tasks = {t: tuple(np.asarray(v).shape) for t, v in first["targets"].items()}
    dtypes = {t: "int64" if v.dtype in (torch.int64, torch.int32) else "float32" for t, v in first["targets"].items()}
    total = sum(len(module.dataset(split)) for split in SPLITS)
    # What the stored samples depend on (--shard-samples only cuts them into files: a resume may change it).
    options = {"name": name, "raw": str(Path(raw).resolve()), "max_rows": max_rows}
    writer = FeatureStoreWriter(out, dims, tasks, shard_samples,
                                source={"name": name, "raw": options["raw"], "max_rows": max_rows, "options": options},
                                task_dtypes=dtypes)
    refuse_other_options(writer, options)
    if writer.complete:
        print(f"{out}: already prepared ({total} samples); nothing to do")
        return Path(out)
    start = writer.done()
    columns = (TextColumn(f"preparing {name}"), BarColumn(), TextColumn("{task.completed}/{task.total} samples"),
               TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(name, total=total, completed=start)
        writer.write(store_samples(module, start), total, lambda done, _: bar.update(task, completed=done),
                     state=lambda: {"options": options})
    print(f"{out}: {total} samples of {name} ({', '.join(f'{m} {d}' for m, d in dims.items())}), "
          f"tasks {', '.join(tasks)}" + (f"; resumed after {start}" if start else ""))
    return Path(out)
