"""``affectlab recipe clup synth``: the source model, SwAV, the CluP student, SHOT and the target oracle as runs of
one recipe on tiny AffectSynth domains, the table side by side, resumption from the record, and its refusals."""

from __future__ import annotations

import json
import statistics

import pytest

from conftest import CONFIGS, ROOT, affectlab, affectlab_inline, mlflow_client

from affectlab.errors import ConfigError
from affectlab.experiments.clup_recipe import (
    ClupRecipe,
    ClupRecipeOptions,
    StageRecord,
    group_seeds,
    source_architecture,
    split_stage_options,
)


def test_options_go_to_every_run_or_to_the_stage_they_name():
    common, staged = split_stage_options(["--data.init_args.num_clips", "96", "--clup.model.init_args.mode",
                                          "soft-purity", "--shot.trainer.max_epochs=3", "--trainer.limit_train_batches", "2"])
    assert common == ["--data.init_args.num_clips", "96", "--trainer.limit_train_batches", "2"]
    assert staged["clup"] == ["--model.init_args.mode", "soft-purity"] and staged["shot"] == ["--trainer.max_epochs=3"]
    assert staged["source"] == staged["swav"] == staged["oracle"] == []
    with pytest.raises(ConfigError, match="five different models; name the stage.*--clup.model.init_args.dropout"):
        split_stage_options(["--model.init_args.dropout", "0.1"])


def test_the_source_architecture_follows_into_the_models_built_from_its_weights():
    options = ["--model.init_args.label_smoothing", "0.2", "--trainer.max_epochs", "3", "--model.init_args.dropout=0.1"]
    assert source_architecture(options, "--model.init_args.source.init_args.") == [
        "--model.init_args.source.init_args.label_smoothing", "0.2", "--model.init_args.source.init_args.dropout=0.1"]


def test_only_synth_has_the_recipe():
    result = affectlab_inline("recipe", "clup", "expw", check=False)
    assert result.returncode != 0 and "'expw' has no CluP recipe" in result.stdout + result.stderr


def test_a_record_made_with_other_options_is_refused(tmp_path):
    first = ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=2))
    first.record.stages["source"] = StageRecord("0" * 32, True, {"test/acc": 0.5})
    first.record.save(first.record_path)
    assert json.loads(first.record_path.read_text())["config_digest"]
    ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=2))  # the same: read back
    with pytest.raises(ConfigError, match="other configs or options.*Delete it"):
        ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=3))
    dry = ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=3, extra=["--dry_run"]))
    assert dry.options.dry_run and dry.record_path.name == "clup-synth-seed0-dry.json"


# Tiny domains and runs: 64 faces of 32 pixels per domain, one epoch of 2 batches a stage; SwAV's crops at the
# faces' size and ResNet-18's standard stem (as docs/results.md's runs). Every stage still runs for real (its own run, its best.ckpt, its test on the target).
TINY = ["--data.init_args.num_clips", "64", "--data.init_args.num_identities", "8", "--data.init_args.image_size", "32",
        "--data.init_args.batch_size", "8", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1", "--swav.model.init_args.large_crop_size", "32",
        "--swav.model.init_args.small_crop_size", "16", "--clup.model.init_args.num_prototypes", "8",
        # the standard stem (stride 2, max-pool) for SwAV and the student: CluP's stride-1 one costs 16 times as much
        "--swav.model.init_args.encoder.init_args.stem", "standard", "--clup.model.init_args.student.init_args.stem",
        "standard"]
EPOCHS = {f"{stage}_epochs": 1 for stage in ("source", "swav", "clup", "shot", "oracle")}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    store = tmp_path_factory.mktemp("clup-recipe")
    args = ["recipe", "clup", "synth", "--seed", "0", "--store", str(store), "--data.init_args.root",
            str(store / "data"), *TINY, "--quiet", *(f"--{k.replace('_', '-')}={v}" for k, v in EPOCHS.items())]
    return store, args, affectlab(*args, timeout=900)


def test_the_recipe_runs_every_stage_and_prints_them_side_by_side(recipe):
    store, _, result = recipe
    record = json.loads((store / "recipes/clup-synth-seed0.json").read_text())
    assert set(record["stages"]) == {"source", "source_only", "swav", "clup", "shot", "oracle"}
    assert all(stage["done"] and stage["run_id"] for stage in record["stages"].values())
    table = [line for line in result.stdout.splitlines() if line.startswith("│")]
    for name in ("source only", "CluP", "SHOT", "target oracle"):
        (line,) = [row for row in table if row.strip("│ ").startswith(name)]
        stage = {"source only": "source_only", "CluP": "clup", "SHOT": "shot", "target oracle": "oracle"}[name]
        assert f"{record['stages'][stage]['metrics']['test/acc']:.3f}" in line
        assert f"{stage} run_id: {record['stages'][stage]['run_id']}" in result.stdout
    client = mlflow_client(store)
    runs = {stage: client.get_run(s["run_id"]) for stage, s in record["stages"].items()}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert {client.get_experiment(run.info.experiment_id).name for run in runs.values()} == {"clup-synth"}
    # source only: the source run's weights tested on the target, a cross-domain child of the source run
    assert runs["source_only"].data.tags["mlflow.parentRunId"] == record["stages"]["source"]["run_id"]
    assert runs["source_only"].data.params["data.init_args.synth_options.styles"] != runs["source"].data.params[
        "data.init_args.synth_options.styles"]
    # CluP and SHOT start from the source's best.ckpt (CluP's student from SwAV's), the oracle trains on the target
    source_ckpt = next(store.glob(f"artifacts/*/{record['stages']['source']['run_id']}/artifacts/checkpoints/best.ckpt"))
    swav_ckpt = next(store.glob(f"artifacts/*/{record['stages']['swav']['run_id']}/artifacts/checkpoints/best.ckpt"))
    assert runs["shot"].data.params["model.init_args.source_checkpoint"] == str(source_ckpt)
    assert runs["clup"].data.params["model.init_args.teacher_checkpoint"] == str(source_ckpt)
    assert runs["clup"].data.params["model.init_args.student_init"] == str(swav_ckpt)
    assert runs["oracle"].data.params["data.init_args.synth_seed"] == runs["source_only"].data.params["data.init_args.synth_seed"]


def test_a_finished_recipe_runs_nothing_again(recipe):
    store, args, first = recipe
    client = mlflow_client(store)
    before = {r.info.run_id for e in client.search_experiments() for r in client.search_runs([e.experiment_id])}
    again = affectlab_inline(*args)  # every stage recorded done: nothing trains, so it may run in process
    after = {r.info.run_id for e in client.search_experiments() for r in client.search_runs([e.experiment_id])}
    assert after == before
    rows = [line for line in first.stdout.splitlines() if line.startswith("│")]
    assert rows and all(row in again.stdout for row in rows)  # the same table, read from the record


def test_seeds_make_one_group_with_mean_and_std(recipe):
    """Two recipes' records (the second seed's made from the first's numbers, shifted) grouped as --seeds does."""
    store, _, _ = recipe
    options = dict(store=str(store), extra=["--data.init_args.root", str(store / "data"), *TINY], quiet=True, **EPOCHS)
    first, second = ClupRecipe(ClupRecipeOptions(seed=0, **options)), ClupRecipe(ClupRecipeOptions(seed=0, **options))
    second.options.seed = 1
    for stage in second.record.stages.values():
        stage.metrics = {key: value + 0.1 for key, value in stage.metrics.items()}
    parent = group_seeds([first, second])
    client = mlflow_client(store)
    run = client.get_run(parent)
    assert run.data.tags["affectlab.group.kind"] == "seeds" and run.info.status == "FINISHED"
    source_only = first.record.stages["source_only"].metrics["test/acc"]
    assert run.data.metrics["source_only/acc_mean"] == pytest.approx(source_only + 0.05)
    assert run.data.metrics["source_only/acc_std"] == pytest.approx(statistics.stdev([source_only, source_only + 0.1]))
    assert {"CluP/acc_mean", "SHOT/acc_mean", "target_oracle/f1_weighted_std"} <= set(run.data.metrics)
    for stage, record in first.record.stages.items():
        tags = client.get_run(record.run_id).data.tags
        assert tags["affectlab.seed"] == "1" and tags["affectlab.group.config"] == "{}"
        assert tags["mlflow.parentRunId"] == (parent if stage != "source_only" else first.record.stages["source"].run_id)


@pytest.mark.slow
def test_seeds_through_the_command_at_a_larger_size(tmp_path):
    """``--seeds 0 1`` end to end through the command (each seed's recipe, then one group), 240 faces a domain."""
    args = ["recipe", "clup", "synth", "--seeds", "0", "1", "--store", str(tmp_path), "--data.init_args.root",
            str(tmp_path / "data"), *TINY, "--data.init_args.num_clips", "240", "--quiet",
            *(f"--{k.replace('_', '-')}=2" for k in EPOCHS)]
    result = affectlab(*args, timeout=3600)
    assert "mean ± std over seeds 0, 1" in result.stdout
    parent = mlflow_client(tmp_path).get_run(result.stdout.split("parent_run_id: ")[1].split()[0])
    assert parent.data.tags["affectlab.seeds"] == "[0, 1]" and "CluP/acc_mean" in parent.data.metrics
    for seed in (0, 1):
        record = json.loads((tmp_path / f"recipes/clup-synth-seed{seed}.json").read_text())
        assert all(stage["done"] for stage in record["stages"].values())


def test_the_ablation_sweep_trains_every_cell_from_a_recipes_source_and_swav(recipe):
    """configs/sweep/clup_ablation.yaml as a dry sweep (2 batches a split) from the recipe's source and SwAV runs."""
    store, _, _ = recipe
    record = json.loads((store / "recipes/clup-synth-seed0.json").read_text())
    source, swav = (next(store.glob(f"artifacts/*/{record['stages'][s]['run_id']}/artifacts/checkpoints/best.ckpt"))
                    for s in ("source", "swav"))
    data = TINY[:TINY.index("--trainer.limit_train_batches")]
    result = affectlab("sweep", "--config", str(CONFIGS / "sweep/clup_ablation.yaml"), "--dry_run", "--store", str(store),
                       "--model.init_args.teacher_checkpoint", str(source), "--model.init_args.student_init", str(swav),
                       "--data.init_args.root", str(store / "data"), *data, "--model.init_args.num_prototypes", "8",
                       "--model.init_args.student.init_args.stem", "standard", "--model.init_args.kmeans_restarts", "1",
                       "--trainer.enable_progress_bar", "false", cwd=ROOT, timeout=900)
    assert "4 trials" in result.stdout
    client = mlflow_client(store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "clup-synth-dry"]
    cells = {(r.data.params["model.init_args.mode"], r.data.params["model.init_args.labeled_samples_size"])
             for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("affectlab.trial") is not None
             and r.info.status == "FINISHED"}
    assert cells == {(m, s) for m in ("purity", "soft-purity") for s in ("0.1", "0.3")}
