"""The corrupt-sample policy every reader of files shares.

Unreadable files never stop a run by default: ``corrupt: skip`` drops them from their batch, warns once per
file with its path, counts them and sums them up when the stage ends; ``corrupt: raise`` stops at the first
with the file's path. A dataset returns ``{"skipped": "<path>"}`` for a file it cannot read
(``collate.collate_skipping`` gathers those); a batch left with no readable sample is left out whole
(``loaders.SkippingLoader``) and counted (``empty_batches``).

Samples a reader's own listing leaves out (class folders its layout does not know, label rows that match no
file, labelled frames without an image: what ``affectlab data check`` flags) follow the same policy
(``SkippedSamples``): ``raise`` stops at the first with what to fix, ``skip`` warns once per reason with the
count and the first items. Both counts are logged to the run (``BaseDataModule.log_data_counts``).
"""

from __future__ import annotations

import warnings
from typing import Any

from affectlab.errors import ConfigError, DataError

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
        self.empty_batches = 0  # batches left out whole: none of their samples was readable

    def take(self, batch: dict[str, Any]) -> dict[str, Any]:
        for path in batch.pop("skipped", []):
            if path not in self.paths:
                warnings.warn(f"{self.dataset}: skipped unreadable {self.kind} {path}", stacklevel=2)
                self.paths.append(path)
        return batch

    def empty(self, batch: dict[str, Any]) -> None:
        """A batch without a readable sample, left out: its files named (``take``) and the batch counted."""
        self.take(batch)
        self.empty_batches += 1

    def report(self) -> str | None:
        if not self.paths:
            return None
        shown = ", ".join(self.paths[:5]) + (f" and {len(self.paths) - 5} more" if len(self.paths) > 5 else "")
        whole = f"; {self.empty_batches} batch(es) held none readable and were left out" if self.empty_batches else ""
        return f"{self.dataset}: skipped {len(self.paths)} unreadable {self.kind}(s): {shown}{whole}"


def shown_items(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


class SkippedSamples:
    """Samples a reader's listing leaves out, per reason (module docstring): ``raise`` (the policy) stops at the
    first reason with its items and ``remedy``; ``skip`` (also readers without a policy) warns once per reason
    and counts them (``counts``: reason -> samples or folders left out)."""

    def __init__(self, dataset: str, corrupt: str | None = None) -> None:
        self.dataset, self.corrupt = dataset, corrupt
        self.counts: dict[str, int] = {}
        self.messages: list[str] = []  # one per reason met, as warned (data check prints them)

    def add(self, reason: str, items: list[str], what: str, remedy: str, count: int | None = None,
            strict: bool = True) -> None:
        """``items`` (paths, rows) left out for ``reason`` (a metric-name word: ``unknown_class_folder``);
        ``what`` says in words what they are, ``remedy`` how to keep them; ``count`` is the number of samples
        when it differs from the items (a folder's images). ``strict`` False: never an error, for what the data
        set's own distribution has (MELD's listed clip that its archive lacks)."""
        if not items:
            return
        message = f"{self.dataset}: {len(items)} {what}: {shown_items(items)}"
        if self.corrupt == "raise" and strict:
            raise DataError(f"{message}; {remedy}, or set data.init_args.corrupt: skip to leave them out")
        self.counts[reason] = self.counts.get(reason, 0) + (len(items) if count is None else count)
        self.messages.append(f"{self.dataset}: {len(items)} {what}: {', '.join(items)}; left out ({remedy})")
        warnings.warn(f"{message}; left out ({remedy}; affectlab data check names them all)", stacklevel=3)

    def count(self, reason: str, n: int) -> None:
        """Count ``n`` left out for ``reason`` that the reader has already reported itself (malformed rows)."""
        if n:
            self.counts[reason] = self.counts.get(reason, 0) + n

    def update(self, other: SkippedSamples) -> None:
        """Take over the counts of a data module this one reads through (a community layout's folder reader)."""
        for reason, count in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + count
