"""``kfold`` in the command chain (issue 18.9): every fold a child run of the run that was started, the parent
holding mean, std, min and max of every test metric; folds refused before a run exists when the data module
cannot serve them; a killed k-fold run resumed with ``--run_id <parent>`` reruns no finished fold; DISFA's
3-fold convention as one config."""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from affectlab.errors import ConfigError
from affectlab.runs.kfold import FoldResult, fold_chain, fold_statistics, fold_table
from conftest import CONFIGS, TINY_DATA, affectlab, affectlab_inline, cli_env, mlflow_client, printed_run_id, tiny_args

QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]


def _runs(store: Path) -> list:
    client = mlflow_client(store)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _children(store: Path, parent: str) -> dict[int, object]:
    return {int(r.data.tags["affectlab.fold"]): r for r in _runs(store) if r.data.tags.get("mlflow.parentRunId") == parent}


def _test_metrics(run) -> dict[str, float]:
    return {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}


@pytest.fixture(scope="module")
def kfold_run(tiny_data, tmp_path_factory):
    """One k-fold run on tiny AffectSynth: 3 subject-disjoint folds x 1 epoch x 2 batches."""
    store = tmp_path_factory.mktemp("kfold") / "runs"
    result = affectlab("run", *tiny_args(tiny_data, store, 1), *QUICK, "--commands", "kfold",
                       "--data.init_args.split", "kfold")
    return store, printed_run_id(result.stdout), result.stdout


def test_each_fold_is_a_child_and_the_parent_holds_their_statistics(kfold_run):
    store, parent_id, output = kfold_run
    client = mlflow_client(store)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["affectlab.group.kind"] == "kfold"
    children = _children(store, parent_id)
    assert sorted(children) == [0, 1, 2]
    for fold, child in children.items():
        assert child.info.status == "FINISHED"
        assert child.data.tags["affectlab.group.config"] == f'{{"fold": {fold}}}'
        stored = yaml.safe_load(Path(client.download_artifacts(child.info.run_id, "config.yaml")).read_text())
        assert stored["data"]["init_args"]["fold"] == fold and stored["commands"] == "fit-test"
    # every fold tests on other subjects: the folds' test splits partition the identities
    per_fold = {fold: _test_metrics(child) for fold, child in children.items()}
    assert sum(m["test/num_samples"] for m in per_fold.values()) == TINY_DATA["num_clips"]
    for name in per_fold[0]:
        values = [per_fold[f][name] for f in range(3)]
        assert parent.data.metrics[f"{name}_mean"] == pytest.approx(statistics.fmean(values))
        assert parent.data.metrics[f"{name}_std"] == pytest.approx(statistics.stdev(values))
        assert parent.data.metrics[f"{name}_min"] == pytest.approx(min(values))
        assert parent.data.metrics[f"{name}_max"] == pytest.approx(max(values))
    assert {"test/acc_mean", "test/acc_std", "test/acc_min", "test/acc_max"} <= set(parent.data.metrics)
    table = Path(client.download_artifacts(parent_id, "kfold/folds.csv")).read_text().splitlines()
    assert table[0].startswith("fold,run_id,") and [row.split(",")[1] for row in table[1:4]] == [
        children[f].info.run_id for f in range(3)]
    assert [row.split(",")[0] for row in table[4:]] == ["mean", "std", "min", "max"]
    assert "kfold: test metrics of 3 folds" in output and "test/acc_mean" in output


def test_a_fold_chain_replaces_kfold_with_fit_and_test():
    assert fold_chain(["kfold"]) == ["fit", "test"]
    assert fold_chain(["kfold", "eval"]) == ["fit", "test", "eval"]
    assert fold_chain(["kfold", "test"]) == ["fit", "test"]
    assert fold_chain(["tune", "kfold", "predict"]) == ["tune", "fit", "test", "predict"]
    for chain in (["fit", "kfold"], ["kfold", "kfold"]):
        with pytest.raises(ConfigError, match="kfold runs fit then test on every fold"):
            fold_chain(chain)


def test_statistics_and_table_over_folds_that_logged_a_metric():
    folds = [FoldResult(0, "a", {"test/acc": 0.5, "test/f1": 0.1}), FoldResult(1, "b", {"test/acc": 0.7}),
             FoldResult(2, "c", {"test/acc": 0.9, "test/f1": 0.3})]
    summary = fold_statistics(folds)
    assert summary["test/acc_mean"] == pytest.approx(0.7) and summary["test/acc_std"] == pytest.approx(0.2)
    assert (summary["test/acc_min"], summary["test/acc_max"]) == (0.5, 0.9)
    assert summary["test/f1_mean"] == pytest.approx(0.2)  # fold 1 logged none: the mean of the two that did
    csv_text, markdown = fold_table(folds, summary)
    assert csv_text.splitlines()[2] == "1,b,0.7," and markdown.splitlines()[0] == "| fold | run_id | test/acc | test/f1 |"


def test_fold_counts_of_each_split_kind_and_refusals(tiny_data):
    from affectlab.data.base import BaseDataModule
    from affectlab.data.synth.datamodule import AffectSynthDataModule

    def synth(split: str, **kwargs) -> AffectSynthDataModule:
        return AffectSynthDataModule(root=str(tiny_data), split=split, **TINY_DATA, **kwargs)

    assert synth("kfold").fold_count() == 3 and synth("kfold", num_folds=2).fold_count() == 2
    assert synth("loso").fold_count() == TINY_DATA["num_identities"]  # leave one subject out: one fold each
    assert synth("lodo").fold_count() == 5  # the five render styles
    with pytest.raises(ConfigError, match=r"data.init_args.split: loco .*use lodo"):
        synth("loco").fold_count()  # every identity appears in every render style: nothing is left to train on
    with pytest.raises(ConfigError, match=r"data.init_args.split: 'identity' is not a cross-validation split"):
        synth("identity").fold_count()
    with pytest.raises(ConfigError, match="BaseDataModule has no cross-validation folds"):
        BaseDataModule(batch_size=2).fold_count()
    subjects = np.asarray(synth("loso").fold_samples()[0])
    tested = [np.unique(subjects[synth("loso").fold_split(k)["test"]]).tolist() for k in range(6)]
    assert tested == [[i] for i in range(6)]


def test_kfold_is_refused_before_a_run_exists(tiny_data, tmp_path):
    store = tmp_path / "runs"
    result = affectlab_inline("run", *tiny_args(tiny_data, store, 1), "--commands", "kfold", check=False)
    assert result.returncode == 2 and "data.init_args.split: 'identity' is not a cross-validation split" in result.stderr
    result = affectlab_inline("run", *tiny_args(tiny_data, store, 1), "--commands", "fit-kfold", check=False)
    assert result.returncode == 2 and "kfold runs fit then test on every fold" in result.stderr
    assert not (store / "mlflow.db").exists() or not _runs(store)


def test_disfa_three_folds_are_one_config_and_a_killed_kfold_resumes_without_rerunning_finished_folds(synth, tmp_path):
    """The DISFA experiment on AffectSynth exported as DISFA: killed when fold 1 starts testing, then resumed
    with --run_id <parent>: fold 0 is not rerun, fold 1 resumes in its own run, fold 2 starts."""
    from affectlab.data.readers.disfa import DisfaDataModule
    from affectlab.data.synth.export_disfa import export_disfa

    config = CONFIGS / "experiment/disfa/au_kfold.yaml"
    printed = yaml.safe_load(affectlab_inline("run", "--config", str(config), "--print_config").stdout)
    reference = yaml.safe_load(affectlab_inline("run", "--config", str(CONFIGS / "experiment/au_synth.yaml"),
                                                "--print_config").stdout)["model"]
    assert printed["commands"] == "kfold" and printed["data"]["init_args"]["split"] == "kfold"
    assert printed["data"]["init_args"]["num_folds"] == 3
    heads = [h["class_path"].rsplit(".", 1)[1] for h in printed["model"]["init_args"]["heads"]]
    assert heads == ["OccurrenceHead", "IntensityHead"]  # au.yaml's, without emotion: DISFA has no emotion labels
    assert {k: v for k, v in printed["model"]["init_args"].items() if k != "heads"} == {
        k: v for k, v in reference["init_args"].items() if k != "heads"}
    assert printed["model"]["init_args"]["heads"] == reference["init_args"]["heads"][:2]

    root, store = tmp_path / "disfa", tmp_path / "runs"
    export_disfa(synth, root, "frames")
    assert DisfaDataModule(str(root)).fold_count() == 3
    args = ["run", "--config", str(config), "--data.init_args.root", str(root), "--data.init_args.image_size", "32",
            "--data.init_args.batch_size", "8", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--store", str(store), "--import_allowlist", "fold_callbacks", *QUICK]
    kill = ["--additional_callbacks", f"[{{class_path: fold_callbacks.KillAtFoldTest, init_args: "
            f"{{marker: {tmp_path / 'killed'}, fold: 1}}}}]"]
    killed = subprocess.run([sys.executable, "-m", "affectlab", *args, *kill], env=cli_env(), capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    parent = printed_run_id(killed.stdout)
    before = _children(store, parent)
    assert sorted(before) == [0, 1] and _test_metrics(before[0]) and not _test_metrics(before[1])

    resumed = affectlab("run", "--run_id", parent, "--store", str(store), "--import_allowlist", "fold_callbacks")
    assert f"fold 0 finished before in run {before[0].info.run_id}; not rerun" in resumed.stdout
    assert f"resuming run {before[1].info.run_id}" in resumed.stdout
    after = _children(store, parent)
    assert sorted(after) == [0, 1, 2] and all(r.info.status == "FINISHED" for r in after.values())
    assert after[0].data.tags["affectlab.attempts"] == "1" and after[1].data.tags["affectlab.attempts"] == "2"
    assert after[1].info.run_id == before[1].info.run_id
    summary = mlflow_client(store).get_run(parent)
    assert summary.info.status == "FINISHED" and summary.data.tags["affectlab.group.kind"] == "kfold"
    f1 = [after[f].data.metrics["test/au_f1_mean"] for f in range(3)]
    assert summary.data.metrics["test/au_f1_mean_mean"] == pytest.approx(statistics.fmean(f1))
    assert summary.data.metrics["test/au_f1_mean_max"] == pytest.approx(max(f1))
