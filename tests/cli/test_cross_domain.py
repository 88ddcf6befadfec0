"""Cross-domain testing (issue 19.1): a source model trained on one data set, tested on another with
``affectlab test --run_id ID --data NAME ...``, logs into a child run of the source (runs/cross_domain.py), never
over the source's own metrics; labels go through each reader's mapping to ``contract.EMOTIONS``' one order. Also
the AffectSynth source/target pair of CluP (configs/data/synth_clup_*.yaml): other styles, other people."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, TINY_DATA, affectlab, mlflow_client, printed_run_id

from affectlab.data.contract import EMOTIONS
from affectlab.data.registry import export_dataset
from affectlab.runs.cross_domain import DATA_TAG, KEY_TAG, SOURCE_TAG, cross_domain_test, same_data
from affectlab.runs.lifecycle import PARENT_TAG
from affectlab.runs.store import RunStore

QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--trainer.accelerator", "cpu", "--data.init_args.image_size", "32", "--data.init_args.batch_size", "16"]
SIZES = {k: TINY_DATA[k] for k in ("num_clips", "num_identities", "num_frames", "image_size")}


@pytest.fixture(scope="module")
def afe_to_fer2013(tiny_data, tmp_path_factory):
    """A source model trained on an exported AFE (configs/experiment/clup/source_afe.yaml, a few steps), then
    tested and predicted on an exported FER2013 of the same faces (one chain, one process)."""
    tmp = tmp_path_factory.mktemp("cross")
    afe, fer, store = tmp / "AFE", tmp / "FER2013", tmp / "runs"
    export_dataset("afe", afe, cache=tiny_data, **SIZES)
    export_dataset("fer2013", fer, cache=tiny_data, **SIZES)
    source = affectlab("run", "--config", str(CONFIGS / "experiment/clup/source_afe.yaml"), "--data.init_args.root",
                       str(afe), "--store", str(store), "--trainer.max_epochs", "1", "--trainer.limit_train_batches",
                       "2", *QUICK)
    source_id = printed_run_id(source.stdout)
    target = ["--run_id", source_id, "--data", "fer2013", "--data.init_args.root", str(fer), "--store", str(store), *QUICK]
    tested = affectlab("run", "--commands", "test-predict", *target)
    return store, fer, source_id, tested


def test_target_metrics_go_to_a_child_run(afe_to_fer2013):
    store, _, source_id, tested = afe_to_fer2013
    child_id = printed_run_id(tested.stdout)
    assert child_id != source_id and f"cross-domain test of run {source_id} on fer2013" in tested.stdout
    assert "test/acc" in tested.stdout  # the results table reports the target's accuracy
    client = mlflow_client(store)
    child, source = client.get_run(child_id), client.get_run(source_id)
    assert child.data.tags[PARENT_TAG] == source_id and child.data.tags[SOURCE_TAG] == source_id
    assert child.data.tags[DATA_TAG] == "fer2013" and child.data.tags[KEY_TAG]
    assert child.info.run_name == f"{source.info.run_name}-on-fer2013"
    assert child.info.experiment_id == source.info.experiment_id and child.info.status == "FINISHED"
    assert child.data.params["data.class_path"] == "affectlab.data.Fer2013DataModule"
    assert 0.0 <= child.data.metrics["test/acc"] <= 1.0
    # the source's own test on AFE stands: one value, never overwritten by the target's
    assert len(client.get_metric_history(source_id, "test/acc")) == 1
    assert [Path(a.path).name for a in client.list_artifacts(child_id, "plots")] == ["test_confusion.png"]
    assert "predictions" not in [Path(a.path).name for a in client.list_artifacts(source_id)]
    # the weights are the source's: the child has no checkpoint of its own
    assert "checkpoints" not in [Path(a.path).name for a in client.list_artifacts(child_id)]
    assert "using" in tested.stdout and f"{source_id}/artifacts/checkpoints/best.ckpt" in tested.stdout


def test_labels_keep_one_class_order_through_the_targets_mapping(afe_to_fer2013):
    store, fer, source_id, tested = afe_to_fer2013
    child_id = printed_run_id(tested.stdout)
    path = mlflow_client(store).download_artifacts(child_id, "predictions/predictions.csv")
    rows = list(csv.DictReader(Path(path).read_text().splitlines()))
    assert list(rows[0])[-len(EMOTIONS):] == [f"p_{name}" for name in EMOTIONS]  # the model's class order
    # FER2013's own codes (0 anger ... 6 neutral) of its PrivateTest rows, mapped to the canonical order, are
    # the targets the model was scored against
    from affectlab.data.readers.fer2013 import LABEL_CODES

    with (fer / "fer2013.csv").open() as handle:
        native = [int(r["emotion"]) for r in csv.DictReader(handle) if r["Usage"] == "PrivateTest"]
    expected = Counter(EMOTIONS.index(LABEL_CODES[code]) for code in native)
    assert Counter(int(r["target"]) for r in rows) == expected and len(set(expected)) > 1


def test_the_same_target_again_reuses_its_child(afe_to_fer2013):
    store, _, source_id, tested = afe_to_fer2013
    child_id = printed_run_id(tested.stdout)
    stored = Path(mlflow_client(store).download_artifacts(child_id, "config.yaml")).read_text()
    again = cross_domain_test(RunStore.resolve(str(store)), source_id, ["test"], stored)
    assert again is not None and again.run_id == child_id and again.target == "fer2013"
    source = Path(mlflow_client(store).download_artifacts(source_id, "config.yaml")).read_text()
    assert cross_domain_test(RunStore.resolve(str(store)), source_id, ["test"], source) is None  # its own data
    assert cross_domain_test(RunStore.resolve(str(store)), source_id, ["fit", "test"], stored) is None  # trains


def test_same_data_ignores_loader_keys_only():
    stored = {"class_path": "affectlab.data.AfeDataModule", "init_args": {"root": "a", "batch_size": 64}}
    assert same_data(stored, {"class_path": "affectlab.data.AfeDataModule", "init_args": {"root": "a", "batch_size": 8,
                                                                                        "num_workers": 4}})
    assert not same_data(stored, {"class_path": "affectlab.data.AfeDataModule", "init_args": {"root": "b"}})
    assert not same_data(stored, {"class_path": "affectlab.data.Fer2013DataModule", "init_args": {"root": "a"}})


def _synth_config(name: str) -> dict:
    return yaml.safe_load((CONFIGS / f"data/{name}.yaml").read_text())["init_args"]


def test_synth_source_and_target_differ_in_styles_and_people(tmp_path):
    """The two configs' shift is real in the data: disjoint render styles (SynthConfig.styles) and other faces."""
    from affectlab.data.synth.datamodule import AffectSynthDataModule
    from affectlab.data.synth.faces import RENDER_STYLES
    from affectlab.data.synth.generator import _identity

    modules = {}
    for name in ("synth_clup_source", "synth_clup_target"):
        args = {**_synth_config(name), "root": str(tmp_path), "num_clips": 24, "num_identities": 4, "image_size": 32}
        modules[name] = AffectSynthDataModule(**args)
        modules[name].prepare_data()
    source, target = modules["synth_clup_source"], modules["synth_clup_target"]
    assert source.synth_config.num_frames == target.synth_config.num_frames == 1  # one face per sample
    styles = {name: {RENDER_STYLES[d] for d in m.arrays.domain} for name, m in modules.items()}
    assert styles["synth_clup_source"] <= set(source.synth_config.styles) == {"line", "shaded"}
    assert styles["synth_clup_target"] <= set(target.synth_config.styles) == {"lowlight", "clutter", "colourshift"}
    assert len(styles["synth_clup_target"]) > 1
    seeds = source.synth_config.seed, target.synth_config.seed
    assert seeds[0] != seeds[1]
    for person in range(4):  # identity i of one seed is another face than identity i of the other
        assert _identity(seeds[0], person, 0.3).face != _identity(seeds[1], person, 0.3).face


def test_synth_source_model_tests_on_the_synth_target(tiny_data, tmp_path):
    """configs/experiment/clup/source_rafdb.yaml's model trained a few steps on the synth source, tested on the
    synth target: a child run (the same data module class, other init_args)."""
    store, sizes = tmp_path / "runs", ["--data.init_args.root", str(tmp_path / "synth"), "--data.init_args.num_clips",
                                       "96", "--data.init_args.num_identities", "8", "--store", str(tmp_path / "runs")]
    source = affectlab("run", "--config", str(CONFIGS / "experiment/clup/source_rafdb.yaml"), "--data",
                       str(CONFIGS / "data/synth_clup_source.yaml"), *sizes, "--trainer.max_epochs", "1",
                       "--trainer.limit_train_batches", "2", *QUICK)
    source_id = printed_run_id(source.stdout)
    tested = affectlab("test", "--run_id", source_id, "--data", str(CONFIGS / "data/synth_clup_target.yaml"), *sizes,
                       *QUICK)
    child = mlflow_client(store).get_run(printed_run_id(tested.stdout))
    assert child.data.tags[SOURCE_TAG] == source_id and child.data.tags[DATA_TAG] == "synth"
    assert child.data.params["data.init_args.synth_seed"] == "1" and "test/acc" in child.data.metrics
