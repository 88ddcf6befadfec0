"""The results table printed at the end of a run: the summary metrics, in natural order (``AU2`` before
``AU10``), one row per metric and one column per head (``test/acc`` under "main", ``test/video/acc`` under
"video"), so a three-modality run prints 12 rows, not 36; per-class and per-AU rows (``stage/f1/<class>``,
``stage/au_f1/AU12``) only on request (``--results_per_class true``), as they are all in the run store anyway."""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table

# The metrics logged once per class (``stage/<metric>/<class>``) or per AU (``stage/au_<metric>/<AU>``).
_PER_CLASS = ("f1", "precision", "recall", "acc")


def is_per_class(name: str) -> bool:
    parts = name.split("/")
    # per AU: test/au_f1/AU12; a task's summary (test/au_intensity/mae, multi-task) is not per class
    return len(parts) == 3 and (parts[1] in _PER_CLASS or (parts[1].startswith("au_") and parts[2].startswith("AU")))


def natural_key(name: str) -> list:
    """``test/au_f1/AU10`` after ``test/au_f1/AU2``: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def result_rows(metrics: dict[str, float], per_class: bool = False) -> list[str]:
    """The metric names a table shows, in natural order: the summary, plus per-class rows if asked."""
    return sorted((name for name in metrics if per_class or not is_per_class(name)), key=natural_key)


def head_columns(stage: str, names: list[str]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The heads ("main" (the model's own output) first, then ``stage/<head>/<metric>``'s heads) and, per row name ``stage/<metric>``, the
    metric name of each head's cell. A per-class name (``stage/f1/happy``) is a row of its own under "main"."""
    heads: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    for name in names:
        parts = name.split("/")
        if len(parts) == 3 and not is_per_class(name):
            head, row = parts[1], f"{parts[0]}/{parts[2]}"
            if head not in heads:
                heads.append(head)
        else:
            head, row = "main", name
        rows.setdefault(row, {})[head] = name
    return ["main", *sorted(heads)], {row: rows[row] for row in sorted(rows, key=natural_key)}


def print_results(results: dict[str, dict[str, float]], run_id: str, tracking_uri: str, per_class: bool = False) -> None:
    console = Console()
    for command, metrics in results.items():
        if not metrics:
            continue
        table = Table(title=f"{command} metrics")
        table.add_column("metric")
        rows = result_rows(metrics, per_class)
        heads, cells = head_columns(command, rows)
        if heads == ["main"]:
            heads = ["value"]
            cells = {row: {"value": name for name in by_head.values()} for row, by_head in cells.items()}
        for head in heads:
            table.add_column(head, justify="right")
        for row, by_head in cells.items():
            table.add_row(row, *(f"{metrics[by_head[h]]:.4f}" if h in by_head else "" for h in heads))
        console.print(table)
        hidden = len(metrics) - len(rows)
        if hidden:
            console.print(f"({hidden} per-class rows in the run store; --results_per_class true prints them)")
    console.print(f"run_id: {run_id}")
    console.print("open the runs with: affectlab ui" + ("" if "runs/mlflow.db" in tracking_uri else f"  ({tracking_uri})"))
