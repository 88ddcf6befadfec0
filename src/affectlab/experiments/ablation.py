"""The ConCluGen ablation: every variant x seed on AffectSynth (or on CMU-MOSEI, MELD or CAER, read as their
recipes read them: ``--data-root``, ``--features``, ``--pretrain-data``), summarised in ``docs/results.md``.

The ablation is a sweep file, ``configs/sweep/conclugen_ablation.yaml``: a grid over the variants, a list of
seeds, and the recipe (``experiments/recipe.py``) as each trial's base. This module holds the two things the
ablation adds to that sweep:

- **which rows each variant's recipe adds** (``floor``, ``ceiling``, ``per_modality``, ``finetune`` given as a
  list of variants in the sweep file's ``base.recipe``: on for those, off for the others; ``trial_fields``
  resolves them). The reference's floor serves every variant of its architecture, the others get their own
  (``--floors own``), or only the three-modality ConCluGen floor is run and compared with every variant
  (``--floors shared``); the ceiling and the single-modality probes come with the reference once per seed.
- **the results writer**: the table of mean ± standard deviation over seeds of probe accuracy and weighted F1
  per label fraction, written between the ``ablation`` markers of the results file with the command, the
  machine and the checks of the paper's claims computed from the numbers (``report.py``). It reads the
  recipes' records (``<store>/recipes/<variant>-<dataset>-seed<seed>.json``) through ``Recipe``, so a record
  made with other configs or options (its digest differs) is refused, never mixed in. That is also why the
  records behind ``docs/results.md`` need no migration: they are the recipes' own, a trial whose record is
  complete runs nothing, and ``affectlab ablation --from-records`` rewrites the table from them alone.

Each data set has its own section (``report.markers``); a variant a data set cannot serve (a text variant on
CAER, SimCLR on MOSEI's one-view features) is left out with the reason printed. Finished recipes are read back
from their records, so an interrupted ablation continues where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from affectlab.errors import ConfigError
from affectlab.experiments.recipe import CEILING, Recipe, RecipeOptions, Row, floor_name
from affectlab.experiments.recipe_data import DATASET_MODALITIES, variant_modalities
from affectlab.experiments.sweep import recipe_trial_fields
from affectlab.experiments.report import REFERENCE, markdown, save_figure, write_section
from affectlab.runs.configs import config_path

SWEEP_FILE = "sweep/conclugen_ablation.yaml"  # under the bundled configs/


@dataclass
class AblationSweep:
    """What the ablation reads from its sweep file: the variants (the grid), the seeds and the recipe base."""

    path: Path
    variants: list[str]
    seeds: list[int]
    recipe: dict[str, Any]


def read_sweep(path: Path | None = None) -> AblationSweep:
    """The ablation's sweep file (``configs/sweep/conclugen_ablation.yaml`` by default)."""
    path = Path(path) if path is not None else config_path(SWEEP_FILE)
    data = yaml.safe_load(path.read_text())
    try:
        recipe = dict(data["base"]["recipe"])
        variants = list(data["space"]["grid"]["variant"])
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: the ablation's sweep file has base: {{recipe: {{...}}}} and space: {{grid: "
                          "{variant: [...]}}} (see configs/sweep/conclugen_ablation.yaml)") from None
    seeds = data.get("seeds") or [recipe.get("seed", 0)]
    return AblationSweep(path, variants, [int(s) for s in seeds], recipe)


def trial_fields(recipe: dict[str, Any], variant: str) -> dict[str, Any]:
    """A trial's ``RecipeOptions`` fields as ``affectlab sweep`` resolves them: the base with ``variant``, each
    per-variant list resolved to whether ``variant`` is in it."""
    return recipe_trial_fields({**recipe, "variant": variant})


def ablation_fields(sweep: AblationSweep, floors: str = "own") -> dict[str, Any]:
    """The sweep's recipe base for ``--floors``: ``own`` as the file has it, ``shared`` the reference's floor only."""
    if floors not in ("own", "shared"):
        raise ConfigError(f"--floors {floors!r} is not own or shared")
    return {**sweep.recipe, "floor": [REFERENCE]} if floors == "shared" else dict(sweep.recipe)


def recipe_rows(recipe: Recipe) -> tuple[list[Row], list[str]]:
    """The rows ``recipe.run()`` returns, read from its record without running anything, and the names of those
    its record lacks yet (``representation @ fraction``)."""
    options, record = recipe.options, recipe.record
    wanted: list[tuple[str, float]] = []
    for fraction in options.fractions:
        wanted.append((options.variant, fraction))
        if options.finetune:
            wanted.append((f"{options.variant} fine-tuned", fraction))
        if options.floor:
            wanted.append((floor_name(options.variant), fraction))
    if options.per_modality:
        wanted += [(f"{options.variant} {modality} only", 1.0) for modality in recipe.modalities()]
    if options.ceiling:
        wanted.append((CEILING, 1.0))
    found = [(name, fraction, record.find(name, fraction)) for name, fraction in wanted]
    return ([row for *_, row in found if row is not None],
            [f"{name} @ {fraction:g}" for name, fraction, row in found if row is None])


@dataclass
class Results:
    rows: list[Row]
    seconds: float  # of every run in the records read, also those of earlier, interrupted invocations
    missing: dict[str, list[str]]  # record -> the rows it lacks


def read_results(trials: list[RecipeOptions]) -> Results:
    """The ablation's rows from the recipes' records (digest-checked by ``Recipe``: a record made with other
    configs or options is a ``ConfigError`` naming it)."""
    rows: list[Row] = []
    seconds = 0.0
    missing: dict[str, list[str]] = {}
    for options in trials:
        recipe = Recipe(options)
        found, lacking = recipe_rows(recipe)
        rows += found
        seconds += recipe.record.seconds
        if lacking:
            missing[str(recipe.record_path)] = lacking
    return Results(rows, seconds, missing)


def write_results(results: Results, names: list[str], seeds: list[int], fractions: list[float], out: Path,
                  command: str, dataset: str = "synth", progress: str = "") -> str:
    """The section of ``out`` (and its figure beside it) rewritten from ``results``; returns the section."""
    figure = Path(out).with_name("ablation_label_efficiency.png" if dataset == "synth"
                                 else f"ablation_{dataset}_label_efficiency.png")
    save_figure(results.rows, names, figure, dataset)
    section = markdown(results.rows, list(fractions), names, command, seeds, results.seconds / 60, progress,
                       figure.name, dataset)
    write_section(Path(out), section, dataset)
    return section


def servable(names: list[str], dataset: str, console: Console) -> list[str]:
    """The variants ``dataset`` can serve, reference first (the others: left out with the reason printed)."""
    if dataset in DATASET_MODALITIES:
        kept = []
        for name in names:
            try:
                variant_modalities(name, dataset)
                kept.append(name)
            except ConfigError as error:
                console.print(f"ablation: {name} left out: {error}")
        if not kept:
            raise ConfigError(f"ablation: none of {names} runs on {dataset}")
        names = kept
    return sorted(names, key=lambda n: (n != REFERENCE, n))


def run_ablation(names: list[str], seeds: list[int], fractions: list[float], out: Path, command: str,
                 floors: str = "own", pretrain_epochs: int | None = None, ceiling_epochs: int | None = None,
                 probe_steps: int = 500, data_root: str | None = None, store: str | None = None,
                 extra: list[str] = (), dataset: str = "synth", features: str | None = None,
                 pretrain_data: str = "own", pretrain_root: str | None = None, from_records: bool = False,
                 sweep: AblationSweep | None = None) -> str:
    """Every variant x seed's recipe on ``dataset`` (the sweep file's trials, in its order: seed by seed, so a
    partial ablation has every variant's first seeds), the results section of ``out`` rewritten from the
    records after each; returns the section. ``from_records``: run nothing, write the table from the records
    (of ``affectlab sweep --config configs/sweep/conclugen_ablation.yaml``, or an earlier ablation)."""
    console = Console()
    sweep = sweep or read_sweep()
    base = ablation_fields(sweep, floors)
    names = servable(names, dataset, console)
    common = dict(dataset=dataset, fractions=tuple(fractions), pretrain_epochs=pretrain_epochs,
                  ceiling_epochs=ceiling_epochs, probe_steps=probe_steps, data_root=data_root, store=store,
                  extra=list(extra), quiet=True, features=features, pretrain_data=pretrain_data,
                  pretrain_root=pretrain_root)
    known = {f.name for f in fields(RecipeOptions)}

    def options(name: str, seed: int) -> RecipeOptions:
        chosen = {k: v for k, v in trial_fields(base, name).items() if k in known}
        return RecipeOptions(**{**chosen, **common, "variant": name, "seed": seed})

    start = time.perf_counter()
    trials = [(seed, name) for seed in seeds for name in names]
    section = ""
    if from_records:
        results = read_results([options(name, seed) for seed, name in trials])
        if results.missing:  # a table of the records that happen to be there would replace a whole one
            listed = "; ".join(f"{record} lacks {', '.join(lacking)}" for record, lacking in list(results.missing.items())[:3])
            raise ConfigError(
                f"ablation --from-records: {len(results.missing)} of {len(trials)} recipes are not complete ({listed}"
                f"{'; ...' if len(results.missing) > 3 else ''}); nothing was written to {out}. Run 'affectlab ablation' "
                "with the same options to complete them, name the --variants and --seeds that are done, or point "
                "--store at the store that holds their records")
        return write_results(results, names, seeds, fractions, out, command, dataset)
    for done, (seed, name) in enumerate(trials, 1):
        console.rule(f"[bold]ablation: {name}, seed {seed} ({done} of {len(trials)})")
        Recipe(options(name, seed)).run()
        # Written after every recipe, from the records: an ablation of hours shows its numbers while it runs.
        seeds_so_far = seeds[: seeds.index(seed) + 1]
        results = read_results([options(n, s) for s, n in trials[:done]])
        progress = "" if done == len(trials) else f" (in progress: {done} of {len(trials)} recipes done)"
        section = write_results(results, names, seeds_so_far, fractions, out, command, dataset, progress)
    console.print(f"this invocation: {(time.perf_counter() - start) / 60:.1f} min")
    return section
