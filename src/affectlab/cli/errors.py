"""Turn configuration mistakes into one readable message that names the key or file and the fix.

YAML files are checked before jsonargparse sees them (``check_yaml_file``), so a syntax error names its file,
line and column (a wrong indent, "mapping values are not allowed here", says which keys must line up).
jsonargparse's own errors are translated by ``affectlab.runs.config_errors.explain_argument_error`` (an
unknown key with where it was given and the closest valid keys, unknown names, bad values, refused imports).
An unknown data set name is caught earlier, by ``cli/argv.py``, with the list of known ones.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from affectlab.errors import ConfigError
from affectlab.runs.config_errors import explain_argument_error

__all__ = ["check_yaml_file", "explain_argument_error"]


def check_yaml_file(option: str, path: Path) -> object:
    """The file's content; a ConfigError naming file, line and column for a missing file or a YAML syntax error."""
    if not path.is_file():
        raise ConfigError(f"{option} {path}: no such file (paths are relative to {Path.cwd()})")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        hint = ""
        if "mapping values are not allowed" in str(error.problem):
            hint = (
                " -- a key is indented differently from the keys beside it (e.g. 'init_args' one space further "
                "than 'class_path'); keys of one mapping must start in the same column"
            )
        raise ConfigError(f"{where}: {error.problem}{hint}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
