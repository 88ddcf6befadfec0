"""Issue 16.10: one experiment config per image expression data set (`configs/experiment/<data set>/supervised.yaml`),
so that a user with the data set on disk trains with one command. Each parses with its data set's reader and the
image model; one trains and tests end to end on AffectSynth exported in RAF-DB's layout."""

from __future__ import annotations

import pytest
import yaml

from conftest import CONFIGS, TINY_DATA, affectlab, affectlab_inline, mlflow_client

from affectlab.data.registry import export_dataset, get_dataset

IMAGE_SETS = ("rafdb", "affectnet", "fer2013", "expw", "caer_s", "afe")


def test_every_image_data_config_has_its_experiment():
    """Every bundled data config of a picture reader (a data set whose layout holds no clips) has one."""
    for name in IMAGE_SETS:
        assert get_dataset(name).labelled
        assert (CONFIGS / f"experiment/{name}/supervised.yaml").is_file(), name


@pytest.mark.parametrize("name", IMAGE_SETS)
def test_the_experiment_parses_with_its_reader_and_the_image_model(name):
    experiment = CONFIGS / f"experiment/{name}/supervised.yaml"
    result = affectlab_inline("run", "--config", str(experiment), "--data.init_args.root", "/data/x", "--print_config")
    config = yaml.safe_load(result.stdout)
    bundled = yaml.safe_load((CONFIGS / f"data/{name}.yaml").read_text())
    assert config["data"]["class_path"] == bundled["class_path"] and config["data"]["init_args"]["root"] == "/data/x"
    model = config["model"]
    assert model["class_path"] == "affectlab.methods.SupervisedClassifier"
    assert model["init_args"]["modalities"] == ["video"] and model["init_args"]["num_classes"] == 7
    assert model["init_args"]["encoders"]["video"]["init_args"]["backbone"] == "resnet18"
    assert config["commands"] == "fit-test" and config["exp_name"] == f"{name}-supervised"
    assert f"affectlab run --config configs/experiment/{name}/supervised.yaml --data.init_args.root" in experiment.read_text()


def test_one_command_trains_and_tests_on_an_exported_rafdb(tiny_data, tmp_path):
    raw, store = tmp_path / "RAF-DB", tmp_path / "runs"
    export_dataset("rafdb", raw, cache=tiny_data,
                   **{k: TINY_DATA[k] for k in ("num_clips", "num_identities", "num_frames", "image_size")})
    result = affectlab("run", "--config", str(CONFIGS / "experiment/rafdb/supervised.yaml"), "--data.init_args.root",
                       str(raw), "--store", str(store), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                       "--data.init_args.batch_size", "16", "--trainer.enable_progress_bar", "false", timeout=300)
    assert "test/acc" in result.stdout
    client = mlflow_client(store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "rafdb-supervised"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert 0.0 <= run.data.metrics["test/acc"] <= 1.0 and "test/f1_weighted" in run.data.metrics
    assert run.data.params["data.class_path"] == "affectlab.data.RafdbDataModule"
