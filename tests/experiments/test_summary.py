"""``affectlab summarize``: groups built in a real MLflow store (groups.py's parent and children, metrics logged
with the store's client), a real Optuna study for the importances, and one group of real tiny training runs."""

from __future__ import annotations

import csv

import pytest

from affectlab.errors import ConfigError
from affectlab.experiments.summary import (
    MIN_IMPORTANCE_TRIALS,
    default_direction,
    find_group,
    log_spaced,
    param_figure,
    study_importances,
    summarize,
    write_summary,
)
from affectlab.runs import groups
from affectlab.runs.lifecycle import PARENT_TAG
from affectlab.runs.store import RunStore
from conftest import affectlab_inline

# (lr, fusion) -> seed -> test/acc: three seeds per configuration, one run that failed, one without the metric
RESULTS = {
    (0.001, "concat"): {0: 0.50, 1: 0.60, 2: 0.55},
    (0.01, "concat"): {0: 0.70, 1: 0.72, 2: 0.74},
    (0.1, "concat"): {0: 0.30, 1: 0.20, 2: 0.25},
    (0.01, "gated"): {0: 0.80, 1: 0.60, 2: 0.70},
}


def child(store: RunStore, parent: str, config: dict, seed: int, metrics: dict, status: str = "FINISHED",
          trial: int | None = None, tags: dict | None = None) -> str:
    """A child run as a group member is made: the parent tag, the group config and seed tags, its metrics; a
    sweep's trials also carry the study's tag (as the sweep's own runs do)."""
    tags = {PARENT_TAG: parent, groups.CONFIG_TAG: groups.config_key(config), "affectlab.seed": str(seed),
            **(tags or {})}
    if trial is not None:
        tags["affectlab.trial"] = str(trial)
    experiment_id = store.get_run(parent).info.experiment_id  # groups.child_runs looks in the parent's experiment
    run_id = store.client.create_run(experiment_id, run_name=f"trial-{trial}-seed{seed}", tags=tags).info.run_id
    for key, value in metrics.items():
        store.client.log_metric(run_id, key, value)
    store.client.set_terminated(run_id, status=status)
    return run_id


def optuna_study(storage: str, name: str, trials: int) -> None:
    """A real study whose objective depends on lr only: fANOVA must rank lr above fusion."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        lr = trial.suggest_float("model.lr", 1e-4, 1e-1, log=True)
        trial.suggest_categorical("model.fusion", ["concat", "gated"])
        return -abs(lr - 0.01)

    study.optimize(objective, n_trials=trials)


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    """A sweep parent with 4 configurations x 3 seeds, a failed member and one without the metric."""
    folder = tmp_path_factory.mktemp("summary-store")
    store = RunStore.resolve(str(folder / "runs"))
    storage = f"sqlite:///{folder / 'studies.db'}"
    parent = groups.open_parent_run(store, "sweep-exp", "grid", "sweep", {
        "affectlab.sweep.study": "lr_grid", "affectlab.sweep.storage": storage,
        "affectlab.sweep.metric": "test/acc", "affectlab.sweep.direction": "maximize"})
    ids = {}
    for trial, ((lr, fusion), seeds) in enumerate(RESULTS.items()):
        for seed, acc in seeds.items():
            ids[(lr, fusion, seed)] = child(store, parent, {"model.lr": lr, "model.fusion": fusion}, seed,
                                            {"test/acc": acc, "test/loss": 1 - acc}, trial=trial,
                                            tags={"affectlab.sweep.study": "lr_grid"})
    failed = child(store, parent, {"model.lr": 1.0, "model.fusion": "concat"}, 0, {}, status="FAILED", trial=4)
    no_metric = child(store, parent, {"model.lr": 1.0, "model.fusion": "gated"}, 0, {"val/loss": 2.0}, trial=5)
    pruned = child(store, parent, {"model.lr": 1.0, "model.fusion": "gated"}, 1, {"test/acc": 0.99}, trial=6,
                   tags={"affectlab.sweep.pruned": "epoch 1"})
    groups.end_parent_run(store, parent)
    optuna_study(storage, "lr_grid", MIN_IMPORTANCE_TRIALS + 4)
    sweep_file = folder / "sweeps" / "lr_grid_file.yaml"
    sweep_file.parent.mkdir()
    sweep_file.write_text("name: lr_grid\nmetric: test/acc\n")
    return {"store": store, "folder": folder, "parent": parent, "ids": ids, "failed": failed,
            "no_metric": no_metric, "pruned": pruned, "sweep_file": sweep_file}


def test_rows_are_configurations_sorted_by_their_mean_over_seeds(sweep_store):
    summary = summarize(find_group(sweep_store["store"], sweep_store["parent"]))
    assert summary.metric == "test/acc" and summary.direction == "maximize"
    assert summary.params == ["model.fusion", "model.lr"]
    assert [(r.config["model.lr"], r.config["model.fusion"]) for r in summary.rows] == [
        (0.01, "concat"), (0.01, "gated"), (0.001, "concat"), (0.1, "concat")]  # 0.72 > 0.70 > 0.55 > 0.25
    best = summary.rows[0]
    assert best.mean == pytest.approx(0.72) and best.std == pytest.approx(0.02)
    assert summary.rows[1].std == pytest.approx(0.1)
    assert sorted(best.seeds) == ["0", "1", "2"]
    assert set(best.run_ids) == {sweep_store["ids"][(0.01, "concat", s)] for s in range(3)}
    assert dict(summary.left_out) == {sweep_store["failed"]: "FAILED", sweep_store["pruned"]: "pruned (epoch 1)",
                                      sweep_store["no_metric"]: "finished without test/acc"}


def test_a_loss_is_minimised_and_a_metric_no_run_logs_is_refused(sweep_store):
    group = find_group(sweep_store["store"], sweep_store["parent"])
    summary = summarize(group, "test/loss", "minimize")
    assert [r.mean for r in summary.rows] == pytest.approx([0.28, 0.30, 0.45, 0.75])
    with pytest.raises(ConfigError, match="test/f1_macro.*test/acc"):
        summarize(group, "test/f1_macro")
    assert default_direction("val/loss") == default_direction("test/au_mae") == "minimize"
    assert default_direction("test/acc") == default_direction("test/f1_weighted") == "maximize"


def test_the_sweep_file_finds_its_parent_and_gets_table_pictures_and_importances(sweep_store, tmp_path):
    result = affectlab_inline("summarize", str(sweep_store["sweep_file"]), "--store", str(sweep_store["folder"] / "runs"))
    out = sweep_store["sweep_file"].parent
    stem = "lr_grid-summary"
    assert f"written: {out / (stem + '.md')}" in result.stdout
    rows = list(csv.DictReader((out / f"{stem}.csv").open()))
    assert [r["model.lr"] for r in rows] == ["0.01", "0.01", "0.001", "0.1"]
    assert rows[0]["test/acc mean"] == "0.7200" and rows[0]["n"] == "3"
    markdown = (out / f"{stem}.md").read_text()
    assert "| 1 | concat | 0.01 | 0.7200 ± 0.0200 | 3 |" in markdown
    assert sweep_store["failed"] in markdown  # listed as left out
    pictures = {p.name for p in out.glob("*.png")}
    assert pictures == {f"{stem}-model.lr.png", f"{stem}-model.fusion.png", f"{stem}-importances.png"}
    assert f"parameter importances from {MIN_IMPORTANCE_TRIALS + 4} completed trials" in result.stdout
    importances, _ = study_importances(find_group(sweep_store["store"], sweep_store["parent"]))
    assert importances["model.lr"] > 0.8 > importances["model.fusion"]  # lr alone drives the study's objective
    logged = sweep_store["store"].artifact_names(sweep_store["parent"], "summary")
    assert set(logged) == {f"{stem}.md", f"{stem}.csv", *pictures}


def test_too_few_trials_skip_the_importances_with_the_reason(sweep_store, tmp_path):
    store = sweep_store["store"]
    storage = f"sqlite:///{sweep_store['folder'] / 'studies.db'}"
    optuna_study(storage, "small", 3)
    parent = groups.open_parent_run(store, "e", "small", "sweep", {
        "affectlab.sweep.study": "small", "affectlab.sweep.storage": storage})
    for seed in (0, 1):
        child(store, parent, {"lr": 0.1}, seed, {"test/acc": 0.5})
    written = write_summary(store, summarize(find_group(store, parent)), tmp_path / "out")
    assert written.notes == [f"parameter importances skipped: study 'small' has 3 completed trials; parameter "
                             f"importances need at least {MIN_IMPORTANCE_TRIALS}"]
    assert (tmp_path / "out" / "small-summary.md").is_file()


def test_a_seeds_group_is_one_row_and_an_experiment_groups_by_the_params_that_differ(sweep_store):
    store = sweep_store["store"]
    parent = groups.open_parent_run(store, "seeds-exp", "three seeds", "seeds")
    for seed, acc in enumerate((0.4, 0.5, 0.6)):
        child(store, parent, {}, seed, {"test/acc": acc})
    summary = summarize(find_group(store, parent))
    assert summary.group.kind == "seeds" and summary.params == [] and len(summary.rows) == 1
    assert summary.rows[0].mean == pytest.approx(0.5) and summary.rows[0].std == pytest.approx(0.1)
    # an experiment's top-level runs: the seed and the run's own names are no configuration
    for lr, seed, acc in ((0.1, 0, 0.3), (0.1, 1, 0.5), (0.01, 0, 0.9)):
        run_id = store.create_run("plain", f"run-{lr}-{seed}", {"affectlab.seed": str(seed)})
        for key, value in {"model.lr": lr, "seed_everything": seed, "run_name": f"run-{lr}-{seed}", "trainer.max_epochs": 2}.items():
            store.client.log_param(run_id, key, value)
        store.client.log_metric(run_id, "test/acc", acc)
        store.client.set_terminated(run_id)
    summary = summarize(find_group(store, "plain"))
    assert summary.group.kind == "experiment" and summary.params == ["model.lr"]
    assert [(r.config, round(r.mean, 3), len(r.values)) for r in summary.rows] == [
        ({"model.lr": 0.01}, 0.9, 1), ({"model.lr": 0.1}, 0.4, 2)]
    written = write_summary(store, summary)
    assert not written.logged and written.files[0] == sweep_store["folder"] / "runs" / "summaries" / "plain-summary.md"


def test_an_unknown_target_or_a_sweep_that_never_ran_is_refused_with_the_fix(sweep_store, tmp_path):
    store = sweep_store["store"]
    with pytest.raises(ConfigError, match="'nothing' is not a sweep file, a run id or an experiment"):
        find_group(store, "nothing")
    sweep = tmp_path / "never.yaml"
    sweep.write_text("metric: test/acc\n")
    with pytest.raises(ConfigError, match="study 'never'.*affectlab sweep --config"):
        find_group(store, str(sweep))
    result = affectlab_inline("summarize", "nothing", "--store", str(sweep_store["folder"] / "runs"), check=False)
    assert result.returncode == 2 and "configuration error: 'nothing' is not a sweep file" in result.stderr


def test_log_spaced_numbers_get_a_log_axis():
    assert log_spaced([1e-4, 1e-3, 1e-2]) and not log_spaced([16, 32, 64]) and not log_spaced([0.0, 1.0])



def test_a_log_spaced_parameter_is_drawn_on_a_log_axis_and_a_category_as_bars(sweep_store):
    summary = summarize(find_group(sweep_store["store"], sweep_store["parent"]))
    lr, fusion = param_figure(summary, "model.lr"), param_figure(summary, "model.fusion")
    assert lr.axes[0].get_xscale() == "log" and len(fusion.axes[0].patches) == 2  # concat, gated
    assert [round(p.get_height(), 3) for p in fusion.axes[0].patches] == [round((0.55 + 0.72 + 0.25) / 3, 3), 0.7]


@pytest.fixture(scope="module")
def trained_group(tiny_data, tmp_path_factory):
    """Two configurations x two seeds of the tiny supervised baseline, real runs, members of one sweep parent."""
    from affectlab.experiments.train import train
    from conftest import CONFIGS, TEST_CONFIGS, TINY_DATA

    folder = tmp_path_factory.mktemp("summary-trained")
    store = RunStore.resolve(str(folder / "runs"))
    parent = groups.open_parent_run(store, "tiny-grid", "fusion grid", "sweep", {
        "affectlab.sweep.study": "fusion_grid", "affectlab.sweep.metric": "test/acc",
        "affectlab.sweep.direction": "maximize"})
    overrides = {"data": CONFIGS / "data/synth.yaml", **{f"data.init_args.{k}": v for k, v in TINY_DATA.items()}}
    overrides |= {"data.init_args.root": tiny_data, "trainer.accelerator": "cpu", "trainer.max_epochs": 1,
                  "trainer.limit_train_batches": 2, "trainer.enable_progress_bar": False,
                  "trainer.enable_model_summary": False, "store": folder / "runs", "exp_name": "tiny-grid"}
    results = {}
    for trial, dim in enumerate((16, 32)):
        for seed in (0, 1):
            config = {"model.init_args.fusion_dim": dim}
            tags = {groups.CONFIG_TAG: groups.config_key(config), "affectlab.trial": str(trial)}
            result = train([TEST_CONFIGS / "tiny_supervised.yaml"],
                           {**overrides, "model.init_args.fusion_dim": dim, "seed_everything": seed},
                           CONFIGS / "model/supervised.yaml", extra=groups.child_arguments(parent, tags))
            results[(dim, seed)] = result
    groups.end_parent_run(store, parent)
    return {"store": store, "parent": parent, "results": results, "folder": folder}


def test_real_training_runs_are_summarised_per_configuration_over_their_seeds(trained_group):
    summary = summarize(find_group(trained_group["store"], trained_group["parent"]))
    assert summary.params == ["model.init_args.fusion_dim"] and not summary.left_out
    results = trained_group["results"]
    by_dim = {row.config["model.init_args.fusion_dim"]: row for row in summary.rows}
    for dim in (16, 32):
        row = by_dim[dim]
        assert set(row.run_ids) == {results[(dim, s)].run_id for s in (0, 1)}
        assert sorted(row.seeds) == ["0", "1"]  # the runs' own affectlab.seed tags
        assert row.mean == pytest.approx(sum(results[(dim, s)].metrics["test"]["test/acc"] for s in (0, 1)) / 2)
    assert summary.rows[0].mean >= summary.rows[1].mean
    written = write_summary(trained_group["store"], summary, trained_group["folder"] / "out")
    assert written.notes == ["parameter importances skipped: no Optuna study: fusion_grid is a sweep, not a sweep "
                             "with affectlab.sweep.study and affectlab.sweep.storage"]
    assert "fusion_grid-summary.csv" in trained_group["store"].artifact_names(trained_group["parent"], "summary")


def test_a_recipe_sweeps_members_are_read_from_its_study(sweep_store):
    """A recipe trial x seed is several runs (pretraining, probes, floor) with one config tag, and its metric is a
    recipe row no run logs under that name: the study's trials record each seed's run and value."""
    import optuna

    store, storage = sweep_store["store"], f"sqlite:///{sweep_store['folder'] / 'studies.db'}"
    parent = groups.open_parent_run(store, "recipe-sweeps", "ablation", "sweep", {
        "affectlab.sweep.study": "ablation", "affectlab.sweep.storage": storage,
        "affectlab.sweep.metric": "probe/1/acc", "affectlab.sweep.direction": "maximize"})
    study = optuna.create_study(study_name="ablation", storage=storage, direction="maximize")
    values = {"conclugen": (0.8, 0.7), "simclr": (0.3, 0.4)}
    for variant, accs in values.items():
        trial = study.ask()
        trial.suggest_categorical("variant", list(values))
        runs = {}
        for seed, acc in enumerate(accs):
            pretrain = child(store, parent, {"variant": variant}, seed, {"train/loss": 1.0})
            child(store, parent, {"variant": variant}, seed, {"test/acc": acc})  # the probe
            child(store, parent, {"variant": variant}, seed, {"test/acc": 0.1})  # its floor: same tags
            runs[str(seed)] = {"run_id": pretrain, "value": acc}
        trial.set_user_attr("affectlab.runs", runs)
        study.tell(trial, sum(accs) / 2)
    summary = summarize(find_group(store, parent))
    assert [(r.config, round(r.mean, 3), round(r.std, 4), r.seeds) for r in summary.rows] == [
        ({"variant": "conclugen"}, 0.75, 0.0707, ["0", "1"]), ({"variant": "simclr"}, 0.35, 0.0707, ["0", "1"])]


def test_the_names_read_here_are_the_ones_the_sweep_writes():
    """summarize reads what ``affectlab sweep`` writes: one spelling of each tag and attribute on both sides."""
    sweep = pytest.importorskip("affectlab.experiments.sweep", reason="affectlab sweep (issue 18.1) not merged")
    from affectlab.experiments import summary

    for name in ("STUDY_TAG", "STORAGE_TAG", "METRIC_TAG", "DIRECTION_TAG", "PRUNED_TAG", "RUNS_ATTR"):
        assert getattr(sweep, name) == getattr(summary, name), name
