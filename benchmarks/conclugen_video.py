"""Does the video encoder learn? Two measurements behind ConCluGen's video set-up on AffectSynth (docs/results.md).

``supervised``: a FrameEncoder and a linear head trained on the labelled set's train clips (AffectSynth
defaults: 840 clips of 42 people), test accuracy on the 9 test identities, with and without
``subtract_clip_mean`` (each frame minus the clip's mean frame, so identity cancels and motion stays).

``pretrain``: a ConCluGen model of the chosen modalities and loss weights, pretrained in a plain PyTorch loop
on the unlabelled corpus of ``configs/data/synth_pretrain.yaml`` (4,800 clips of 240 other people, batches of 4
clips x 8 people), then probed before (the floor: the same model at random init) and after: scikit-learn's
logistic regression (C 0.1) on standardised representations of the labelled set, on each modality's part at
100 % of the train labels and on their concatenation at 1 %, 10 % and 100 % (label subsets drawn per class,
3 draws below 100 %). A plain loop, not ``affectlab recipe``: one variant in a few minutes, every loss term per
epoch printed, nothing written to the run store.

    .venv/bin/python benchmarks/conclugen_video.py supervised --motion 1 --epochs 10
    .venv/bin/python benchmarks/conclugen_video.py pretrain --modalities video audio text --motion 1 \\
        --epochs 3 --clustering 1 --reconstruction 1
    .venv/bin/python benchmarks/conclugen_video.py pretrain --epochs 10 --contrastive 0 --reconstruction 1 \\
        --input-targets 1   # 0: rebuild a frozen copy of the initial encoders instead
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.methods.conclugen import ConCluGen
from affectlab.nn.targets import FrameMotionTarget, LogMelStatsTarget, TokenHistogramTarget
from affectlab.nn.encoders import AudioConvEncoder, FrameEncoder, TextTransformerEncoder

ROOT = "data/affectsynth"
FRACTIONS = (0.01, 0.1, 1.0)


def frame_encoder(motion: bool) -> FrameEncoder:
    """configs/nn/encoders/frames_synth.yaml, or frames_synth_motion.yaml with ``motion``."""
    return FrameEncoder(backbone="test_convnext", feature_stage=2, spatial_grid=4, pooling="max", subtract_clip_mean=motion)


def supervised(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    data = AffectSynthDataModule(root=ROOT, batch_size=32, modalities=["video"])
    data.setup("fit")
    data.setup("test")
    encoder = frame_encoder(bool(args.motion))
    head = torch.nn.Linear(encoder.num_features, 7)
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head})
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-3)
    start = time.time()

    def accuracy() -> float:
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for batch in data.test_dataloader():
                predicted = head(encoder(batch["video"])).argmax(-1)
                correct += (predicted == batch["targets"]["emotion"]).sum().item()
                total += len(predicted)
        model.train()
        return correct / total

    for epoch in range(args.epochs):
        for batch in data.train_dataloader():
            loss = torch.nn.functional.cross_entropy(head(encoder(batch["video"])), batch["targets"]["emotion"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch % 3 == 2 or epoch == args.epochs - 1:
            print(f"motion {bool(args.motion)} epoch {epoch + 1}: test accuracy {accuracy():.3f} ({time.time() - start:.0f} s)",
                  flush=True)


class LoopConCluGen(ConCluGen):
    """ConCluGen outside a Trainer: the loop sets the epoch and step it reads (k-means' start epoch and seed)."""

    epoch = 0
    step = 0

    @property
    def current_epoch(self) -> int:
        return self.epoch

    @property
    def global_step(self) -> int:
        return self.step


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                   fractions: tuple[float, ...]) -> list[float]:
    """Logistic regression on standardised features, per label fraction (mean over 3 draws below 100 %)."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    result = []
    for fraction in fractions:
        scores = []
        for draw in range(3 if fraction < 1 else 1):
            rng = np.random.default_rng(draw)
            chosen: list[int] = []
            for label in range(7):
                of_label = np.flatnonzero(y_train == label)
                chosen += list(rng.choice(of_label, max(1, int(round(fraction * len(of_label)))), replace=False))
            classifier = LogisticRegression(max_iter=3000, C=0.1).fit((x_train[chosen] - mean) / std, y_train[chosen])
            scores.append((classifier.predict((x_test - mean) / std) == y_test).mean())
        result.append(round(float(np.mean(scores)), 3))
    return result


def pretrain(args: argparse.Namespace) -> None:
    modalities = args.modalities
    torch.manual_seed(args.seed)
    corpus = AffectSynthDataModule(root=ROOT, num_clips=4800, num_identities=240, synth_seed=1, batch_size=32,
                                   clips_per_identity=4, modalities=modalities)
    corpus.setup("fit")
    labelled = AffectSynthDataModule(root=ROOT, batch_size=64, modalities=modalities)
    labelled.setup("fit")
    labelled.setup("test")
    builders = {"video": lambda: frame_encoder(bool(args.motion)), "audio": lambda: AudioConvEncoder(sample_rate=8000),
                "text": lambda: TextTransformerEncoder(vocab_size=512)}
    summaries = {"video": FrameMotionTarget, "audio": lambda: LogMelStatsTarget(sample_rate=8000),
                 "text": lambda: TokenHistogramTarget(vocab_size=512)}
    model = LoopConCluGen(
        {m: builders[m]() for m in modalities}, representation_dim=256, projection_hidden_dim=256,
        reconstruction_targets={m: summaries[m]() for m in modalities} if args.input_targets else None,
        contrastive_temperature=args.temperature, loss_weight_contrastive=args.contrastive,
        loss_weight_clustering=args.clustering, loss_weight_reconstruction=args.reconstruction,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * len(corpus.train_dataloader()), 1e-5)

    def represent(loader) -> tuple[dict[str, np.ndarray], np.ndarray]:
        parts, labels = [], []
        with torch.no_grad():
            for batch in loader:
                parts.append(model.represent(batch))
                labels.append(batch["targets"]["emotion"])
        return {m: torch.cat([p[m] for p in parts]).numpy() for m in modalities}, torch.cat(labels).numpy()

    def probe() -> dict[str, list[float]]:
        model.eval()
        (x_train, y_train), (x_test, y_test) = represent(labelled.train_dataloader()), represent(labelled.test_dataloader())
        model.train()
        result = {m: probe_accuracy(x_train[m], y_train, x_test[m], y_test, (1.0,)) for m in modalities}
        fused_train = np.concatenate([x_train[m] for m in modalities], 1)
        fused_test = np.concatenate([x_test[m] for m in modalities], 1)
        result["fused @ 1/10/100 %"] = probe_accuracy(fused_train, y_train, fused_test, y_test, FRACTIONS)
        return result

    print("floor (random init):", probe(), flush=True)
    start = time.time()
    for epoch in range(args.epochs):
        model.epoch = epoch
        model.on_train_epoch_start()
        train_losses = []
        for batch in corpus.train_dataloader():
            model.train()
            losses = model._losses(model._view(batch), "train")
            optimizer.zero_grad()
            losses["loss"].backward()
            optimizer.step()
            schedule.step()
            model.step += 1
            train_losses.append({k: v.item() for k, v in losses.items()})
        model.eval()
        with torch.no_grad():
            val_losses = [{k: v.item() for k, v in model._losses(b, "val").items()} for b in corpus.val_dataloader()]

        def means(rows: list[dict[str, float]]) -> dict[str, float]:
            keys = [k for k in rows[0] if "/" not in k or k.startswith("contrastive/")]
            return {k: round(float(np.mean([r[k] for r in rows])), 3) for k in keys}

        print(f"epoch {epoch + 1}: train {means(train_losses)} val {means(val_losses)} ({time.time() - start:.0f} s)", flush=True)
    print("pretrained:", probe(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("supervised", help="a video-only head trained with labels")
    one.add_argument("--motion", type=int, choices=(0, 1), default=1)
    one.add_argument("--epochs", type=int, default=10)
    one.add_argument("--seed", type=int, default=0)
    two = commands.add_parser("pretrain", help="ConCluGen in a plain loop, probed before and after")
    two.add_argument("--modalities", nargs="+", default=["video", "audio", "text"], choices=["video", "audio", "text"])
    two.add_argument("--motion", type=int, choices=(0, 1), default=1)
    two.add_argument("--epochs", type=int, default=3)
    two.add_argument("--lr", type=float, default=1e-3)
    two.add_argument("--temperature", type=float, default=0.1)
    two.add_argument("--contrastive", type=float, default=1.0, help="loss weight; 0 switches the term off")
    two.add_argument("--clustering", type=float, default=0.0, help="loss weight; 0 switches the term off")
    two.add_argument("--reconstruction", type=float, default=0.0, help="loss weight; 0 switches the term off")
    two.add_argument("--input-targets", type=int, choices=(0, 1), default=1,
                     help="1: reconstruct summaries of the raw input (configs/nn/targets); 0: a frozen copy of the initial encoders")
    two.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"supervised": supervised, "pretrain": pretrain}[args.command](args)


if __name__ == "__main__":
    main()
