"""Times how long ``affectlab`` takes to answer before any work: ``--help`` and config errors.

Each case runs the real command in a fresh process ``--repeats`` times (median wall time), beside the
baseline of ``python -c pass`` (the interpreter alone). The bound (issue 16, point 9) is 2 s per case on
this machine; the table says, per case, the seconds, the ratio to the baseline and whether it holds.
The config errors run twice: with the cache the install step writes (``make``:
``runs.lightning_cli.prime_bundled_schema_cache``, timed here too, into a temporary ``AFFECTLAB_CACHE_DIR``),
which refuses each of them before torch loads, and with an empty cache (``empty``), where jsonargparse finds
them and so needs torch and Lightning: what an install that skipped the step pays until its first successful
parse. Run ``python benchmarks/startup.py [--repeats 5]``.
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


def cases(folder: Path) -> dict[str, list[str]]:
    """Case name -> the command's arguments after ``python -m affectlab``."""
    bad = folder / "bad_indent.yaml"
    bad.write_text("model:\n    class_path: affectlab.methods.SupervisedClassifier\n     init_args: {}\n")
    top = folder / "trainer_key.yaml"
    top.write_text("trainer:\n  max_epochss: 1\n")
    wrong_type = folder / "wrong_type_model.yaml"
    wrong_type.write_text("model:\n  init_args:\n    dropout: lots\n")
    model_class = folder / "model_class.yaml"
    model_class.write_text("model:\n  class_path: affectlab.methods.SupervisedClasifier\n")
    run = ["run", "--model", MODEL, "--data", DATA]
    return {
        "affectlab --help": ["--help"],
        "missing config file": ["run", "--config", str(folder / "missing.yaml")],
        "YAML syntax error": ["run", "--config", str(bad)],
        "unknown data set name": ["run", "--model", MODEL, "--data", "rafdbb"],
        "unknown model key": [*run, "--model.init_args.lrr", "1"],
        "unknown YAML key": [*run, "--config", str(top)],
        "unknown encoder key": [*run, "--model.init_args.encoders.video.init_args.backbonee", "x"],
        "wrong type (command line)": [*run, "--trainer.max_epochs", "ten"],
        "wrong type (YAML, model)": [*run, "--config", str(wrong_type)],
        "wrong class path (YAML)": ["run", "--data", DATA, "--config", str(model_class)],
        "wrong optimiser class path": [*run, "--model.init_args.optimizer_init.class_path", "torch.optim.AdamWW"],
        "unknown model class name": ["run", "--model", "SupervisedClasifier", "--data", DATA],
        "refused class path": [*run, "--model.init_args.optimizer_init.class_path", "subprocess.Popen"],
    }


# cases answered before any config is read: the cache cannot change them
NO_CACHE_NEEDED = ("affectlab --help", "missing config file", "YAML syntax error", "unknown data set name")


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "AFFECTLAB_CACHE_DIR": str(cache),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def install_cache(cache: Path) -> float:
    """The install step's cache (``make``), written into ``cache``; its wall time in seconds."""
    code = "from affectlab.runs.lightning_cli import prime_bundled_schema_cache; prime_bundled_schema_cache()"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=_env(cache), capture_output=True, check=True)
    return time.perf_counter() - start


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
    with tempfile.TemporaryDirectory() as folder:
        caches = {"installed": Path(folder) / "installed-cache", "empty": Path(folder) / "empty-cache"}
        print(f"install step (prime_bundled_schema_cache): {install_cache(caches['installed']):.1f} s")
        print(f"{'case':34s} {'cache':>9s} {'seconds':>8s} {'x baseline':>10s}  < {BOUND_S:.0f} s")
        for name, args in cases(Path(folder)).items():
            for kind in ("installed",) if name in NO_CACHE_NEEDED else ("installed", "empty"):
                caches[kind].mkdir(exist_ok=True)
                seconds = wall_time([sys.executable, "-m", "affectlab", *args], options.repeats, caches[kind])
                print(f"{name:34s} {kind:>9s} {seconds:8.2f} {seconds / baseline:10.1f}  "
                      f"{'yes' if seconds < BOUND_S else 'NO'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
