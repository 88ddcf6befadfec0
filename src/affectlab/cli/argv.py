"""The one pass over a run's arguments before jsonargparse sees them.

It reads the arguments once and returns them rewritten:
- ``--data rafdb`` (a name, not a file) becomes the bundled ``configs/data/rafdb.yaml``; an unknown name
  stops with the closest and the known ones (every registered data set has a bundled config);
- every YAML file given to ``--config``, ``--model``, ``--data`` or ``--trainer`` is checked, so that a
  syntax error names its file and line (jsonargparse would only say that parsing failed);
- a run id (``--run_id``, or ``run_id:`` in a ``--config`` file) puts that run's first config in front, so
  that every other option overrides it;
- a mistake the config cache (``runs/schema_cache.py``: written at install for every bundled config and by
  every full parse) is sure of (a misspelt key, a value that can be no number where one is expected, a class
  path its module lacks or outside the allowed packages, an unknown class name) is refused with the full
  parse's message, in a fraction of a second (the cache only refuses: what it lets through is checked by
  jsonargparse).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from affectlab.cli.errors import check_yaml_file
from affectlab.errors import ConfigError
from affectlab.runs.configs import config_root
from affectlab.runs.schema_cache import check_known_keys

# Options whose value may be a YAML file.
FILE_OPTIONS = ("--config", "-c", "--model", "--data", "--trainer")
_VALUE_OPTIONS = (*FILE_OPTIONS, "--run_id", "--store")


def _data_config(name: str) -> str | None:
    """The bundled config of data set ``name``; None when ``name`` is a path, a class path or inline YAML."""
    if not name.replace("_", "").isalnum():
        return None
    path = config_root() / "data" / f"{name}.yaml"
    if path.is_file():
        return str(path)
    # Every registered data set has a bundled config (a test keeps it so), so an unknown name is told without
    # the registry, which imports every reader and Lightning: the error comes in a fraction of a second.
    from affectlab.data import DATA_MODULES

    if name not in DATA_MODULES and not Path(name).exists():  # a short class name is jsonargparse's to resolve
        bundled = sorted(p.stem for p in (config_root() / "data").glob("*.yaml"))
        close = difflib.get_close_matches(name, bundled, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            f"--data {name}: unknown data set; {hint}known data sets: {', '.join(bundled)} "
            "(or give a config file, or a data module class such as affectlab.data.FolderDataModule)"
        )
    return None


def prepare_run_args(args: list[str]) -> list[str]:
    """``args`` with data names resolved, YAML files checked and a given run's first config in front."""
    result = list(args)
    given: dict[str, str] = {}  # option -> its last value, as the parser takes it
    config_run_id = None
    for i, arg in enumerate(result):
        if "=" in arg and arg.split("=", 1)[0] in _VALUE_OPTIONS:
            option, value = arg.split("=", 1)
            index, prefix = i, option + "="
        elif arg in _VALUE_OPTIONS and i + 1 < len(result):
            option, value, index, prefix = arg, result[i + 1], i + 1, ""
        else:
            continue
        if option == "--data":
            resolved = _data_config(value)
            if resolved is not None:
                value = resolved
                result[index] = prefix + value
        given[option] = value
        if option in FILE_OPTIONS and (value.endswith((".yaml", ".yml")) or option in ("--config", "-c")):
            content = check_yaml_file(option, Path(value))
            if option in ("--config", "-c") and isinstance(content, dict) and content.get("run_id"):
                config_run_id = str(content["run_id"])
    run_id = given.get("--run_id") or config_run_id
    if run_id and run_id not in ("null", "None"):
        from affectlab.runs.store import RunStore

        first = RunStore.resolve(given.get("--store")).first_config(run_id)
        result = ["--config", str(first), *result]
    check_known_keys(result)  # a mistake the config cache is sure of: refused before torch loads
    return result
