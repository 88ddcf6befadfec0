"""``affectlab recipe VARIANT DATASET``: the argument parser over ``affectlab.experiments.recipe``."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from affectlab.data.registry import dataset_names
from affectlab.experiments.recipe import DEFAULT_FRACTIONS, Recipe, RecipeOptions, variants
from affectlab.experiments.recipe import __doc__ as RECIPE_DOC
from affectlab.errors import ConfigError
from affectlab.experiments.report import overall_table, results_table, summarise, write_per_class
from affectlab.runs.lifecycle import DEFAULT_SEED


def recipe_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="affectlab recipe", description=RECIPE_DOC, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Any other option is passed to every run, e.g. --data.init_args.num_clips 1200 (sizes that give a run "
               "no training batch are refused before any run, with the smallest that gives one)",
    )
    parser.add_argument("variant", help="a config of configs/model/conclugen/: " + ", ".join(variants())
                        + "; or translation (pose-to-text: affectlab recipe translation --help)")
    parser.add_argument("dataset", help="data set name: " + ", ".join(dataset_names()))
    one_or_several = parser.add_mutually_exclusive_group()  # --seed S (one recipe) or --seeds S1 S2 ..., not both
    one_or_several.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"the recipe's seed (default {DEFAULT_SEED})")
    one_or_several.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="run the recipe once per seed and print mean ± std per row, e.g. --seeds 0 1 2")
    parser.add_argument("--dry_run", "--dry-run", dest="dry_run", action="store_true",
                        help="every run on 2 batches of each split, CPU, in <exp_name>-dry; recorded apart (...-dry.json)")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS))
    parser.add_argument("--no-floor", dest="floor", action="store_false", help="skip the randomly initialised model")
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="skip the supervised baseline")
    parser.add_argument("--finetune", action="store_true", help="also fine-tune the pretrained backbone at each fraction")
    parser.add_argument("--per-modality", dest="per_modality", action="store_true",
                        help="also probe each modality alone (100 %% labels)")
    parser.add_argument("--pretrain-epochs", dest="pretrain_epochs", type=int, default=None)
    parser.add_argument("--ceiling-epochs", dest="ceiling_epochs", type=int, default=None)
    parser.add_argument("--probe-steps", dest="probe_steps", type=int, default=500)
    parser.add_argument("--data-root", dest="data_root", default=None, help="the data set's folder, as distributed")
    parser.add_argument("--features", default=None,
                        help="meld, caer: the feature store of 'affectlab data prepare NAME --raw DATA_ROOT --out DIR' "
                             "(default: DATA_ROOT-features, or DATA_ROOT itself if it is a store)")
    parser.add_argument("--pretrain-data", dest="pretrain_data", choices=["own", "voxceleb2"], default="own",
                        help="own: the data set's train split, its labels never read; voxceleb2: --pretrain-root")
    parser.add_argument("--pretrain-root", dest="pretrain_root", default=None,
                        help="VoxCeleb2's store ('affectlab data prepare voxceleb2 --raw DIR --out STORE'), prepared "
                             "with the probed data set's backbones")
    parser.add_argument("--store", default=None, help="run store folder (default: ./runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or model summaries")
    return parser


def recipe_command(args: list[str]) -> int:
    if args and args[0] == "clup":  # affectlab recipe clup synth: the CluP recipe (cli/recipe_clup.py)
        from affectlab.cli.recipe_clup import clup_recipe_command

        return clup_recipe_command(args[1:])
    if args[:1] == ["translation"]:  # pose-to-text on AffectSynth sign: its own options (cli/recipe_translation.py)
        from affectlab.cli.recipe_translation import translation_command

        return translation_command(args[1:])
    known, extra = recipe_parser().parse_known_args(args)
    if known.seeds is not None and len(set(known.seeds)) != len(known.seeds):
        raise ConfigError(f"recipe: --seeds {' '.join(map(str, known.seeds))} repeats a seed; each seed runs once")
    seeds = known.seeds or [known.seed]
    options = {**vars(known), "fractions": tuple(known.fractions), "extra": extra}
    del options["seeds"]
    recipes = [Recipe(RecipeOptions(**{**options, "seed": seed})) for seed in seeds]  # all checked before any run
    console = Console()
    rows_per_recipe = []
    for recipe in recipes:
        rows = recipe.run()
        rows_per_recipe.append(rows)
        print_recipe(console, recipe, rows)
    if known.seeds is not None:
        first = recipes[0].options
        console.print(seeds_table([r for rows in rows_per_recipe for r in rows],
                                  f"{first.variant} on {first.dataset}: mean ± std over seeds "
                                  f"{', '.join(map(str, seeds))}{' (DRY RUN)' if first.dry_run else ''}"))
        from affectlab.experiments.seeds import group_recipe_seeds

        console.print(f"parent_run_id: {group_recipe_seeds(recipes, rows_per_recipe)}")
    return 0


def print_recipe(console: Console, recipe: Recipe, rows: list) -> None:
    options = recipe.options
    title = (f"{options.variant} on {options.dataset}, seed {options.seed}{' (DRY RUN: 2 batches a split)' if options.dry_run else ''}: "
             "test split, probe on the frozen representation")
    if options.dataset == "synth":
        console.print(results_table(rows, title))
    else:  # accuracy and support-weighted precision, recall, F1; per class in the files beside the record
        console.print(overall_table(rows, title))
        tables = write_per_class(rows, recipe.record_path)
        console.print(f"per class: {', '.join(str(t) for t in tables)}")
    console.print(f"record: {recipe.record_path}  (pretraining run_id: {recipe.record.pretrain_run_id})")


def seeds_table(rows: list, title: str) -> Table:
    """One line per representation and label fraction: mean ± std over seeds (``report.summarise``)."""
    table = Table(title=title)
    for column in ("representation", "labels", "acc", "F1 (weighted)", "seeds"):
        table.add_column(column, justify="left" if column == "representation" else "right")
    for (name, fraction), cell in summarise(rows).items():
        table.add_row(name, f"{fraction:.0%}", *(f"{cell[m][0]:.3f} ± {cell[m][1]:.3f}" for m in ("acc", "f1_weighted")),
                      str(cell["acc"][2]))
    return table
