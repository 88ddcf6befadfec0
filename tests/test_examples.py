"""Every script under examples/ runs as a user would run it, on its own tiny defaults, and makes what it says."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from conftest import ROOT, cli_env

from affectlab.data.contract import ACTION_UNITS


def test_every_example_is_tested_here():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == ["train_predict_plot.py"]


def test_train_predict_plot_on_affectsynth(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "examples/train_predict_plot.py"), "--out", str(out)],
                            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "LightningCLI's args parameter" not in result.stderr  # the script's own argv is not the run's
    assert "test/au_f1_mean" in result.stdout
    predictions = pd.read_csv(out / "held_out.csv")
    assert list(predictions.columns[:6]) == ["source", "frame", "face_id", "timestamp", "confidence", "success"]
    assert {f"AU{au:02d}_r" for au in ACTION_UNITS} <= set(predictions.columns)
    assert predictions["source"].nunique() == 4 and predictions["success"].sum() > 0
    for figure in ("au_timeline.png", "emotions.png"):
        assert (out / figure).stat().st_size > 5000
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlruns").exists()  # everything under --out
