"""The run store: a local MLflow tracking store (SQLite backend, file artifacts) with no server to start.

Where it is, by precedence: the ``store`` argument (a folder), then ``MLFLOW_TRACKING_URI`` (any MLflow
URI, a server included), then ``./runs``. In a folder store the tracking database is ``<store>/mlflow.db``
and each run's artifacts live in ``<store>/artifacts/<experiment id>/<run id>/artifacts/``: ``config.yaml``
(the first config), ``config_<timestamp>.yaml`` (later ones), ``environment.json``, ``checkpoints/``
(``best.ckpt``, ``last.ckpt``), ``plots/``, ``predictions/``.

A folder store is MLflow's SQLite database plus an artifact root, and both are kept together whatever set
``MLFLOW_TRACKING_URI``: MLflow sets that variable itself during the first in-process run, so a URI naming a
folder store's ``mlflow.db`` resolves to that folder's ``artifacts/`` too (before, later in-process runs lost
the artifact root and wrote to ``./mlruns``). The database is created (or migrated) under a file lock,
``<store>/mlflow.db.lock``: MLflow's first-time set-up is not safe for two processes at once. A store that
cannot be written is refused at once with the folder and the fix (``require_writable``), before MLflow's
retries on a read-only database would spend minutes.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from affectlab.errors import ConfigError, StorageError

DEFAULT_STORE = "runs"
DATABASE = "mlflow.db"
LOCK_SECONDS = 600  # a first-time database set-up takes seconds; waiting longer means a stuck process
FIRST_CONFIG = "config.yaml"
CHECKPOINTS = "checkpoints"
# MLflow 3's experiment kind: AffectLab's experiments train models; without it MLflow treats them as GenAI apps.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

# Artifact downloads are small local copies: their tqdm bars would only clutter the run's output.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow announces every database migration and experiment creation at INFO; runs only need warnings.
for _name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent", "mlflow.store"):
    logging.getLogger(_name).setLevel(logging.WARNING)


# Local copies of runs' first configs that --run_id put in front of a command line (not the user's arguments).
FIRST_CONFIG_COPIES: set[str] = set()


def folder_of_database(uri: str) -> Path | None:
    """The store folder of a ``sqlite:///<folder>/mlflow.db`` URI (a folder store's), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(unquote(uri[len("sqlite:///"):]))
    return database.parent if database.name == DATABASE else None


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def _read_only_mount(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (``os.access`` answers root as if writable)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK) and not _read_only_mount(folder)


@dataclass
class RunStore:
    tracking_uri: str
    artifact_location: str | None = None  # for experiments this store creates; None lets MLflow choose
    _client: Any = field(default=None, repr=False)

    @classmethod
    def resolve(cls, store: str | None = None) -> "RunStore":
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if store is None and uri:
            folder = folder_of_database(uri)
            return cls(uri, (folder / "artifacts").as_uri() if folder is not None else None)
        root = Path(store or DEFAULT_STORE).resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"cannot create the run store {root} ({os.strerror(error.errno or 0)}); create it "
                               "or point --store (or MLFLOW_TRACKING_URI) at a writable folder") from None
        return cls(f"sqlite:///{root / DATABASE}", (root / "artifacts").as_uri())

    @property
    def folder(self) -> Path | None:
        """The store's folder when it is a folder store (database and artifacts under one root)."""
        return folder_of_database(self.tracking_uri)

    def require_writable(self) -> None:
        """Refuse at once a folder store that cannot be written (MLflow would retry for minutes)."""
        folder = self.folder
        if folder is None:
            return
        database = folder / DATABASE
        blocked = [p for p in (folder, database, folder / "artifacts") if p.exists() and not os.access(p, os.W_OK)]
        if not blocked and folder.is_dir() and _read_only_mount(folder):
            blocked = [folder]
        if blocked:
            raise StorageError(
                f"the run store {folder} is read-only ({blocked[0]} cannot be written); make it writable, or point "
                "--store (or MLFLOW_TRACKING_URI) at a writable folder. Runs in it can still be read (affectlab ui)"
            )

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            folder = self.folder
            if folder is None or not _writable(folder):  # a read-only store can still be read, without a lock
                self._client = MlflowClient(self.tracking_uri)
            else:
                # The client builds (and on first use creates or migrates) the database: one process at a time.
                from filelock import FileLock, Timeout

                lock = FileLock(str(folder / f"{DATABASE}.lock"), timeout=LOCK_SECONDS)
                try:
                    with lock:
                        self._client = MlflowClient(self.tracking_uri)
                except Timeout:
                    raise StorageError(
                        f"the run store {folder} stayed locked for {LOCK_SECONDS} s ({lock.lock_file}): another "
                        "process is setting up its database; if none is, delete the lock file"
                    ) from None
        return self._client

    def experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None and experiment.lifecycle_stage != "deleted":
            return experiment.experiment_id
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name, artifact_location=self._experiment_artifacts(name),
                                                 tags=EXPERIMENT_TAGS)
        except MlflowException:  # another process created it in between (two runs started at once)
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def _experiment_artifacts(self, name: str) -> str | None:
        if self.artifact_location is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return f"{self.artifact_location}/{safe}"

    def create_run(self, experiment: str, run_name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name, tags=tags)
        return run.info.run_id

    def get_run(self, run_id: str):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException as error:
            raise ConfigError(
                f"run_id {run_id!r} is not in the run store {self.tracking_uri}; check the id that was printed as "
                "'run_id: ...', or point --store / MLFLOW_TRACKING_URI at the store that holds it"
            ) from error

    def artifact_dir(self, run_id: str) -> Path:
        """Local folder of the run's artifacts; runs whose artifacts are remote are staged under the temp dir."""
        local = _local_path(self.get_run(run_id).info.artifact_uri)
        if local is None:
            local = Path(tempfile.gettempdir()) / "affectlab-staging" / run_id
        return local

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.artifact_dir(run_id) / CHECKPOINTS

    def is_local(self, run_id: str) -> bool:
        return _local_path(self.get_run(run_id).info.artifact_uri) is not None

    def artifact_names(self, run_id: str, path: str | None = None) -> list[str]:
        return [Path(info.path).name for info in self.client.list_artifacts(run_id, path)]

    def first_config(self, run_id: str) -> Path:
        """Download the run's first config (``config.yaml``) and return its local path."""
        self.get_run(run_id)
        if FIRST_CONFIG not in self.artifact_names(run_id):
            raise ConfigError(f"run {run_id} has no {FIRST_CONFIG}; it was not started by affectlab")
        target = Path(tempfile.mkdtemp(prefix=f"affectlab-{run_id[:8]}-"))
        copy = Path(self.client.download_artifacts(run_id, FIRST_CONFIG, str(target)))
        FIRST_CONFIG_COPIES.add(str(copy))
        return copy

    def log_config(self, run_id: str, text: str) -> str:
        """Store ``text`` as ``config.yaml`` if the run has none yet, else as ``config_<timestamp>.yaml``."""
        name = FIRST_CONFIG
        if FIRST_CONFIG in self.artifact_names(run_id):
            # Milliseconds: two re-runs within one second must not overwrite each other's config.
            name = datetime.now().strftime("config_%Y%m%d-%H%M%S-%f")[:-3] + ".yaml"
        self.client.log_text(run_id, text, name)
        return name
