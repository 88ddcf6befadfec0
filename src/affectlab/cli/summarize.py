"""``affectlab summarize SWEEP_OR_EXPERIMENT``: the argument parser over ``affectlab.experiments.summary``."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from affectlab.experiments.summary import DIRECTIONS, find_group, rich_table, summarize, write_summary
from affectlab.experiments.summary import __doc__ as SUMMARY_DOC


def summarize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affectlab summarize", description=SUMMARY_DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="SWEEP_OR_EXPERIMENT",
                        help="a sweep file (its study: name: or file stem), a group's parent run id, or an experiment name")
    parser.add_argument("--store", default=None, help="the run store folder (default: MLFLOW_TRACKING_URI, else ./runs)")
    parser.add_argument("--metric", default=None, help="default: the sweep's metric, else test/acc or the first logged "
                                                       "of summary.DEFAULT_METRICS")
    parser.add_argument("--direction", choices=DIRECTIONS, default=None,
                        help="default: the sweep's direction, else minimize for losses and errors, maximize otherwise")
    parser.add_argument("--out", default=None, help="folder of the Markdown, CSV and pictures (default: beside the "
                                                    "sweep file, else <store>/summaries)")
    parser.add_argument("--storage", default=None, help="the Optuna storage URL for importances when the sweep's "
                                                        "tag lacks its password")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="the tables only")
    return parser


def summarize_command(args: list[str]) -> int:
    from affectlab.runs.store import RunStore

    known = summarize_parser().parse_args(args)
    store = RunStore.resolve(known.store)
    summary = summarize(find_group(store, known.target), known.metric, known.direction, known.storage)
    written = write_summary(store, summary, known.out, known.storage, known.plots)
    console = Console(width=max(Console().width, 120))
    console.print(rich_table(summary) if summary.rows else
                  f"no run of {summary.group.name} finished with {summary.metric} yet")
    for run_id, why in summary.left_out:
        console.print(f"left out: {run_id} ({why})")
    for note in written.notes:
        console.print(note)
    for path in written.files:
        console.print(f"written: {path}")
    if written.logged:
        console.print(f"logged as artifacts of the parent run {summary.group.parent_run_id} (summary/)")
    else:
        console.print("not logged as artifacts: an experiment's runs have no parent run")
    sys.stdout.flush()
    return 0

