"""The multi-task configs through the CLI on tiny AffectSynth (issue 20 points 1-3): every model config under
configs/model/multitask/ and configs/data/multitask_synth.yaml train a few steps; a 2-point ``affectlab sweep``
grid whose values are per-task mappings; per-task values refused where no task owns the key, or naming an
unknown task."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import CONFIGS, ROOT, TEST_CONFIGS, TINY_DATA, affectlab, affectlab_inline, cli_env, mlflow_client

MODELS = sorted(p.stem for p in (CONFIGS / "model/multitask").glob("*.yaml"))
TINY = str(TEST_CONFIGS / "tiny_multitask.yaml")
STEPS = {"trainer.max_epochs": 1, "trainer.limit_train_batches": 2, "trainer.limit_val_batches": 1,
         "trainer.enable_progress_bar": False, "trainer.enable_model_summary": False, "trainer.log_every_n_steps": 1,
         "commands": "fit"}


def synth(root) -> dict:
    return {"data": str(CONFIGS / "data/synth.yaml"), "data.init_args.root": str(root),
            **{f"data.init_args.{k}": v for k, v in TINY_DATA.items()}}


def tiny_multitask_data(folder, root):
    """configs/data/multitask_synth.yaml with both members at tiny AffectSynth's sizes (one data root, the
    second member's other synth_seed: a second tiny corpus)."""
    config = yaml.safe_load((CONFIGS / "data/multitask_synth.yaml").read_text())
    for member in config["init_args"]["datasets"].values():
        member["init_args"].update({**TINY_DATA, "root": str(root), "batch_size": 4})
    path = folder / "multitask_data.yaml"
    path.write_text(yaml.safe_dump({"data": config}, sort_keys=False))
    return path


SCRIPT = """
import json, sys
from pathlib import Path
from affectlab.experiments.train import train
runs = {}
for name, configs, overrides, model in json.loads(sys.argv[1]):
    result = train([Path(c) for c in configs], overrides, model=Path(model))
    runs[name] = result.run_id
print("RUNS " + json.dumps(runs))
"""


#: trained in CI: one torchjd aggregator, and sum.yaml on the per-task data config (per_task_optimizers.yaml trains
#: in the sweep test); the other configs change only the balancing block, whose strategies train in
#: tests/methods/test_multitask.py, and train through the CLI in the slow test below
IN_CI = ["upgrad"]
IN_SWEEP = "per_task_optimizers"


def train_configs(tiny_data, folder, names: list[str], per_task_data: bool) -> tuple:
    """Model configs (and the per-task data config) trained a few steps in one process (``experiments.train``:
    the CLI's parser, trainer and run store; one process saves the imports once per config)."""
    store = folder / "runs"
    jobs = [[name, [TINY], {**synth(tiny_data), **STEPS, "store": str(store)},
             str(CONFIGS / f"model/multitask/{name}.yaml")] for name in names]
    if per_task_data:  # both members evaluated: the second member's batches follow the first's
        jobs.append(["per_task_data", [TINY, str(tiny_multitask_data(folder, tiny_data))],
                     {**STEPS, "trainer.limit_val_batches": 8, "store": str(store)},
                     str(CONFIGS / "model/multitask/sum.yaml")])
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(jobs)], cwd=ROOT, env=cli_env(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RUNS "))
    return store, json.loads(line[5:])


def check_runs(store, runs: dict[str, str]) -> None:
    client = mlflow_client(store)
    for name, run_id in runs.items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED", (name, run.data.tags.get("affectlab.error"))
        metrics = run.data.metrics
        for task in ("emotion", "au", "sentiment"):
            assert f"train/loss_{task}" in metrics and f"val/loss_{task}" in metrics, (name, sorted(metrics))
            assert f"train/weight_{task}" in metrics, name
        assert "val/emotion/acc" in metrics and "val/au/f1_macro" in metrics and "val/sentiment/mae" in metrics
        artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
        assert {"plots/task_losses.png", "plots/balancing.png"} <= artifacts, (name, artifacts)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    return train_configs(tiny_data, tmp_path_factory.mktemp("multitask-cli"), IN_CI, per_task_data=True)


def test_multitask_configs_train(trained):
    store, runs = trained
    assert set(runs) == {*IN_CI, "per_task_data"}
    check_runs(store, runs)
    conflicts = mlflow_client(store).get_run(runs["upgrad"]).data.metrics
    assert "train/grad_cosine" in conflicts and "train/grad_norm_au" in conflicts


@pytest.mark.slow
def test_every_other_multitask_config_trains(tiny_data, tmp_path):
    others = [name for name in MODELS if name not in (*IN_CI, IN_SWEEP)]
    assert {"sum", "fixed", "uncertainty", "dwa", "gradnorm", "pcgrad", "cagrad"} <= set(others)
    store, runs = train_configs(tiny_data, tmp_path, others, per_task_data=False)
    check_runs(store, runs)
    assert mlflow_client(store).get_run(runs["gradnorm"]).data.metrics["train/gradnorm_loss"] >= 0


def sweep_file(folder, grid) -> str:
    content = {"name": "mtl_weights", "base": {"args": ["--model", str(CONFIGS / f"model/multitask/{IN_SWEEP}.yaml"),
                                                        "--config", TINY]},
               "metric": "val/loss", "direction": "minimize", "space": {"grid": grid}}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return str(path)


WEIGHTS = [{"emotion": 1.0, "au": 1.0, "sentiment": 1.0}, {"emotion": 2.0, "au": 0.5, "sentiment": 0.25}]


def test_a_sweep_grid_over_per_task_values(tiny_data, tmp_path):
    store = tmp_path / "runs"
    options = [f"--{k}={v}" for k, v in {**synth(tiny_data), **STEPS, "store": store}.items() if k != "commands"]
    affectlab("sweep", "--config", sweep_file(tmp_path, {"model.init_args.heads.weight": WEIGHTS}), *options,
              "--commands", "fit", cwd=ROOT, timeout=600)
    client = mlflow_client(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    tried = sorted(json.loads(r.data.tags["affectlab.group.config"])["model.init_args.heads.weight"]["emotion"]
                   for r in trials)
    assert tried == [1.0, 2.0]
    for run in trials:  # each trial trained with its weights: the fixed weights logged per task
        weights = json.loads(run.data.tags["affectlab.group.config"])["model.init_args.heads.weight"]
        assert run.data.metrics["train/weight_sentiment"] == weights["sentiment"]
        rates = [k for k in run.data.metrics if k.startswith("lr-")]  # per_task_optimizers.yaml: one per optimiser
        assert len(rates) == 4, rates


def test_a_sweep_grid_with_per_task_values_naming_other_tasks_stops_first(tmp_path):
    grid = {"model.init_args.heads.weight": [WEIGHTS[0], {"emotion": 1.0, "valence": 1.0}]}
    result = affectlab_inline("sweep", "--config", sweep_file(tmp_path, grid), check=False)
    assert result.returncode == 2 and "names tasks ['emotion', 'valence']" in result.stderr
    grid = {"model.init_args.heads.weight": WEIGHTS,
            "model.init_args.trunk.init_args.dropout": [{"emotion": 0.1, "au": 0.2, "sentiment": 0.0}]}
    result = affectlab_inline("sweep", "--config", sweep_file(tmp_path, grid), check=False)
    assert result.returncode == 2 and "model.init_args.trunk.init_args.dropout" in result.stderr
    assert "a per-task value under a key no task owns" in result.stderr


def run_args(tiny_data, tmp_path, *extra) -> list[str]:
    options = [f"--{k}={v}" for k, v in {**synth(tiny_data), "store": tmp_path / "runs"}.items()]
    return ["fit", "--model", str(CONFIGS / "model/multitask/sum.yaml"), "--config", TINY, *options,
            "--trainer.max_steps", "0", *extra]


def test_per_task_values_on_the_command_line(tiny_data, tmp_path):
    printed = affectlab_inline(*run_args(tiny_data, tmp_path, "--model.init_args.heads.hidden",
                                         "{emotion: 16, au: 8, sentiment: 4}", "--print_config")).stdout
    assert yaml.safe_load(printed)["model"]["init_args"]["heads"]["hidden"] == {"emotion": 16, "au": 8, "sentiment": 4}
    unknown = affectlab_inline(*run_args(tiny_data, tmp_path, "--model.init_args.heads.weight",
                                         "{emotion: 2, valence: 1, sentiment: 1}"), check=False)
    assert unknown.returncode == 2
    assert "model.init_args.heads.weight: unknown task ['valence']" in unknown.stderr
    shared = affectlab_inline(*run_args(tiny_data, tmp_path, "--model.init_args.trunk.init_args.fusion_dim",
                                        "{emotion: 32, au: 16, sentiment: 8}"), check=False)
    assert shared.returncode == 2 and "model.init_args.trunk.init_args.fusion_dim: expected int" in shared.stderr
    # a key that takes any mapping would take a per-task one silently: refused with its key
    config = tmp_path / "kwargs.yaml"
    config.write_text(yaml.safe_dump({"model": {"init_args": {"trunk": {"init_args": {"encoders": {"video": {
        "class_path": "affectlab.nn.encoders.FrameEncoder",
        "init_args": {"backbone": "test_vit", "backbone_kwargs": {"emotion": 1, "au": 2, "sentiment": 3}}}}}}}}}))
    silent = affectlab_inline(*run_args(tiny_data, tmp_path, "--config", str(config)), check=False)
    assert silent.returncode != 0
    assert ("model.init_args.trunk.init_args.encoders.video.init_args.backbone_kwargs: a per-task value"
            in silent.stderr + silent.stdout)
