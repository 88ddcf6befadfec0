"""``affectlab ablation``: the argument parser over ``affectlab.experiments.ablation`` (the sweep file
``configs/sweep/conclugen_ablation.yaml`` gives the default variants and seeds)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from affectlab.experiments.ablation import __doc__ as ABLATION_DOC
from affectlab.experiments.ablation import read_sweep, run_ablation
from affectlab.experiments.recipe import DEFAULT_FRACTIONS, variants


def ablation_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectlab ablation", description=ABLATION_DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", default="synth",
                        help="synth (default), or mosei, meld, caer with --data-root as 'affectlab recipe' reads them")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="default: the grid of configs/sweep/conclugen_ablation.yaml (every variant)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the sweep file's (0 1 2)")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS))
    parser.add_argument("--pretrain-epochs", dest="pretrain_epochs", type=int, default=None)
    parser.add_argument("--ceiling-epochs", dest="ceiling_epochs", type=int, default=None)
    parser.add_argument("--probe-steps", dest="probe_steps", type=int, default=500)
    parser.add_argument("--data-root", dest="data_root", default=None)
    parser.add_argument("--features", default=None, help="meld, caer: their prepared store (as 'affectlab recipe')")
    parser.add_argument("--pretrain-data", dest="pretrain_data", choices=["own", "voxceleb2"], default="own")
    parser.add_argument("--pretrain-root", dest="pretrain_root", default=None)
    parser.add_argument("--store", default=None)
    parser.add_argument("--out", default="docs/results.md", help="results file; its ablation section is replaced")
    parser.add_argument("--floors", choices=["own", "shared"], default="own",
                        help="own: a floor per architecture (two-modality variants and SimCLR get theirs); shared: "
                             "only the three-modality ConCluGen floor, compared with every variant")
    parser.add_argument("--from-records", dest="from_records", action="store_true",
                        help="run nothing: write the table from the recipes' records (after 'affectlab sweep --config "
                             "configs/sweep/conclugen_ablation.yaml', or an earlier ablation)")
    known, extra = parser.parse_known_args(args)
    sweep = read_sweep()
    names = known.variants or sweep.variants
    unknown = sorted(set(names) - set(variants()))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {variants()}")
    section = run_ablation(
        names, known.seeds or sweep.seeds, known.fractions, Path(known.out), ("affectlab ablation " + " ".join(args)).strip(),
        floors=known.floors, pretrain_epochs=known.pretrain_epochs, ceiling_epochs=known.ceiling_epochs,
        probe_steps=known.probe_steps, data_root=known.data_root, store=known.store, extra=extra,
        dataset=known.dataset, features=known.features, pretrain_data=known.pretrain_data,
        pretrain_root=known.pretrain_root, from_records=known.from_records, sweep=sweep,
    )
    console = Console()
    console.print(section)
    console.print(f"written to {known.out}")
    sys.stdout.flush()
    return 0
