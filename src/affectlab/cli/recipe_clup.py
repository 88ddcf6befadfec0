"""``affectlab recipe clup synth``: the argument parser over ``affectlab.experiments.clup_recipe``, and its tables."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from affectlab.errors import ConfigError
from affectlab.experiments.clup_recipe import ROWS, STAGES, ClupRecipe, ClupRecipeOptions, group_seeds, summarise
from affectlab.experiments.clup_recipe import __doc__ as RECIPE_DOC
from affectlab.runs.lifecycle import DEFAULT_SEED


def clup_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="affectlab recipe clup", description=RECIPE_DOC, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Any other option goes to every run (--data.init_args.num_clips 600, --trainer.*), or with a stage's "
               f"name in front to that stage only (--clup.model.init_args.labeled_samples_size 0.3; stages: "
               f"{', '.join(STAGES)})",
    )
    parser.add_argument("dataset", help="synth (AffectSynth's render styles as the domains)")
    one_or_several = parser.add_mutually_exclusive_group()
    one_or_several.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"the recipe's seed (default {DEFAULT_SEED})")
    one_or_several.add_argument("--seeds", type=int, nargs="+", default=None,
                                help="run the recipe once per seed, one group; prints mean ± std, e.g. --seeds 0 1 2")
    parser.add_argument("--dry_run", "--dry-run", dest="dry_run", action="store_true",
                        help="every run on 2 batches of each split, CPU, in clup-synth-dry; recorded apart (...-dry.json)")
    for stage in ("source", "swav", "clup", "shot", "oracle"):
        parser.add_argument(f"--{stage}-epochs", dest=f"{stage}_epochs", type=int, default=None,
                            help=f"epochs of the {stage} run (default: its config's)")
    parser.add_argument("--store", default=None, help="run store folder (default: ./runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or model summaries")
    return parser


def clup_recipe_command(args: list[str]) -> int:
    known, extra = clup_parser().parse_known_args(args)
    if known.seeds is not None and len(set(known.seeds)) != len(known.seeds):
        raise ConfigError(f"recipe clup: --seeds {' '.join(map(str, known.seeds))} repeats a seed; each seed runs once")
    seeds = known.seeds or [known.seed]
    options = {**vars(known), "extra": extra}
    del options["seeds"]
    recipes = [ClupRecipe(ClupRecipeOptions(**{**options, "seed": seed})) for seed in seeds]  # all checked first
    console = Console()
    for recipe in recipes:
        recipe.run()
        console.print(recipe_table(recipe))
        for stage, record in recipe.record.stages.items():  # whole ids, which a table column would cut
            console.print(f"{stage} run_id: {record.run_id}", soft_wrap=True)
        console.print(f"record: {recipe.record_path}", soft_wrap=True)
    if known.seeds is not None:
        dry = " (DRY RUN)" if recipes[0].options.dry_run else ""
        console.print(seeds_table(recipes, f"CluP on AffectSynth: target test split, mean ± std over seeds "
                                           f"{', '.join(map(str, seeds))}{dry}"))
        console.print(f"parent_run_id: {group_seeds(recipes)}")
    return 0


def recipe_table(recipe: ClupRecipe) -> Table:
    """Source only, CluP, SHOT and the oracle side by side on the target's test split, with each one's gain over
    source only (accuracy points)."""
    options = recipe.options
    source = recipe.record.stage("source").metrics.get("test/acc")
    dry = " (DRY RUN: 2 batches a split)" if options.dry_run else ""
    table = Table(title=f"CluP on AffectSynth, seed {options.seed}{dry}: target test split",
                  caption=f"the source model on its own test split: acc {source:.3f}" if source is not None else None)
    for column in ("method", "acc", "F1 (weighted)", "balanced acc", "vs source only"):
        table.add_column(column, justify="left" if column == "method" else "right")
    rows = recipe.rows()
    baseline = rows.get(ROWS["source_only"], {}).get("acc")
    for stage, name in ROWS.items():
        if name not in rows:
            continue
        cells = rows[name]
        gain = "" if baseline is None or stage == "source_only" else f"{100 * (cells['acc'] - baseline):+.1f}"
        table.add_row(name, f"{cells['acc']:.3f}", f"{cells['f1_weighted']:.3f}", f"{cells['wacc']:.3f}", gain)
    return table


def seeds_table(recipes: list[ClupRecipe], title: str) -> Table:
    summary = summarise(recipes)
    table = Table(title=title)
    for column in ("method", "acc", "F1 (weighted)", "balanced acc", "vs source only", "seeds"):
        table.add_column(column, justify="left" if column == "method" else "right")
    baseline = summary.get(ROWS["source_only"], {}).get("acc", (None,))[0]
    for name in ROWS.values():
        if name not in summary:
            continue
        cells = summary[name]
        gain = "" if baseline is None or name == ROWS["source_only"] else f"{100 * (cells['acc'][0] - baseline):+.1f}"
        table.add_row(name, *(f"{cells[m][0]:.3f} ± {cells[m][1]:.3f}" for m in ("acc", "f1_weighted", "wacc")), gain,
                      str(cells["acc"][2]))
    return table
