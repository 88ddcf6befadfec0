"""Times how long ``affectlab`` takes to answer before any work: ``--help`` and config errors.

Each case runs the real command in a fresh process ``--repeats`` times (median wall time), beside the
baseline of ``python -c pass`` (the interpreter alone). The bound (issue 16, point 9) is 2 s per case on
this machine; the table says, per case, the seconds, the ratio to the baseline and whether it holds.
Errors that jsonargparse finds need the model's class, so they import torch and Lightning: those cases show
what the lazy imports cannot save. Run ``python benchmarks/startup.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
BOUND_S = 2.0


def cases(folder: Path) -> dict[str, list[str]]:
    """Case name -> the command's arguments (after ``python -m affectlab``); ``None`` for the baseline."""
    bad = folder / "bad_indent.yaml"
    bad.write_text("model:\n    class_path: affectlab.methods.SupervisedClassifier\n     init_args: {}\n")
    model, data = str(CONFIGS / "model/supervised.yaml"), str(CONFIGS / "data/synth.yaml")
    return {
        "affectlab --help": ["--help"],
        "missing config file": ["run", "--config", str(folder / "missing.yaml")],
        "YAML syntax error": ["run", "--config", str(bad)],
        "unknown data set name": ["run", "--model", model, "--data", "rafdbb"],
        "unknown model key (jsonargparse)": ["run", "--model", model, "--data", data, "--model.init_args.lrr", "1"],
    }


def wall_time(command: list[str], repeats: int) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    baseline = wall_time([sys.executable, "-c", "pass"], options.repeats)
    print(f"baseline python -c pass: {baseline:.2f} s (median of {options.repeats})")
    print(f"{'case':36s} {'seconds':>8s} {'x baseline':>10s}  < {BOUND_S:.0f} s")
    with tempfile.TemporaryDirectory() as folder:
        for name, args in cases(Path(folder)).items():
            seconds = wall_time([sys.executable, "-m", "affectlab", *args], options.repeats)
            print(f"{name:36s} {seconds:8.2f} {seconds / baseline:10.1f}  {'yes' if seconds < BOUND_S else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
