"""Config strings run no code: every class path and dotted name resolves only inside the allowed packages
and only to what its key takes, and is refused before anything outside them is imported, in configs given
on the command line and in a run's stored ``config.yaml`` (which ``run --run_id``, ``test --run_id``,
``export`` and ``predict`` rebuild from).

Each attack would create a marker file if it ran (a shell command, a process, or a module whose import has
that side effect); the test asserts the command is refused with a message naming the key and the marker
never appears. A control imports the same module once the user allows its package, so the marker mechanism
is shown to work.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, affectlab_inline

from affectlab.errors import ConfigError

MODEL, DATA = str(CONFIGS / "model/supervised.yaml"), str(CONFIGS / "data/synth.yaml")
EVIL = "affectlab_evil_module"  # a module on sys.path whose import creates the marker


@pytest.fixture
def marker(tmp_path, monkeypatch) -> Path:
    """The marker file an attack would create, and the side-effect module that creates it on import."""
    path = tmp_path / "pwned"
    (tmp_path / f"{EVIL}.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(path)!r}).write_text("imported")
        import torch
        class Net(torch.nn.Module):
            pass
        def make() -> torch.nn.Module:
            return Net()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("AFFECTLAB_IMPORT_ALLOWLIST", raising=False)
    return path


def _refused(result, marker: Path, *expected: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists(), "the attack ran"
    for part in expected:
        assert part in result.stderr, result.stderr
    return result.stderr


def _run(tmp_path: Path, *args: str):
    return affectlab_inline("run", "--model", MODEL, "--data", DATA, "--data.init_args.root", str(tmp_path / "data"),
                            "--store", str(tmp_path / "store"), "--trainer.max_epochs", "1", *args, cwd=tmp_path,
                            check=False)


def _touch(marker: Path) -> str:
    return f"touch {marker}"


BACKBONE = "--model.init_args.encoders.video.init_args.backbone"
BACKBONE_KWARGS = "--model.init_args.encoders.video.init_args.backbone_kwargs"


@pytest.mark.parametrize(("backbone", "kwargs"), [
    ("os.system", "{{command: '{touch}'}}"),
    ("subprocess.Popen", "{{args: [touch, '{marker}']}}"),
    ("builtins.eval", "{{source: \"__import__('os').system('{touch}')\"}}"),
    ("affectlab.cli.main.os.system", "{{command: '{touch}'}}"),  # through an allowed module
    (f"{EVIL}.Net", "{{}}"),  # module-level side effect
])
def test_a_backbone_runs_no_code(backbone, kwargs, marker, tmp_path):
    kwargs = kwargs.format(touch=_touch(marker), marker=marker)
    _refused(_run(tmp_path, BACKBONE, backbone, BACKBONE_KWARGS, kwargs), marker, "backbone:", "is refused")


def test_torch_load_is_no_backbone(marker, tmp_path):
    """An allowed package, but not an nn.Module factory: refused by what the key takes."""
    _refused(_run(tmp_path, BACKBONE, "torch.load", BACKBONE_KWARGS, f"{{f: '{marker}'}}"), marker,
             "backbone: 'torch.load' is refused", "nn.Module")


@pytest.mark.parametrize(("option", "value"), [
    ("--model.init_args.optimizer_init.class_path", "subprocess.Popen"),
    ("--model.init_args.optimizer_init.class_path", f"{EVIL}.Net"),
    ("--model.init_args.lr_scheduler_init", "{{class_path: os.system, init_args: {{command: '{touch}'}}}}"),
    ("--additional_callbacks", "[{{class_path: subprocess.Popen, init_args: {{args: [touch, '{marker}']}}}}]"),
    ("--trainer.logger", f"{{{{class_path: {EVIL}.Net}}}}"),
])
def test_optimisers_schedulers_callbacks_loggers_run_no_code(option, value, marker, tmp_path):
    value = value.format(touch=_touch(marker), marker=marker)
    _refused(_run(tmp_path, option, value), marker, "is refused")


def test_torch_load_is_no_optimiser(marker, tmp_path):
    """A function of an allowed package, which jsonargparse takes for a Callable and would call with the
    init_args when instantiating: refused before anything is built."""
    _refused(_run(tmp_path, "--model.init_args.optimizer_init", f"{{class_path: torch.load, init_args: {{f: '{marker}'}}}}"),
             marker, "model.init_args.optimizer_init.class_path: 'torch.load' is refused: it is a function")


def test_a_model_class_path_in_a_config_file_runs_no_code(marker, tmp_path):
    config = tmp_path / "attack.yaml"
    config.write_text(f"model:\n  class_path: {EVIL}.Net\n")
    _refused(affectlab_inline("run", "--data", DATA, "--config", str(config), "--print_config", check=False),
             marker, f"model.class_path: '{EVIL}.Net' is refused")


def test_the_allowlist_lets_a_trusted_package_in(marker, tmp_path):
    """Control: the same module, allowed on the command line, is imported (so the attacks above would show)."""
    config = tmp_path / "trusted.yaml"
    config.write_text(f"model:\n  class_path: {EVIL}.Net\n")
    result = affectlab_inline("run", "--data", DATA, "--import_allowlist", EVIL, "--config", str(config),
                              "--print_config", check=False)
    assert marker.exists(), result.stderr
    assert "is not a subclass of" in result.stderr or "LightningModule" in result.stderr  # imported, then typed


# -- a run's stored config.yaml ---------------------------------------------------------------------------------
@pytest.fixture
def stored_run(tmp_path):
    """A run in a fresh store, and a way to replace its config.yaml as someone who can write to the store."""
    from affectlab.runs.store import RunStore

    store = RunStore.resolve(str(tmp_path / "store"))
    run_id = store.create_run("attacks", "attacked", {})
    artifacts = store.artifact_dir(run_id)
    artifacts.mkdir(parents=True, exist_ok=True)

    def write(config: dict) -> str:
        (artifacts / "config.yaml").write_text(yaml.safe_dump(config))
        return run_id

    return write


def _stored_config(**model_init_args) -> dict:
    """A complete run config whose model is the supervised baseline with ``model_init_args`` changed."""
    printed = affectlab_inline("run", "--model", MODEL, "--data", DATA, "--print_config")
    config = yaml.safe_load(printed.stdout)
    config["model"]["init_args"].update(model_init_args)
    return config


def _video_backbone(backbone: str, **kwargs) -> dict:
    return {"video": {"class_path": "affectlab.nn.encoders.FrameEncoder",
                      "init_args": {"backbone": backbone, "backbone_kwargs": kwargs}}}


def test_a_stored_config_with_a_side_effect_module_runs_nothing_under_test_run_id(marker, tmp_path, stored_run):
    config = _stored_config()
    config["model"] = {"class_path": f"{EVIL}.Net"}
    config["import_allowlist"] = [EVIL]  # a file cannot widen its own permissions
    run_id = stored_run(config)
    for command in ("test", "run"):
        _refused(affectlab_inline(command, "--run_id", run_id, "--store", str(tmp_path / "store"), cwd=tmp_path,
                                  check=False), marker, "is refused")


def test_a_stored_config_rebuilt_for_export_and_predict_runs_nothing(marker, tmp_path, stored_run):
    from affectlab.runs.models import build_run_model

    store = str(tmp_path / "store")
    attacks = [
        _stored_config(encoders=_video_backbone("os.system", command=_touch(marker))),
        _stored_config(optimizer_init={"class_path": "subprocess.Popen", "init_args": {"args": ["touch", str(marker)]}}),
        _stored_config(lr_scheduler_init={"class_path": "os.system", "init_args": {"command": _touch(marker)}}),
        _stored_config(optimizer_init={"class_path": "torch.load", "init_args": {"f": str(marker)}}),
    ]
    for config in attacks:
        run_id = stored_run(config)
        with pytest.raises((ConfigError, ValueError, TypeError), match="refused"):
            build_run_model(run_id, store)
        assert not marker.exists()
    _refused(affectlab_inline("export", "onnx", "--run_id", run_id, "--store", store, "--out", str(tmp_path / "m.onnx"),
                              cwd=tmp_path, check=False), marker, "is refused")
