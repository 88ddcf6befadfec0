"""``affectlab repeat --times 3 [run options]``: run the same config N times and say whether the runs agree.

Same config and seed must give the same numbers (seed 003's three "identical" runs scored 10.199, 10.217 and
10.472 BLEU until the seed was set before the model was built). Each copy is an ordinary run, a child of one
parent of kind ``repeat`` (``runs/groups.py``; tag ``affectlab.repeat``: the copy's index). A callback
(``WeightDigests``) records the state dict when training starts (weights built, checkpoint restored, before the
first optimiser step) and when it ends: per tensor a SHA-256 of its bytes, its shape, dtype and summary (mean,
std, min, max), logged as ``repeat/initial.json`` and ``repeat/final.json`` on each copy; the tensors themselves
are kept in a temporary folder only until they are compared.

The report (printed, and ``repeat.md`` on the parent, whose tag ``affectlab.repeat.identical`` is ``true`` or
``false``) answers three questions: are the initial weights identical, the final weights, every ``validate`` and
``test`` metric? When something differs it lists the tensors that differ at step 0 with the size of the
difference (the largest absolute difference to the first copy, and that relative to the tensor's largest
magnitude: seed 003's debugging table), and the first epoch where the logged metric histories (read back
from MLflow, every metric at every step) part.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from affectlab.errors import ConfigError
from affectlab.experiments.seeds import GroupTarget, group_target, refuse_options
from affectlab.experiments.train import RunResult, run_arguments
from affectlab.runs.groups import CONFIG_TAG, child_arguments, config_key, open_parent_run, parent_outcome
from affectlab.runs.lightning_cli import AffectLabCLI
from affectlab.runs.store import RunStore

KIND = "repeat"
INDEX_TAG = "affectlab.repeat"
IDENTICAL_TAG = "affectlab.repeat.identical"
TABLE = "repeat.md"
STAGES = ("initial", "final")
FINAL_SHOWN = 10


def tensor_summary(tensor: torch.Tensor) -> dict[str, Any]:
    """A tensor's digest (SHA-256 of its bytes: equal digests, equal tensors bit for bit) and summary."""
    data = tensor.detach().cpu().contiguous()
    entry: dict[str, Any] = {
        "sha256": hashlib.sha256(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"").hexdigest(),
        "shape": list(data.shape),
        "dtype": str(data.dtype).removeprefix("torch."),
    }
    if data.is_floating_point() and data.numel():
        values = data.double()
        entry |= {"mean": values.mean().item(), "std": values.std().item() if data.numel() > 1 else 0.0,
                  "min": values.min().item(), "max": values.max().item()}
    return entry


class WeightDigests(Callback):
    """Writes ``<folder>/{initial,final}.pt`` (the state dict on CPU) and ``.json`` (``tensor_summary`` per
    tensor) when training starts and ends."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _save(self, trainer: Trainer, module: LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().cpu().clone() for name, tensor in module.state_dict().items()}
        torch.save(state, self.folder / f"{stage}.pt")
        summaries = {name: tensor_summary(tensor) for name, tensor in state.items()}
        (self.folder / f"{stage}.json").write_text(json.dumps(summaries, indent=1))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save(trainer, pl_module, "initial")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save(trainer, pl_module, "final")


@dataclass
class TensorDifference:
    name: str
    max_abs: float | None  # None: shapes or dtypes differ, or the tensor is missing from a copy
    relative: float | None  # max_abs / the first copy's largest magnitude
    copies: list[int]  # the copies that differ from copy 0


@dataclass
class RepeatReport:
    parent_run_id: str
    runs: list[RunResult]
    weights: dict[str, list[TensorDifference]] = field(default_factory=dict)  # stage -> differing tensors
    weights_recorded: dict[str, bool] = field(default_factory=dict)  # stage -> every copy recorded it
    metrics: dict[str, list[float | None]] = field(default_factory=dict)  # differing metric -> value per copy
    divergence: tuple[int, int, list[str]] | None = None  # (epoch, step, metrics) where histories first part

    @property
    def identical(self) -> bool:
        return (all(self.weights_recorded.get(s, False) for s in STAGES) and not any(self.weights.values())
                and not self.metrics)


def compare_weights(folders: list[Path], stage: str) -> tuple[bool, list[TensorDifference]]:
    """(every copy recorded ``stage``, the tensors that differ from copy 0's)."""
    if not all((f / f"{stage}.json").is_file() for f in folders):
        return False, []
    digests = [json.loads((f / f"{stage}.json").read_text()) for f in folders]
    names = list(dict.fromkeys(name for d in digests for name in d))
    differing = [n for n in names if len({json.dumps(d.get(n, {}).get("sha256")) for d in digests}) > 1]
    if not differing:
        return True, []
    states = [torch.load(f / f"{stage}.pt", weights_only=True) for f in folders]
    result = []
    for name in differing:
        first = states[0].get(name)
        copies = [i for i, s in enumerate(states) if i and digests[i].get(name, {}).get("sha256") != digests[0].get(name, {}).get("sha256")]
        sizes = []
        for i in copies:
            other = states[i].get(name)
            if first is None or other is None or other.shape != first.shape or other.dtype != first.dtype:
                sizes = None
                break
            sizes.append((other.double() - first.double()).abs().max().item() if first.numel() else 0.0)
        largest = max(sizes) if sizes else None
        scale = first.double().abs().max().item() if first is not None and first.numel() and sizes is not None else 0.0
        result.append(TensorDifference(name, largest, largest / scale if largest is not None and scale else None, copies))
    result.sort(key=lambda d: -(d.max_abs if d.max_abs is not None else float("inf")))
    return True, result


def compare_metrics(runs: list[RunResult]) -> dict[str, list[float | None]]:
    """The ``validate`` / ``test`` metrics whose values are not the same in every copy."""
    names = list(dict.fromkeys(n for r in runs for c in ("validate", "test") for n in r.metrics.get(c, {})))
    differing = {}
    for name in names:
        values = [next((r.metrics[c][name] for c in ("validate", "test") if name in r.metrics.get(c, {})), None)
                  for r in runs]
        if len({json.dumps(v) for v in values}) > 1:
            differing[name] = values
    return differing


def _epoch_at(epochs: list[tuple[int, float]], step: int) -> int:
    """The epoch of a logged step: the ``epoch`` metric Lightning logs beside every logged step."""
    at = [value for s, value in epochs if s == step]
    before = [value for s, value in epochs if s <= step]
    return int(at[0] if at else before[-1] if before else 0)


def first_divergence(store: RunStore, run_ids: list[str]) -> tuple[int, int, list[str]] | None:
    """(epoch, step, metrics) of the first logged step where the copies' metric histories differ."""
    client = store.client
    runs = [client.get_run(r) for r in run_ids]
    names = sorted(set().union(*(r.data.metrics for r in runs)) - {"epoch"})
    first: tuple[int, list[str]] | None = None
    for name in names:
        histories = [[(m.step, m.value) for m in sorted(client.get_metric_history(r, name), key=lambda m: (m.step, m.timestamp))]
                     for r in run_ids]
        length = max(len(h) for h in histories)
        for index in range(length):
            entries = {h[index] if index < len(h) else None for h in histories}
            if len(entries) > 1:
                step = min(h[index][0] for h in histories if index < len(h))
                if first is None or step < first[0]:
                    first = (step, [name])
                elif step == first[0]:
                    first[1].append(name)
                break
    if first is None:
        return None
    epochs = [(m.step, m.value) for m in client.get_metric_history(run_ids[0], "epoch")]
    return _epoch_at(sorted(epochs), first[0]), first[0], first[1]


def run_copy(args: list[str], folder: Path) -> RunResult:
    """One copy: the run of ``args`` with ``WeightDigests`` on its trainer (added after the CLI built it, so the
    user's own ``--additional_callbacks`` stay as given)."""
    start = time.perf_counter()
    cli = AffectLabCLI(run_arguments([], {}, None, args))
    cli.trainer.callbacks.append(WeightDigests(folder))
    metrics = cli.run_commands()
    return RunResult(cli.run_id, metrics, time.perf_counter() - start)


def run_repeat(args: list[str], times: int, target: GroupTarget | None = None, on_open=None) -> RepeatReport:
    """Run ``args`` ``times`` times as the children of a parent of kind ``repeat`` and compare them."""
    if times < 2:
        raise ConfigError(f"--times {times}: a repeat compares runs, so it needs at least 2 (e.g. --times 3)")
    refuse_options(args, ("--run_id", "--parent_run_id"), "repeat")
    target = target or group_target(args)
    store = RunStore.resolve(target.store)
    parent = open_parent_run(store, target.experiment, f"{target.run_name or 'repeat'} (x{times})", KIND)
    if on_open is not None:
        on_open(parent)
    scratch = Path(tempfile.mkdtemp(prefix=f"affectlab-repeat-{parent[:8]}-"))
    folders = [scratch / str(i) for i in range(times)]
    report = RepeatReport(parent, [])
    try:
        with parent_outcome(store, parent):
            for index, folder in enumerate(folders):
                member = child_arguments(parent, {CONFIG_TAG: config_key({}), INDEX_TAG: str(index)})
                if target.run_name:
                    member += ["--run_name", f"{target.run_name}-copy{index}"]
                result = run_copy([*args, *member], folder)
                report.runs.append(result)
                for stage in STAGES:
                    if (folder / f"{stage}.json").is_file():
                        store.client.log_artifact(result.run_id, str(folder / f"{stage}.json"), "repeat")
            for stage in STAGES:
                report.weights_recorded[stage], report.weights[stage] = compare_weights(folders, stage)
            report.metrics = compare_metrics(report.runs)
            if not report.identical:
                report.divergence = first_divergence(store, [r.run_id for r in report.runs])
            store.client.set_tag(parent, IDENTICAL_TAG, "true" if report.identical else "false")
            store.client.log_text(parent, report_markdown(report), TABLE)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _size(value: float | None) -> str:
    return "shape, dtype or presence differs" if value is None else f"{value:.3g}"


def report_lines(report: RepeatReport) -> list[str]:
    """The verdicts, then (when something differs) the differing tensors and metrics, as Markdown."""
    n = len(report.runs)

    def verdict(stage: str) -> str:
        if not report.weights_recorded.get(stage):
            return "not recorded (no copy trained: the chain has no fit?)"
        differing = report.weights.get(stage, [])
        return "identical" if not differing else f"differ in {len(differing)} tensor{'s' * (len(differing) > 1)}"

    lines = [f"Repeat of {n} runs (group run {report.parent_run_id}): "
             f"{'IDENTICAL' if report.identical else 'NOT IDENTICAL'}.", "",
             f"- initial weights (step 0): {verdict('initial')}",
             f"- final weights: {verdict('final')}",
             f"- validate/test metrics: {'identical' if not report.metrics else f'{len(report.metrics)} differ'}"]
    if report.divergence is not None:
        epoch, step, names = report.divergence
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        lines.append(f"- logged metrics first diverge at epoch {epoch} (step {step}): {shown}")
    for stage in STAGES:
        differing = report.weights.get(stage, [])
        if differing:
            # every tensor that differs at step 0 (where a difference starts); at the end, once training has
            # spread it to every weight, the largest few
            shown = differing if stage == "initial" else differing[:FINAL_SHOWN]
            lines += ["", f"{stage.capitalize()} weights that differ from copy 0's"
                      f"{'' if len(shown) == len(differing) else f' (the {len(shown)} largest of {len(differing)})'}:",
                      "", "| tensor | max abs diff | relative | copies |", "|---|---:|---:|---|"]
            lines += [f"| {d.name} | {_size(d.max_abs)} | {'' if d.relative is None else f'{d.relative:.3g}'} | "
                      f"{', '.join(map(str, d.copies))} |" for d in shown]
    if report.metrics:
        lines += ["", "Metrics that differ:", "", "| metric | " + " | ".join(f"copy {i}" for i in range(n)) + " |",
                  "|---|" + "---:|" * n]
        lines += [f"| {name} | " + " | ".join("" if v is None else f"{v:.6g}" for v in values) + " |"
                  for name, values in sorted(report.metrics.items())]
    lines += ["", "| copy | run_id |", "|---:|---|", *(f"| {i} | {r.run_id} |" for i, r in enumerate(report.runs))]
    return lines


def report_markdown(report: RepeatReport) -> str:
    return "\n".join(report_lines(report)) + "\n"
