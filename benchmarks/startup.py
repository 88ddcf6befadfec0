"""Times how long ``affectlab`` takes to answer before any work: ``--help`` and config errors.

Each case runs the real command in a fresh process ``--repeats`` times (median wall time), beside the
baseline of ``python -c pass`` (the interpreter alone). The bound (issue 16, point 9) is 2 s per case on
this machine; the table says, per case, the seconds, the ratio to the baseline and whether it holds.
Errors that jsonargparse finds need the model's class, so they import torch and Lightning: the "cold" case
shows what the lazy imports cannot save. The "warm key cache" cases run after one successful parse has
written the cache of valid keys (``affectlab.runs.schema_cache``, here in a temporary folder), which refuses
a misspelt key before torch loads. Run ``python benchmarks/startup.py [--repeats 5]``.
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


MODEL, DATA = str(CONFIGS / "model/supervised.yaml"), str(CONFIGS / "data/synth.yaml")


def cases(folder: Path) -> dict[str, tuple[list[str], str]]:
    """Case name -> (the command's arguments after ``python -m affectlab``, the key cache: cold or warm)."""
    bad = folder / "bad_indent.yaml"
    bad.write_text("model:\n    class_path: affectlab.methods.SupervisedClassifier\n     init_args: {}\n")
    top = folder / "trainer_key.yaml"
    top.write_text("trainer:\n  max_epochss: 1\n")
    lrr = ["run", "--model", MODEL, "--data", DATA, "--model.init_args.lrr", "1"]
    return {
        "affectlab --help": (["--help"], "cold"),
        "missing config file": (["run", "--config", str(folder / "missing.yaml")], "cold"),
        "YAML syntax error": (["run", "--config", str(bad)], "cold"),
        "unknown data set name": (["run", "--model", MODEL, "--data", "rafdbb"], "cold"),
        "unknown model key (cold: jsonargparse)": (lrr, "cold"),
        "unknown model key (warm key cache)": (lrr, "warm"),
        "unknown YAML key (warm key cache)": (["run", "--model", MODEL, "--data", DATA, "--config", str(top)], "warm"),
    }


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "AFFECTLAB_CACHE_DIR": str(cache),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def warm_cache(cache: Path) -> None:
    """One successful parse (nothing built), as any earlier run would have done: it writes the key cache."""
    code = f"from affectlab.runs.lightning_cli import prime_schema_cache; prime_schema_cache({['--model', MODEL, '--data', DATA]!r})"
    subprocess.run([sys.executable, "-c", code], env=_env(cache), capture_output=True, check=True)


def wall_time(command: list[str], repeats: int, cache: Path | None = None) -> float:
    env = _env(cache) if cache else os.environ
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
    print(f"{'case':40s} {'seconds':>8s} {'x baseline':>10s}  < {BOUND_S:.0f} s")
    with tempfile.TemporaryDirectory() as folder:
        caches = {"cold": Path(folder) / "cold-cache", "warm": Path(folder) / "warm-cache"}
        warm_cache(caches["warm"])
        for name, (args, cache) in cases(Path(folder)).items():
            seconds = wall_time([sys.executable, "-m", "affectlab", *args], options.repeats, caches[cache])
            print(f"{name:40s} {seconds:8.2f} {seconds / baseline:10.1f}  {'yes' if seconds < BOUND_S else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
