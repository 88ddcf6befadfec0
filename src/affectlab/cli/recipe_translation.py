"""``affectlab recipe translation DATASET``: the argument parser over ``affectlab.experiments.translation_recipe``
(``cli/recipe.py`` hands over when the first argument is ``translation``)."""

from __future__ import annotations

import argparse

from affectlab.experiments.translation_recipe import EXPERIMENTS
from affectlab.experiments.translation_recipe import __doc__ as RECIPE_DOC


def translation_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="affectlab recipe translation", description=RECIPE_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Any other option is passed to every run and to the baselines' data module, e.g. "
               "--trainer.max_epochs 5 or --data.init_args.num_sentences 200",
    )
    parser.add_argument("dataset", help="data set: " + ", ".join(EXPERIMENTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed (default 0 1 2)")
    parser.add_argument("--dry_run", "--dry-run", dest="dry_run", action="store_true",
                        help="every run on 2 batches of each split, CPU, in <exp_name>-dry")
    parser.add_argument("--store", default=None, help="run store folder (default: ./runs)")
    return parser


def translation_command(args: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from affectlab.experiments.translation_recipe import TranslationOptions, run_translation_recipe

    known, extra = translation_parser().parse_known_args(args)
    options = TranslationOptions(known.dataset, list(known.seeds), known.store, known.dry_run, extra)
    result = run_translation_recipe(options, on_open=lambda run_id: print(f"parent_run_id: {run_id}", flush=True))
    table = Table(title=f"pose-to-text on {known.dataset}: test split{' (DRY RUN)' if known.dry_run else ''}")
    for column in ("system", "BLEU", "chrF"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for row in result.rows():
        table.add_row(*row)
    console = Console(width=160)
    console.print(table)
    for metric, signature in result.signatures.items():
        console.print(f"{metric}: {signature}")
    runs = ", ".join(run.run_id for run in result.seeds.runs)
    print(f"parent_run_id: {result.seeds.parent_run_id} (runs: {runs})")
    return 0
