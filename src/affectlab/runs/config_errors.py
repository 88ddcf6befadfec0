"""jsonargparse's error messages, read as the tree they are, as one readable line that names the key.

jsonargparse's message is right but nested (unions, class paths, each subtype's attempt). ``problems`` reads
it into its leaves, each with its full dotted key and the class whose ``init_args`` hold it; the leaf that
explains the mistake becomes the message:
- an unknown key: the full dotted key, where it was given (the command-line option, or the YAML file and
  line) and the closest valid keys (``difflib``, from the owning class's signature or the parser's keys);
- a class path that does not exist or a name that is neither a file nor a class: the closest known names;
- a class path outside the allowed packages (``affectlab.imports``): refused, and how to allow one;
- a bad value: the key, the expected type and the value given;
- the pitfalls seed 000's README lists: ``init_args`` set but no config gave ``class_path``, a required
  argument set nowhere.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _key_path(message: str) -> str:
    """The dotted config key a nested jsonargparse message is about, e.g. ``model.init_args.num_classes``."""
    parts: list[str] = []
    for match in re.finditer(r'Parser key "([^"]+)"|Problem with given class_path', message):
        if match.group(1):
            parts.append(match.group(1))
        elif parts:
            parts.append("init_args")
    return ".".join(parts)


@dataclass
class Problem:
    """One leaf of jsonargparse's error tree: what went wrong (``kind``), at which dotted key, inside which
    class (the class_path whose init_args hold the key), with the detail the message gave."""

    kind: str  # unknown | denied | missing_class | not_a_class | required | type
    key: str
    detail: str
    owner: str | None = None


_BASE_CLASSES = ("lightning.LightningModule", "lightning.LightningDataModule",
                 "lightning.pytorch.core.module.LightningModule",
                 "lightning.pytorch.core.datamodule.LightningDataModule")
_LEAVES = [
    ("denied", re.compile(r"Importing '([\w.]+)' is not allowed")),
    ("unknown", re.compile(r"Option '([\w.]+)' is not accepted|Key \"([\w.]+)\" is not expected")),
    ("unknown_in_group", re.compile(r"Group '([\w.]+)' does not accept option '([\w.]+)'")),
    ("missing_class", re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")),
    ("not_a_class", re.compile(r"Expected a dot import path string: (\S+)|Unexpected import path format: (\S+)")),
    ("required", re.compile(r"Key \"([\w.]+)\" is required")),
    ("type", re.compile(r"^Expected a <class '(\w+)'>(?:\. Got value: (.*))?$")),
]


#: arguments a misplaced optimiser setting is recognised by (the hint then names optimizer_init.init_args).
_OPTIMIZER_ARGUMENTS = ["lr", "learning_rate", "weight_decay", "momentum", "betas", "eps"]


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def problems(message: str) -> list[Problem]:
    """The leaves of jsonargparse's nested message, each with its full dotted key, in the message's order."""
    stack: list[tuple[int, str, str | None]] = []  # (indent, key part, owner class)
    found: list[Problem] = []
    for raw in message.splitlines():
        text = raw.strip()
        if not text:
            continue
        indent = len(raw) - len(raw.lstrip(" -"))
        text = text.lstrip("- ").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = _join(*(part for _, part, _ in stack))
        owner = next((cls for _, _, cls in reversed(stack) if cls), None)
        header = re.match(r'Parser key "([^"]+)":$', text)
        if header:
            stack.append((indent, header.group(1), None))
            continue
        given = re.match(r"Problem with given class_path '([\w.]+)':$", text)
        if given:
            stack.append((indent, "init_args", given.group(1)))
            continue
        # "Type Callable[...] expects a function or a callable class: <error>. Got value: Namespace(class_path='X', ..."
        callable_type = re.match(r"Type .* expects a function or a callable class: (.*?)(?:\. Got value: (.*))?$", text)
        if callable_type:
            inner_class = re.search(r"class_path='([\w.]+)'", callable_type.group(2) or "")
            text = callable_type.group(1)
            if inner_class and not text.startswith(("Importing", "module ")):
                key, owner = _join(key, "init_args"), inner_class.group(1)
        for kind, pattern in _LEAVES:
            match = pattern.search(text)
            if not match:
                continue
            groups = [g for g in match.groups() if g is not None]
            if kind == "unknown_in_group":
                found.append(Problem("unknown", _join(key, groups[0], groups[1]), groups[1], owner))
            elif kind == "unknown":
                found.append(Problem("unknown", _join(key, groups[0]), groups[0], owner))
            elif kind == "missing_class":
                found.append(Problem("missing_class", key.removesuffix(".init_args"), f"{groups[0]}.{groups[1]}", owner))
            elif kind == "type":
                found.append(Problem("type", key, groups[0], owner))
                if len(groups) > 1:
                    found[-1].detail += f"|{groups[1]}"
            elif kind == "denied":
                found.append(Problem("denied", key.removesuffix(".init_args"), groups[0], owner))
            else:
                found.append(Problem(kind, _join(key, groups[0]) if kind == "required" else key, groups[0], owner))
            break
    return found


def _owner_class(path: str | None) -> Any:
    """The class ``path`` names if jsonargparse already imported its module (nothing is imported here)."""
    if not path:
        return None
    module_name, _, name = path.rpartition(".")
    return getattr(sys.modules.get(module_name), name, None)


def _accepted(cls: Any) -> list[str]:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _closest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _yaml_files(args: list[str]) -> list[Path]:
    """The YAML files a run was given, and the YAML files they name by relative path, recursively."""
    files: list[Path] = []
    pending = [Path(v) for v in reversed(args) if v.endswith((".yaml", ".yml"))]  # the last given wins
    while pending:
        path = pending.pop(0)
        if path in files or not path.is_file():
            continue
        files.append(path)
        for value in re.findall(r"([\w./-]+\.ya?ml)\b", path.read_text(errors="replace")):
            pending.append((path.parent / value).resolve() if not Path(value).is_absolute() else Path(value))
    return files


def where_given(key: str, args: list[str], value: str | None = None) -> str:
    """Where ``key`` was set: the command-line option, or the YAML file and line holding its last part (of
    the files given later first, as the later one wins; with ``value``, a line that also holds it)."""
    option = f"--{key}"
    tail = key.split(".")[-1]
    for arg in args:
        if arg == option or arg.startswith(option + "=") or (arg.startswith("--") and arg.split("=")[0].endswith(f".{tail}")):
            return f"given on the command line as {arg.split('=')[0]}"
    for option, inline in itertools.pairwise(args):
        if option.startswith("--") and re.search(rf"[{{,\s]{re.escape(tail)}\s*:", inline):
            return f"given on the command line in the value of {option}"
    for path in _yaml_files(args):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if value is not None and value not in line:
                continue
            if re.match(rf"^\s*(?:-\s+)?{re.escape(tail)}\s*:", line) or re.search(rf"[{{,]\s*{re.escape(tail)}\s*:", line):
                return f"set in {path}, line {number}"
    return ""


def _valid_keys(problem: Problem, parser: Any) -> list[str]:
    """The keys that would have been accepted where ``problem.key`` was given: the owner class's arguments,
    or the parser's keys that share the longest known prefix with it (``trainerr.x`` -> ``trainer``...)."""
    prefix = problem.key.rpartition(".")[0]
    cls = _owner_class(problem.owner)
    if cls is not None and not problem.owner.endswith("NamedOptimizer"):
        return [_join(prefix, name) for name in _accepted(cls)]
    dests = [d for d in (getattr(a, "dest", "") for a in getattr(parser, "_actions", [])) if d and d != "help"]
    parts = problem.key.split(".")
    for depth in range(len(parts)):
        known = ".".join(parts[:depth])
        level = sorted({".".join(d.split(".")[: depth + 1]) for d in dests if not known or d.startswith(known + ".")})
        if ".".join(parts[: depth + 1]) not in level:
            return level
    return []


def describe_unknown(problem: Problem, args: list[str], parser: Any, valid: list[str] | None = None) -> str:
    """``key: unknown key [by owner]; where it was given; did you mean ...?`` (``valid``: the keys accepted at
    its level when known without the owner class, as ``schema_cache``'s pre-check knows them)."""
    key = problem.key
    where = where_given(key, args)
    valid = _valid_keys(problem, parser) if valid is None else valid
    depth = valid[0].count(".") + 1 if valid else 0
    head = ".".join(key.split(".")[:depth])
    prefix = head.rpartition(".")[0]
    same_level = [v.rpartition(".")[2] for v in valid if v.rpartition(".")[0] == prefix]
    close = difflib.get_close_matches(head.rpartition(".")[2], same_level, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(_join(prefix, c)) for c in close)}?" if close else ""
    if not hint and f"{prefix}.optimizer_init" in valid and difflib.get_close_matches(
            problem.detail, _OPTIMIZER_ARGUMENTS, n=1, cutoff=0.6):
        hint = f"optimiser arguments go under {prefix}.optimizer_init.init_args (e.g. .lr)"
    owner = f" by {problem.owner}" if problem.owner else ""
    parts = [f"{key}: unknown key{owner}", where, hint or "check the spelling (--print_config shows every key)"]
    return "; ".join(p for p in parts if p)


def _known_classes(module_name: str) -> list[str]:
    module = sys.modules.get(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if n[:1].isupper()]
    return sorted(n for n in names if inspect.isclass(getattr(module, n, None)) or n in (getattr(module, "__all__", None) or []))


def describe(problem: Problem, args: list[str], parser: Any, known: list[str] | None = None) -> str | None:
    """The one-line message for ``problem`` (None when its kind has none here); ``known``: the class names of a
    ``missing_class`` problem's module or a ``not_a_class`` problem's section, when the caller knows them without
    importing (``schema_cache``'s pre-check), else they are read from the imported modules."""
    from affectlab.imports import allowed_packages

    key = problem.key
    if problem.kind == "denied":
        return (
            f"{key}.class_path: {problem.detail!r} is refused: a config may only name classes from the packages "
            f"{', '.join(allowed_packages())} (add one with --import_allowlist NAME on the command line if you "
            "trust its code)"
        )
    if problem.kind == "unknown":
        return describe_unknown(problem, args, parser)
    if problem.kind == "missing_class":
        module_name, _, name = problem.detail.rpartition(".")
        known = _known_classes(module_name) if known is None else known
        hint = _closest(name, known)
        listing = f"; {module_name} has {', '.join(known)}" if known and len(known) <= 30 else ""
        return f"{key}.class_path: {problem.detail!r} does not exist{'; ' + hint if hint else ''}{listing}"
    if problem.kind == "not_a_class":
        section = key.split(".")[0]
        known = _known_section_names(section) if known is None else known
        hint = _closest(problem.detail, known)
        listing = f"; known: {', '.join(known)}" if known else ""
        return (f"{key}: {problem.detail!r} is neither a config file nor a class path{'; ' + hint if hint else ''}"
                f"{listing}")
    return None


def _known_section_names(section: str) -> list[str]:
    """Class names a ``--model``/``--data`` value may be (what jsonargparse resolves as short names)."""
    package = {"model": "affectlab.methods", "data": "affectlab.data"}.get(section)
    if package is None:
        return []
    module = importlib.import_module(package)
    return sorted(getattr(module, "__all__", []))


def _type_message(found: list[Problem], args: list[str], message: str) -> str | None:
    """``key: expected int (or None), got 'ten'`` from the type leaves of one key."""
    by_key: dict[str, list[Problem]] = {}
    for problem in found:
        if problem.kind == "type":
            by_key.setdefault(problem.key, []).append(problem)
    for key, leaves in by_key.items():
        types = [leaf.detail.split("|")[0] for leaf in leaves]
        if types == ["NoneType"]:
            continue  # only the None alternative of a union failed: another leaf says more
        values = [leaf.detail.split("|", 1)[1] for leaf in leaves if "|" in leaf.detail]
        if not values:
            given = re.search(r"Given value type: <class 'str'>\n\s*Given value: (.*)", message)
            values = [given.group(1)] if given else []
        expected = " or ".join("None" if t == "NoneType" else t for t in dict.fromkeys(types))
        got = f", got {values[0]!r}" if values else ""
        where = where_given(key, args, values[0] if values else None)
        return f"{key}: expected {expected}{got}{'; ' + where if where else ''}"
    return None


def explain_argument_error(message: str, args: list[str] | None = None, parser: Any = None) -> str:
    """Translate a jsonargparse error message into AffectLab's readable form (``args``: the run's arguments,
    to say where a key was given; ``parser``: to list the valid keys)."""
    args = list(args or [])
    found = problems(message)
    given = re.search(r"Problem with given class_path '([\w.]+)'", message)
    # an unrecognised command-line option (argparse's own message)
    unrecognised = re.search(r"unrecognized arguments: (--[\w.]+)", message)
    if unrecognised:
        key = unrecognised.group(1)[2:]
        found.insert(0, Problem("unknown", key, key.rpartition(".")[2]))
    for kind in ("denied", "unknown", "missing_class", "not_a_class"):
        for problem in found:
            if problem.kind == kind and (kind != "unknown" or problem.owner not in _BASE_CLASSES):
                described = describe(problem, args, parser)
                if described:
                    return described
    required = re.search(r"the following arguments are required: ([\w, .]+)|Key \"([\w.]+)\" is required", message)
    real_class = any(p.owner and p.owner not in _BASE_CLASSES for p in found) or (
        given and given.group(1) not in _BASE_CLASSES)
    key = _key_path(message)
    section = key.split(".")[0] if key else ""
    no_class_path = "Given value:" in message and "class_path" not in message.split("Given value:")[-1]
    # 1. init_args without any class_path
    if section in ("model", "data") and not real_class and (given or no_class_path) and "required" not in message:
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
    typed = _type_message(found, args, message)
    if typed:
        return typed
    first = message.strip().splitlines()[0] if message.strip() else "invalid configuration"
    return f"{message.strip()}\n(--print_config shows the merged configuration; {first})"
