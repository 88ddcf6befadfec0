"""``affectlab demo``: generate (or reuse) AffectSynth, train and test the supervised baseline on video, audio
and text, and print per-modality and fused results. It is ``affectlab run --config
configs/experiment/synth/supervised.yaml`` plus a summary table."""

from __future__ import annotations

import argparse
import resource
import sys
import time

from rich.console import Console
from rich.table import Table

from affectlab.runs.configs import config_path

EXPERIMENT = "experiment/synth/supervised.yaml"
HEADS = ("video", "audio", "text", "fused")


def demo_table(metrics: dict[str, float]) -> Table:
    table = Table(title="AffectSynth test set: 7 emotions, identities unseen in training")
    for column in ("head", "accuracy", "weighted acc.", "macro-F1"):
        table.add_column(column, justify="left" if column == "head" else "right")
    for head in HEADS:
        prefix = "test/" if head == "fused" else f"test/{head}/"
        if prefix + "acc" not in metrics:
            continue
        table.add_row(
            head if head != "fused" else "fused (all three)",
            f"{metrics[prefix + 'acc']:.3f}", f"{metrics[prefix + 'wacc']:.3f}", f"{metrics[prefix + 'f1_macro']:.3f}",
        )
    return table


def demo_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectlab demo", description=__doc__)
    parser.add_argument("--store", default=None, help="run store folder (default: MLFLOW_TRACKING_URI or ./runs)")
    parser.add_argument("--data-root", "--data_root", dest="data_root", default="data/affectsynth")
    parser.add_argument("--num-clips", "--num_clips", dest="num_clips", type=int, default=None)
    parser.add_argument("--max-epochs", "--max_epochs", dest="max_epochs", type=int, default=None)
    options, extra = parser.parse_known_args(args)
    from affectlab.runs.lightning_cli import AffectLabCLI

    cli_args = ["--config", str(config_path(EXPERIMENT)), "--data.init_args.root", options.data_root]
    if options.store:
        cli_args += ["--store", options.store]
    if options.num_clips:
        cli_args += ["--data.init_args.num_clips", str(options.num_clips)]
    if options.max_epochs:
        cli_args += ["--trainer.max_epochs", str(options.max_epochs)]
    start = time.perf_counter()
    cli = AffectLabCLI(cli_args + extra)  # extra: any LightningCLI option, e.g. --trainer.devices 2
    results = cli.run_commands()
    elapsed = time.perf_counter() - start
    if not cli.trainer.is_global_zero:
        return 0
    console = Console()
    console.print(demo_table(results.get("test", {})))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    console.print(f"trained and tested in {elapsed:.0f} s, peak memory {peak_mb:.0f} MB")
    console.print(f"run_id: {cli.run_id}")
    store = f" --store {options.store}" if options.store else ""
    console.print(f"open the run store with: affectlab ui{store}   (then http://127.0.0.1:5000)")
    sys.stdout.flush()
    return 0
