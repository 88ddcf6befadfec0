"""A cache of the config's valid keys, so that a misspelt key is refused before torch and Lightning load.

jsonargparse can only check ``--model.init_args.lrr`` after importing the model's class, which imports torch
and Lightning (5 s and more here). Every full parse that succeeds records what it accepted (``record``):
the parser's own keys (``trainer.max_epochs``, ``seed_everything``, ...) and, per ``class_path`` the
parsed config holds, its ``init_args`` names (jsonargparse fills every argument, defaults included) and
their types' names. ``check_known_keys`` reads that record, without importing anything heavy, and refuses
an unknown key on the command line or in a YAML file with the full path's message (key, where it was given,
the closest valid keys: ``config_errors.describe_unknown``).

The cache only refuses, it never accepts: whatever it lets through is parsed by jsonargparse as before. It
is ignored (the full parse then runs) when absent, written by another checkout or other versions of
AffectLab, jsonargparse, Lightning or Python (the file name holds their digest), or when a source file the entry came from (the
class's and its bases' files, the CLI's files) changed since (size and mtime). It checks the first level
of ``init_args`` of the run's model and data classes, the parser's keys and the sections of ``--config``
files; deeper keys (an encoder's ``init_args``) are left to jsonargparse.

The folder is ``$AFFECTLAB_CACHE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/affectlab``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

# options every parser has that are not config keys
_PARSER_OPTIONS = {"help", "config", "print_config", "h", "c"}


def cache_dir() -> Path:
    if os.environ.get("AFFECTLAB_CACHE_DIR"):
        return Path(os.environ["AFFECTLAB_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affectlab"


def cache_path() -> Path:
    """``schema-<digest>.json``: the digest of the versions that decide which keys are valid."""
    import affectlab

    # the checkout's location too: two checkouts of one version hold different classes
    versions = [f"affectlab={affectlab.__version__}", str(Path(affectlab.__file__).resolve().parent),
                f"python={sys.version_info[:3]}"]
    for package in ("jsonargparse", "lightning"):
        try:
            versions.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}=none")
    return cache_dir() / f"schema-{hashlib.sha256(' '.join(versions).encode()).hexdigest()[:16]}.json"


def _stamps(objects: list[Any]) -> dict[str, list[int]]:
    """Source file -> [mtime_ns, size] for ``objects`` and, for classes, every base defined in Python."""
    stamps: dict[str, list[int]] = {}
    for obj in objects:
        for item in (inspect.getmro(obj) if inspect.isclass(obj) else (obj,)):
            try:
                path = inspect.getsourcefile(item)
            except TypeError:
                continue
            if path and os.path.isfile(path):
                stat = os.stat(path)
                stamps[path] = [stat.st_mtime_ns, stat.st_size]
    return stamps


def _fresh(stamps: dict[str, list[int]]) -> bool:
    for path, (mtime_ns, size) in stamps.items():
        try:
            stat = os.stat(path)
        except OSError:
            return False
        if stat.st_mtime_ns != mtime_ns or stat.st_size != size:
            return False
    return True


def _class_entries(node: Any, found: dict[str, dict[str, str]]) -> None:
    """class_path -> {init_args name: its value's type name}, from every class node of a parsed config."""
    if isinstance(node, dict):
        if isinstance(node.get("class_path"), str) and isinstance(node.get("init_args"), dict):
            found.setdefault(node["class_path"], {}).update(
                {name: type(value).__name__ for name, value in node["init_args"].items()})
        for value in node.values():
            _class_entries(value, found)
    elif isinstance(node, list):
        for value in node:
            _class_entries(value, found)


def _import_class(class_path: str) -> Any:
    module_name, _, name = class_path.rpartition(".")
    return getattr(sys.modules.get(module_name), name, None)


def _type_names(cls: Any) -> dict[str, str]:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: str(p.annotation).replace("typing.", "") for p in parameters if p.annotation is not p.empty}


def record(parser: Any, config: dict[str, Any], cli: Any) -> None:
    """Add what a successful parse accepted to the cache (merged with what earlier parses recorded)."""
    from affectlab.io import atomic_write_json

    path = cache_path()
    before = load(path) or {}
    cache = json.loads(json.dumps(before))  # a copy: the write below is skipped when nothing new was learnt
    dests = sorted({a.dest for a in parser._actions if a.dest and a.dest not in _PARSER_OPTIONS})
    options = sorted({o for a in parser._actions for o in a.option_strings})
    # the parser's keys come from Lightning (versioned) and AffectLab's CLI class and run arguments
    cache["parser"] = {"keys": dests, "options": options,
                       "files": _stamps([type(cli), sys.modules.get("affectlab.runs.arguments")])}
    classes = cache.setdefault("classes", {})
    found: dict[str, dict[str, str]] = {}
    _class_entries(config, found)
    for class_path, names in found.items():
        cls = _import_class(class_path)
        if cls is None:
            continue
        declared = _type_names(cls)
        classes[class_path] = {"keys": {name: declared.get(name, kind) for name, kind in names.items()},
                               "files": _stamps([cls])}
    if cache == before:  # the usual case after the first run: no write (and no fsync) at every start
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, cache)


def load(path: Path | None = None) -> dict[str, Any] | None:
    """The cache if it exists and reads; None otherwise (the full parse then decides)."""
    path = path or cache_path()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- the pre-check --------------------------------------------------------------------------------------------
def _options(args: list[str]) -> list[tuple[str, str | None]]:
    """(option without the leading dashes, its value) for each ``--option`` in ``args``."""
    pairs = []
    for i, arg in enumerate(args):
        if not arg.startswith("--") or len(arg) == 2:
            continue
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        else:
            key, value = arg[2:], args[i + 1] if i + 1 < len(args) else None
        pairs.append((key.rstrip("+"), value))
    return pairs


def _load_yaml(value: str | None) -> Any:
    if not value or not value.endswith((".yaml", ".yml")) or not os.path.isfile(value):
        return None
    try:
        return yaml.safe_load(Path(value).read_text())
    except (OSError, yaml.YAMLError):
        return None


class _Schema:
    def __init__(self, cache: dict[str, Any]) -> None:
        self.dests: list[str] = cache["parser"]["keys"]
        self.options = set(cache["parser"]["options"])
        # keys with their own keys the parser does not list (class-typed: model, trainer.callbacks, ...); a
        # group such as trainer lists all of its keys
        self.open = {d for d in self.dests if not any(o.startswith(d + ".") and o != d + ".help" for o in self.dests)}
        self.classes = {path: entry for path, entry in cache.get("classes", {}).items() if _fresh(entry["files"])}

    def key_known(self, key: str) -> bool:
        """True when ``key`` is a parser key, above one, or below a class-typed one (its own keys)."""
        if f"--{key}" in self.options or key.split(".")[0] in _PARSER_OPTIONS or key.endswith(".help"):
            return True
        return any(d == key or d.startswith(key + ".") for d in self.dests) or any(
            key.startswith(d + ".") for d in self.open)

    def accepted(self, class_path: str | None) -> list[str] | None:
        entry = self.classes.get(class_path or "")
        return list(entry["keys"]) if entry else None


class _Given:
    """What the run's sources say, per dotted location of a class (``model``, ``model.init_args.encoders.video``,
    ``model.init_args.optimizer_init``): the class_paths given there and the ``init_args`` keys set under it."""

    def __init__(self) -> None:
        self.class_paths: dict[str, set[str]] = {}
        self.keys: list[str] = []  # dotted keys, in the order given

    def walk(self, node: Any, location: str, base: Path) -> None:
        """Read ``node`` given at ``location``; a string naming a YAML file is read (relative to ``base``,
        the folder of the file that named it, as jsonargparse resolves it)."""
        if isinstance(node, str) and node.endswith((".yaml", ".yml")):
            path = Path(node) if Path(node).is_absolute() else base / node
            content = _load_yaml(str(path))
            if content is not None:
                self.walk(content, location, path.parent)
            return
        if not isinstance(node, dict):
            return
        if "class_path" in node or "init_args" in node:
            if isinstance(node.get("class_path"), str):
                self.class_paths.setdefault(location, set()).add(node["class_path"])
            if isinstance(node.get("init_args"), dict):
                for name, value in node["init_args"].items():
                    self.keys.append(f"{location}.init_args.{name}")
                    self.walk(value, f"{location}.init_args.{name}", base)
            return
        for name, value in node.items():  # a mapping of classes (encoders: {video: ..., audio: ...})
            self.walk(value, f"{location}.{name}", base)

    def class_path(self, location: str) -> str | None:
        """The one class_path given at ``location`` (None for none or several: jsonargparse decides)."""
        paths = self.class_paths.get(location, set())
        return next(iter(paths)) if len(paths) == 1 else None


def _given(args: list[str]) -> tuple[_Given, list[str]]:
    """The classes and keys the sources give, and the keys to check (command line first, then files)."""
    given, keys = _Given(), []
    for key, value in _options(args):
        keys.append(key)
        if key in ("config", "c"):
            content = _load_yaml(value)
            if isinstance(content, dict):
                keys += [_first_leaf(str(k), v) for k, v in content.items()]
                if isinstance(content.get("trainer"), dict):
                    keys += [f"trainer.{k}" for k in content["trainer"]]
                for section in ("model", "data"):
                    given.walk(content.get(section), section, Path(value).parent)
        elif key == "trainer":
            content = _load_yaml(value)
            keys += [f"trainer.{k}" for k in content] if isinstance(content, dict) else []
        elif key in ("model", "data") and value is not None:
            content = _load_yaml(value)
            if content is None:
                try:
                    content = yaml.safe_load(value)  # a class path or inline YAML
                except yaml.YAMLError:
                    content = None
                content = {"class_path": content} if isinstance(content, str) else content
            given.walk(content, key, Path(value).parent if content is not None else Path.cwd())
        elif key.endswith(".class_path") and key.split(".")[0] in ("model", "data") and value is not None:
            given.class_paths.setdefault(key.removesuffix(".class_path"), set()).add(value)
    return given, keys + given.keys


def _first_leaf(key: str, value: Any) -> str:
    """``trainerr`` -> ``trainerr.max_epochs`` when its value is a mapping: the parser sees a config file's
    top level flattened, so the full parse names the leaf."""
    while isinstance(value, dict) and value:
        name, value = next(iter(value.items()))
        key = f"{key}.{name}"
    return key


def unknown_key(args: list[str]) -> tuple[str, str | None, list[str] | None] | None:
    """The first key the cache knows is invalid: (dotted key, owner class_path, valid keys at its level);
    None when the cache is absent or stale or finds nothing (the full parse then decides)."""
    cache = load()
    if not cache or "parser" not in cache or not _fresh(cache["parser"]["files"]):
        return None
    schema = _Schema(cache)
    given, keys = _given(args)
    for key in keys:
        if not schema.key_known(key):
            return key, None, None
        if ".init_args." not in key or key.split(".")[0] not in ("model", "data"):
            continue
        # every class on the key's way, outermost first: model.init_args.encoders.video.init_args.backbonee is
        # checked at SupervisedClassifier (encoders) and then at FrameEncoder (backbonee)
        parts = key.split(".")
        for index in [i for i, part in enumerate(parts) if part == "init_args" and i + 1 < len(parts)]:
            location, name = ".".join(parts[:index]), parts[index + 1]
            owner = given.class_path(location)
            accepted = schema.accepted(owner)
            if accepted is not None and name not in accepted:
                return key, owner, [f"{location}.init_args.{n}" for n in accepted]  # the hint names the level
    return None


def check_known_keys(args: list[str]) -> None:
    """Refuse a key the cache knows is invalid with the full path's message (a ConfigError); else nothing."""
    found = unknown_key(args)
    if found is None:
        return
    from types import SimpleNamespace

    from affectlab.errors import ConfigError
    from affectlab.runs.config_errors import Problem, describe_unknown

    key, owner, valid = found
    dests = load()["parser"]["keys"]
    parser = SimpleNamespace(_actions=[SimpleNamespace(dest=d) for d in dests])
    raise ConfigError(describe_unknown(Problem("unknown", key, key.rpartition(".")[2], owner), args, parser, valid))
