"""A second opinion on the ablation's linear probes: logistic regression on standardised representations.

The paper's probe (``LinearProbe``: dropout 0.5 and a linear layer, trained 500 AdamW steps on the raw
representations) depends on the scale of what it reads: a randomly initialised Gated Embedding Unit gives
outputs about five times smaller than a trained one, so the probe fits the floor less well for reasons that
have nothing to do with what the representation holds. This script asks the same question without that
dependence: every feature is standardised with the mean and standard deviation of all train clips (no labels
needed), and scikit-learn's L2-regularised logistic regression (class-balanced, C picked on the validation
split from 0.01, 0.1, 1) is fitted on the same labelled fraction of the train split the recipe used
(``label_fraction``, ``label_seed`` = the recipe's seed) and scored on the test split.

For every recipe record in ``--records`` (``affectlab ablation`` writes them), the pretrained model is
rebuilt from its run and checkpoint; the floor is the same config randomly initialised with the recipe's
seed. Prints mean ± standard deviation over seeds per variant and label fraction, and the floor beside it.

    .venv/bin/python benchmarks/probe_standardised.py [--records runs/recipes] [--variants conclugen ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from sklearn.linear_model import LogisticRegression

from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.runs.models import build_run_model, load_run_model

FRACTIONS = (0.01, 0.1, 1.0)
REGULARISATION = (0.01, 0.1, 1.0)


def random_model(run_id: str, store: str | None, seed: int) -> torch.nn.Module:
    """The run's model config, instantiated afresh (random weights) under ``seed``."""
    torch.manual_seed(seed)
    return build_run_model(run_id, store).eval()


@torch.no_grad()
def representations(model: torch.nn.Module, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated representations ``[N, sum D_m]``, emotion labels ``[N]`` and sample ids ``[N]``."""
    vectors, labels, ids = [], [], []
    for batch in loader:
        represented = model.represent(batch)
        vectors.append(torch.cat([represented[m] for m in sorted(represented)], dim=-1))
        labels.append(batch["targets"]["emotion"])
        ids.append(torch.as_tensor(batch["id"]))
    return torch.cat(vectors).numpy(), torch.cat(labels).numpy(), torch.cat(ids).numpy()


def probe_accuracies(model: torch.nn.Module, data_root: str, seed: int) -> dict[float, float]:
    """Test accuracy of the standardised logistic-regression probe at each label fraction."""
    data = AffectSynthDataModule(root=data_root, batch_size=128)
    data.setup("fit")
    data.setup("test")
    train, train_y, train_ids = representations(model, data.train_dataloader())
    val, val_y, _ = representations(model, data.val_dataloader())
    test, test_y, _ = representations(model, data.test_dataloader())
    mean, std = train.mean(0), train.std(0) + 1e-6  # of every train clip: the statistics need no labels
    train, val, test = (train - mean) / std, (val - mean) / std, (test - mean) / std
    result = {}
    for fraction in FRACTIONS:
        labelled = AffectSynthDataModule(root=data_root, label_fraction=fraction, label_seed=seed)
        labelled.setup("fit")
        keep = np.isin(train_ids, labelled.labelled_indices("train"))  # the recipe's labelled subset (clip ids)
        fits = [LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit(train[keep], train_y[keep])
                for c in REGULARISATION]
        best = max(fits, key=lambda fit: (fit.predict(val) == val_y).mean())
        result[fraction] = float((best.predict(test) == test_y).mean())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="runs/recipes")
    parser.add_argument("--store", default=None)
    parser.add_argument("--data-root", dest="data_root", default="data/affectsynth")
    parser.add_argument("--variants", nargs="+", default=None)
    args = parser.parse_args()
    records = sorted(Path(args.records).glob("*-synth-seed*.json"))
    records = [json.loads(p.read_text()) for p in records]
    records = [r for r in records if r.get("pretrain_done") and (args.variants is None or r["variant"] in args.variants)]
    if not records:
        raise SystemExit(f"no finished recipe records in {args.records}; run affectlab ablation first")
    scores: dict[str, dict[float, list[float]]] = {}
    for record in track(records, description="probing"):
        run_id, seed, variant = record["pretrain_run_id"], record["seed"], record["variant"]
        for name, model in ((variant, load_run_model(run_id, args.store)),
                            (f"floor ({variant})", random_model(run_id, args.store, seed))):
            for fraction, accuracy in probe_accuracies(model, args.data_root, seed).items():
                scores.setdefault(name, {}).setdefault(fraction, []).append(accuracy)
    console = Console()
    console.print("| representation | " + " | ".join(f"acc @ {f:.0%}" for f in FRACTIONS) + " | seeds |")
    console.print("|---|" + "---|" * (len(FRACTIONS) + 1))
    for name, by_fraction in scores.items():
        cells = []
        for fraction in FRACTIONS:
            values = by_fraction[fraction]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):.3f} ± {spread:.3f}")
        console.print(f"| {name} | " + " | ".join(cells) + f" | {len(by_fraction[FRACTIONS[0]])} |")


if __name__ == "__main__":
    main()
