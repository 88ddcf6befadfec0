"""Random-sample reads from the feature store against per-sample reads from CMU-MOSEI ``.csd`` files, and
whether a data loader on the store keeps up with a training step on precomputed features.

Writes computational sequences of MOSEI's real proportions (videos of a minute: FACET 35 at 30 fps, COVAREP
74 at 100 Hz, a GloVe vector per word; seven labelled segments per video), prepares a feature store from them
with ``affectlab.data.store.prepare``, then:

1. reads the same random segments through ``MoseiDataModule`` (h5py, only the rows of the segment) and through
   ``FeatureStoreDataModule`` (memory-mapped shards), both warm in the page cache; prints samples/s and the
   ratio (goal >= 30);
2. iterates a DataLoader over the store (samples/s) against training steps of the supervised baseline on
   the same batches (samples/s): the loader must be the faster of the two.

    .venv/bin/python benchmarks/feature_store.py [--videos 100] [--reads 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from affectlab.data.store.feature_store import FeatureStoreDataModule
from affectlab.data.readers.mosei import MoseiDataModule
from affectlab.data.store.prepare import prepare
from affectlab.data.synth.export import write_csd

RATES = {"video": (30.0, 35), "audio": (100.0, 74)}  # rows per second, feature size


def write_mosei_like(out: Path, videos: int, seconds: float = 60.0, segments: int = 7) -> None:
    rng = np.random.default_rng(0)
    data = {m: {} for m in ("video", "audio", "text", "labels")}
    for v in range(videos):
        name = f"v{v:05d}"
        for modality, (rate, dim) in RATES.items():
            rows = int(seconds * rate)
            start = np.arange(rows) / rate
            data[modality][name] = (rng.normal(size=(rows, dim)).astype(np.float32), np.stack([start, start + 1 / rate], 1))
        words = int(seconds * 2.5)
        start = np.sort(rng.uniform(0, seconds, words))
        data["text"][name] = (rng.normal(size=(words, 300)).astype(np.float32), np.stack([start, start + 0.3], 1))
        bounds = np.linspace(0, seconds, segments + 1)
        labels = np.concatenate([rng.uniform(-3, 3, (segments, 1)), rng.uniform(0, 3, (segments, 6))], 1)
        data["labels"][name] = (labels.astype(np.float32), np.stack([bounds[:-1], bounds[1:]], 1))
    names = {"video": "CMU_MOSEI_VisualFacet42.csd", "audio": "CMU_MOSEI_COVAREP.csd",
             "text": "CMU_MOSEI_TimestampedWordVectors.csd", "labels": "CMU_MOSEI_Labels.csd"}
    for modality, file in names.items():
        write_csd(out / file, modality, data[modality], {"dataset name": "MOSEI-sized random features"})


def reads_per_second(dataset, order: np.ndarray) -> float:
    start = time.perf_counter()
    for i in order:
        dataset[int(i)]
    return len(order) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--max-steps", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw, store = Path(tmp) / "raw", Path(tmp) / "store"
        raw.mkdir()
        write_mosei_like(raw, options.videos)
        prepare("mosei", str(raw), str(store), max_rows=options.max_steps)
        csd = MoseiDataModule(str(raw), max_steps=options.max_steps, folds_file="none.json")
        stored = FeatureStoreDataModule(str(store), max_steps=options.max_steps, batch_size=64)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            csd.setup()
        stored.setup()
        a, b = csd.dataset("train"), stored.dataset("train")
        order = np.random.default_rng(1).integers(0, min(len(a), len(b)), options.reads)
        reads_per_second(a, order[:200])  # warm both page caches
        reads_per_second(b, order[:200])
        from_csd, from_store = reads_per_second(a, order), reads_per_second(b, order)
        print(f"random segment reads, {options.videos} MOSEI-sized videos, max {options.max_steps} rows: "
              f".csd (h5py) {from_csd:.0f}/s, feature store {from_store:.0f}/s, ratio {from_store / from_csd:.1f}x "
              "(goal >= 30)")

        loader = stored.train_dataloader()
        start = time.perf_counter()
        batches = list(loader)
        loader_rate = sum(len(x["id"]) for x in batches) / (time.perf_counter() - start)
        from affectlab.methods import SupervisedClassifier
        from affectlab.nn.encoders import FeatureSequenceEncoder

        dims = stored.store.dims
        model = SupervisedClassifier({m: FeatureSequenceEncoder(d, 128, modality=m) for m, d in dims.items()},
                                     num_classes=2, task="binary")
        optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
        start = time.perf_counter()
        for batch in batches:
            batch["targets"]["binary"] = (batch["targets"]["sentiment"] > 0).long()
            outputs = model(batch)
            loss = sum(torch.nn.functional.cross_entropy(o, batch["targets"]["binary"]) for o in outputs.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model_rate = sum(len(x["id"]) for x in batches) / (time.perf_counter() - start)
        print(f"one loader process: {loader_rate:.0f} samples/s; supervised training step: {model_rate:.0f} samples/s; "
              f"loader/model {loader_rate / model_rate:.1f}x ({'keeps up' if loader_rate > model_rate else 'STARVES the step'})")


if __name__ == "__main__":
    main()
