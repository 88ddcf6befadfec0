"""What the MLflow UI shows first on a run store: each experiment's training runs, their main test metrics as
columns (``affectlab ui`` keeps this up to date while it serves).

MLflow 3.17's UI decides two things this way:

- **GenAI or model training.** A UI-wide switch ("GenAI | Model training", top left), kept in the browser and
  read from the page address's ``workflowType`` parameter; it starts on GenAI, whose experiment page is a
  traces and latency dashboard. The experiment tag ``mlflow.experimentKind`` (``custom_model_development``,
  which ``RunStore`` sets on every experiment it creates, ``store.EXPERIMENT_TAGS``) is what MLflow's API and
  its other UIs read, but 3.17's UI takes the kind from the switch. So the addresses ``affectlab ui`` prints
  carry ``workflowType=machine_learning`` and open the runs table directly.
- **The runs table's columns.** Chosen per browser (Source, Models and Dataset by default, no metrics), or
  by a *saved view*: an experiment tag ``mlflow.sharedViewState.<key>`` holding ``{name, createdAt,
  updatedAt, state}`` with ``state`` the table's UI state as JSON (selected columns, their order and widths),
  opened by the address parameter ``viewStateShareKey=<key>`` and listed in the page's "Views" menu. Each
  experiment gets one, ``affectlab``, with its main test metrics (``main_metrics``) as columns and a run-name
  column wide enough for AffectLab's three-word run names.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from affectlab.runs.store import EXPERIMENT_TAGS, RunStore

VIEW_KEY = "affectlab"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_NAME = "AffectLab: main metrics"
# The headline scores of AffectLab's methods, in the order they become columns: single-label classification
# (metrics/classification.py), action units and the AU model's emotion head (metrics/action_units.py).
HEADLINE = ("acc", "wacc", "f1_macro", "f1_weighted", "au_f1_mean", "au_icc_mean", "au_mae_mean",
            "emotion_acc", "emotion_wacc", "emotion_f1_macro", "mae", "corr")
MAX_COLUMNS = 6
RUN_NAME_COLUMN = "attributes.`Run Name`"


def main_metrics(keys: set[str], limit: int = MAX_COLUMNS) -> list[str]:
    """The metrics worth a column: test scores (``test/<name>``, not per class ``test/f1/<class>`` or per
    modality), the headline ones first; validation scores for experiments that have not been tested yet."""
    for stage in ("test", "val"):
        scalar = {k for k in keys if k.startswith(f"{stage}/") and k.count("/") == 1}
        headline = [f"{stage}/{name}" for name in HEADLINE if f"{stage}/{name}" in scalar]
        if headline:
            return headline[:limit]
        if scalar - {f"{stage}/loss"}:
            return sorted(scalar - {f"{stage}/loss"})[:limit]
    return []


def _width(text_length: int) -> int:
    """Pixels for a column of ``text_length`` characters in the UI's 13 px font, padding and icons included."""
    return min(520, max(120, 8 * text_length + 48))


def view_state(metrics: list[str], longest_run_name: int = 32) -> dict:
    """The runs table's UI state: the metrics as columns after the run name, each wide enough to read whole
    (MLflow's default widths cut AffectLab's run names, ``<method>-<data>-<adjective>-<animal>``, in half)."""
    columns = [f"metrics.`{m}`" for m in metrics]
    return {"selectedColumns": columns, "columnOrder": [RUN_NAME_COLUMN, *columns],
            "columnWidths": {RUN_NAME_COLUMN: _width(longest_run_name),
                             **{c: _width(len(m)) for c, m in zip(columns, metrics)}}}


def view_tag(state: dict, now_ms: int | None = None) -> str:
    """The saved view's tag value (MLflow's envelope: the state travels as a JSON string inside)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return json.dumps({"name": VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(state)})


def _saved_state(tag: str | None) -> dict | None:
    try:
        return json.loads(json.loads(tag)["state"]) if tag else None
    except (ValueError, KeyError, TypeError):  # not ours, or edited by hand: rewritten
        return None


@dataclass(frozen=True)
class ExperimentView:
    experiment_id: str
    name: str
    metrics: tuple[str, ...]

    def url(self, base: str) -> str:
        """The experiment's runs table, in model-training mode, with its saved view."""
        return (f"{base.rstrip('/')}/#/experiments/{self.experiment_id}/runs"
                f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}")


def refresh_views(store: RunStore) -> list[ExperimentView]:
    """Tag every active experiment that holds runs as model training (older stores' experiments have no
    kind) and (re)write its saved view when its main metrics changed; returns them, newest first."""
    client = store.client
    views = []
    for experiment in client.search_experiments(order_by=["last_update_time DESC"]):
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        if not runs:
            continue
        for key, value in EXPERIMENT_TAGS.items():
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        metrics = main_metrics({key for run in runs for key in run.data.metrics})
        state = view_state(metrics, max(len(run.info.run_name or "") for run in runs))
        if _saved_state(experiment.tags.get(VIEW_TAG)) != state:
            client.set_experiment_tag(experiment.experiment_id, VIEW_TAG, view_tag(state))
        views.append(ExperimentView(experiment.experiment_id, experiment.name, tuple(metrics)))
    return views
