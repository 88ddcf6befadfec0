"""The saved views ``affectlab ui`` writes (runs/ui_views.py): which metrics become columns, the state MLflow's
UI reads, and their upkeep in a store (the page itself is loaded in a browser in tests/cli/test_ui_browser.py)."""

from __future__ import annotations

import json

from affectlab.runs.store import RunStore
from affectlab.runs.ui_views import VIEW_TAG, main_metrics, refresh_views, view_state


def test_main_metrics_are_the_headline_test_scores_in_order():
    supervised = {"test/f1_macro", "test/acc", "test/wacc", "test/loss", "test/f1/happy", "test/video/acc",
                  "test/precision_weighted", "val/acc", "train/loss"}
    assert main_metrics(supervised) == ["test/acc", "test/wacc", "test/f1_macro"]
    au = {f"test/{k}" for k in ("loss", "au_f1_mean", "au_icc_mean", "au_mae_mean", "au_pearson_mean", "emotion_acc",
                                "emotion_wacc", "emotion_f1_macro", "emotion_f1_weighted")}
    assert main_metrics(au) == ["test/au_f1_mean", "test/au_icc_mean", "test/au_mae_mean", "test/emotion_acc",
                                "test/emotion_wacc", "test/emotion_f1_macro"]  # at most six columns
    assert main_metrics({"val/acc", "val/loss", "train/loss"}) == ["val/acc"]  # fitted, not yet tested
    assert main_metrics({"test/loss", "test/nmi", "test/ari"}) == ["test/ari", "test/nmi"]  # no headline: the rest
    assert main_metrics({"train/loss"}) == []


def test_the_view_selects_the_metric_columns_after_a_run_name_column_wide_enough():
    state = view_state(["test/acc", "test/f1_macro"], longest_run_name=44)
    assert state["selectedColumns"] == ["metrics.`test/acc`", "metrics.`test/f1_macro`"]  # MLflow's column keys
    assert state["columnOrder"][0] == "attributes.`Run Name`"
    assert state["columnWidths"]["attributes.`Run Name`"] >= 8 * 44


def test_refresh_tags_experiments_with_runs_and_rewrites_a_view_only_when_its_metrics_change(tmp_path):
    store = RunStore.resolve(str(tmp_path / "store"))
    client = store.client
    old = client.create_experiment("made-before-experiment-kinds")  # as a store from an older AffectLab
    empty = store.experiment_id("empty")
    assert client.get_experiment(empty).tags["mlflow.experimentKind"] == "custom_model_development"
    run = client.create_run(old, run_name="supervisedclassifier-affectsynth-happy-lemur").info.run_id
    client.log_metric(run, "val/acc", 0.5)

    (view,) = refresh_views(store)  # the empty experiment has nothing to show
    assert (view.experiment_id, view.metrics) == (old, ("val/acc",))
    assert view.url("http://127.0.0.1:5000") == (f"http://127.0.0.1:5000/#/experiments/{old}/runs"
                                                 "?workflowType=machine_learning&viewStateShareKey=affectlab")
    tags = client.get_experiment(old).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    envelope = json.loads(tags[VIEW_TAG])
    assert envelope["name"] and isinstance(envelope["createdAt"], int)  # the fields MLflow's UI checks
    assert json.loads(envelope["state"])["selectedColumns"] == ["metrics.`val/acc`"]

    refresh_views(store)
    assert client.get_experiment(old).tags[VIEW_TAG] == tags[VIEW_TAG]  # unchanged: not rewritten
    client.log_metric(run, "test/acc", 0.6)
    refresh_views(store)
    state = json.loads(json.loads(client.get_experiment(old).tags[VIEW_TAG])["state"])
    assert state["selectedColumns"] == ["metrics.`test/acc`"]
