"""Testing a trained run's model on another data set (seed 004's ``classification-test``): its own run.

    affectlab test --run_id SOURCE --data fer2013 --data.init_args.root ~/datasets/FER2013

A reused run whose chain only evaluates (``validate``, ``test``, ``predict``, ``eval``) on a data section other
than the one it was trained on is a *cross-domain test*: it does not log into the source run, whose own
``test/acc``, confusion picture, predictions and config stay those of its source data, but into a child run of
it (``mlflow.parentRunId``: MLflow's UI nests the targets under their source), named
``<source name>-on-<target>``, that holds the target's metrics under the usual keys (``test/acc``,
``test/f1/<class>``, ...: the results table, ``affectlab summarize`` and the UI's columns read them as any
test), the target's full data config as params, and these tags (``runs/groups.py`` lists them with the rest):

| tag | value |
|---|---|
| ``affectlab.cross_domain.source`` | the source run's id (the weights: its ``checkpoints/best.ckpt``) |
| ``affectlab.cross_domain.data`` | the target data set's registry name (``fer2013``, ``synth``, ...) |
| ``affectlab.cross_domain.key`` | a digest of the target's data section: the same target tested again reuses its child |

The weights are the source's: ``best.ckpt`` by default, and ``$ckpt_dir`` in ``--test.ckpt_path`` means the
source's checkpoint folder. Loader-only keys (``batch_size``, ``num_workers``) never make a data section another
one, and a key only one of the two configs has (an argument added to a data module since) is not compared.
Classes need no mapping here: every reader serves its labels in ``contract.EMOTIONS``' order through its own
codes (``data/labels.py``), and the model checks the data module's class names against its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from affectlab.runs.lifecycle import PARENT_TAG
from affectlab.runs.store import RunStore

SOURCE_TAG = "affectlab.cross_domain.source"
DATA_TAG = "affectlab.cross_domain.data"
KEY_TAG = "affectlab.cross_domain.key"
EVALUATION_COMMANDS = ("validate", "test", "predict", "eval")
LOADER_KEYS = ("batch_size", "num_workers")  # how samples are batched and loaded, not which samples


@dataclass
class CrossDomainTest:
    source_run_id: str
    target: str  # the target data set's name
    key: str  # digest of the target's data section
    run_id: str | None  # the child of an earlier test on the same target, reused; None: a new child
    run_name: str
    experiment: str  # the source's experiment: its children live beside it

    def tags(self) -> dict[str, str]:
        return {SOURCE_TAG: self.source_run_id, DATA_TAG: self.target, KEY_TAG: self.key}


def _init_args(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (data.get("init_args") or {}).items() if k not in LOADER_KEYS}


def same_data(stored: dict[str, Any] | None, current: dict[str, Any] | None) -> bool:
    """Whether two dumped ``data`` sections name the same samples (module docstring)."""
    stored, current = stored or {}, current or {}
    if stored.get("class_path") != current.get("class_path"):
        return False
    old, new = _init_args(stored), _init_args(current)
    return all(old[k] == new[k] for k in old.keys() & new.keys())


def data_key(data: dict[str, Any]) -> str:
    canonical = json.dumps({"class_path": data.get("class_path"), "init_args": _init_args(data)}, sort_keys=True,
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def data_name(data: dict[str, Any]) -> str:
    """The registry's name of the data set a ``data`` section reads (its class's last name if none)."""
    from affectlab.data.registry import specs

    class_path = str(data.get("class_path") or "")
    init_args = data.get("init_args") or {}
    for spec in specs():
        if spec.reader == class_path and all(init_args.get(k) == v for k, v in (spec.init_args or {}).items()):
            return spec.name
    return class_path.rsplit(".", 1)[-1] or "data"


def cross_domain_test(store: RunStore, run_id: str | None, commands: list[str], config_text: str,
                      source_config: Path | None = None) -> CrossDomainTest | None:
    """The cross-domain test that ``commands`` on run ``run_id`` with this config (``parser.dump``'s text) are,
    or None when they are an ordinary reuse of the run (module docstring)."""
    if run_id is None or not commands or any(c not in EVALUATION_COMMANDS for c in commands):
        return None
    stored = yaml.safe_load(Path(source_config or store.first_config(run_id)).read_text()) or {}
    current = yaml.safe_load(config_text) or {}
    if same_data(stored.get("data"), current.get("data")):
        return None
    source = store.get_run(run_id)
    target, key = data_name(current["data"]), data_key(current["data"])
    earlier = store.client.search_runs(
        [source.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{source.info.run_id}' and tags.`{KEY_TAG}` = '{key}'",
        order_by=["attributes.start_time ASC"], max_results=1,
    )
    return CrossDomainTest(source.info.run_id, target, key, earlier[0].info.run_id if earlier else None,
                           f"{source.info.run_name}-on-{target}",
                           store.client.get_experiment(source.info.experiment_id).name)
