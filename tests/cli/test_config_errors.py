"""The three configuration mistakes of seed 000's pitfalls section, and a few more, each give one readable
message naming the key or file and the fix: exit status 2, no stack trace."""

from __future__ import annotations


import pytest

from affectlab.cli.errors import explain_argument_error
from conftest import CONFIGS, affectlab, affectlab_inline


def _fails_readably(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("affectlab: configuration error:")]
    assert len(errors) == 1, result.stderr  # one message, on one line
    return errors[0]


def test_init_args_without_class_path(tmp_path):
    edit = tmp_path / "to_edit.yaml"
    edit.write_text("model:\n  init_args:\n    fusion_dim: 32\n")
    message = _fails_readably(affectlab_inline("run", "--config", str(edit), "--data", str(CONFIGS / "data/synth.yaml"), check=False))
    assert "model.class_path is missing" in message
    assert "--model configs/model/" in message


def test_required_argument_missing(tmp_path):
    model = tmp_path / "model.yaml"
    model.write_text("class_path: affectlab.methods.SupervisedClassifier\ninit_args:\n  fusion_dim: 32\n")
    message = _fails_readably(affectlab_inline("run", "--model", str(model), "--data", str(CONFIGS / "data/synth.yaml"), check=False))
    assert "model.init_args.encoders" in message
    assert "required" in message and "--model.init_args.encoders VALUE" in message


def test_wrong_indent_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n    class_path: affectlab.methods.SupervisedClassifier\n     init_args: {}\n")
    message = _fails_readably(affectlab_inline("run", "--config", str(bad), check=False))
    assert f"{bad}, line 3" in message
    assert "mapping values are not allowed" in message and "same column" in message


def test_no_model_at_all():
    message = _fails_readably(affectlab_inline("run", "--data", str(CONFIGS / "data/synth.yaml"), check=False))
    assert "no model is configured" in message


def test_unknown_command_in_chain():
    message = _fails_readably(
        affectlab_inline("run", "--model", str(CONFIGS / "model/supervised.yaml"), "--data", str(CONFIGS / "data/synth.yaml"),
                  "--commands", "fit-tset", check=False)
    )
    assert "commands: 'fit-tset'" in message


def test_wrong_optimizer_argument_is_named():
    message = _fails_readably(
        affectlab("run", "--model", str(CONFIGS / "model/supervised.yaml"), "--data", str(CONFIGS / "data/synth.yaml"),
                  "--model.init_args.optimizer_init", "{class_path: torch.optim.AdamW, init_args: {lrr: 0.1}}",
                  "--trainer.max_epochs", "1", check=False)
    )
    assert "optimizer_init.init_args.lrr" in message and "AdamW has no argument 'lrr'" in message


def test_missing_config_file():
    message = _fails_readably(affectlab_inline("run", "--config", "no/such/file.yaml", check=False))
    assert "no/such/file.yaml: no such file" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('Parser key "model":\n  Problem with given class_path \'lightning.LightningModule\':\n    '
         "Option 'fusion_dim' is not accepted\n  Given value: {'init_args': {'fusion_dim': 32}}", "model.class_path is missing"),
        ('Parser key "data":\n  Problem with given class_path \'affectlab.data.synth.datamodule.AffectSynthDataModule\':\n'
         "    Key \"root\" is required but not included in config object or its value is None.", "data.init_args.root: required"),
        ('Parser key "model":\n  Problem with given class_path \'affectlab.methods.SupervisedClassifier\':\n'
         "    Option 'fusion_dims' is not accepted", "model.init_args.fusion_dims: not accepted"),
    ],
)
def test_explain_argument_error_patterns(raw, expected):
    assert expected in explain_argument_error(raw)
