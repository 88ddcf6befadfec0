"""How much a ConCluGen pretraining step costs under Lightning, against a plain PyTorch loop.

The original set-up: one precomputed, pooled feature vector per clip and modality (video 4096, audio 1024,
text 768, as ConCluGen's frozen backbones give), the three losses, k-means on the queue at every step. Both
loops train the same model (same initial weights) on the same in-memory batches with the same AdamW:

- Lightning: ``Trainer.fit`` on ``ConCluGen`` as ``affectlab run`` builds it (logging to no logger, no
  checkpoints, no progress bar: what is timed is the step machinery, not disk);
- plain: ``for batch in loader: loss = model._losses(batch, "train")["loss"]; backward; step``.

Steps after a warm-up are timed; runs alternate (plain, Lightning, plain, ...) and the median of each is
compared, so load on the machine hits both alike. Prints the ratio (goal <= 1.05).

    .venv/bin/python benchmarks/pretrain_step.py [--steps 60] [--repeats 3] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader, Dataset

from affectlab.methods import ConCluGen
from affectlab.nn.encoders import PrecomputedFeatures

DIMS = {"video": 4096, "audio": 1024, "text": 768}  # ConCluGen's backbone feature sizes


class FeatureClips(Dataset):
    """Random stand-ins for precomputed features, held in memory (the loader costs next to nothing)."""

    def __init__(self, size: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.features = {m: torch.randn(size, d, generator=generator) for m, d in DIMS.items()}

    def __len__(self) -> int:
        return len(self.features["video"])

    def __getitem__(self, index: int) -> dict:
        return {"id": index, **{m: f[index] for m, f in self.features.items()}}


def build_model() -> ConCluGen:
    torch.manual_seed(0)
    encoders = {m: PrecomputedFeatures(d, modality=m) for m, d in DIMS.items()}
    return ConCluGen(
        encoders, freeze_encoders=True, representation_dim=1024, projection_dim=256, num_clusters=64,
        reconstruction_dim=512, kmeans_queue_size=16,
        optimizer_init={"class_path": "torch.optim.AdamW", "init_args": {"lr": 2e-5, "weight_decay": 1e-3}},
    )


class StepTimer(Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.elapsed, self.steps = warmup, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.warmup:
            self.elapsed = time.perf_counter() - self.start
            self.steps = trainer.global_step - self.warmup


def lightning_run(loader: DataLoader, steps: int, warmup: int) -> float:
    model = build_model()
    timer = StepTimer(warmup)
    trainer = Trainer(
        accelerator="cpu", max_steps=steps + warmup, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(model, train_dataloaders=loader)
    return timer.elapsed / timer.steps


def plain_run(loader: DataLoader, steps: int, warmup: int) -> float:
    model = build_model()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5, weight_decay=1e-3)
    done, start = 0, 0.0
    while done < steps + warmup:
        for batch in loader:
            if done == warmup:
                start = time.perf_counter()
            loss = model._losses(batch, "train")["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps + warmup:
                break
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    options = parser.parse_args()
    loader = DataLoader(FeatureClips(options.batch_size * 20), batch_size=options.batch_size, shuffle=True, drop_last=True)
    plain, lightning = [], []
    for repeat in range(options.repeats):
        plain.append(plain_run(loader, options.steps, options.warmup))
        lightning.append(lightning_run(loader, options.steps, options.warmup))
        print(f"repeat {repeat + 1}: plain {plain[-1] * 1e3:.1f} ms/step, Lightning {lightning[-1] * 1e3:.1f} ms/step", flush=True)
    p, l = statistics.median(plain), statistics.median(lightning)
    print(f"ConCluGen step on precomputed features, batch {options.batch_size}, {torch.get_num_threads()} threads: "
          f"plain PyTorch {p * 1e3:.1f} ms, Lightning {l * 1e3:.1f} ms, ratio {l / p:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
