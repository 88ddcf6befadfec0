"""A run's life in the store, apart from the trainer: opened (new or reused), its configs, environment and
params logged, its predictions written as CSV.

Under DDP Lightning re-launches the command once per extra process. Only global rank 0 creates the run and
writes to the store; it passes the run id to the others through ``AFFECTLAB_RUN_ID``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from affectlab.errors import ConfigError
from affectlab.runs.environment import environment
from affectlab.runs.store import RunStore

RUN_ID_ENV = "AFFECTLAB_RUN_ID"
DEFAULT_SEED = 127  # seed 000's default seed: every run, recipe and ablation starts from it unless told
BEST, LAST = "best.ckpt", "last.ckpt"


@dataclass
class OpenRun:
    store: RunStore
    run_id: str
    reused: bool

    @property
    def checkpoint_dir(self) -> Path:
        return self.store.checkpoint_dir(self.run_id)


def open_run(store: str | None, run_id: str | None, experiment: str, name: str, seed: Any, rank: int) -> OpenRun:
    """The run to log to: ``run_id``'s if given, else a new one named ``name``; ranks above 0 take rank 0's."""
    resolved = RunStore.resolve(store)
    if rank != 0:
        inherited = os.environ.get(RUN_ID_ENV) or run_id
        if not inherited:
            raise ConfigError(
                f"process of global rank {rank} has no run id: start distributed runs through "
                f"Lightning's launcher (--trainer.strategy ddp) or set {RUN_ID_ENV}"
            )
        return OpenRun(resolved, inherited, reused=True)
    if run_id is not None:
        opened = OpenRun(resolved, resolved.get_run(run_id).info.run_id, reused=True)
    else:
        opened = OpenRun(resolved, resolved.create_run(experiment, name, {"affectlab.seed": str(seed)}), reused=False)
    os.environ[RUN_ID_ENV] = opened.run_id  # Lightning's DDP launcher copies the environment to its children
    return opened


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict) and tree:
        flat: dict[str, str] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: str(tree)[:500]}


def log_run_contents(run: OpenRun, config_text: str, seed: Any, argv: list[str]) -> None:
    """The config (``config.yaml`` first, ``config_<timestamp>.yaml`` after), the environment, tags and, for a
    new run, the flattened config as params."""
    run.store.log_config(run.run_id, config_text)
    env = environment(seed, argv)
    client = run.store.client
    client.log_text(run.run_id, json.dumps(env, indent=2), "environment.json")
    tags = {"affectlab.command": env["command"][:5000], "affectlab.seed": str(seed)}
    if env["git"]:
        tags["mlflow.source.git.commit"] = env["git"]["commit"]
        tags["affectlab.git_dirty"] = str(env["git"]["dirty"])
    for key, value in tags.items():
        client.set_tag(run.run_id, key, value)
    if not run.reused:  # MLflow refuses to change a logged param; later configs are kept as files instead
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten(yaml.safe_load(config_text)).items()]
        for start in range(0, len(params), 100):
            client.log_batch(run.run_id, params=params[start : start + 100])


def predictions_csv(batches: list[dict[str, torch.Tensor]], class_names: list[str] | None) -> tuple[str, int] | None:
    """The predict batches as CSV text (one column per 1-d output, ``p_<class>`` per probability) and its row
    count; None when the method predicts no dict of tensors."""
    if not batches or not isinstance(batches[0], dict):
        return None
    columns = {key: torch.cat([b[key] for b in batches]).cpu() for key in batches[0]}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [k for k in columns if columns[k].ndim == 1]
    probabilities = columns.get("probabilities")
    classes = class_names or ([str(i) for i in range(probabilities.shape[1])] if probabilities is not None else [])
    writer.writerow(header + [f"p_{c}" for c in classes] if probabilities is not None else header)
    count = len(columns[header[0]])
    for row in range(count):
        values = [columns[k][row].item() for k in header]
        if probabilities is not None:
            values += [f"{p:.6f}" for p in probabilities[row].tolist()]
        writer.writerow(values)
    return buffer.getvalue(), count


def log_predictions(run: OpenRun, batches: list[dict[str, torch.Tensor]], class_names: list[str] | None) -> None:
    table = predictions_csv(batches, class_names)
    if table is None:
        return
    text, count = table
    run.store.client.log_text(run.run_id, text, "predictions/predictions.csv")
    print(f"predict: {count} predictions logged as predictions/predictions.csv", flush=True)
