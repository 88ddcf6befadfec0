"""The ConCluGen ablation as a sweep file over variants x seeds, and its results writer reading the recipes'
records (digest-checked): the same section the ablation wrote from the rows it ran, with no run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from affectlab.errors import ConfigError
from affectlab.experiments.ablation import read_sweep, recipe_rows, run_ablation, trial_fields
from affectlab.experiments.recipe import CEILING, FLOOR, Recipe, RecipeOptions, RecipeRecord, Row, floor_name, recipe_digest, variants
from affectlab.experiments.report import END, REFERENCE, START, markdown

FRACTIONS = (0.1, 1.0)


def test_the_sweep_file_is_every_variant_x_three_seeds_with_the_rows_the_ablation_gave_each():
    sweep = read_sweep()
    assert sweep.variants == variants() and sweep.seeds == [0, 1, 2]
    for name in variants():
        fields = trial_fields(sweep.recipe, name)
        # what 'affectlab ablation --floors own' gave each variant before it was a sweep
        assert fields["floor"] == (name == REFERENCE or floor_name(name) != floor_name(REFERENCE)), name
        assert fields["ceiling"] == fields["per_modality"] == (name == REFERENCE), name
        assert fields["variant"] == name and fields["dataset"] == "synth"


def test_the_sweep_file_is_a_valid_recipe_sweep():
    sweep_spec = pytest.importorskip("affectlab.experiments.sweep_spec", reason="affectlab sweep (issue 18.1) not merged")
    spec = sweep_spec.load_spec(read_sweep().path)
    assert spec.recipe is not None and spec.seeds == [0, 1, 2] and len(spec.grid_points()) == len(variants())


def test_affectlab_sweep_gives_each_variant_the_rows_of_the_ablation_and_knows_its_metric():
    """``affectlab sweep --config configs/sweep/conclugen_ablation.yaml`` resolves the per-variant lists per trial
    as the ablation does (a regression would run a floor, the ceiling and single-modality probes per variant)."""
    from affectlab.experiments.sweep import recipe_metric_names, recipe_trial_fields
    from affectlab.experiments.sweep_spec import load_spec

    spec = load_spec(read_sweep().path)
    assert spec.metric in recipe_metric_names(spec)
    for name in variants():
        assert recipe_trial_fields({**spec.recipe, "variant": name}) == trial_fields(read_sweep().recipe, name)
    assert recipe_trial_fields({**spec.recipe, "variant": "simclr"})["ceiling"] is False


def record(store: Path, variant: str, seed: int, rows: list[Row], digest_of: RecipeOptions | None = None) -> RecipeOptions:
    """A finished recipe's record as Recipe writes it (pretraining done, rows, the digest of its options)."""
    options = RecipeOptions(variant, "synth", seed=seed, fractions=FRACTIONS, store=str(store), quiet=True)
    made = RecipeRecord(variant, "synth", seed, pretrain_run_id=f"pre{variant}{seed}", pretrain_done=True, rows=rows,
                        seconds=600.0, config_digest=recipe_digest(digest_of or options))
    made.save(Path(store) / "recipes" / f"{variant}-synth-seed{seed}.json")
    return options


def rows_of(variant: str, seed: int, floor: bool, reference: bool) -> list[Row]:
    rows = []
    for fraction in FRACTIONS:
        rows.append(Row(variant, fraction, 0.5 + 0.1 * fraction + 0.01 * seed, 0.4, f"{variant}{seed}{fraction}"))
        if floor:
            rows.append(Row(floor_name(variant), fraction, 0.3 + 0.01 * seed, 0.3, f"floor{variant}{seed}{fraction}"))
    if reference:
        rows += [Row(f"{variant} {m} only", 1.0, 0.4, 0.4, f"{m}{seed}") for m in ("video", "audio", "text")]
        rows.append(Row(CEILING, 1.0, 0.8 + 0.01 * seed, 0.8, f"ceiling{seed}"))
    return rows


def test_the_results_writer_reads_the_records_and_writes_the_ablations_own_section(tmp_path):
    store, out = tmp_path / "runs", tmp_path / "results.md"
    out.write_text(f"# Results\n\nbefore\n\n{START}\nold table\n{END}\n")
    expected = []
    for seed in (0, 1):
        for name in (REFERENCE, "contrast_only", "simclr"):
            rows = rows_of(name, seed, floor=name != "contrast_only", reference=name == REFERENCE)
            if name == "contrast_only":  # a row its recipe does not give in the ablation: never read
                rows.append(Row(f"{name} fine-tuned", 1.0, 0.99, 0.99, "ft"))
            record(store, name, seed, rows)
            expected += [r for r in rows if r.run_id != "ft"]
    section = run_ablation([REFERENCE, "simclr", "contrast_only"], [0, 1], list(FRACTIONS), out, "affectlab ablation",
                           store=str(store), from_records=True)
    names = [REFERENCE, "contrast_only", "simclr"]
    assert section == markdown(expected, list(FRACTIONS), names, "affectlab ablation", [0, 1], 6 * 600 / 60, "",
                               "ablation_label_efficiency.png")
    text = out.read_text()
    assert "old table" not in text and section in text and "0.99" not in section
    assert (tmp_path / "ablation_label_efficiency.png").is_file()
    assert f"| {FLOOR} | " in section and "| floor (random init, simclr) | " in section and f"| {CEILING} | " in section


def test_a_record_made_with_other_options_is_refused_and_an_incomplete_one_is_named(tmp_path):
    store = tmp_path / "runs"
    other = RecipeOptions("simclr", "synth", seed=0, fractions=FRACTIONS, store=str(store), probe_steps=7)
    options = record(store, "simclr", 0, rows_of("simclr", 0, True, False), digest_of=other)
    with pytest.raises(ConfigError, match="simclr-synth-seed0.json was made with other configs or options"):
        recipe_rows(Recipe(options))
    options = record(store, "simclr", 0, rows_of("simclr", 0, False, False))  # its floor's rows not yet done
    found, lacking = recipe_rows(Recipe(RecipeOptions(**{**asdict(options), "floor": True, "ceiling": False})))
    assert [r.representation for r in found] == ["simclr", "simclr"]
    assert lacking == ["floor (random init, simclr) @ 0.1", "floor (random init, simclr) @ 1"]
    out = tmp_path / "results.md"
    out.write_text(f"{START}\nthe whole table\n{END}\n")
    with pytest.raises(ConfigError, match=r"1 of 1 recipes are not complete \(.*simclr-synth-seed0.json lacks floor "
                                          r"\(random init, simclr\) @ 0.1.*nothing was written"):
        run_ablation(["simclr"], [0], list(FRACTIONS), out, "affectlab ablation --from-records", store=str(store),
                     from_records=True)
    assert out.read_text() == f"{START}\nthe whole table\n{END}\n"
