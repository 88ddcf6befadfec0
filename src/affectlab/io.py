"""File helpers every layer shares: atomic writes and safe checkpoint loads.

A process killed while writing must never leave a truncated file for the next reader to choke on: each
write goes to a temporary file in the same folder, is flushed to disk, then renamed over the target, which
POSIX makes atomic; the folder is fsynced after the rename, so the new name itself survives a power cut.
A temporary file left by a killed writer (``.<name>.<host>-<pid>.<random>.tmp``) is removed by the next
write of the same file, once its writer is no longer alive. A full disk or a read-only folder is a
``StorageError`` naming the folder and the fix, not a raw ``OSError``.

Checkpoints load with ``weights_only=True``: tensors, numbers, strings and containers, never arbitrary
pickled objects. A checkpoint that holds anything else is refused with a message saying why; loading it
unsafely is not offered.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import socket
import tempfile
from pathlib import Path
from typing import Any

from affectlab.errors import ConfigError, StorageError

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(path: str | Path, error: OSError) -> OSError | StorageError:
    """``error`` (raised while writing ``path``) as one readable message with the fix, for the errors a user
    can fix (no space, read-only or not writable); any other ``OSError`` is returned unchanged."""
    folder = Path(path).parent
    if error.errno in _NO_SPACE:
        return StorageError(
            f"no space left to write {path}: free space on the disk holding {folder}, or point --store (or "
            "MLFLOW_TRACKING_URI) at a disk with room; files written before are intact (each write goes to a "
            "temporary file first), so the run resumes with --run_id once there is room"
        )
    if error.errno in _NOT_WRITABLE:
        return StorageError(
            f"cannot write {path}: {folder} is read-only or not writable by this user ({os.strerror(error.errno)}); "
            "make it writable, or point --store (or MLFLOW_TRACKING_URI) at a writable folder"
        )
    return error


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def _host() -> str:
    """This machine's name as it appears in temporary file names (no dots or dashes, the name's separators)."""
    return socket.gethostname().replace(".", "_").replace("-", "_")


def _writer_alive(host: str, pid: str) -> bool:
    if host != _host():
        return True  # another machine's writer (a shared store): not ours to judge
    if int(pid) == os.getpid():
        return False  # this process writes one temporary per file at a time; an older one is a leftover
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary files that killed writers of ``path`` left behind; returns what was removed.
    A temporary whose writer (host and pid in its name) is still alive is kept; one of the old nameless
    layout (``.<name>.<random>.tmp``) has no writer to ask and goes."""
    path = Path(path)
    prefix = _temporary_prefix(path)
    pattern = re.compile(re.escape(prefix) + r"(?:(?P<host>[^.]+)-(?P<pid>\d+)\.)?[^.]+\.tmp")
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except FileNotFoundError:
        return removed
    for candidate in candidates:
        match = pattern.fullmatch(candidate.name)
        if match is None or (match["pid"] and _writer_alive(match["host"], match["pid"])):
            continue
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def fsync_directory(folder: str | Path) -> None:
    """Flush ``folder``'s entries (a rename inside it) to disk; a no-op where the system cannot."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f"{_temporary_prefix(path)}{_host()}-{os.getpid()}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)
    except OSError as error:
        readable = storage_error(path, error)
        if readable is error:
            raise
        raise readable from None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, content: Any, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(content, indent=indent))


def refused_checkpoint(path: str | Path, error: BaseException, key: str | None = None) -> ConfigError:
    """Why ``path`` is refused, from torch's ``weights_only`` unpickling error, without torch's advice to
    retry with ``weights_only=False`` (which would run whatever code the file names)."""
    text = str(error)
    found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"Unsupported (?:global|operand)[^\n]*", text)
    what = f"a pickled object ({found.group(1) if found.groups() else found.group(0)})" if found else "pickled objects"
    where = f"{key}: " if key else ""
    return ConfigError(
        f"{where}{path} is not a checkpoint readable with weights_only=True: it holds {what}, not only tensors "
        "and plain data, and unpickling it could run code, so it is refused. AffectLab does not offer to load it "
        "unsafely; re-save it from code you trust as tensors, e.g. torch.save({'state_dict': model.state_dict()}, path)"
    )


def load_checkpoint(path: str | Path, key: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's contents, loaded with ``weights_only=True``.

    ``key`` is the config key that named ``path``; when given, a missing or unreadable file is a
    ``ConfigError`` naming it (otherwise the underlying error propagates, as Lightning expects). A file
    holding pickled objects is refused with a ``ConfigError`` in both cases.
    """
    import torch

    path = Path(path)
    if key is None:
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            raise refused_checkpoint(path, error) from None
    if "$ckpt_dir" in str(path):
        raise ConfigError(f"{key}: {str(path)!r} still holds $ckpt_dir; the CLI resolves it only where a run is given")
    if not path.is_file():
        raise ConfigError(f"{key}: checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise refused_checkpoint(path, error, key) from None
    except Exception as error:  # unpickling errors have no common base class
        raise ConfigError(f"{key}: {path} is not a checkpoint readable with weights_only=True ({error})") from None
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{key}: {path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint
