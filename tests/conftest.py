"""Shared fixtures: a tiny AffectSynth and a way to run the ``affectlab`` command in a subprocess.

Every CLI test runs the real command in its own process on a tiny data set (48 clips of 4 frames of
32x32 pixels, 6 identities) with a tiny model, so the whole suite fits CI's 2 cores.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# In-process tests share CI's 2 cores with a second pytest-xdist worker: with several threads each, torch's
# thread pools spin against each other and a test runs tens of times slower.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
HELPERS = Path(__file__).resolve().parent / "helpers"
TEST_CONFIGS = Path(__file__).resolve().parent / "configs"

@pytest.fixture(scope="session", autouse=True)
def _config_key_cache(tmp_path_factory):
    """The cache of valid config keys (runs/schema_cache.py) in the session's folder, not the user's ~/.cache."""
    os.environ["AFFECTLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("config-key-cache"))


TINY_DATA = {
    "num_clips": 48,
    "num_identities": 6,
    "num_frames": 4,
    "image_size": 32,
    "batch_size": 8,
}


def tiny_data_args(data_root: Path, store: Path, max_epochs: int = 2) -> list[str]:
    """CLI options for tiny AffectSynth, a CPU trainer and a run store in ``store`` (any model)."""
    args = [
        "--data", str(CONFIGS / "data/synth.yaml"),
        "--data.init_args.root", str(data_root),
        "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", str(max_epochs),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.log_every_n_steps", "1",
        "--store", str(store),
    ]
    for key, value in TINY_DATA.items():
        args += [f"--data.init_args.{key}", str(value)]
    return args


def tiny_args(data_root: Path, store: Path, max_epochs: int = 2) -> list[str]:
    """CLI options for a fast supervised run on tiny AffectSynth (a test adds or overrides more)."""
    return [
        "--model", str(CONFIGS / "model/supervised.yaml"),
        "--config", str(TEST_CONFIGS / "tiny_supervised.yaml"),
        *tiny_data_args(data_root, store, max_epochs),
    ]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("AFFECTLAB_RUN_ID", None)
    # One thread per process: pytest-xdist runs two workers on CI's two cores.
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(HELPERS), *filter(None, [os.environ.get("PYTHONPATH")])])})
    return env


def affectlab(*args: str, cwd: Path | None = None, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``affectlab ARGS`` in a subprocess and return it (stdout and stderr as text)."""
    result = subprocess.run(
        [sys.executable, "-m", "affectlab", *args],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"affectlab {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def affectlab_inline(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``affectlab ARGS`` in this process, for commands that only parse and print (``--print_config``,
    ``--help``, error messages of a bad config, ``data export|check``): the same result as ``affectlab()``
    without the seconds a new process spends importing torch and Lightning. Commands that train run in a
    subprocess (``affectlab()``): a trainer leaves global state (seeds, threads, loggers) behind."""
    import contextlib
    import io
    import traceback

    from affectlab.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = {key: os.environ.pop(key, None) for key in ("MLFLOW_TRACKING_URI", "AFFECTLAB_RUN_ID")}
    here = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except Exception:  # what the process would print before exiting with 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(here)
        os.environ.update({key: value for key, value in saved.items() if value is not None})
    result = subprocess.CompletedProcess(["affectlab", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"affectlab {' '.join(args)} failed ({code}):\n{result.stdout}\n{result.stderr}")
    return result


def printed_run_id(output: str) -> str:
    ids = re.findall(r"^run_id: ([0-9a-f]{32})$", output, flags=re.MULTILINE)
    assert ids, f"no 'run_id: <id>' line in:\n{output}"
    return ids[0]


def mlflow_client(store: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{store / 'mlflow.db'}")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A data root holding the tiny AffectSynth cache, generated once per test process."""
    from affectlab.data.synth.datamodule import AffectSynthDataModule

    root = tmp_path_factory.mktemp("affectsynth")
    AffectSynthDataModule(root=str(root), **{k: v for k, v in TINY_DATA.items()}).prepare_data()
    return root


@pytest.fixture(scope="session")
def synth(tiny_data):
    """The tiny AffectSynth's arrays, which the exporters write in each data set's layout."""
    from affectlab.data.synth.datamodule import AffectSynthDataModule

    module = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA)
    module.prepare_data()
    return module.arrays


@pytest.fixture
def datamodule(tiny_data):
    """The tiny AffectSynth data module, set up (splits made, cache opened)."""
    from affectlab.data.synth.datamodule import AffectSynthDataModule

    data = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA)
    data.setup()
    return data


def face_scene(seed: int = 0, face_size: int = 96, scene: tuple[int, int] = (240, 180), roll_degrees: float = 0.0,
               at: tuple[int, int] = (70, 40), au=None):
    """A ``[H, W, 3]`` uint8 scene (width, height = ``scene``) holding one AffectSynth face (shaded style, the
    one MTCNN finds most reliably), ``face_size`` pixels, top-left corner at ``at``, rolled by ``roll_degrees``."""
    import numpy as np
    from PIL import Image

    from affectlab.data.synth.faces import render_clip, sample_face, sample_pose

    rng = np.random.default_rng(seed)
    units = np.zeros((1, 12), np.float32) if au is None else np.asarray(au, np.float32).reshape(1, 12)
    frame = render_clip(sample_face(rng), units, sample_pose(rng, 1, amount=0.0), "shaded", face_size, rng)[0]
    face = Image.fromarray(frame).rotate(roll_degrees, resample=Image.BILINEAR, fillcolor=(90, 120, 90))
    image = Image.new("RGB", scene, (90, 120, 90))
    image.paste(face, at)
    return np.asarray(image).copy()
