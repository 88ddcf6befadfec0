"""What a data set's reader declares about it, in its own file (``SPEC``); ``registry.py`` lists them.

The functions a spec names (``check``, ``prepare``, ``export``) are dotted paths, imported when called, so
listing every data set does not import every checker, preparer and exporter.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_ROWS = 500  # feature rows kept per sample by default when a feature data set is read or prepared


def resolve(path: str) -> Any:
    """The object at dotted ``path`` (``package.module.name``)."""
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class DatasetSpec:
    """One data set.

    Attributes:
        name: what ``--data NAME`` and ``affectlab data ... NAME`` call it.
        description: one line, for listings and errors.
        default_root: where it is read from unless ``--data-root`` says otherwise.
        layout: its native tree, one entry per line, relative to the root: the only place it is written.
        reader: the class path of its data module.
        labelled: False for data sets that only serve self-supervised pretraining.
        init_args: fixed arguments of the data module for this data set (e.g. the folder set's ``name``).
        root_arg: the data module's argument that takes the root.
        rows_arg: the data module's argument that takes the row limit (feature data sets), if any.
        check: the function that validates a copy on disk, ``(name=, root=, decode=) -> CheckReport | None``.
        prepare: the function that converts it into a feature store, ``(name, raw, out, shard_samples,
            max_rows, **options)``.
        export: the function that writes AffectSynth in its layout, ``(arrays, out, **export_args) -> counts``.
        export_args: fixed keyword arguments of ``export``.
        export_styles: render styles the export asks the generator for (None: its default).
        subjects: what identities mean across its splits: ``disjoint`` (a shared one is an error), ``shared``
            (the official splits share them: a warning), ``none`` (no identities).
    """

    name: str
    description: str
    default_root: str
    layout: str
    reader: str
    labelled: bool = True
    init_args: Mapping[str, Any] = field(default_factory=dict)
    root_arg: str = "root"
    rows_arg: str | None = None
    check: str | None = None
    prepare: str | None = None
    export: str | None = None
    export_args: Mapping[str, Any] = field(default_factory=dict)
    export_styles: tuple[str, ...] | None = None
    subjects: str = "none"

    @property
    def data_module(self) -> str:
        return self.reader

    def tree(self, root: str | Path | None = None) -> str:
        """The layout under ``root`` (the default root when None), indented, one path per line."""
        root = root if root is not None else self.default_root
        return "\n".join(f"    {root}/{line}" for line in self.layout.splitlines())

    def open(self, root: str | Path | None = None, max_rows: int = MAX_ROWS, **options: Any) -> Any:
        """Its data module, reading ``root``."""
        args = {**self.init_args, self.root_arg: str(root if root is not None else self.default_root), **options}
        if self.rows_arg is not None:
            args.setdefault(self.rows_arg, max_rows)
        return resolve(self.reader)(**args)

    def function(self, kind: str) -> Callable[..., Any] | None:
        """The ``check``, ``prepare`` or ``export`` function, imported; None where the data set has none."""
        path = getattr(self, kind)
        return None if path is None else resolve(path)
