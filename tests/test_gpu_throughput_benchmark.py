"""benchmarks/gpu_throughput.py on a machine without a GPU: it says so and exits 0, and its timing loop, run on the
CPU at the tests' size, reports what the benchmark prints (samples/s, the data-wait share)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_throughput.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_so_and_exits_0() -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines() == [load_benchmark().NEEDS_GPU]


@pytest.mark.parametrize("workload", ["au", "conclugen"])
def test_the_timing_loop_reports_throughput_and_data_wait_on_the_cpu(workload: str) -> None:
    import torch

    bench = load_benchmark()
    make = {"au": bench.au_workload, "conclugen": bench.conclugen_workload}[workload]
    setting = bench.Setting("accelerated", bf16=workload == "au", channels_last=True)  # CPU bf16: see main()
    for chosen in (bench.Setting("baseline"), setting):
        job = make(bench.TINY)
        result = bench.measure(job, chosen, torch.device("cpu"), steps=3, warmup=1, workers=0)
        assert result.setting == chosen.name and result.workload.startswith({"au": "AU", "conclugen": "ConCluGen"}[workload])
        assert result.samples_per_s > 0 and result.step_ms > 0
        # workers=0: every batch is made in the loop, so some time is spent waiting for it, and not all of it
        assert 0 < result.data_wait_share < 1
        assert result.samples_per_s == pytest.approx(job.batch_size * 1e3 / result.step_ms)


def test_the_hidden_cpu_mode_prints_the_device_and_each_ratio() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--steps", "2", "--warmup", "1",
                           "--repeats", "1", "--workers", "1", "--workload", "conclugen"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("device: CPU")
    summary = [line for line in lines if "ratio accelerated/baseline" in line]
    assert len(summary) == 1 and summary[0].startswith("ConCluGen") and " on CPU: " in summary[0], done.stdout
    assert float(summary[0].rsplit(" ", 1)[1]) > 0
