"""A cache of the config's valid keys, types and class names, so that a config mistake is refused before torch
and Lightning load.

jsonargparse can only check ``--model.init_args.lrr``, ``--trainer.max_epochs ten`` or a misspelt
``class_path`` after importing the model's class, which imports torch and Lightning (5 s and more here). The
cache holds what that check needs, recorded where those are imported anyway:

- by every full parse that succeeds (``record``): the parser's own keys (``trainer.max_epochs``,
  ``seed_everything``, ...) with the types a cheap check can test, and per ``class_path`` the parsed config holds
  its ``init_args`` names (jsonargparse's resolution of the signature, ``**kwargs`` followed) and their types;
- at install (``make``: ``runs.lightning_cli.prime_bundled_schema_cache``, ``record_bundled``) for every class a
  bundled config names, every class ``affectlab.methods`` and ``affectlab.data`` export and torch's optimisers
  and schedulers, so the cache is complete for the bundled configs before any run (an install without
  ``make`` gets the same entries from its first successful parse);
- per module of those classes, the names it defines and the classes it lists (a wrong class path's message),
  and the short class names ``--model NAME`` / ``--data NAME`` may take.

``check_known_keys`` reads it without importing anything heavy and refuses, with the message the full parse
would give (``config_errors.describe`` / ``describe_unknown``): a class path outside the allowed packages, a
class path whose module it knows and which that module lacks, an unknown short class name, an unknown key on
the command line or in a YAML file (key, where it was given, the closest valid keys) and a value that can be no
number and no boolean where the type is ``int``/``float``/``bool``, or no list where it is a ``list`` (``Optional``
and unions of them included: "expected int or None").
``tests/cli/test_config_errors.py`` keeps both paths giving the same diagnoses.

The cache only refuses, it never accepts: whatever it lets through (other types, lists' items, Literals, deeper keys
it has no class for, several class paths at one place) is parsed by jsonargparse as before. It is ignored (the
full parse then runs) when absent, written by another checkout or other versions of AffectLab, jsonargparse,
Lightning, torch or Python (the file name holds their digest), or when a source file an entry came from (the
class's and its bases' files, the module's file, the CLI's files) changed since (size and mtime).

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
    for package in ("jsonargparse", "lightning", "torch"):
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


#: the types whose check the pre-check repeats: a value that is no number and no YAML boolean fails each of them
_NUMBER_TYPES = {int: "int", float: "float", bool: "bool", type(None): "None"}
#: what YAML 1.1 (PyYAML, jsonargparse's loader) reads as a boolean: never refused where a bool is expected
_YAML_BOOLEANS = {"true", "false", "yes", "no", "on", "off", "y", "n"}


def _type_name(annotation: Any) -> str | None:
    """"int", "float", "bool", "None" or "list" (any ``list[X]``) for a type the pre-check repeats, else None."""
    import typing

    if annotation in _NUMBER_TYPES:
        return _NUMBER_TYPES[annotation]
    if annotation is list or typing.get_origin(annotation) is list:
        return "list"
    return None


def type_spec(annotation: Any) -> list[str] | None:
    """The names of ``annotation``'s alternatives in its order (``Optional[int]`` -> ``["int", "None"]``) when
    each is int, float, bool, a list or None; None for any other type (the pre-check leaves it to jsonargparse)."""
    import types
    import typing

    if annotation is not type(None) and _type_name(annotation):
        return [_type_name(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation)]
        return names if all(names) and names != ["None"] else None
    return None


def _parameters(cls: Any) -> dict[str, list[str] | None]:
    """init_args name -> its type_spec, as jsonargparse resolves the signature (``**kwargs`` followed to the
    base or callee, aliases included); {} when it cannot be read."""
    try:
        from jsonargparse._parameter_resolvers import get_signature_parameters

        params = get_signature_parameters(cls, None, logger=False)
    except Exception:  # noqa: BLE001 - any failure: the entry then only has the parsed config's names
        return {}
    found: dict[str, list[str] | None] = {}
    for param in params:
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        for name in (param.name, *(param.aliases or ())):
            found[name] = type_spec(param.annotation)
    return found


def _class_entry(cls: Any, names: dict[str, str]) -> dict[str, Any]:
    """The cache entry of one class: its keys (with a type name each), the types the pre-check tests, its files."""
    parameters = _parameters(cls)
    declared = _type_names(cls)
    keys = {name: declared.get(name, kind) for name, kind in names.items()}
    keys.update({name: declared.get(name, "") for name in parameters if name not in keys})
    types = {name: spec for name, spec in parameters.items() if spec}
    return {"keys": keys, "types": types, "files": _stamps([cls])}


def _module_entry(name: str) -> dict[str, Any] | None:
    """The names module ``name`` defines and the classes a wrong class path's message lists (None if unloaded).
    A module with its own ``__getattr__`` may hand out names ``dir`` does not show: ``lazy``, never checked, unless
    it also defines ``__dir__`` to list them (``affectlab.data``'s registry)."""
    from affectlab.runs.config_errors import _known_classes

    module = sys.modules.get(name)
    if module is None:
        return None
    return {"names": sorted(dir(module)), "classes": _known_classes(name), "lazy": "__getattr__" in vars(module) and "__dir__" not in vars(module),
            "files": _stamps([module])}


def _short_names() -> dict[str, Any]:
    """Section -> the short class names ``--model NAME`` / ``--data NAME`` may be: the package's exports and
    every subclass of the base jsonargparse resolves a short name among (of those imported now)."""
    from affectlab.runs.config_errors import _known_section_names

    bases = {"model": ("lightning.pytorch", "LightningModule"), "data": ("lightning.pytorch", "LightningDataModule")}
    found: dict[str, Any] = {}
    for section, (module, base) in bases.items():
        names = set(_known_section_names(section))
        try:
            from jsonargparse._typehints import get_all_subclass_paths

            names |= {path.rpartition(".")[2] for path in get_all_subclass_paths(getattr(sys.modules[module], base))}
        except Exception:  # noqa: BLE001 - without the subclasses no name can be refused
            continue
        package = sys.modules["affectlab.methods" if section == "model" else "affectlab.data"]
        found[section] = {"names": sorted(names), "known": _known_section_names(section), "files": _stamps([package])}
    return found


def _type_names(cls: Any) -> dict[str, str]:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: str(p.annotation).replace("typing.", "") for p in parameters if p.annotation is not p.empty}


def _write(path: Path, cache: dict[str, Any], before: dict[str, Any]) -> None:
    if cache == before:  # the usual case after the first run: no write (and no fsync) at every start
        return
    from affectlab.io import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, cache)


def _add_classes(cache: dict[str, Any], found: dict[str, dict[str, str]]) -> None:
    classes, modules = cache.setdefault("classes", {}), cache.setdefault("modules", {})
    for class_path, names in found.items():
        cls = _import_class(class_path)
        if cls is None:
            continue
        classes[class_path] = _class_entry(cls, names)
        entry = _module_entry(class_path.rpartition(".")[0])
        if entry is not None:
            modules[class_path.rpartition(".")[0]] = entry


def record(parser: Any, config: dict[str, Any], cli: Any) -> None:
    """Add what a successful parse accepted to the cache (merged with what earlier parses recorded); the first
    parse that finds no entries for the bundled configs (an install without ``make``) adds them too, once."""
    path = cache_path()
    before = load(path) or {}
    cache = json.loads(json.dumps(before))  # a copy: the write below is skipped when nothing new was learnt
    actions = [a for a in parser._actions if a.dest and a.dest not in _PARSER_OPTIONS]
    dests = sorted({a.dest for a in actions})
    options = sorted({o for a in parser._actions for o in a.option_strings})
    types = {a.dest: spec for a in actions if (spec := type_spec(getattr(a, "_typehint", None)))}
    # the parser's keys come from Lightning (versioned) and AffectLab's CLI class and run arguments
    cache["parser"] = {"keys": dests, "options": options, "types": types,
                       "files": _stamps([type(cli), sys.modules.get("affectlab.runs.arguments")])}
    found: dict[str, dict[str, str]] = {}
    _class_entries(config, found)
    _add_classes(cache, found)
    if "short_names" not in cache:
        _add_bundled(cache)
    _write(path, cache, before)


def bundled_classes() -> list[str]:
    """The classes the install step records: every class a bundled config names, every class
    ``affectlab.methods`` and ``affectlab.data`` export, and torch's optimisers and schedulers (what
    ``--...optimizer_init.class_path`` may name instead of the bundled ones)."""
    import importlib

    from affectlab.runs.configs import config_root

    paths = bundled_class_paths(config_root())
    for package in ("affectlab.methods", "affectlab.data"):
        paths += [f"{package}.{name}" for name in getattr(importlib.import_module(package), "__all__", [])]
    for name in ("torch.optim", "torch.optim.lr_scheduler"):
        module = importlib.import_module(name)
        paths += [f"{name}.{n}" for n, value in vars(module).items()
                  if inspect.isclass(value) and not n.startswith("_") and value.__module__.startswith("torch.optim")]
    return list(dict.fromkeys(paths))


def _add_bundled(cache: dict[str, Any]) -> None:
    """Import each of ``bundled_classes`` (from the allowed packages only; one that fails to import is left
    out) and add its entry, its module's and the short class names to ``cache``."""
    import importlib

    from affectlab.imports import allowed_packages

    class_paths = bundled_classes()
    for class_path in class_paths:
        if class_path.split(".")[0] in allowed_packages():
            try:
                importlib.import_module(class_path.rpartition(".")[0])
            except ImportError:  # an optional dependency missing: that class has no entry, jsonargparse decides
                continue
    _add_classes(cache, {class_path: {} for class_path in class_paths})
    for package in ("affectlab.methods", "affectlab.data"):
        entry = _module_entry(package)
        if entry is not None:
            cache.setdefault("modules", {})[package] = entry
    cache["short_names"] = _short_names()


def record_bundled() -> None:
    """Add ``bundled_classes``' entries to the cache (``make`` does it at install, after one parse)."""
    path = cache_path()
    before = load(path) or {}
    cache = json.loads(json.dumps(before))
    _add_bundled(cache)
    _write(path, cache, before)


def bundled_class_paths(root: Path) -> list[str]:
    """Every ``class_path`` in the YAML files under ``root`` (the bundled configs), in file order, once each."""
    found: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("class_path"), str) and "." in node["class_path"]:
                found[node["class_path"]] = None
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(root.rglob("*.yaml")):
        walk(_load_yaml(str(path)))
    return list(found)


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
        self.types: dict[str, list[str]] = cache["parser"].get("types", {})
        # keys with their own keys the parser does not list (class-typed: model, trainer.callbacks, ...); a
        # group such as trainer lists all of its keys
        self.open = {d for d in self.dests if not any(o.startswith(d + ".") and o != d + ".help" for o in self.dests)}
        self.classes = {path: entry for path, entry in cache.get("classes", {}).items() if _fresh(entry["files"])}
        self.modules = {name: entry for name, entry in cache.get("modules", {}).items() if _fresh(entry["files"])}
        self.short_names = {section: entry for section, entry in cache.get("short_names", {}).items()
                            if _fresh(entry["files"])}

    def key_known(self, key: str) -> bool:
        """True when ``key`` is a parser key, above one, or below a class-typed one (its own keys)."""
        if f"--{key}" in self.options or key.split(".")[0] in _PARSER_OPTIONS or key.endswith(".help"):
            return True
        return any(d == key or d.startswith(key + ".") for d in self.dests) or any(
            key.startswith(d + ".") for d in self.open)

    def accepted(self, class_path: str | None) -> list[str] | None:
        entry = self.classes.get(class_path or "")
        return list(entry["keys"]) if entry else None

    def class_types(self, class_path: str | None) -> dict[str, list[str]]:
        entry = self.classes.get(class_path or "")
        return entry.get("types", {}) if entry else {}

    def missing_from_module(self, class_path: str) -> list[str] | None:
        """The module's classes when the cache knows ``class_path``'s module and it has no such name; else None."""
        module_name, _, name = class_path.rpartition(".")
        entry = self.modules.get(module_name)
        if entry is None or entry["lazy"] or name in entry["names"]:
            return None
        return entry["classes"]


class _Given:
    """What the run's sources say, per dotted location of a class (``model``, ``model.init_args.encoders.video``,
    ``model.init_args.optimizer_init``): the class_paths given there, the ``init_args`` keys set under it and
    the last value given to each key (``values``, in the order the parser reads the sources)."""

    def __init__(self) -> None:
        self.class_paths: dict[str, set[str]] = {}
        self.keys: list[str] = []  # dotted keys, in the order given
        self.values: dict[str, tuple[Any, str]] = {}  # dotted key -> (last value, its text as given)
        self.short: dict[str, str] = {}  # model / data -> a bare class name given as --model NAME
        # dotted key -> the class_path given in the same mapping (its init_args are that class's, whatever
        # other sources give at the location)
        self.owners: dict[str, str] = {}

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
                    if isinstance(node.get("class_path"), str):
                        self.owners[f"{location}.init_args.{name}"] = node["class_path"]
                    self.values[f"{location}.init_args.{name}"] = (value, str(value))
                    self.walk(value, f"{location}.init_args.{name}", base)
            return
        for name, value in node.items():  # a mapping of classes (encoders: {video: ..., audio: ...})
            self.walk(value, f"{location}.{name}", base)

    def class_path(self, location: str) -> str | None:
        """The one class_path given at ``location`` (None for none or several: jsonargparse decides)."""
        paths = self.class_paths.get(location, set())
        return next(iter(paths)) if len(paths) == 1 else None

    def owner(self, location: str, name: str) -> str | None:
        """The class whose init_args ``name`` at ``location`` is: the one given beside it, else the location's."""
        return self.owners.get(f"{location}.init_args.{name}") or self.class_path(location)


def _yaml_value(text: str) -> Any:
    """A command-line value as jsonargparse reads it (YAML); the text itself where it is no YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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
                    given.values.update({f"trainer.{k}": (v, str(v)) for k, v in content["trainer"].items()})
                given.values.update({str(k): (v, str(v)) for k, v in content.items() if not isinstance(v, dict)})
                for section in ("model", "data"):
                    given.walk(content.get(section), section, Path(value).parent)
        elif key == "trainer":
            content = _load_yaml(value)
            keys += [f"trainer.{k}" for k in content] if isinstance(content, dict) else []
            given.values.update({f"trainer.{k}": (v, str(v)) for k, v in content.items()} if isinstance(content, dict) else {})
        elif key in ("model", "data") and value is not None:
            content = _load_yaml(value)
            if content is None:
                content = _yaml_value(value)  # a class path or inline YAML
                if isinstance(content, str) and "." not in content and not Path(value).exists():
                    given.short[key] = content
                content = {"class_path": content} if isinstance(content, str) else content
            given.walk(content, key, Path(value).parent if content is not None else Path.cwd())
        elif key.endswith(".class_path") and key.split(".")[0] in ("model", "data") and value is not None:
            given.class_paths.setdefault(key.removesuffix(".class_path"), set()).add(value)
        elif value is not None and not value.startswith("--"):
            given.values[key] = (_yaml_value(value), value)
    return given, keys + given.keys


def _first_leaf(key: str, value: Any) -> str:
    """``trainerr`` -> ``trainerr.max_epochs`` when its value is a mapping: the parser sees a config file's
    top level flattened, so the full parse names the leaf."""
    while isinstance(value, dict) and value:
        name, value = next(iter(value.items()))
        key = f"{key}.{name}"
    return key


def _fails(value: Any, spec: list[str]) -> bool:
    """True for a value that none of ``spec``'s types can take, judged on the safe side: a number or a YAML
    boolean passes every number and bool type (jsonargparse decides the finer cases), null passes everything, a
    list passes only ``list``; text that is no number, boolean or null, or a non-list given for a list, fails."""
    import yaml

    loaded = value
    if isinstance(value, str):
        if value.strip().lower() in ("", "null", "none", "~", *_YAML_BOOLEANS):
            return False
        try:
            float(value)  # "1e-3" is a number to jsonargparse, a string to YAML 1.1
            return not any(name in ("int", "float", "bool") for name in spec)
        except ValueError:
            pass
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            return False  # the full parse words a malformed value better
    if loaded is None:
        return False
    scalar = isinstance(loaded, (bool, int, float))
    return not any((name in ("int", "float", "bool") and scalar) or (name == "list" and isinstance(loaded, list))
                   for name in spec)


def _mistake(args: list[str]) -> tuple[Any, list[str] | None] | None:
    """The first mistake the cache is sure of, as (``config_errors.Problem``, the valid keys or known names at
    its level); None when the cache is absent or stale or finds nothing (the full parse then decides)."""
    from affectlab.runs.config_errors import Problem

    cache = load()
    if not cache or "parser" not in cache or not _fresh(cache["parser"]["files"]):
        return None
    schema = _Schema(cache)
    given, keys = _given(args)
    # a class path outside the allowed packages (unless the command line widens them: jsonargparse decides)
    if not any(a.split("=")[0] == "--import_allowlist" for a in args):
        from affectlab.imports import allowed_packages

        for location, paths in given.class_paths.items():
            for path in sorted(paths):
                if "." in path and path.split(".")[0] not in allowed_packages():
                    return Problem("denied", location, path), None
    for location, paths in given.class_paths.items():  # a class its (known) module does not have
        for path in sorted(paths):
            known = schema.missing_from_module(path) if "." in path else None
            if known is not None:
                return Problem("missing_class", location, path), known
    for section, name in given.short.items():  # --model NAME: no class of that name
        entry = schema.short_names.get(section)
        if entry is not None and name not in entry["names"]:
            return Problem("not_a_class", section, name), entry["known"]
    for key in keys:
        if not schema.key_known(key):
            return Problem("unknown", key, key.rpartition(".")[2]), None
        if ".init_args." not in key or key.split(".")[0] not in ("model", "data"):
            continue
        # every class on the key's way, outermost first: model.init_args.encoders.video.init_args.backbonee is
        # checked at SupervisedClassifier (encoders) and then at FrameEncoder (backbonee)
        parts = key.split(".")
        for index in [i for i, part in enumerate(parts) if part == "init_args" and i + 1 < len(parts)]:
            location, name = ".".join(parts[:index]), parts[index + 1]
            owner = given.owner(location, name)
            accepted = schema.accepted(owner)
            if accepted is not None and name not in accepted:
                # the hint names the level
                return Problem("unknown", key, key.rpartition(".")[2], owner), [f"{location}.init_args.{n}" for n in accepted]
    for key, (value, text) in given.values.items():  # a value no number where a number (or None) is expected
        if ".init_args." in key and key.split(".")[0] in ("model", "data"):
            location, _, name = key.rpartition(".init_args.")  # the argument of the class given at location
            spec = None if "." in name else schema.class_types(given.owner(location, name)).get(name)
        else:
            spec = schema.types.get(key)
        if spec and _fails(value, spec):
            return Problem("type", key, "|".join([spec[0], text])), spec
    return None


def unknown_key(args: list[str]) -> tuple[str, str | None, list[str] | None] | None:
    """The first key the cache knows is invalid: (dotted key, owner class_path, valid keys at its level);
    None when the cache finds no unknown key (``check_known_keys`` also refuses other mistakes)."""
    found = _mistake(args)
    if found is None or found[0].kind != "unknown":
        return None
    return found[0].key, found[0].owner, found[1]


def check_known_keys(args: list[str]) -> None:
    """Refuse a mistake the cache is sure of with the full parse's message (a ConfigError); else nothing."""
    found = _mistake(args)
    if found is None:
        return
    from types import SimpleNamespace

    from affectlab.errors import ConfigError
    from affectlab.runs.config_errors import describe, describe_unknown, where_given

    problem, extra = found
    if problem.kind == "unknown":
        dests = load()["parser"]["keys"]
        parser = SimpleNamespace(_actions=[SimpleNamespace(dest=d) for d in dests])
        raise ConfigError(describe_unknown(problem, args, parser, extra))
    if problem.kind == "type":  # as config_errors._type_message words it
        text = problem.detail.split("|", 1)[1]
        expected = " or ".join(extra)
        where = where_given(problem.key, args, text)
        raise ConfigError(f"{problem.key}: expected {expected}, got {text!r}{'; ' + where if where else ''}")
    message = describe(problem, args, None, extra)
    if message:
        raise ConfigError(message)
