"""How hard AffectSynth is per modality: tiny supervised models on video, audio, text and all three fused.

Not a benchmark of AffectLab's methods (those live in ``benchmarks/`` and ``docs/results.md``): a quick check,
run when the generator's difficulty knobs change, that each modality alone is informative but insufficient.
Run ``python benchmarks/affectsynth_difficulty.py --cache DIR`` (a few minutes on two CPU cores); it prints the
numbers quoted in docs/affectsynth.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.config import SynthConfig
from affectlab.data.synth.expressions import EMOTION_VA
from affectlab.data.synth.faces import RENDER_STYLES
from affectlab.data.synth.generator import ensure
from affectlab.data.synth.text import VOCAB, _LEXICON

_AFFECT_WORDS = {VOCAB.index(w) for lex in _LEXICON.values() for ws in lex.values() for p in ws for w in p.split()}


class VideoEncoder(nn.Module):
    """A 4-layer CNN per frame (flattened, so it keeps where things are), max-pooled over time."""

    def __init__(self, width: int = 32):
        super().__init__()
        layers, channels = [nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU()], width
        for out in (width, width * 2, width * 2):
            layers += [nn.Conv2d(channels, out, 3, 1, 1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
            channels = out
        self.cnn = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.3))
        self.num_features = channels * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, H, W, 3) uint8
        b, t = x.shape[:2]
        z = self.cnn(x.flatten(0, 1).permute(0, 3, 1, 2).float() / 127.5 - 1.0)  # (B * T, C * 16)
        return z.view(b, t, -1).amax(1)


class AudioEncoder(nn.Module):
    """Log-magnitude STFT, then a 1D CNN over time, mean and max pooled."""

    def __init__(self, width: int = 64, n_fft: int = 256):
        super().__init__()
        self.n_fft = n_fft
        bins = n_fft // 2 + 1
        self.cnn = nn.Sequential(nn.Conv1d(bins, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
                                 nn.Conv1d(width, width, 5, 2, padding=2), nn.BatchNorm1d(width), nn.ReLU())
        self.num_features = width * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, S) int16
        wave = x.float() / 32767.0
        spec = torch.stft(wave, self.n_fft, self.n_fft // 2, window=torch.hann_window(self.n_fft),
                          return_complex=True).abs()  # (B, F, frames)
        z = self.cnn(torch.log(spec + 1e-4))
        return torch.cat([z.mean(2), z.amax(2)], dim=1)


class TextEncoder(nn.Module):
    """Mean of word embeddings over the real tokens."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), dim, padding_idx=0)
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, L) int32
        x = x.long()
        mask = (x != 0).float().unsqueeze(-1)  # (B, L, 1)
        return (self.embed(x) * mask).sum(1) / mask.sum(1).clamp(min=1)


class Classifier(nn.Module):
    def __init__(self, encoders: dict[str, nn.Module]):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.head = nn.Linear(sum(e.num_features for e in encoders.values()), len(EMOTIONS))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([enc(batch[name]) for name, enc in self.encoders.items()], dim=1))


def _fit(model: Classifier, data: dict[str, torch.Tensor], train: np.ndarray, test: np.ndarray, epochs: int,
         seed: int) -> np.ndarray:
    """Trains with AdamW and returns the test log-probabilities ``[N_test, 7]``."""
    torch.manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    steps = epochs * int(np.ceil(len(train) / 32))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 3e-3, total_steps=steps)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        model.train()
        for idx in np.array_split(rng.permutation(train), int(np.ceil(len(train) / 32))):
            batch = {k: v[idx] for k, v in data.items()}
            loss = nn.functional.cross_entropy(model(batch), batch["emotion"])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        return torch.cat([model({k: v[i] for k, v in data.items()}).log_softmax(1)
                          for i in np.array_split(test, max(1, len(test) // 128))]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="data/affectsynth-difficulty")
    parser.add_argument("--num-clips", type=int, default=SynthConfig.num_clips)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    arrays = ensure(Path(args.cache), SynthConfig(num_clips=args.num_clips, seed=args.seed))
    names = ("frames", "audio", "text", "emotion")
    data = {n: torch.from_numpy(np.array(arrays[n])) for n in names}  # writable copies in memory
    data["video"] = data.pop("frames")
    # Test on unseen people, as AffectSynthDataModule splits: a fifth of the identities.
    people = np.random.default_rng(1234).permutation(arrays.config.num_identities)
    held_out = np.isin(arrays.identity, people[: len(people) // 5])
    test, train = np.flatnonzero(held_out), np.flatnonzero(~held_out)
    y = arrays.emotion[test]
    neutral_text = np.array([not (set(arrays.text[i].tolist()) & _AFFECT_WORDS) for i in test])
    va = np.array([EMOTION_VA[e] for e in EMOTIONS])  # (7, 2)
    setups = {"video": {"video": VideoEncoder()}, "audio": {"audio": AudioEncoder()},
              "text": {"text": TextEncoder()},
              "fused": {"video": VideoEncoder(), "audio": AudioEncoder(), "text": TextEncoder()}}
    print(f"{len(train)} train / {len(test)} test clips (unseen identities), chance {1 / len(EMOTIONS):.1%}")
    log_probs = {}
    for name, encoders in [*setups.items(), ("late", None)]:
        start = time.perf_counter()
        if encoders is None:  # late fusion: the product of the single-modality models' probabilities
            log_probs[name] = log_probs["video"] + log_probs["audio"] + log_probs["text"]
        else:
            log_probs[name] = _fit(Classifier(encoders), data, train, test, args.epochs, args.seed)
        pred = log_probs[name].argmax(1)
        line = f"{name:>6}: accuracy {np.mean(pred == y):.1%} ({time.perf_counter() - start:.0f} s)"
        if name in ("video", "fused", "late"):
            per = {s: np.mean(pred == y, where=arrays.domain[test] == d) for d, s in enumerate(RENDER_STYLES)}
            line += "; by style " + ", ".join(f"{s} {a:.0%}" for s, a in per.items())
        if name == "audio":  # how well the predicted class places the clip in valence-arousal space
            corr = [np.corrcoef(va[pred, k], np.asarray(arrays[("valence", "arousal")[k]])[test])[0, 1]
                    for k in range(2)]
            line += f"; corr(valence) {corr[0]:.2f}, corr(arousal) {corr[1]:.2f}"
        if name in ("text", "fused", "late"):
            line += (f"; affective text {np.mean(pred == y, where=~neutral_text):.0%}, neutral text "
                     f"{np.mean(pred == y, where=neutral_text):.0%}")
        print(line)
        confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), int)
        np.add.at(confusion, (y, pred), 1)
        print("        confusion (rows true, cols predicted, order " + " ".join(e[:3] for e in EMOTIONS) + "):")
        for e, row in zip(EMOTIONS, confusion):
            print(f"        {e[:3]} " + " ".join(f"{v:3d}" for v in row))


if __name__ == "__main__":
    main()
