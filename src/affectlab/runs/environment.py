"""What a run needs to be repeated: package versions, code version, seed, command line, machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import affectlab


def git_state(directory: Path) -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding ``directory``; empty when it is not one."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {}


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def determinism() -> dict[str, Any]:
    """What identical numbers also depend on besides config and seed: the CPU thread counts (a float sum
    split over another number of threads adds in another order and differs in its last bits) and
    deterministic algorithms."""
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_variables": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "condition": "identical results need the same config, seed, package versions, device and thread counts "
                     "(torch_threads; set OMP_NUM_THREADS to fix it)",
    }


def environment(seed: int | None, argv: list[str]) -> dict[str, Any]:
    packages = {dist.metadata["Name"]: dist.version for dist in importlib.metadata.distributions()}
    return {
        "command": shlex.join(["affectlab", *argv]),
        "seed": seed,
        "affectlab": affectlab.__version__,
        "git": git_state(Path(affectlab.__file__).resolve().parent),
        "python": sys.version,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
        "determinism": determinism(),
        "packages": dict(sorted(packages.items(), key=lambda item: item[0].lower())),
    }
