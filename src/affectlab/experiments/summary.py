"""``affectlab summarize``: one table per group of runs, read back from the run store.

A group is what ``runs/groups.py`` makes (a sweep, the seeds of ``--seeds``, the folds of ``kfold``, the
copies of ``repeat``: a parent run and its children), or the top-level runs of one MLflow experiment. The
summary is computed from the store alone, never from a process's memory, so it is the same whether the group
ran in one go, was killed and resumed, or was shared by several workers, and it can be redrawn at any time.

- **Configurations.** A group's children are grouped by their ``affectlab.group.config`` tag (the member's
  varied values as canonical JSON): members with the same value are seeds (or folds, or repeats) of one
  configuration. An experiment's runs carry no such tag; they are grouped by the logged params that differ
  among them, leaving out the seed and the keys that name a run rather than configure it (``IGNORED_PARAMS``).
- **The metric** is ``--metric``, else the sweep's ``affectlab.sweep.metric``, else the first of
  ``DEFAULT_METRICS`` that a member logs; its direction the sweep's ``affectlab.sweep.direction``, else read
  from its name (losses and errors are minimised, everything else maximised).
- **A recipe sweep** (``base: {recipe: ...}``, the ConCluGen ablation) gives each trial x seed several runs (the
  pretraining, the probes, the floor, the ceiling) and its metric (``probe/1/acc``) is a row of the recipe, which
  no run logs under that name: its members are then read from the study, whose trials record each seed's run
  and value (the ``affectlab.runs`` user attribute).
- **Members counted** are runs that FINISHED and logged the metric, and were not pruned; any other (pruned,
  failed, killed, still running, or finished without the metric) is listed as left out with its reason rather
  than silently averaged in.
- **Pictures**: the metric against each varied parameter (each value's mean with the standard deviation of
  every member that has it; a logarithmic x axis when the values are positive and span a factor of ten or more,
  as log-scaled search spaces do; bars for categories), and, for a sweep, Optuna's parameter importances
  (``optuna.importance.get_param_importances``) from the study in ``affectlab.sweep.storage``, when it has at
  least ``MIN_IMPORTANCE_TRIALS`` completed trials (fANOVA's forest on fewer says nothing; the reason is printed).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from affectlab.errors import ConfigError
from affectlab.experiments.report import mean_std
from affectlab.runs.groups import CONFIG_TAG, KIND_TAG, child_runs
from affectlab.runs.lifecycle import PARENT_TAG
from affectlab.runs.store import RunStore

STUDY_TAG = "affectlab.sweep.study"
STORAGE_TAG = "affectlab.sweep.storage"
METRIC_TAG = "affectlab.sweep.metric"
DIRECTION_TAG = "affectlab.sweep.direction"
PRUNED_TAG = "affectlab.sweep.pruned"  # on a trial's run that Optuna's pruner stopped (its value: the epoch)
SEED_TAG = "affectlab.seed"
# The Optuna user attribute where a sweep's trial records its runs: seed -> {"run_id": ..., "value": ...}
RUNS_ATTR = "affectlab.runs"
DIRECTIONS = ("maximize", "minimize")
DEFAULT_METRICS = ("test/acc", "test/f1_weighted", "test/f1_macro", "val/acc", "test/loss", "val/loss")
# Parts of a metric's name that mean "lower is better"; any other metric is maximised.
LOWER_IS_BETTER = ("loss", "error", "err", "mae", "mse", "rmse", "wer", "cer", "ece", "perplexity", "nll")
# Params that name or place a run rather than configure it: an experiment's runs differ in them without being
# different configurations (the seed is the member's seed, not its configuration).
IGNORED_PARAMS = ("seed_everything", "run_id", "run_name", "run_tags", "parent_run_id", "store", "exp_name",
                  "trainer.enable_progress_bar", "trainer.enable_model_summary", "dry_run", "seeds")
IGNORED_SUFFIXES = (".ckpt_path",)
MIN_IMPORTANCE_TRIALS = 8
SUMMARY_ARTIFACTS = "summary"  # the folder of the parent run's artifacts that holds the table and pictures


@dataclass
class Member:
    """One run of the group: its configuration (the varied values), seed and value of the metric."""

    run_id: str
    config: dict[str, Any]
    seed: str | None
    status: str
    metrics: dict[str, float]
    pruned: str | None = None  # the epoch Optuna's pruner stopped it at, when it did


@dataclass
class Group:
    """What ``find_group`` resolved the argument of ``affectlab summarize`` to."""

    name: str  # the study, the parent run's name or the experiment's: it names the written files
    kind: str  # sweep, seeds, kfold, repeat (a parent's ``affectlab.group.kind``) or experiment
    experiment: str
    members: list[Member]
    parent_run_id: str | None = None
    parent_tags: dict[str, str] = field(default_factory=dict)
    sweep_file: Path | None = None


@dataclass
class ConfigRow:
    """One configuration: the values of its varied params and its members' values of the metric."""

    config: dict[str, Any]
    values: list[float]  # one per counted member, in the order of ``run_ids``
    run_ids: list[str]
    seeds: list[str | None]

    @property
    def mean(self) -> float:
        return mean_std(self.values)[0]

    @property
    def std(self) -> float:
        """The sample standard deviation over seeds (0 for one seed: no spread is known yet)."""
        return mean_std(self.values)[1]


@dataclass
class Summary:
    group: Group
    metric: str
    direction: str
    params: list[str]  # the varied params: the table's columns
    rows: list[ConfigRow]  # best first
    left_out: list[tuple[str, str]]  # (run id, why it is not counted)


def safe_name(text: str) -> str:
    """``text`` as a file-name part: letters, digits, ``-``, ``_`` and ``.``; others become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "group"


def sweep_study_name(path: Path) -> str:
    """A sweep file's study: its ``name:``, else its file stem (as ``affectlab sweep`` names the study)."""
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML ({error}); pass a sweep file, a parent run id or an experiment name") from None
    if isinstance(content, dict) and content.get("name"):
        return str(content["name"])
    return path.stem


def parse_param(text: str) -> Any:
    """A logged param (MLflow keeps strings) as the value it was: int, float, bool, None or the string."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _member(run, config: dict[str, Any]) -> Member:
    return Member(run.info.run_id, config, run.data.tags.get(SEED_TAG), run.info.status, dict(run.data.metrics),
                  run.data.tags.get(PRUNED_TAG))


def _parent_group(store: RunStore, parent, sweep_file: Path | None = None) -> Group:
    tags = dict(parent.data.tags)
    children = child_runs(store, parent.info.run_id)
    if KIND_TAG not in tags and not children:
        raise ConfigError(f"run {parent.info.run_id} is neither a group's parent (no {KIND_TAG} tag) nor has child "
                          "runs; pass a sweep file, a parent run id or an experiment name")
    members = []
    for run in children:
        text = run.data.tags.get(CONFIG_TAG, "{}")
        try:
            config = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"run {run.info.run_id}'s {CONFIG_TAG} tag is not JSON ({text[:80]!r}); "
                              "runs/groups.py config_key writes it") from None
        members.append(_member(run, config if isinstance(config, dict) else {"config": config}))
    experiment = store.client.get_experiment(parent.info.experiment_id).name
    name = tags.get(STUDY_TAG) or parent.info.run_name or parent.info.run_id
    return Group(name, tags.get(KIND_TAG, "group"), experiment, members, parent.info.run_id, tags, sweep_file)


def _ignored(key: str) -> bool:
    return key in IGNORED_PARAMS or key.endswith(IGNORED_SUFFIXES)


def _experiment_group(store: RunStore, experiment) -> Group:
    """The experiment's top-level runs (no parent, not a group's parent), configured by the params that differ."""
    runs = store.client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"],
                                    max_results=50_000)
    runs = [r for r in runs if PARENT_TAG not in r.data.tags and KIND_TAG not in r.data.tags]
    keys = sorted({k for r in runs for k in r.data.params if not _ignored(k)})
    varied = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]
    members = [_member(r, {k: parse_param(r.data.params[k]) if k in r.data.params else None for k in varied})
               for r in runs]
    return Group(experiment.name, "experiment", experiment.name, members)


def find_sweep_parent(store: RunStore, study: str, path: Path):
    """The newest sweep parent run whose study is ``study`` (a real one before a dry run's ``<exp>-dry``); the
    trials' runs carry the study tag too, so the parent is the one of kind ``sweep``."""
    experiments = store.client.search_experiments()
    found = store.client.search_runs(
        [e.experiment_id for e in experiments],
        filter_string=f"tags.`{STUDY_TAG}` = '{study}' and tags.`{KIND_TAG}` = 'sweep'",
        order_by=["attributes.start_time DESC"], max_results=1000,
    ) if experiments else []
    if not found:
        raise ConfigError(f"no sweep in the run store {store.tracking_uri} has the study {study!r} (the name: of "
                          f"{path}, else its file stem); run 'affectlab sweep --config {path}' first, or point "
                          "--store (or MLFLOW_TRACKING_URI) at the store it ran in")
    names = {e.experiment_id: e.name for e in experiments}
    real = [r for r in found if not names.get(r.info.experiment_id, "").endswith("-dry")]
    return (real or found)[0]


def find_group(store: RunStore, target: str) -> Group:
    """``target`` as ``affectlab summarize`` reads it: a sweep file, a parent run id, or an experiment name."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"sweep file {path} does not exist; pass an existing sweep file, a parent run id or an "
                              "experiment name")
        parent = find_sweep_parent(store, sweep_study_name(path), path)
        return _parent_group(store, parent, path)
    if re.fullmatch(r"[0-9a-f]{32}", target):
        return _parent_group(store, store.get_run(target))
    experiment = store.client.get_experiment_by_name(target)
    if experiment is None or experiment.lifecycle_stage == "deleted":
        known = sorted(e.name for e in store.client.search_experiments())
        raise ConfigError(f"{target!r} is not a sweep file, a run id or an experiment of the run store "
                          f"{store.tracking_uri} (its experiments: {', '.join(known) or 'none'}); check the name, or "
                          "point --store (or MLFLOW_TRACKING_URI) at the store that holds it")
    return _experiment_group(store, experiment)


def default_direction(metric: str) -> str:
    """``minimize`` for losses and errors (by the metric's last name part), ``maximize`` for everything else."""
    words = re.split(r"[^a-z0-9]+", metric.lower().rsplit("/", 1)[-1])
    return "minimize" if any(word in LOWER_IS_BETTER for word in words) else "maximize"


def study_members(group: Group, metric: str, storage: str | None = None) -> list[Member] | None:
    """A sweep's members as its study recorded them (one per trial x seed, the value of the sweep's metric), for
    a metric no child run logs under its name (a recipe sweep's); None when the study cannot be read."""
    study_name = group.parent_tags.get(STUDY_TAG)
    storage = storage or group.parent_tags.get(STORAGE_TAG)
    if group.kind != "sweep" or metric != group.parent_tags.get(METRIC_TAG) or not study_name or not storage:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except Exception:  # noqa: BLE001  (the caller names the metric nobody logs instead)
        return None
    configs = {m.run_id: m.config for m in group.members}
    members = []
    for trial in study.get_trials(deepcopy=False):
        for seed, entry in (trial.user_attrs.get(RUNS_ATTR) or {}).items():
            run_id, value = str(entry.get("run_id")), entry.get("value")
            # a seed with its value is finished, whatever its trial's other seeds are doing
            status = "FINISHED" if value is not None else f"trial {trial.state.name}"
            members.append(Member(run_id, configs.get(run_id, dict(trial.params)), str(seed), status,
                                  {} if value is None else {metric: float(value)},
                                  f"trial {trial.number}" if entry.get("pruned") else None))
    return members


def choose_metric(group: Group, metric: str | None) -> str:
    logged = sorted({m for member in group.members for m in member.metrics})
    metric = metric or group.parent_tags.get(METRIC_TAG)
    if metric is None:
        metric = next((m for m in DEFAULT_METRICS if m in logged), None)
        if metric is None:
            raise ConfigError(f"no run of {group.name} logs any of {', '.join(DEFAULT_METRICS)}; name the metric with "
                              f"--metric (logged: {', '.join(logged) or 'nothing yet'})")
    elif metric not in logged:
        raise ConfigError(f"no run of {group.name} logs the metric {metric!r}; pass --metric with one it logs "
                          f"({', '.join(logged) or 'nothing yet'})")
    return metric


def summarize(group: Group, metric: str | None = None, direction: str | None = None,
              storage: str | None = None) -> Summary:
    """The group's table: one row per configuration, mean ± std over its counted members, best first."""
    wanted = metric or group.parent_tags.get(METRIC_TAG)
    if wanted and not any(wanted in m.metrics for m in group.members):
        from_study = study_members(group, wanted, storage)
        if from_study:
            group.members = from_study
    metric = choose_metric(group, metric)
    direction = direction or group.parent_tags.get(DIRECTION_TAG) or default_direction(metric)
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    rows: dict[str, ConfigRow] = {}
    left_out = []
    for member in group.members:
        value = member.metrics.get(metric)
        if member.pruned is not None:  # its value is a partial training's: never averaged with finished ones
            left_out.append((member.run_id, f"pruned ({member.pruned})"))
        elif member.status != "FINISHED":
            left_out.append((member.run_id, member.status))
        elif value is None or math.isnan(value):
            left_out.append((member.run_id, f"finished without {metric}"))
        else:
            key = json.dumps(member.config, sort_keys=True, default=str)
            row = rows.setdefault(key, ConfigRow(member.config, [], [], []))
            row.values.append(value)
            row.run_ids.append(member.run_id)
            row.seeds.append(member.seed)
    params = sorted({k for m in group.members for k in m.config})
    sign = -1.0 if direction == "maximize" else 1.0
    ordered = sorted(rows.values(), key=lambda r: (sign * r.mean, -len(r.values)))
    return Summary(group, metric, direction, params, ordered, left_out)


def _number(value: float) -> str:
    return f"{value:.4f}"


def cell(value: Any) -> str:
    return "" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def heading(summary: Summary) -> str:
    group = summary.group
    what = f"{group.kind} {group.name}" + (f" (parent run {group.parent_run_id})" if group.parent_run_id else "")
    counted = sum(len(r.values) for r in summary.rows)
    return (f"{what}, experiment {group.experiment}: {summary.metric} ({summary.direction}), mean ± standard "
            f"deviation over seeds; {len(summary.rows)} configurations, {counted} runs counted"
            + (f", {len(summary.left_out)} left out" if summary.left_out else ""))


def table_rows(summary: Summary) -> list[dict[str, str]]:
    """The table's rows as strings, best first: rank, the varied params, mean, std, n, seeds, run ids."""
    return [{"rank": str(rank), **{p: cell(row.config.get(p)) for p in summary.params},
             f"{summary.metric} mean": _number(row.mean), f"{summary.metric} std": _number(row.std),
             "n": str(len(row.values)), "seeds": " ".join(cell(s) for s in row.seeds),
             "run ids": " ".join(row.run_ids)}
            for rank, row in enumerate(summary.rows, 1)]


def csv_text(summary: Summary) -> str:
    rows = table_rows(summary)
    columns = ["rank", *summary.params, f"{summary.metric} mean", f"{summary.metric} std", "n", "seeds", "run ids"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def markdown(summary: Summary, pictures: list[str] = (), notes: list[str] = ()) -> str:
    """The table in Markdown (``metric`` as ``mean ± std``), the runs left out, the pictures by file name."""
    metric = summary.metric
    lines = [f"# Summary of {summary.group.name}", "", heading(summary) + ".", "",
             "| rank | " + " | ".join(summary.params + [metric, "n", "seeds", "run ids"]) + " |",
             "|---:|" + "---|" * len(summary.params) + "---:|---:|---|---|"]
    for row in table_rows(summary):
        cells = [row["rank"], *(row[p] for p in summary.params), f"{row[metric + ' mean']} ± {row[metric + ' std']}",
                 row["n"], row["seeds"], " ".join(f"`{r}`" for r in row["run ids"].split())]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if summary.left_out:
        lines += ["", "Left out:", "", *(f"- `{run_id}`: {why}" for run_id, why in summary.left_out)]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    for picture in pictures:
        lines += ["", f"![{picture}]({picture})"]
    return "\n".join(lines) + "\n"


def rich_table(summary: Summary):
    from rich.table import Table

    table = Table(title=heading(summary))
    table.add_column("rank", justify="right")
    for param in summary.params:
        table.add_column(param)
    table.add_column(summary.metric, justify="right")
    table.add_column("n", justify="right")
    table.add_column("seeds")
    table.add_column("run ids")
    for row in table_rows(summary):
        table.add_row(row["rank"], *(row[p] for p in summary.params),
                      f"{row[summary.metric + ' mean']} ± {row[summary.metric + ' std']}", row["n"], row["seeds"],
                      " ".join(r[:8] for r in row["run ids"].split()))
    return table


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def log_spaced(values: list[float]) -> bool:
    """Positive numbers spanning a factor of ten or more: what a log-scaled search space draws."""
    return all(v > 0 for v in values) and max(values) >= 10 * min(values)


def by_value(summary: Summary, param: str) -> list[tuple[Any, float, float, int]]:
    """(value, mean, std, n) of the metric over every counted member with that value of ``param``."""
    groups: dict[str, tuple[Any, list[float]]] = {}
    for row in summary.rows:
        if row.config.get(param) is not None:
            value = row.config[param]
            groups.setdefault(json.dumps(value, sort_keys=True, default=str), (value, []))[1].extend(row.values)
    out = [(value, *mean_std(v), len(v)) for value, v in groups.values()]
    numeric = all(is_number(v) for v, *_ in out)
    return sorted(out, key=lambda item: item[0] if numeric else str(item[0]))


def param_figure(summary: Summary, param: str):
    """The metric against one varied parameter: a line with std bars for numbers (log x when log-spaced), bars
    for categories (strings, booleans, lists)."""
    from affectlab.plots import plt

    points = by_value(summary, param)
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    values, means, stds = [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]
    if points and all(is_number(v) for v in values):
        ax.errorbar(values, means, yerr=stds, marker="o", ms=5, capsize=3)
        if len(values) > 1 and log_spaced(values):
            ax.set_xscale("log")
    else:
        labels = [cell(v) for v in values]
        ax.bar(range(len(points)), means, yerr=stds, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(points)), labels, rotation=30 if max(map(len, labels), default=0) > 8 else 0,
                      ha="right" if max(map(len, labels), default=0) > 8 else "center")
    ax.set_xlabel(param)
    ax.set_ylabel(f"{summary.metric} ({summary.direction})")
    ax.set_title(f"{summary.group.name}: mean ± std over runs", fontsize=9)
    fig.tight_layout()
    return fig


def study_importances(group: Group, storage: str | None = None) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances of the sweep's study, or None and the reason they are not computed."""
    study_name = group.parent_tags.get(STUDY_TAG)
    storage = storage or group.parent_tags.get(STORAGE_TAG)
    if group.kind != "sweep" or not study_name or not storage:
        return None, f"no Optuna study: {group.name} is a {group.kind}, not a sweep with {STUDY_TAG} and {STORAGE_TAG}"
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except Exception as error:  # noqa: BLE001  (any storage error: the table is still worth printing)
        return None, (f"study {study_name!r} could not be read from {storage} ({type(error).__name__}: {error}); "
                      "pass --storage with the full URL (a password is not kept in the tag)")
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return None, (f"study {study_name!r} has {len(complete)} completed trials; parameter importances need at "
                      f"least {MIN_IMPORTANCE_TRIALS}")
    varied = {k for t in complete for k in t.params if len({json.dumps(u.params.get(k), default=str) for u in complete}) > 1}
    if not varied:
        return None, f"study {study_name!r}'s completed trials do not differ in any parameter"
    try:
        return dict(optuna.importance.get_param_importances(study)), f"from {len(complete)} completed trials"
    except (RuntimeError, ValueError) as error:
        return None, f"Optuna could not compute importances for {study_name!r} ({error})"


def importance_figure(importances: dict[str, float], title: str):
    from affectlab.plots import plt

    names = list(importances)[::-1]  # most important at the top
    fig, ax = plt.subplots(figsize=(5.0, 0.5 + 0.45 * len(names)))
    ax.barh(names, [importances[n] for n in names], color="tab:green")
    ax.set_xlabel("importance (fANOVA, share of the objective's variance)")
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def default_out(group: Group, store: RunStore) -> Path:
    """Beside the sweep file; otherwise ``<store>/summaries`` (a folder store) or ``./summaries``."""
    if group.sweep_file is not None:
        return group.sweep_file.resolve().parent
    return (store.folder or Path.cwd()) / "summaries"


@dataclass
class Written:
    summary: Summary
    files: list[Path]
    notes: list[str]  # what was skipped and why (importances), to print
    logged: bool  # whether the files were logged as artifacts of the parent run


def write_summary(store: RunStore, summary: Summary, out: Path | None = None, storage: str | None = None,
                  plots: bool = True) -> Written:
    """The Markdown and CSV table, the pictures, all under ``out`` as ``<name>-summary.*``; logged under the
    parent run's ``summary/`` artifacts when the group has a parent."""
    from affectlab.io import atomic_write_text
    from affectlab.plots import plt

    group = summary.group
    out = Path(out) if out is not None else default_out(group, store)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{safe_name(group.name)}-summary"
    pictures: list[Path] = []
    notes: list[str] = []
    if plots and summary.rows:
        for param in summary.params:
            figure = param_figure(summary, param)
            pictures.append(out / f"{stem}-{safe_name(param)}.png")
            figure.savefig(pictures[-1], dpi=110)
            plt.close(figure)
        if group.kind == "sweep":
            importances, reason = study_importances(group, storage)
            if importances is None:
                notes.append(f"parameter importances skipped: {reason}")
            else:
                figure = importance_figure(importances, f"{group.name}: parameter importances ({reason})")
                pictures.append(out / f"{stem}-importances.png")
                figure.savefig(pictures[-1], dpi=110)
                plt.close(figure)
                notes.append("parameter importances " + reason + ": "
                             + ", ".join(f"{k} {v:.2f}" for k, v in importances.items()))
    files = [out / f"{stem}.md", out / f"{stem}.csv"]
    atomic_write_text(files[0], markdown(summary, [p.name for p in pictures], notes))
    atomic_write_text(files[1], csv_text(summary))
    files += pictures
    logged = group.parent_run_id is not None
    if logged:
        for path in files:
            store.client.log_artifact(group.parent_run_id, str(path), SUMMARY_ARTIFACTS)
    return Written(summary, files, notes, logged)
