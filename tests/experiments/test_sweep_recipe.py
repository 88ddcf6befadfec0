"""The second base kind, ``base: {recipe: {...}}`` (issue 18 point 6's ablation as a sweep): each trial x seed
runs the ConCluGen recipe, its rows are the trial's metrics, its runs become the sweep's children, and its
record is the one ``affectlab recipe`` with the same options reads (so existing records stay valid)."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, TINY_DATA, affectlab, mlflow_client

from affectlab.experiments.recipe import Recipe, RecipeOptions


@pytest.mark.slow  # a pretraining and a probe: about a minute on 2 cores
def test_a_recipe_sweep_runs_the_recipe_per_trial_and_seed(tiny_data, tmp_path):
    recipe = {"variant": "contrast_only", "dataset": "synth", "fractions": [1.0], "floor": False, "ceiling": False,
              "pretrain_epochs": 1, "probe_steps": 3, "data_root": str(tiny_data)}
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump({"name": "ablation", "base": {"recipe": recipe}, "metric": "probe/1/acc",
                                    "seeds": [0], "space": {"grid": {"variant": ["contrast_only"]}}}, sort_keys=False))
    store = tmp_path / "runs"
    extra = [t for key, value in TINY_DATA.items() for t in (f"--data.init_args.{key}", str(value))]
    extra += ["--model.init_args.kmeans_queue_size", "2"]
    affectlab("sweep", "--config", str(path), "--store", str(store), *extra, cwd=ROOT, timeout=600)
    import optuna

    (trial,) = optuna.load_study(study_name="ablation", storage=f"sqlite:///{store / 'sweeps.db'}").trials
    entry = trial.user_attrs["affectlab.runs"]["0"]
    options = RecipeOptions(**{**recipe, "fractions": (1.0,)}, seed=0, store=str(store), extra=extra)
    standalone = Recipe(options)  # 'affectlab recipe contrast_only synth --seed 0 ...' reads the same record
    row = standalone.record.find("contrast_only", 1.0)
    assert row is not None and trial.state.name == "COMPLETE" and trial.value == row.acc == entry["value"]
    assert entry["record"] == str(standalone.record_path)
    client = mlflow_client(store)
    parent = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
              if r.data.tags.get("affectlab.group.kind") == "sweep"][0]
    for run_id in (row.run_id, standalone.record.pretrain_run_id):  # pretraining and probe: the trial's children
        tags = client.get_run(run_id).data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id and tags["affectlab.trial"] == "0"
        assert tags["affectlab.seed"] == "0" and tags["affectlab.group.config"] == '{"variant": "contrast_only"}'
