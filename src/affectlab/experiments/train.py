"""``train(configs, overrides)``: one AffectLab run in this process, as ``affectlab run`` would do it.

The CLI object is built from the configs and the overrides (dotted keys, as on the command line:
``{"trainer.max_steps": 500}``); its command chain runs, and the result names the run and its metrics per
command. Every run is an ordinary run in the store: it can be opened, re-run or resumed on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectlab.runs.lifecycle import end_attempt
from affectlab.runs.lightning_cli import AffectLabCLI


@dataclass
class RunResult:
    run_id: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # command (validate, test) -> name -> value
    seconds: float = 0.0


def option_value(value: Any) -> str:
    """A Python value as the parser reads it from one command-line token."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run_arguments(configs: list[Path], overrides: dict[str, Any], model: Path | None = None,
                  extra: list[str] = ()) -> list[str]:
    """The CLI arguments of a run: the model config, then each config in order, then the overrides (later
    ones win), then ``extra`` options passed on verbatim (a user's command-line tail)."""
    args = ["--model", str(model)] if model is not None else []
    for config in configs:
        args += ["--config", str(config)]
    for key, value in overrides.items():
        args += [f"--{key}", option_value(value)]
    return args + list(extra)


def train(configs: list[Path], overrides: dict[str, Any], model: Path | None = None, extra: list[str] = (),
          on_open: Callable[[str], None] | None = None) -> RunResult:
    """Build and run one AffectLab run; ``on_open(run_id)`` is called once the run exists, before training
    (so a caller can record the id of a run that may be interrupted). The run ends FINISHED, or FAILED with
    the error as its ``affectlab.error`` tag; it is opened only once config, model and data module are built."""
    start = time.perf_counter()
    cli = AffectLabCLI(run_arguments(configs, overrides, model, extra))
    if on_open is not None:
        try:
            on_open(cli.run_id)
        except BaseException as error:  # the run exists: it ends FAILED with the error, not RUNNING
            end_attempt(cli.run, error)
            raise
    metrics = cli.run_commands()
    return RunResult(cli.run_id, metrics, time.perf_counter() - start)
