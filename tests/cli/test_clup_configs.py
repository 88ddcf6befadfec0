"""CluP's bundled configs train a few steps through the CLI on tiny exported data (ExpW, FER2013, AffectSynth's
target), the teacher given by a run id of the store or a .ckpt path, the student started from SwAV-layout
weights; and ExpW's test split is drawn once and disjoint from training (the original's defect)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import CONFIGS, TINY_DATA, cli_env, mlflow_client

from affectlab.data.synth.export_expw import export_expw
from affectlab.data.synth.export_fer2013 import export_fer2013

RECIPES = {"afe_to_expw": "expw", "afe_to_fer2013": "fer2013", "rafdb_to_expw": "expw", "rafdb_to_fer2013": "fer2013"}
TINY = ["--data.init_args.image_size", "32", "--data.init_args.batch_size", "8", "--model.init_args.num_prototypes",
        "8", "--model.init_args.kmeans_restarts", "1", "--trainer.max_epochs", "1", "--trainer.limit_train_batches",
        "1", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def _source_model() -> torch.nn.Module:
    """configs/model/clup/source.yaml's architecture (a mismatch fails the runs below with 'does not fit')."""
    from affectlab.methods import SupervisedClassifier
    from affectlab.nn.encoders import FrameEncoder

    encoder = FrameEncoder("resnet18", stem="standard")
    return SupervisedClassifier({"video": encoder}, fusion="none", dropout=0.0, unimodal_weight=0.0, weight_norm=True)


DRIVER = """
import json, sys
from affectlab.experiments.train import train
for argv in json.loads(sys.argv[1]):
    print("trained:", train([], {}, extra=argv).run_id, flush=True)
"""


@pytest.fixture(scope="module")
def clup_runs(synth, tiny_data, tmp_path_factory):
    """Tiny ExpW and FER2013, a store holding a 'source run' whose best.ckpt is a source model, a SwAV
    checkpoint (its ``encoder.*``: a FrameEncoder with CluP's stem); then each bundled CluP config trained
    one step. The five runs share one process, as ``affectlab recipe`` chains its runs (``experiments.train``:
    AffectLabCLI on the same arguments as ``affectlab run``), so the test pays torch's and Lightning's import
    once instead of five times (about 8 s of CPU each)."""
    from mlflow import MlflowClient

    from affectlab.methods import SwAV
    from affectlab.nn.encoders import FrameEncoder

    root = tmp_path_factory.mktemp("clup_configs")
    export_expw(synth, root / "expw")
    export_fer2013(synth, root / "fer2013")
    torch.manual_seed(0)
    (root / "checkpoints").mkdir()
    torch.save({"state_dict": _source_model().state_dict()}, root / "checkpoints" / "best.ckpt")
    # a SwAV model as configs/model/swav.yaml builds it (ResNet-18 with CluP's stem under encoder.*, projector,
    # prototypes): the student takes its encoder.* weights
    swav = SwAV(FrameEncoder("resnet18", stem="clup"), num_prototypes=16)
    torch.save({"state_dict": swav.state_dict()}, root / "swav.ckpt")
    store = root / "store"
    store.mkdir()
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    experiment = client.create_experiment("clup-source", artifact_location=str(store / "artifacts" / "clup-source"))
    source = client.create_run(experiment)
    client.log_artifact(source.info.run_id, str(root / "checkpoints" / "best.ckpt"), "checkpoints")
    client.set_terminated(source.info.run_id)
    runs = {}
    for config in [*sorted(RECIPES), "synth"]:
        # the teacher by run id for the AFE recipes and synth, by its .ckpt path for the RAF-DB ones
        teacher = str(root / "checkpoints" / "best.ckpt") if config.startswith("rafdb") else source.info.run_id
        data = ["--data.init_args.root", str(root / RECIPES[config])] if config in RECIPES else [
            "--data.init_args.root", str(tiny_data), "--model.init_args.mode", "soft-purity",
            "--model.init_args.iter_clusters", "2",
            *[a for k, v in TINY_DATA.items() if k != "batch_size" for a in (f"--data.init_args.{k}", str(v))]]
        runs[config] = ["--model", str(CONFIGS / "model/clup/student.yaml"), "--config",
                        str(CONFIGS / f"experiment/clup/{config}.yaml"), *data, *TINY,
                        "--model.init_args.teacher_checkpoint", teacher,
                        "--model.init_args.student_init", str(root / "swav.ckpt"), "--store", str(store)]
    result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(list(runs.values()))], env=cli_env(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ids = re.findall(r"^trained: (\w+)$", result.stdout, re.M)
    return store, dict(zip(runs, ids))


@pytest.mark.parametrize("config", sorted(RECIPES))
def test_each_recipe_trains_a_few_steps(config, clup_runs):
    store, ids = clup_runs
    run_id = ids[config]
    run = mlflow_client(store).get_run(run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["model.init_args.kmeans_restarts"] == "1"  # the restarts are a logged param
    assert params["trainer.max_epochs"] == "1" and params["model.init_args.mixup_alpha"] == "0.2"
    share = {"afe_to_expw": "0.1", "afe_to_fer2013": "0.1", "rafdb_to_expw": "0.3", "rafdb_to_fer2013": "0.2"}
    assert params["model.init_args.labeled_samples_size"] == share[config]
    prototypes = {"afe_to_expw": 1000, "afe_to_fer2013": 250, "rafdb_to_expw": 250, "rafdb_to_fer2013": 1000}
    recipe = yaml.safe_load((CONFIGS / f"experiment/clup/{config}.yaml").read_text())
    assert recipe["model"]["init_args"]["num_prototypes"] == prototypes[config]  # (8 here: tiny data)
    assert metrics["clup/selected"] > 0 and "clup/teacher_acc" in metrics and "clup/round1/pseudo_acc" in metrics
    assert {f"clup/round1/selected/{name}" for name in ("neutral", "anger")} <= set(metrics)
    assert "val/acc" in metrics and "test/acc" in metrics
    plots = {a.path for a in mlflow_client(store).list_artifacts(run_id, "plots")}
    assert "plots/clup_purity_round1.png" in plots


def test_synth_experiment_trains_a_few_steps(clup_runs):
    store, ids = clup_runs
    run = mlflow_client(store).get_run(ids["synth"])
    assert run.data.params["model.init_args.mode"] == "soft-purity"
    assert "clup/round2/selected/happy" in run.data.metrics and "test/acc" in run.data.metrics


def test_expw_test_split_is_drawn_once_and_disjoint_from_training(synth, tmp_path):
    from affectlab.data import ExpwDataModule

    root = tmp_path / "expw"
    export_expw(synth, root)
    first, second = ExpwDataModule(str(root), image_size=16), ExpwDataModule(str(root), image_size=16)
    first.setup(), second.setup()
    faces = first.faces
    for split in ("train", "val", "test"):  # a fit and a later `affectlab test` hold out the same faces
        assert np.array_equal(first.splits[split][3], second.splits[split][3])
    index = {split: set(first.splits[split][3].tolist()) for split in ("train", "val", "test")}
    assert index["test"] and not index["test"] & (index["train"] | index["val"]) and not index["val"] & index["train"]
    photographs = {split: set(faces.photographs[list(ids)].tolist()) for split, ids in index.items()}
    assert not photographs["test"] & (photographs["train"] | photographs["val"])  # no photograph on both sides
