"""The corrupt-sample policy every reader of files shares.

Unreadable files never stop a run by default: ``corrupt: skip`` drops them from their batch, warns once per
file with its path, counts them and sums them up when the stage ends; ``corrupt: raise`` stops at the first
with the file's path. A dataset returns ``{"skipped": "<path>"}`` for a file it cannot read
(``collate.collate_skipping`` gathers those).
"""

from __future__ import annotations

import warnings
from typing import Any

from affectlab.errors import ConfigError

CORRUPT_POLICIES = ("skip", "raise")


def check_corrupt_policy(corrupt: str) -> str:
    if corrupt not in CORRUPT_POLICIES:
        raise ConfigError(f"data.init_args.corrupt: {corrupt!r} is not one of {list(CORRUPT_POLICIES)}")
    return corrupt


class UnreadableFiles:
    """The unreadable files a data module met: each named once in a warning, all summed up in ``report``.

    Samples that failed to load reach the main process as ``{"skipped": path}`` (also from loader workers)
    and ``collate_skipping`` gathers them into ``batch["skipped"]``; ``take`` removes that entry. ``kind``
    names what a file holds in the messages (``image``, ``clip``).
    """

    def __init__(self, dataset: str, kind: str = "image") -> None:
        self.dataset, self.kind = dataset, kind
        self.paths: list[str] = []

    def take(self, batch: dict[str, Any]) -> dict[str, Any]:
        for path in batch.pop("skipped", []):
            if path not in self.paths:
                warnings.warn(f"{self.dataset}: skipped unreadable {self.kind} {path}", stacklevel=2)
                self.paths.append(path)
        return batch

    def report(self) -> str | None:
        if not self.paths:
            return None
        shown = ", ".join(self.paths[:5]) + (f" and {len(self.paths) - 5} more" if len(self.paths) > 5 else "")
        return f"{self.dataset}: skipped {len(self.paths)} unreadable {self.kind}(s): {shown}"
