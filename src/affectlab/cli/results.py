"""The results table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

# Per-class metrics (stage/f1/<class>) stay in the run store; the table keeps the summary.
_PER_CLASS = ("f1", "precision", "recall", "acc")


def _summary(name: str) -> bool:
    parts = name.split("/")
    return not (len(parts) == 3 and parts[1] in _PER_CLASS)


def print_results(results: dict[str, dict[str, float]], run_id: str, tracking_uri: str) -> None:
    console = Console()
    for command, metrics in results.items():
        if not metrics:
            continue
        table = Table(title=f"{command} metrics")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name in sorted(filter(_summary, metrics)):
            table.add_row(name, f"{metrics[name]:.4f}")
        console.print(table)
    console.print(f"run_id: {run_id}")
    console.print("open the runs with: affectlab ui" + ("" if "runs/mlflow.db" in tracking_uri else f"  ({tracking_uri})"))
