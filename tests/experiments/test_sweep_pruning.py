"""Pruning (issue 18 point 3) and a sampler's trial count (point 1) on tiny AffectSynth: a trial whose first
validation epoch is worse than the median of those before is stopped, PRUNED in the study and tagged on its
run; a TPE sweep runs exactly ``trials`` trials inside its distribution's bounds."""

from __future__ import annotations

import pytest
import yaml
from conftest import CONFIGS, ROOT, affectlab, mlflow_client, tiny_args

LR = "model.init_args.optimizer_init.init_args.lr"


def run_sweep(folder, tiny_data, epochs, **content):
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "base": {"args": ["--config", str(CONFIGS / "experiment/synth/supervised.yaml")]},
                                    "metric": "test/acc", **content}, sort_keys=False))
    store = folder / "runs"
    affectlab("sweep", "--config", str(path), *tiny_args(tiny_data, store, max_epochs=epochs), cwd=ROOT, timeout=600)
    import optuna

    return store, optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'sweeps.db'}")


def test_a_diverging_trial_is_pruned_after_its_first_validation(tiny_data, tmp_path):
    # lr 50 makes the first epoch's val/loss explode: worse than trial 0's at the same epoch
    store, study = run_sweep(tmp_path, tiny_data, 3, space={"grid": {LR: [0.002, 50.0]}},
                             pruning={"monitor": "val/loss", "n_startup_trials": 1, "n_warmup_steps": 0})
    good, bad = sorted(study.trials, key=lambda t: t.params[LR])
    assert good.state.name == "COMPLETE" and sorted(good.intermediate_values) == [0, 1, 2]
    assert bad.state.name == "PRUNED" and sorted(bad.intermediate_values) == [0]
    # reported negated: the study maximises test/acc, the monitored val/loss is minimised
    assert bad.intermediate_values[0] < good.intermediate_values[0] < 0
    client = mlflow_client(store)
    run = client.get_run(bad.user_attrs["affectlab.runs"]["None"]["run_id"])
    assert run.data.tags["affectlab.sweep.pruned"] == "epoch 0" and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/loss")] == [3]  # stopped after epoch 0
    assert "affectlab.sweep.pruned" not in client.get_run(good.user_attrs["affectlab.runs"]["None"]["run_id"]).data.tags


@pytest.mark.slow  # a second sweep; the sampler path is the one the two-worker tests' grid shares but for ask()
def test_tpe_runs_its_number_of_trials_within_bounds(tiny_data, tmp_path):
    _, study = run_sweep(tmp_path, tiny_data, 1, sampler="tpe", sampler_seed=0, trials=2,
                         space={LR: {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}})
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(1e-4 <= t.params[LR] <= 1e-2 for t in study.trials)
    assert len({t.params[LR] for t in study.trials}) == 2
