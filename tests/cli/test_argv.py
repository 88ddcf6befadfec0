"""The one pre-pass over a run's arguments, the command table and the size of cli/'s files."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from affectlab.cli.argv import prepare_run_args
from affectlab.cli.main import COMMANDS, main
from affectlab.errors import ConfigError
from affectlab.runs.store import RunStore
from conftest import CONFIGS, ROOT


def test_a_data_name_becomes_its_bundled_config():
    args = prepare_run_args(["--data", "synth", "--model", str(CONFIGS / "model/supervised.yaml")])
    assert Path(args[1]).resolve() == (CONFIGS / "data/synth.yaml").resolve()
    args = prepare_run_args(["--data=synth"])
    assert Path(args[0].split("=", 1)[1]).resolve() == (CONFIGS / "data/synth.yaml").resolve()


def test_paths_class_paths_and_other_options_are_kept():
    args = ["--data", "affectlab.data.AffectSynthDataModule", "--trainer.max_epochs", "3", "--model.init_args.x", "synth"]
    assert prepare_run_args(args) == args


def test_a_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  class_path: x\n   init_args: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line 3, column \d+: .*indented differently"):
        prepare_run_args(["--config", str(bad)])
    with pytest.raises(ConfigError, match="no such file"):
        prepare_run_args([f"--config={tmp_path / 'missing.yaml'}"])


def test_a_run_id_puts_the_runs_first_config_in_front(tmp_path):
    store = RunStore.resolve(str(tmp_path / "runs"))
    run_id = store.create_run("affectlab", "r", {})
    store.log_config(run_id, "seed_everything: 5\n")
    args = prepare_run_args(["--store", str(tmp_path / "runs"), "--run_id", run_id, "--trainer.max_epochs", "1"])
    assert args[0] == "--config" and Path(args[1]).read_text() == "seed_everything: 5\n"
    assert args[2:] == ["--store", str(tmp_path / "runs"), "--run_id", run_id, "--trainer.max_epochs", "1"]
    # The same run id written in a --config file instead of on the command line.
    config = tmp_path / "reuse.yaml"
    config.write_text(f"run_id: {run_id}\nstore: {tmp_path / 'runs'}\n")
    args = prepare_run_args(["--store", str(tmp_path / "runs"), "--config", str(config)])
    assert args[0] == "--config" and Path(args[1]).read_text() == "seed_everything: 5\n"
    assert prepare_run_args(["--run_id", "null"]) == ["--run_id", "null"]


def test_every_command_of_the_table_has_its_handler():
    for command, (module, handler) in COMMANDS.items():
        assert callable(getattr(importlib.import_module(module), handler)), command


def test_an_unknown_command_is_a_configuration_error(capsys):
    assert main(["bogus"]) == 2
    assert "unknown command 'bogus'" in capsys.readouterr().err


def test_a_chain_on_a_single_command_is_refused(capsys):
    assert main(["fit", "--commands", "fit-test"]) == 2
    assert "use 'affectlab run --commands ...' to chain" in capsys.readouterr().err


def test_every_file_of_the_cli_is_short():
    # The CLI parses arguments and calls the library; a long file there is library logic in the wrong place.
    lengths = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "src/affectlab/cli").rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > 150} == {}
