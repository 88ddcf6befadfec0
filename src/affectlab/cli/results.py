"""The results table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_results(results: dict[str, dict[str, float]], run_id: str, tracking_uri: str) -> None:
    console = Console()
    for command, metrics in results.items():
        if not metrics:
            continue
        table = Table(title=f"{command} metrics")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name in sorted(metrics):
            table.add_row(name, f"{metrics[name]:.4f}")
        console.print(table)
    console.print(f"run_id: {run_id}")
    console.print("open the runs with: affectlab ui" + ("" if "runs/mlflow.db" in tracking_uri else f"  ({tracking_uri})"))
