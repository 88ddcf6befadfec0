"""The results table printed at the end of a run: the summary metrics, in natural order (``AU2`` before
``AU10``); per-class and per-AU rows (``stage/f1/<class>``, ``stage/au_f1/AU12``) only on request
(``--results_per_class true``), as they are all in the run store anyway."""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table

# The metrics logged once per class (``stage/<metric>/<class>``) or per AU (``stage/au_<metric>/<AU>``).
_PER_CLASS = ("f1", "precision", "recall", "acc")


def is_per_class(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 3 and (parts[1] in _PER_CLASS or parts[1].startswith("au_"))


def natural_key(name: str) -> list:
    """``test/au_f1/AU10`` after ``test/au_f1/AU2``: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def result_rows(metrics: dict[str, float], per_class: bool = False) -> list[str]:
    """The metric names a table shows, in natural order: the summary, plus per-class rows if asked."""
    return sorted((name for name in metrics if per_class or not is_per_class(name)), key=natural_key)


def print_results(results: dict[str, dict[str, float]], run_id: str, tracking_uri: str, per_class: bool = False) -> None:
    console = Console()
    for command, metrics in results.items():
        if not metrics:
            continue
        table = Table(title=f"{command} metrics")
        table.add_column("metric")
        table.add_column("value", justify="right")
        rows = result_rows(metrics, per_class)
        for name in rows:
            table.add_row(name, f"{metrics[name]:.4f}")
        console.print(table)
        hidden = len(metrics) - len(rows)
        if hidden:
            console.print(f"({hidden} per-class rows in the run store; --results_per_class true prints them)")
    console.print(f"run_id: {run_id}")
    console.print("open the runs with: affectlab ui" + ("" if "runs/mlflow.db" in tracking_uri else f"  ({tracking_uri})"))
