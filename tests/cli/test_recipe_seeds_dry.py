"""``affectlab recipe ... --seeds S1 S2 --dry_run``: the recipe once per seed, each run a dry run in a ``-dry``
experiment, recorded apart from real recipes, and the mean ± std per row over the seeds."""

from __future__ import annotations

import json
import re
import statistics

import pytest

from conftest import TINY_DATA, affectlab, affectlab_inline, mlflow_client

from affectlab.errors import ConfigError
from affectlab.experiments.recipe import Recipe, RecipeOptions, Row


def test_dry_recipe_per_seed_is_recorded_apart_with_mean_and_std(tiny_data, tmp_path):
    args = ["recipe", "contrast_only", "synth", "--seeds", "0", "1", "--dry_run", "--fractions", "1",
            "--no-floor", "--no-ceiling", "--data-root", str(tiny_data), "--store", str(tmp_path), "--quiet",
            "--model.init_args.kmeans_queue_size", "2"]
    for key, value in TINY_DATA.items():
        args += [f"--data.init_args.{key}", str(value)]
    result = affectlab(*args)
    records = sorted((tmp_path / "recipes").glob("*.json"))
    assert [r.name for r in records] == ["contrast_only-synth-seed0-dry.json", "contrast_only-synth-seed1-dry.json"]
    rows = []
    for record in records:
        data = json.loads(record.read_text())
        assert data["dry_run"] is True
        rows += [r for r in data["rows"] if r["representation"] == "contrast_only"]
    client = mlflow_client(tmp_path)
    names = {e.name for e in client.search_experiments()} - {"Default"}
    assert names and all(name.endswith("-dry") for name in names)  # no run in a real experiment
    run = client.get_run(rows[0]["run_id"])
    assert run.data.tags["affectlab.dry_run"] == "true"
    accs = [r["acc"] for r in rows]
    cells = [re.findall(r"(\d\.\d{3}) ± (\d\.\d{3})", line) for line in result.stdout.splitlines()
             if line.strip("│ ").startswith("contrast_only")]
    mean, std = map(float, next(c for c in cells if c)[0])  # the acc column of the seeds table's row
    assert mean == pytest.approx(statistics.fmean(accs), abs=1e-3)  # printed with 3 decimals
    assert std == pytest.approx(statistics.stdev(accs), abs=1e-3)  # printed with 3 decimals
    assert "mean ± std over seeds 0, 1 (DRY RUN)" in result.stdout
    # one group of kind seeds: its parent holds the row's mean and std, every run of both recipes is its child
    parent = client.get_run(re.search(r"^parent_run_id: ([0-9a-f]{32})$", result.stdout, re.M).group(1))
    assert parent.data.tags["affectlab.group.kind"] == "seeds" and parent.info.status == "FINISHED"
    assert client.get_experiment(parent.info.experiment_id).name == "recipe-seeds-dry"
    assert parent.data.metrics["probe/1/acc_mean"] == pytest.approx(statistics.fmean(accs))
    assert parent.data.metrics["probe/1/acc_std"] == pytest.approx(statistics.stdev(accs))
    for record in records:
        data = json.loads(record.read_text())
        for run_id in [data["pretrain_run_id"], *(r["run_id"] for r in data["rows"])]:
            tags = client.get_run(run_id).data.tags
            assert tags["mlflow.parentRunId"] == parent.info.run_id and tags["affectlab.seed"] == str(data["seed"])


def test_a_real_record_is_never_read_back_as_a_dry_one(tmp_path):
    dry = Recipe(RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path), dry_run=True))
    real = Recipe(RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path)))
    assert dry.record_path != real.record_path and dry.record_path.name.endswith("-dry.json")
    real.record.rows.append(Row("contrast_only", 1.0, 0.5, 0.5, "run"))
    real.record.save(dry.record_path)  # a real record where the dry one would be
    with pytest.raises(ConfigError, match="records a real recipe and this one is dry"):
        Recipe(RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path), dry_run=True))


def test_recipe_refuses_seed_and_seeds_together(tmp_path):
    result = affectlab_inline("recipe", "contrast_only", "synth", "--seed", "1", "--seeds", "0", "1", check=False)
    assert result.returncode == 2 and "not allowed with argument --seed" in result.stderr


def test_dry_run_among_the_run_options_makes_a_dry_recipe(tmp_path):
    """A sweep over recipes passes --dry_run with the run options: the recipe is dry, its record kept apart."""
    for extra in (["--dry_run"], ["--dry_run", "true"], ["--dry_run=true", "--trainer.max_epochs", "1"]):
        recipe = Recipe(RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path), extra=extra))
        assert recipe.options.dry_run and recipe.record_path.name.endswith("-dry.json")
        assert not any(o.startswith("--dry_run") for o in recipe.options.extra)
    real = Recipe(RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path), extra=["--dry_run", "false"]))
    assert not real.options.dry_run and real.options.extra == []
