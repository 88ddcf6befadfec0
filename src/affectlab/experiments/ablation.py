"""The ConCluGen ablation: every variant x seed on AffectSynth (or on CMU-MOSEI, MELD or CAER, read as their
recipes read them: ``--data-root``, ``--features``, ``--pretrain-data``), summarised in ``docs/results.md``.

For each seed, the recipe of every variant (the floor, the ceiling and the single-modality probes come with
the ``conclugen`` recipe: one each per seed). Then the table of mean ± standard deviation over seeds of probe
accuracy and weighted F1 per label fraction is written between the ``ablation`` markers of the results file,
with the command, the machine, and the checks of the paper's claims computed from the numbers. Finished
recipes are read back from their records, so an interrupted ablation continues where it stopped. Each data set
has its own section (``report.markers``); a variant a data set cannot serve (a text variant on CAER, SimCLR on
MOSEI's one-view features) is left out with the reason printed.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from affectlab.errors import ConfigError
from affectlab.experiments.recipe import Recipe, RecipeOptions, Row, floor_name
from affectlab.experiments.recipe_data import DATASET_MODALITIES, variant_modalities
from affectlab.experiments.report import REFERENCE, markdown, save_figure, write_section


def run_ablation(names: list[str], seeds: list[int], fractions: list[float], out: Path, command: str,
                 floors: str = "own", pretrain_epochs: int | None = None, ceiling_epochs: int | None = None,
                 probe_steps: int = 500, data_root: str | None = None, store: str | None = None,
                 extra: list[str] = (), dataset: str = "synth", features: str | None = None,
                 pretrain_data: str = "own", pretrain_root: str | None = None) -> str:
    """Every variant x seed's recipe on ``dataset``, the results section of ``out`` rewritten after each;
    returns the section.

    ``floors``: ``own`` gives each architecture its floor (two-modality variants and SimCLR get theirs),
    ``shared`` only the three-modality ConCluGen floor, compared with every variant.
    """
    console = Console()
    if dataset in DATASET_MODALITIES:  # the variants the data set can serve (others: Recipe names what is wrong)
        servable = []
        for name in names:
            try:
                variant_modalities(name, dataset)
                servable.append(name)
            except ConfigError as error:
                console.print(f"ablation: {name} left out: {error}")
        if not servable:
            raise ConfigError(f"ablation: none of {names} runs on {dataset}")
        names = servable
    names = sorted(names, key=lambda n: (n != REFERENCE, n))
    start = time.perf_counter()
    rows: list[Row] = []
    compute_seconds = 0.0  # of every run, also those done by an earlier, interrupted invocation
    total = len(names) * len(seeds)
    done = 0
    section = ""
    for seed in seeds:
        for name in names:
            done += 1
            console.rule(f"[bold]ablation: {name}, seed {seed} ({done} of {total})")
            reference = name == REFERENCE
            # The reference's floor serves every variant of its architecture; the others get their own.
            options = RecipeOptions(
                variant=name, dataset=dataset, seed=seed, fractions=tuple(fractions),
                floor=reference or (floors == "own" and floor_name(name) != floor_name(REFERENCE)),
                ceiling=reference, per_modality=reference, pretrain_epochs=pretrain_epochs,
                ceiling_epochs=ceiling_epochs, probe_steps=probe_steps, data_root=data_root,
                store=store, extra=list(extra), quiet=True, features=features, pretrain_data=pretrain_data,
                pretrain_root=pretrain_root,
            )
            recipe = Recipe(options)
            rows += recipe.run()
            compute_seconds += recipe.record.seconds
            # Written after every recipe: an ablation of hours shows its numbers while it runs.
            progress = "" if done == total else f" (in progress: {done} of {total} recipes done)"
            seeds_so_far = seeds[: seeds.index(seed) + 1]
            figure = Path(out).with_name("ablation_label_efficiency.png" if dataset == "synth"
                                         else f"ablation_{dataset}_label_efficiency.png")
            save_figure(rows, names, figure, dataset)
            section = markdown(rows, list(fractions), names, command, seeds_so_far, compute_seconds / 60, progress,
                               figure.name, dataset)
            write_section(Path(out), section, dataset)
    console.print(f"this invocation: {(time.perf_counter() - start) / 60:.1f} min")
    return section
