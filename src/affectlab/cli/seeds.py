"""``affectlab run --seeds S1 S2 ...``: the argument handling over ``affectlab.experiments.seeds`` (``run_command``
in ``cli/main.py`` takes ``--seeds`` out of the run's options and hands them here)."""

from __future__ import annotations

from affectlab.errors import ConfigError


def split_seeds(args: list[str]) -> tuple[list[str], list[int] | None]:
    """``--seeds 0 1 2`` (or ``--seeds=0,1,2``) taken out of a run's arguments: (the rest, the seeds or None)."""
    rest: list[str] = []
    seeds: list[int] | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--seeds" or arg.startswith("--seeds="):
            values = [v for v in arg.split("=", 1)[1].split(",") if v] if "=" in arg else []
            i += 1
            while "=" not in arg and i < len(args) and not args[i].startswith("--"):
                values.append(args[i])
                i += 1
            try:
                seeds = [*(seeds or []), *(int(v) for v in values)]
            except ValueError:
                raise ConfigError(f"--seeds {' '.join(values)}: seeds are integers, e.g. --seeds 0 1 2") from None
            if not values:
                raise ConfigError("--seeds needs at least one seed, e.g. --seeds 0 1 2")
            continue
        rest.append(arg)
        i += 1
    return rest, seeds


def seeds_command(prepared: list[str], seeds: list[int]) -> int:
    """``affectlab run --seeds 0 1 2 ...``: one run per seed under one parent; the mean ± std table."""
    from rich.console import Console
    from rich.table import Table

    from affectlab.cli.main import explain_errors
    from affectlab.cli.results import result_rows
    from affectlab.experiments.seeds import check_seeds, group_target, run_seeds

    check_seeds(prepared, seeds)
    target = explain_errors(prepared, lambda: group_target(prepared))  # a bad key stops before the first seed
    result = run_seeds(prepared, seeds, target, on_open=lambda run_id: print(f"parent_run_id: {run_id}", flush=True))
    table = Table(title=f"mean ± std over seeds {', '.join(map(str, seeds))}")
    for column in ("metric", "mean ± std", *(f"seed {s}" for s in seeds)):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in result_rows(dict.fromkeys(result.summary, 0.0)):
        mean, std, _ = result.summary[name]
        command = "validate" if name.startswith("val") else "test"
        values = [run.metrics.get(command, {}).get(name) for run in result.runs]
        table.add_row(name, f"{mean:.4f} ± {std:.4f}", *("" if v is None else f"{v:.4f}" for v in values))
    Console().print(table)
    print(f"parent_run_id: {result.parent_run_id} (runs: {', '.join(r.run_id for r in result.runs)})")
    return 0
