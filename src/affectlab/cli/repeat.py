"""``affectlab repeat --times N [run options]``: the argument parsing over ``affectlab.experiments.repeat``.
Exit code 0 when the copies are identical (initial and final weights, every metric), 1 when they are not."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown

from affectlab.errors import ConfigError

HELP = __doc__


def split_times(args: list[str]) -> tuple[list[str], int]:
    """``--times N`` (default 3) taken out of the run's options."""
    rest, times, i = [], 3, 0
    while i < len(args):
        arg = args[i]
        if arg == "--times" or arg.startswith("--times="):
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in arg else 2
            try:
                times = int(value)
            except ValueError:
                raise ConfigError(f"--times {value!r}: the number of runs, an integer, e.g. --times 3") from None
            continue
        rest.append(arg)
        i += 1
    return rest, times


def repeat_command(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        from affectlab.experiments.repeat import __doc__ as doc

        print(HELP + "\n" + doc)
        return 0
    from affectlab.cli.argv import prepare_run_args
    from affectlab.cli.main import explain_errors
    from affectlab.experiments.repeat import report_markdown, run_repeat
    from affectlab.experiments.seeds import group_target

    rest, times = split_times(args)
    prepared = prepare_run_args(rest)
    target = explain_errors(prepared, lambda: group_target(prepared))  # a bad key stops before the first copy
    report = run_repeat(prepared, times, target, on_open=lambda run_id: print(f"parent_run_id: {run_id}", flush=True))
    text = report_markdown(report)
    Console(width=160).print(Markdown(text))
    print(text.splitlines()[0])
    return 0 if report.identical else 1
