"""``affectlab repeat``: the same config N times, compared. The tiny configs repeat identically on CPU (exit 0);
runs made to differ by a known amount in a known tensor (a test helper perturbs it per run before the first
step) are reported with that tensor, the size of the difference and the epoch where the metrics part (exit 1).
Slow: every bundled experiment config repeated at dry-run size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, affectlab, mlflow_client, tiny_args, tiny_data_args


def _parent(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("parent_run_id: "))


def test_tiny_supervised_repeats_identically(tiny_data, tmp_path):
    result = affectlab("repeat", "--times", "3", *tiny_args(tiny_data, tmp_path, max_epochs=1),
                       "--trainer.limit_train_batches", "2")
    assert "initial weights (step 0): identical" in result.stdout
    assert "final weights: identical" in result.stdout and "validate/test metrics: identical" in result.stdout
    client = mlflow_client(tmp_path)
    parent = client.get_run(_parent(result.stdout))
    assert parent.data.tags["affectlab.group.kind"] == "repeat"
    assert parent.data.tags["affectlab.repeat.identical"] == "true"
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["affectlab.repeat"] for c in children) == ["0", "1", "2"]
    digests = json.loads(Path(client.download_artifacts(children[0].info.run_id, "repeat/initial.json")).read_text())
    assert digests["head.linear.weight"]["shape"] and len(digests["head.linear.weight"]["sha256"]) == 64


def test_tiny_probe_repeats_identically(tiny_data, tmp_path):
    args = ["--model", str(CONFIGS / "model/probe.yaml"), "--config",
            str(Path(__file__).resolve().parents[1] / "configs/tiny_probe.yaml"),
            *tiny_data_args(tiny_data, tmp_path, max_epochs=1)]
    result = affectlab("repeat", "--times", "2", *args, "--trainer.limit_train_batches", "2")
    assert "IDENTICAL." in result.stdout and "NOT IDENTICAL" not in result.stdout


def test_runs_that_differ_are_reported_with_the_tensor_its_size_and_the_epoch(tiny_data, tmp_path):
    perturb = ["--additional_callbacks",
               f"[{{class_path: perturb_callbacks.PerturbPerRun, init_args: {{counter: {tmp_path / 'count'}, "
               "parameter: head.linear.weight, amount: 0.001}}]",
               "--import_allowlist", "perturb_callbacks"]  # a test helper, outside the allowed packages
    result = affectlab("repeat", "--times", "2", *tiny_args(tiny_data, tmp_path, max_epochs=1), *perturb, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "NOT IDENTICAL" in out and "initial weights (step 0): differ in 1 tensor" in out
    # the one perturbed tensor at step 0, by exactly the amount added (0.001)
    initial = out.split("Initial weights that differ")[1].split("Final weights")[0]
    assert "head.linear.weight" in initial and "0.001 " in initial
    assert "logged metrics first diverge at epoch 0 (step 0)" in out
    parent = mlflow_client(tmp_path).get_run(_parent(out))
    assert parent.data.tags["affectlab.repeat.identical"] == "false"


def _standalone(path: Path) -> bool:
    """An experiment that ``affectlab run --config`` runs as it is (it names its model); the others are the
    recipes' parts, which the recipe completes with a model."""
    model = yaml.safe_load(path.read_text()).get("model")
    return isinstance(model, str) or (isinstance(model, dict) and "class_path" in model)


EXPERIMENTS = sorted((CONFIGS / "experiment").rglob("*.yaml"))
# every standalone experiment, and the AffectSynth recipe's parts with the models the recipe gives them
BUNDLED = [(str(p.relative_to(CONFIGS)), None) for p in EXPERIMENTS if _standalone(p)] + [
    ("experiment/synth/pretrain.yaml", "model/conclugen/conclugen.yaml"),
    ("experiment/synth/probe.yaml", "model/probe.yaml"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("config", "model"), BUNDLED, ids=[c for c, _ in BUNDLED])
def test_every_bundled_experiment_repeats_identically_at_dry_run_size(config, model, tmp_path):
    """Each bundled experiment as it is (its own data set, which must be on disk: else skipped), twice with
    --dry_run; the initial weights, the final weights and every metric must agree."""
    models = ["--model", str(CONFIGS / model)] if model else []
    result = affectlab("repeat", "--times", "2", *models, "--config", str(CONFIGS / config), "--dry_run",
                       "--store", str(tmp_path), "--trainer.enable_progress_bar", "false", check=False, timeout=1800)
    if result.returncode == 2 and "data error" in result.stderr:
        reason = next(line for line in result.stderr.splitlines() if "data error" in line)
        pytest.skip(f"{config}: its data is not on this machine ({reason[:200]})")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
