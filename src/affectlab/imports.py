"""What a config may import: dotted names resolve only inside an allow-list of packages, and only to the
kind of object their key allows.

A config (or a run's stored ``config.yaml``, which ``run --run_id``, ``test --run_id``, ``export`` and
``predict`` rebuild from) names classes and factories by dotted path. Importing a module runs its code, so
a path is checked *before* anything is imported: its top-level package must be in ``ALLOWED_PACKAGES`` or
in the packages the user lists with ``--import_allowlist`` on the command line (never from a file, so a
stored config cannot widen its own permissions). After the import the object must be what the key takes
(``check``: an ``nn.Module`` factory, an optimiser class, ...), so ``torch.load`` is no backbone.

jsonargparse resolves every ``class_path`` of a typed option itself; ``restrict_imports`` sets its import
policy (``set_parsing_settings``: deny ``*``, allow the packages), which it applies before importing, to
the path given and to the object's canonical path (``affectlab.x.os.system`` is ``posix.system``).
AffectLab's own dotted strings (``backbone``, optimiser and scheduler short names) go through
``import_allowed``, which applies the same rules.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

from affectlab.errors import ConfigError

#: packages whose modules a config may import.
ALLOWED_PACKAGES = ("affectlab", "lightning", "timm", "torch", "torchvision")
#: the environment variable that carries ``--import_allowlist`` to processes Lightning relaunches (DDP).
ALLOWLIST_ENV = "AFFECTLAB_IMPORT_ALLOWLIST"


def allowed_packages() -> tuple[str, ...]:
    """The default packages plus those the user listed (``--import_allowlist``, kept in ``ALLOWLIST_ENV``)."""
    extra = [p.strip() for p in os.environ.get(ALLOWLIST_ENV, "").split(",") if p.strip()]
    return (*ALLOWED_PACKAGES, *extra)


def set_user_allowlist(packages: list[str]) -> None:
    """Record the packages the user allowed on the command line (for this process and its children)."""
    for package in packages:
        if not all(part.isidentifier() for part in package.split(".")):
            raise ConfigError(f"--import_allowlist: {package!r} is not a package name")
    extra = [p for p in allowed_packages() if p not in ALLOWED_PACKAGES]
    if packages:
        os.environ[ALLOWLIST_ENV] = ",".join(dict.fromkeys([*extra, *packages]))


_allowed_before: set[str] = set()


def restrict_imports() -> None:
    """Make jsonargparse refuse any class path outside ``allowed_packages()`` before importing it. Its policy
    is process-wide and only grows, so packages an earlier parse allowed and this one does not are denied
    again by name (one process may parse several runs: tests, ``experiments.train``)."""
    from jsonargparse import set_parsing_settings

    allowed = set(allowed_packages())
    set_parsing_settings(import_path_denylist=["*", *sorted(_allowed_before - allowed)],
                         import_path_allowlist=sorted(allowed))
    _allowed_before.update(allowed)


def refused_import(message: str) -> str | None:
    """The class path a jsonargparse error says its import policy refused, if any."""
    import re

    match = re.search(r"Importing '([\w.]+)' is not allowed", message)
    return match.group(1) if match else None


def _refusal(key: str, path: str, allows: str) -> ConfigError:
    return ConfigError(
        f"{key}: {path!r} is refused; it takes {allows}, from the packages {', '.join(allowed_packages())} "
        f"(add a package with --import_allowlist NAME on the command line if you trust its code)"
    )


def check_allowed(path: str, key: str, allows: str) -> None:
    """A ConfigError unless ``path``'s top-level package is allowed; nothing is imported."""
    if not path or not all(part.isidentifier() for part in path.split(".")):
        raise ConfigError(f"{key}: {path!r} is not a dotted name; it takes {allows}")
    if path.split(".")[0] not in allowed_packages():
        raise _refusal(key, path, allows)


def import_allowed(path: str, key: str, allows: str, check: Callable[[Any], bool]) -> Any:
    """The object at dotted ``path`` if its package is allowed (checked before importing) and ``check``
    accepts it; otherwise a ConfigError naming ``key`` and what it ``allows``."""
    check_allowed(path, key, allows)
    parts = path.split(".")
    found, error = None, None
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes (a.b.C.D)
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError as failure:
            error = error or failure
            continue
        try:
            for attr in parts[split:]:
                found = getattr(found, attr)
        except AttributeError as failure:
            raise ConfigError(f"{key}: cannot import {path!r} ({failure}); it takes {allows}") from None
        break
    else:
        raise ConfigError(f"{key}: cannot import {path!r} ({error}); it takes {allows}") from None
    defined_in = getattr(found, "__module__", None) or ""
    if defined_in.split(".")[0] not in allowed_packages() or not check(found):
        # e.g. affectlab.cli.main.os.system: reached through an allowed module, defined in another
        raise _refusal(key, path, allows)
    return found


def returns_subclass(factory: Any, base: type) -> bool:
    """Whether ``factory`` is a subclass of ``base``, or a function annotated as returning one."""
    if inspect.isclass(factory):
        return issubclass(factory, base)
    if not inspect.isfunction(factory):
        return False
    try:
        returned = inspect.signature(factory, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError, AttributeError):  # an unresolvable annotation says nothing
        return False
    return inspect.isclass(returned) and issubclass(returned, base)


def check_class_paths(config: Any, key: str = "") -> None:
    """Refuse, before anything is built, a ``class_path`` anywhere in ``config`` (a parsed config as nested
    dicts and lists) that names a function of another package than AffectLab. jsonargparse takes a function
    where a ``Callable`` is typed (``optimizer_init``, partial heads) and *calls* it with the ``init_args`` when
    it instantiates, so ``{class_path: torch.load, init_args: {f: ...}}`` would run; a class path names a class."""
    if isinstance(config, dict):
        path = config.get("class_path")
        if isinstance(path, str) and "." in path:
            check_allowed(path, f"{key}.class_path" if key else "class_path", "a class")
            found = _imported(path)
            if found is not None and not inspect.isclass(found) and path.split(".")[0] != "affectlab":
                raise ConfigError(
                    f"{key + '.' if key else ''}class_path: {path!r} is refused: it is a function, which would be "
                    "called with the init_args; a class path names a class (an optimiser, a module, a callback, ...)"
                )
        for name, value in config.items():
            check_class_paths(value, f"{key}.{name}" if key else str(name))
    elif isinstance(config, (list, tuple)):
        for i, value in enumerate(config):
            check_class_paths(value, f"{key}[{i}]")


def _imported(path: str) -> Any:
    """The object at ``path`` if its module is already imported (parsing imported it); None otherwise."""
    import sys

    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:split]))
        if module is None:
            continue
        found: Any = module
        for attr in parts[split:]:
            found = getattr(found, attr, None)
        return found
    return None
