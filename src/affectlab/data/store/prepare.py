"""``affectlab data prepare NAME --raw DIR --out DIR``: convert a data set once into a feature store.

Data sets that hold precomputed features (``mosei``, ``mmsa``, ``openface``, ``pyfeat``) are read with their
reader and every sample of every split is written to the store (``data/store/feature_store.py``), with a progress
bar; an interrupted preparation resumes at its last finished shard, a finished one is not redone. Video data
sets (``meld``, ``caer``, ``voxceleb2``) are decoded, their faces detected, aligned and cropped, and the crops
stored per frame (``data/store/video_prepare.py``), or, with ``--encoder NAME``, a timm model's pooled features of
each crop (``--encoder-checkpoint``, ``--encoder-batch``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from affectlab.data.store.feature_store import FeatureStoreWriter, StoreSample
from affectlab.data.spec import MAX_ROWS
from affectlab.data.splits import SPLITS


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
                yield StoreSample(int(sample["id"]), split, features, targets)
            position += 1


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
    writer = FeatureStoreWriter(out, dims, tasks, shard_samples,
                                source={"name": name, "raw": str(Path(raw).resolve()), "max_rows": max_rows},
                                task_dtypes=dtypes)
    if writer.complete:
        print(f"{out}: already prepared ({total} samples); nothing to do")
        return Path(out)
    start = writer.done()
    columns = (TextColumn(f"preparing {name}"), BarColumn(), TextColumn("{task.completed}/{task.total} samples"),
               TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(name, total=total, completed=start)
        writer.write(store_samples(module, start), total, lambda done, _: bar.update(task, completed=done))
    print(f"{out}: {total} samples of {name} ({', '.join(f'{m} {d}' for m, d in dims.items())}), "
          f"tasks {', '.join(tasks)}" + (f"; resumed after {start}" if start else ""))
    return Path(out)
