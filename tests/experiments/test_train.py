"""``train(configs, overrides)``: the arguments it gives the CLI, and one real tiny run."""

from __future__ import annotations

from pathlib import Path

from affectlab.cli.recipe import recipe_parser
from affectlab.experiments.recipe import RecipeOptions
from affectlab.experiments.train import option_value, run_arguments, train
from affectlab.runs.lifecycle import DEFAULT_SEED
from conftest import CONFIGS, TEST_CONFIGS, TINY_DATA


def test_values_are_written_as_the_parser_reads_them():
    assert [option_value(v) for v in (None, True, False, 0.01, -1, "x")] == ["null", "true", "false", "0.01", "-1", "x"]


def test_configs_come_in_order_before_the_overrides_and_the_verbatim_options():
    args = run_arguments([Path("a.yaml"), Path("b.yaml")], {"trainer.max_steps": 5, "store": None}, Path("m.yaml"),
                         ["--model.init_args.x=1"])
    assert args == ["--model", "m.yaml", "--config", "a.yaml", "--config", "b.yaml", "--trainer.max_steps", "5",
                    "--store", "null", "--model.init_args.x=1"]


def test_the_default_seed_is_stated_once():
    assert RecipeOptions("conclugen", "synth").seed == DEFAULT_SEED == 127
    assert recipe_parser().get_default("seed") == DEFAULT_SEED


def test_train_runs_fit_and_test_and_returns_the_run_and_its_metrics(tiny_data, tmp_path):
    # A section given a file (``data``) comes before the keys it sets, as on the command line.
    overrides = {"data": CONFIGS / "data/synth.yaml", **{f"data.init_args.{k}": v for k, v in TINY_DATA.items()}}
    overrides |= {"data.init_args.root": tiny_data, "trainer.accelerator": "cpu", "trainer.max_epochs": 1,
                  "trainer.enable_progress_bar": False, "trainer.enable_model_summary": False,
                  "store": tmp_path / "runs"}
    opened = []
    result = train([TEST_CONFIGS / "tiny_supervised.yaml"], overrides, CONFIGS / "model/supervised.yaml",
                   on_open=opened.append)
    assert opened == [result.run_id] and result.seconds > 0
    assert 0.0 <= result.metrics["test"]["test/acc"] <= 1.0
