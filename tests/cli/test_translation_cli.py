"""Pose-to-text through the command line on a memorisable AffectSynth sign: ``affectlab recipe translation
synth`` trains a tiny Pose2Text (BLEU above 0, its test files consistent with sacrebleu) beside the two
baselines; ``affectlab test --run_id`` decodes with the run's own vocabulary; the synth search runs as a
2-point ``affectlab sweep`` and ``affectlab summarize`` reads it back; ``affectlab repeat --times 3`` gives the
same BLEU three times (slow)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import sacrebleu
import yaml

from conftest import CONFIGS, TEST_CONFIGS, affectlab, affectlab_inline, mlflow_client, printed_run_id

EXPERIMENT = CONFIGS / "experiment/synth_sign/pose2text.yaml"
TINY = TEST_CONFIGS / "tiny_pose2text.yaml"


def _tiny(data_root: Path, store: Path) -> list[str]:
    return ["--config", str(TINY), "--data.init_args.root", str(data_root), "--store", str(store)]


@pytest.fixture(scope="module")
def sign_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("affectsynth-sign")


@pytest.fixture(scope="module")
def recipe(sign_root, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    result = affectlab("recipe", "translation", "synth", "--seeds", "0", *_tiny(sign_root, store))
    return result, store


def _child(store: Path, parent: str):
    client = mlflow_client(store)
    parent_run = client.get_run(parent)
    (child,) = client.search_runs([parent_run.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    return client, parent_run, child


def _parent_id(output: str) -> str:
    return re.findall(r"^parent_run_id: ([0-9a-f]{32})", output, flags=re.MULTILINE)[-1]


def test_recipe_trains_above_zero_bleu_beside_the_baselines(recipe):
    result, store = recipe
    out = result.stdout
    assert "copy the most frequent training sentence" in out and "copy the nearest training sample's" in out
    assert "bleu: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in out
    client, parent, child = _child(store, _parent_id(out))
    assert parent.data.tags["affectlab.group.kind"] == "seeds"
    for name in ("most_frequent", "nearest_neighbour"):
        assert {f"baseline/{name}/test/bleu", f"baseline/{name}/test/chrf"} <= set(parent.data.metrics)
    metrics = child.data.metrics
    assert metrics["test/bleu"] > 5, metrics  # a few distinct sentences, each seen in training
    assert metrics["test/chrf"] > 20, metrics
    assert parent.data.metrics["test/bleu_mean"] == pytest.approx(metrics["test/bleu"])


def test_test_files_hold_sacrebleus_scores_of_the_hypotheses(recipe):
    result, store = recipe
    client, _, child = _child(store, _parent_id(result.stdout))
    run_id = child.info.run_id
    folder = Path(client.download_artifacts(run_id, ""))
    with open(folder / "test_hypotheses.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert rows and list(rows[0]) == ["id", "reference", "hypothesis"]
    hypotheses, references = [r["hypothesis"] for r in rows], [r["reference"] for r in rows]
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    # the logged metric passed through Lightning's float32 tensors
    assert child.data.metrics["test/bleu"] == pytest.approx(bleu.score, abs=1e-4)
    assert child.data.metrics["test/chrf"] == pytest.approx(chrf.score, abs=1e-4)
    assert (folder / "test_score.bleu").read_text().startswith("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|")
    assert f"= {bleu.score:.2f} " in (folder / "test_score.bleu").read_text()
    assert (folder / "test_score.chrf").read_text().strip().endswith(f"= {chrf.score:.2f}")
    assert (folder / "tokenizer/spm.model").stat().st_size > 100
    assert "| id | reference | hypothesis |" in (folder / "test_examples.md").read_text()
    assert "| id | reference | hypothesis |" in result.stdout + result.stderr  # a few examples in the run's log


@pytest.mark.slow  # CI covers the checkpoint's vocabulary in tests/methods/test_pose2text.py
def test_test_of_the_run_decodes_with_its_own_vocabulary(recipe, sign_root):
    """``affectlab test --run_id`` on other data (a 6-gloss vocabulary, other sentences) still decodes with
    the vocabulary the weights learnt, carried in best.ckpt."""
    result, store = recipe
    _, _, child = _child(store, _parent_id(result.stdout))
    again = affectlab("test", "--run_id", child.info.run_id, "--store", str(store), "--data.init_args.root",
                      str(sign_root), "--data.init_args.vocabulary_size", "6")
    assert printed_run_id(again.stdout) == child.info.run_id
    assert "vocabulary from" not in again.stdout + again.stderr  # no new tokenizer was trained
    metrics = mlflow_client(store).get_run(child.info.run_id).data.metrics
    assert metrics["test/bleu"] > 0


def test_phoenix_basic_run_trains_on_the_phoenix_layout(tmp_path):
    """The seed's basic run, as its file's first line says, on AffectSynth sign exported in PHOENIX-2014T's
    layout (corpus CSVs and .pose files), a few steps."""
    from affectlab.data.synth.export_sign import export_sign

    export_sign(tmp_path / "phoenix", num_sentences=12, num_signers=2, vocabulary_size=6)
    config = CONFIGS / "experiment/phoenix/pose2text.yaml"
    assert config.read_text().startswith(
        "# affectlab run --config configs/experiment/phoenix/pose2text.yaml --data.init_args.root DIR")
    result = affectlab("run", "--config", str(config), "--data.init_args.root", str(tmp_path / "phoenix"),
                       "--store", str(tmp_path / "store"), "--trainer.max_steps", "2",
                       "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
                       "--model.init_args.num_beams", "2", "--trainer.enable_progress_bar", "false",
                       *(f"--model.init_args.{key}={value}" for key, value in  # small: the run's path, not its size
                         {"d_model": 64, "dim_feedforward": 128, "num_encoder_layers": 1, "num_decoder_layers": 1}.items()))
    metrics = mlflow_client(tmp_path / "store").get_run(printed_run_id(result.stdout)).data.metrics
    assert {"test/bleu", "test/chrf", "test/loss", "val/bleu", "val/chrf"} <= set(metrics)


def test_synth_search_runs_as_a_two_point_sweep_and_summarizes(sign_root, tmp_path):
    spec = yaml.safe_load((CONFIGS / "sweep/synth_sign_pose2text_search.yaml").read_text())
    grid = spec["space"]["grid"]
    assert len(grid) == 4 and all(len(values) == 2 for values in grid.values())  # the seed's four axes, 16 runs
    phoenix = yaml.safe_load((CONFIGS / "sweep/phoenix_pose2text_search.yaml").read_text())["space"]["grid"]
    assert list(phoenix) == list(grid) and [len(v) for v in phoenix.values()] == [3, 3, 2, 3]  # 54 runs
    spec["space"]["grid"] = {key: values[:1] for key, values in grid.items()}
    spec["space"]["grid"]["trainer.accumulate_grad_batches"] = [1, 2]  # 2 points
    spec["base"]["args"] = ["--config", str(EXPERIMENT)]
    sweep = tmp_path / "two_points.yaml"
    sweep.write_text(yaml.safe_dump(spec))
    options = [*_tiny(sign_root, tmp_path / "store"), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
               "--trainer.limit_val_batches", "1",
               "--trainer.limit_test_batches", "1"]  # the sweep's machinery, not BLEU
    result = affectlab("sweep", "--config", str(sweep), *options)
    assert result.stdout.count("COMPLETE") >= 2, result.stdout
    affectlab_inline("summarize", str(sweep), "--store", str(tmp_path / "store"), "--no-plots")
    (table,) = tmp_path.glob("*.md")  # beside the sweep file
    text = table.read_text()
    assert "test/bleu" in text and "trainer.accumulate_grad_batches" in text
    assert len([line for line in text.splitlines() if re.match(r"\|\s*[12]\s*\|", line)]) == 2, text


@pytest.mark.slow
def test_repeat_gives_the_same_bleu_three_times(sign_root, tmp_path):
    result = affectlab("repeat", "--times", "3", "--config", str(EXPERIMENT), *_tiny(sign_root, tmp_path))
    assert "IDENTICAL." in result.stdout and "NOT IDENTICAL" not in result.stdout
    client = mlflow_client(tmp_path)
    parent = client.get_run(_parent_id(result.stdout))
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    bleu = {c.data.metrics["test/bleu"] for c in children}
    assert len(children) == 3 and len(bleu) == 1 and bleu.pop() > 0
