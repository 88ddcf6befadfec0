"""``affectlab sweep --config SWEEP.yaml [--dry_run] [run options]``: the argument handling over
``affectlab.experiments.sweep``.

The first ``--config`` names the sweep file; every option after it goes to every trial's run, as on
``affectlab run`` (``--data.init_args.num_clips 48``, ``--store DIR``, more ``--config`` files). Run the same
command again to resume, or in a second terminal (or machine, with a shared ``storage:``) for a second worker.
"""

from __future__ import annotations

from pathlib import Path

from affectlab.errors import ConfigError

USAGE = """usage: affectlab sweep --config SWEEP.yaml [--dry_run] [run options]

  --config SWEEP.yaml   the sweep file (configs/sweep/synth_supervised_grid.yaml; docs/experiments.md)
  --dry_run             every trial on a few batches, in the study <name>-dry (a later real sweep starts clean)
  run options           any 'affectlab run' option, applied to every trial (--store DIR, --trainer.max_epochs 3)

Re-run the same command to resume an interrupted sweep; start it twice for two workers on one study."""


def split_arguments(args: list[str]) -> tuple[Path, bool, list[str]]:
    """(sweep file, dry run, run options) of the command line."""
    if not args or args[0] not in ("--config", "-c") and not args[0].startswith("--config="):
        raise ConfigError("affectlab sweep: the first option is --config SWEEP.yaml (e.g. "
                          "configs/sweep/synth_supervised_grid.yaml); run options follow it")
    if args[0].startswith("--config="):
        path, rest = args[0].split("=", 1)[1], args[1:]
    elif len(args) < 2:
        raise ConfigError("affectlab sweep: --config needs the sweep file")
    else:
        path, rest = args[1], args[2:]
    dry_run, options, i = False, [], 0
    while i < len(rest):
        if rest[i] == "--dry_run":
            dry_run = True
            if i + 1 < len(rest) and rest[i + 1].lower() in ("true", "false"):
                dry_run, i = rest[i + 1].lower() == "true", i + 1
        elif rest[i].startswith("--dry_run="):
            dry_run = rest[i].split("=", 1)[1].lower() == "true"
        else:
            options.append(rest[i])
        i += 1
    return Path(path), dry_run, options


def sweep_command(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return 0
    path, dry_run, options = split_arguments(args)
    from affectlab.experiments.sweep_spec import load_spec

    spec = load_spec(path)  # the sweep file's mistakes stop here, before torch and Lightning are imported
    if spec.recipe is None:
        from affectlab.cli.argv import prepare_run_args

        spec.args = prepare_run_args(spec.args)  # data set names, YAML checks: as 'affectlab run' does
        options = prepare_run_args(options) if options else []
    from affectlab.experiments.sweep import Sweep, format_table

    sweep = Sweep(spec, options, dry_run=dry_run)
    rows = sweep.run()
    print(f"\nsweep {sweep.study_name}: {len(rows)} trials, parent run {sweep.parent} in {sweep.store.tracking_uri}")
    print(format_table(rows, spec.metric))
    return 0
