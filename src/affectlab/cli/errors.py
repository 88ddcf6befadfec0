"""Turn configuration mistakes into one readable message that names the key or file and the fix.

The three mistakes the seed 000 README lists under its pitfalls, and what AffectLab says instead of a
jsonargparse trace:
1. a config sets ``model: init_args:`` but no config before it gave ``class_path``;
2. a required argument (no default) is set nowhere;
3. a YAML file with a wrong indent ("mapping values are not allowed here").
YAML files are checked before jsonargparse sees them, so the message can name the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from affectlab.errors import ConfigError

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


def _key_path(message: str) -> str:
    """The dotted config key a nested jsonargparse message is about, e.g. ``model.init_args.num_classes``."""
    parts: list[str] = []
    for match in re.finditer(r'Parser key "([^"]+)"|Problem with given class_path', message):
        if match.group(1):
            parts.append(match.group(1))
        elif parts:
            parts.append("init_args")
    return ".".join(parts)


def explain_argument_error(message: str) -> str:
    """Translate a jsonargparse error message into AffectLab's readable form."""
    key = _key_path(message)
    section = key.split(".")[0] if key else ""
    required = re.search(r"the following arguments are required: ([\w, .]+)|Key \"([\w.]+)\" is required", message)
    given = re.search(r"Problem with given class_path '([\w.]+)'", message)
    base_class = given and given.group(1) in ("lightning.LightningModule", "lightning.LightningDataModule",
                                               "lightning.pytorch.core.module.LightningModule",
                                               "lightning.pytorch.core.datamodule.LightningDataModule")
    no_class_path = "Given value:" in message and "class_path" not in message.split("Given value:")[-1]
    # 1. init_args without any class_path
    if section in ("model", "data") and (base_class or no_class_path) and "required" not in message:
        option = "--model configs/model/<name>.yaml" if section == "model" else "--data configs/data/<name>.yaml"
        return (
            f"{section}: init_args are set but no config says which class to build ({section}.class_path is "
            f"missing). Give a {section} config before the file that sets init_args ({option}), check that its "
            f"path is spelt right, or add 'class_path:' under '{section}:'."
        )
    # 2. a required argument set nowhere
    if required:
        names = [n.strip() for n in (required.group(1) or required.group(2)).split(",")]
        if not key and names in (["model"], ["data"]):
            option = "--model configs/model/<name>.yaml" if names == ["model"] else "--data configs/data/<name>.yaml"
            return f"{names[0]}: no {names[0]} is configured; add {option} (or a --config file with a '{names[0]}:' section)."
        full = [f"{key}.{n}" if key else n for n in names]
        owner = f" of {given.group(1)}" if given else ""
        examples = " ".join(f"--{name} VALUE" for name in full)
        return (
            f"{', '.join(full)}: required argument{'s' if len(full) > 1 else ''}{owner} set in no config. "
            f"Add it on the command line ({examples}) or in a config file under '{key or names[0]}:'."
        )
    # 3. YAML syntax (inline values and files jsonargparse loaded itself)
    if "Problems parsing config" in message:
        detail = message.split("Problems parsing config", 1)[1].strip(" :")
        return f"{key or 'config'}: not valid YAML ({detail}). Keys of one mapping must start in the same column."
    unknown = re.search(r"Option '([\w.]+)' is not accepted|Key \"([\w.]+)\" is not expected", message)
    if unknown:
        name = unknown.group(1) or unknown.group(2)
        owner = f" by {given.group(1)}" if given else ""
        return f"{key + '.' if key else ''}{name}: not accepted{owner}; check the spelling (--print_config shows every key)."
    first = message.strip().splitlines()[0] if message.strip() else "invalid configuration"
    return f"{message.strip()}\n(--print_config shows the merged configuration; {first})"
