"""``affectlab sweep``: a sweep file's search space as an Optuna study whose trials are ordinary runs.

The study lives in an RDB storage (SQLite ``<run store>/sweeps.db`` by default, any SQLAlchemy URL), so a sweep
is resumable and shared: any number of worker processes, on one machine or several, run the same command and
take trials from the one study. The sweep is an MLflow parent run (``runs/groups.py``: kind ``sweep``, tags
``affectlab.sweep.study/storage/metric/direction``); every trial x seed is a child run, and the trial records
its runs' ids and values as Optuna user attributes as they happen.

Resuming. Every trial records its worker (``affectlab.worker``: host, pid and the process's start time) and a
heartbeat. A RUNNING trial whose worker is gone (same host: the process no longer exists; another host: no
heartbeat for ``STALE_AFTER_SECONDS``) is put back in the queue (WAITING, keeping its number, parameters and
user attributes) under the study's lock, and the next worker to ask pops it: its finished seeds are kept, its
interrupted run is reused by id (``--run_id``: fit resumes from its ``last.ckpt``, or starts over when it had
none). Grid points are enqueued once, when the study is created; a worker pops them (Optuna's atomic
WAITING -> RUNNING), so two workers never run one point. Trials of a sampler (TPE, random) are counted, and a
trial asked beyond ``trials`` is marked a surplus and never run.

Bad input stops before any trial: the sweep file (``sweep_spec``), a storage that cannot be reached (connected
first), a space key the base run's config lacks (the base run is parsed once, nothing built), and a metric no
run logs (a dry run of one batch per split in a throw-away store, once per study; its logged metric names are
compared with ``metric`` and the pruning monitor).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Iterator

from lightning.pytorch import Callback, LightningModule, Trainer

from affectlab.errors import ConfigError
from affectlab.experiments.sweep_spec import Dimension, SweepSpec
from affectlab.experiments.train import option_value, train
from affectlab.runs import groups
from affectlab.runs.lifecycle import DEFAULT_SEED, PARENT_TAG, STALE_AFTER_SECONDS, process_identity
from affectlab.runs.store import RunStore

STUDY_TAG = "affectlab.sweep.study"
STORAGE_TAG = "affectlab.sweep.storage"
METRIC_TAG = "affectlab.sweep.metric"
DIRECTION_TAG = "affectlab.sweep.direction"
PRUNED_TAG = "affectlab.sweep.pruned"
TRIAL_TAG = "affectlab.trial"
# Optuna attributes: the trial's runs (seed -> run id and value), its worker and heartbeat; the study's checks
RUNS_ATTR, WORKER_ATTR, HEARTBEAT_ATTR = "affectlab.runs", "affectlab.worker", "affectlab.heartbeat"
SURPLUS_ATTR, RETRIED_ATTR, RETRY_OF_ATTR = "affectlab.surplus", "affectlab.retried_as", "affectlab.retry_of"
DIGEST_ATTR, CHECKED_ATTR, ENQUEUED_ATTR = "affectlab.digest", "affectlab.checked", "affectlab.enqueued"
HEARTBEAT_SECONDS = 60.0
UNCLAIMED_SECONDS = 120.0  # a RUNNING trial with no worker recorded yet is judged only after this long
RECIPE_EXPERIMENT = "recipe-sweeps"
# The metric check's run: one batch of each split, one epoch, validation at its end.
CHECK_OPTIONS = ["--trainer.max_epochs", "1", "--trainer.max_steps", "-1", "--trainer.limit_train_batches", "1",
                 "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
                 "--trainer.limit_predict_batches", "1", "--trainer.val_check_interval", "1.0",
                 "--trainer.check_val_every_n_epoch", "1", "--trainer.num_sanity_val_steps", "0",
                 "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def public_url(url: str) -> str:
    """``url`` without its password (what the parent's storage tag and the messages show)."""
    from sqlalchemy.engine import URL, make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 (not a URL at all: shown as given, it holds no parsed password)
        return url
    if not parsed.password:
        return url
    bare = URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query)
    return bare.render_as_string(hide_password=False)


def token(value: Any) -> str:
    """A config value as one command-line token (lists and mappings as JSON, which the parser reads as YAML)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else option_value(value)


def point_arguments(values: dict[str, Any]) -> list[str]:
    return [t for key, value in values.items() for t in (f"--{key}", token(value))]


def flat_keys(tree: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            dotted = f"{prefix}{key}"
            keys.add(dotted)
            keys |= flat_keys(value, dotted + ".")
    return keys


def metric_value(metrics: dict[str, dict[str, float]], logged: dict[str, float], name: str) -> float | None:
    """``name`` from a run's results (``validate``, ``test``), else its last logged value."""
    for command in ("test", "validate"):
        if name in metrics.get(command, {}):
            return float(metrics[command][name])
    for values in metrics.values():
        if name in values:
            return float(values[name])
    return float(logged[name]) if name in logged else None


# -- pruning -----------------------------------------------------------------------------------------------------
@dataclass
class _Live:
    """A trial being trained in this process, as the pruning callback sees it."""

    trial: Any  # optuna.Trial
    monitor: str
    sign: float  # -1 when the monitored metric runs against the study's direction
    pruned: bool = False
    step: int | None = None


_LIVE: dict[str, _Live] = {}


class TrialPruning(Callback):
    """Reports the monitored metric to the trial after every validation epoch and stops the run when Optuna's
    pruner says so (Optuna's own Lightning callback lags Lightning's releases; this is the same few lines).

    It finds its trial by ``key`` in this process's live trials; in a run reopened outside its sweep (``affectlab
    run --run_id``), where no trial is live, it does nothing."""

    def __init__(self, key: str) -> None:
        self.key = key

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        live = _LIVE.get(self.key)
        if live is None or trainer.sanity_checking or live.pruned:
            return
        value = trainer.callback_metrics.get(live.monitor)
        if value is None:
            return
        step = int(trainer.current_epoch)
        if step not in live.trial.storage.get_trial(live.trial._trial_id).intermediate_values:
            live.trial.report(live.sign * float(value), step)
        if live.trial.should_prune():
            live.pruned, live.step = True, step
            trainer.should_stop = True


# -- storage -----------------------------------------------------------------------------------------------------
def connect(url: str):
    """The Optuna RDB storage at ``url``, connected now: an unreachable database stops the sweep here."""
    import optuna
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(url).get_backend_name()
    except Exception as error:  # noqa: BLE001
        raise ConfigError(f"storage {url!r} is not an SQLAlchemy URL ({error}); e.g. sqlite:///runs/sweeps.db or "
                          "postgresql+psycopg://user@host/db") from None
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args = {"timeout": 120}  # workers and heartbeats write to one file: wait for each other
        database = make_url(url).database
        if database and database != ":memory:" and not Path(database).parent.is_dir():
            raise ConfigError(f"storage {url}: the folder {Path(database).parent} does not exist; create it, or leave "
                              "storage out for <run store>/sweeps.db")
    elif backend.startswith("postgresql"):
        connect_args = {"connect_timeout": 10}
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    error: BaseException | None = None
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": connect_args})
        except (IntegrityError, ProgrammingError) as raced:
            # Workers started at once on an empty database race to create Optuna's tables; the loser finds them
            # made a moment later. The same error again and again is the storage's problem.
            error = raced
            time.sleep(0.5 * (attempt + 1))
        except Exception as failed:  # noqa: BLE001 (SQLAlchemy, the driver: all read the same to a user)
            error = failed
            break
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise ConfigError(
        f"storage {public_url(url)} cannot be reached ({type(error).__name__}: {first}); start the database or fix "
        "the URL in the sweep file's storage: (SQLAlchemy form, e.g. postgresql+psycopg://user@host/db, with the "
        "driver installed), or leave storage out for <run store>/sweeps.db"
    ) from None


@contextlib.contextmanager
def study_lock(storage: Any, url: str, study: str) -> Iterator[None]:
    """One worker at a time for the study's bookkeeping (creating its parent run and grid, putting a dead worker's
    trial back): a file lock beside a SQLite database, an advisory lock in PostgreSQL and MySQL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    key = int.from_bytes(hashlib.sha256(study.encode()).digest()[:8], "big", signed=True)
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            yield
            return
        from filelock import FileLock

        with FileLock(f"{parsed.database}.{hashlib.sha256(study.encode()).hexdigest()[:8]}.lock", timeout=600):
            yield
    elif backend.startswith("postgresql"):
        with storage.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    elif backend.startswith("mysql"):
        with storage.engine.connect() as connection:
            connection.execute(text("SELECT GET_LOCK(:name, 600)"), {"name": f"affectlab-{key}"})
            try:
                yield
            finally:
                connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": f"affectlab-{key}"})
    else:  # other databases: Optuna's own atomic steps only (see docs/experiments.md)
        yield


# -- the sweep ---------------------------------------------------------------------------------------------------
@dataclass
class TrialRow:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # seed -> {run_id, value}


def study_name(spec: SweepSpec, dry_run: bool) -> str:
    """A dry run's study is ``<name>-dry``: its trials never count in, or block, the real sweep's study."""
    return f"{spec.name}-dry" if dry_run else spec.name


class _Parsed(Exception):
    def __init__(self, config: Any) -> None:
        super().__init__("parsed")
        self.config = config


def parse_config(args: list[str]) -> dict[str, Any]:
    """The base run's config as ``affectlab run`` would parse it, nothing built."""
    from argparse import ArgumentError

    from affectlab.runs.lightning_cli import AffectLabCLI

    class ParseOnly(AffectLabCLI):
        def before_instantiate_classes(self) -> None:
            raise _Parsed(self.config)

    try:
        ParseOnly(list(args))
    except _Parsed as parsed:
        return parsed.config.as_dict()
    except ArgumentError as error:
        raise ConfigError(f"sweep: the base run does not parse: {str(error).splitlines()[0]}; run it once with "
                          "'affectlab run ... --print_config' to see the message in full") from None
    raise ConfigError("sweep: the base run's config could not be read")


class Sweep:
    def __init__(self, spec: SweepSpec, run_options: list[str] = (), dry_run: bool = False, quiet: bool = False) -> None:
        """``run_options``: the command line after the sweep file, applied to every trial (``--store`` too)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec, self.dry_run, self.quiet = spec, dry_run, quiet
        self.study_name = study_name(spec, dry_run)
        self.run_options = list(run_options) + (["--dry_run"] if dry_run else [])
        self.seeds: list[int | None] = list(spec.seeds) if spec.seeds else [None]
        if spec.recipe is None:
            self.args = [*spec.args, *self.run_options]
            self.config = parse_config(self.args)  # the space's values are tried by the metric check's run
            self.check_space_keys()
            store, experiment = self.config.get("store"), str(self.config.get("exp_name") or "affectlab")
        else:
            self.args, self.config = [], {}
            store, self.recipe_extra = self.recipe_store()
            experiment = RECIPE_EXPERIMENT
        self.experiment = f"{experiment}-dry" if dry_run and not experiment.endswith("-dry") else experiment
        self.store = RunStore.resolve(store)
        self.storage_url = spec.storage or self.default_storage()
        self.storage = connect(self.storage_url)
        self.study = self.open_study()
        self.identity = process_identity(os.getpid()) or f"{socket.gethostname()}:{os.getpid()}:"

    # -- set-up ---------------------------------------------------------------------------------------------------
    def first_point(self) -> dict[str, Any]:
        """Config values of one point of the space (the grid's first, each distribution's low or first choice),
        with which the base run is parsed and the metric checked."""
        values: dict[str, Any] = {}
        for d in self.spec.dimensions:
            if d.kind in ("grid", "categorical"):
                values[d.key] = d.values[0]
            else:
                values[d.key] = int(d.low) if d.kind == "int" else d.low
        return values

    def check_space_keys(self) -> None:
        keys = flat_keys(self.config)
        for d in self.spec.dimensions:
            if d.key not in keys:
                close = get_close_matches(d.key, sorted(keys), n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"{self.spec.path}: space key {d.key!r} is not a key of the base run's config{hint} Keys are dotted "
                    "as on the command line (model.init_args.dropout); 'affectlab run "
                    f"{' '.join(self.spec.args)} --print_config' lists them"
                )

    def recipe_store(self) -> tuple[str | None, list[str]]:
        """The run store and the recipe's extra options: ``--store`` is the recipe's own option, not a run's."""
        extra, store, i = [], None, 0
        options = [o for o in self.run_options if o != "--quiet"]
        while i < len(options):
            if options[i] == "--store" and i + 1 < len(options):
                store, i = options[i + 1], i + 2
                continue
            if options[i].startswith("--store="):
                store, i = options[i].split("=", 1)[1], i + 1
                continue
            extra.append(options[i])
            i += 1
        return store or self.spec.recipe.get("store"), extra

    def default_storage(self) -> str:
        folder = self.store.folder
        if folder is None:
            raise ConfigError(f"sweep: the run store {self.store.tracking_uri} is not a folder, so the study has no default "
                              "place; give the sweep file a storage: URL (e.g. postgresql+psycopg://user@host/db)")
        return f"sqlite:///{folder / 'sweeps.db'}"

    def digest(self) -> str:
        """What the study's numbers depend on: a study made from another space, metric or base refuses this one."""
        spec = self.spec
        content = [spec.metric, spec.direction, spec.sampler, spec.sampler_seed, spec.seeds, spec.args, spec.recipe,
                   [asdict(d) for d in spec.dimensions], self.run_options,
                   asdict(spec.pruning) if spec.pruning else None]
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def open_study(self):
        import optuna

        spec = self.spec
        if spec.sampler == "tpe":
            sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed)
        else:  # grid points are enqueued (fixed parameters): the sampler is never asked for them
            sampler = optuna.samplers.RandomSampler(seed=spec.sampler_seed)
        pruner: Any = optuna.pruners.NopPruner()
        if spec.pruning is not None:
            p = spec.pruning
            pruner = (optuna.pruners.MedianPruner(p.n_startup_trials, p.n_warmup_steps) if p.pruner == "median" else
                      optuna.pruners.PercentilePruner(p.percentile, p.n_startup_trials, p.n_warmup_steps))
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, sampler=sampler, pruner=pruner,
                                    direction=spec.direction, load_if_exists=True)
        if study.direction.name.lower() != spec.direction:
            raise ConfigError(f"study {self.study_name} in {public_url(self.storage_url)} was made to "
                              f"{study.direction.name.lower()}, the sweep file says {spec.direction}; rename the sweep "
                              "(name:) or delete the study (optuna delete-study --study-name ... --storage ...)")
        digest = self.digest()
        with study_lock(self.storage, self.storage_url, self.study_name):
            made_with = self.storage.get_study_system_attrs(study._study_id).get(DIGEST_ATTR)
            if made_with is None:
                self.storage.set_study_system_attr(study._study_id, DIGEST_ATTR, digest)
            elif made_with != digest:
                raise ConfigError(
                    f"study {self.study_name} in {public_url(self.storage_url)} was made from another sweep (space, "
                    f"metric, seeds, base run or run options differ: digest {made_with} against {digest}); its trials "
                    "would be mixed with this sweep's. Give this sweep another name:, or delete the study "
                    f"(optuna delete-study --study-name {self.study_name} --storage URL) to start over"
                )
        return study

    def study_attrs(self) -> dict[str, Any]:
        return self.storage.get_study_system_attrs(self.study._study_id)

    def check_metric(self) -> None:
        """Stop before any trial when no run would log ``metric`` (or the pruning monitor): a dry run of one batch
        per split in a throw-away store, once per study."""
        if self.study_attrs().get(CHECKED_ATTR) or self.dry_run:
            return
        wanted = [self.spec.metric] + ([self.spec.pruning.monitor] if self.spec.pruning else [])
        if self.spec.recipe is not None:
            logged = set(recipe_metric_names(self.spec))
        else:
            with tempfile.TemporaryDirectory(prefix="affectlab-sweep-check-") as folder:
                print(f"sweep {self.study_name}: checking that the base run logs {', '.join(wanted)} (one batch per split)",
                      flush=True)
                options = [*self.args, *point_arguments(self.first_point()), *CHECK_OPTIONS, "--store", folder,
                           "--exp_name", "sweep-check", "--run_name", "metric-check"]
                saved = os.environ.get("MLFLOW_TRACKING_URI")
                try:
                    result = train([], {}, extra=options)
                    run = RunStore.resolve(folder).get_run(result.run_id)
                finally:
                    if saved is None:
                        os.environ.pop("MLFLOW_TRACKING_URI", None)
                    else:
                        os.environ["MLFLOW_TRACKING_URI"] = saved
                logged = set(run.data.metrics) | {k for values in result.metrics.values() for k in values}
        for name in wanted:
            if name not in logged:
                close = get_close_matches(name, sorted(logged), n=3, cutoff=0.5)
                which = "metric" if name == self.spec.metric else "pruning.monitor"
                raise ConfigError(
                    f"{self.spec.path}: {which} {name!r} is logged by no run of this sweep (a dry run logged "
                    f"{', '.join(sorted(k for k in logged if '/' in k)[:12])}{', ...' if len(logged) > 12 else ''})"
                    f"{'; did you mean ' + ', '.join(close) + '?' if close else ''} Name a logged metric, or add the "
                    "command that logs it to the base run's commands (test/... needs test)"
                )
        self.storage.set_study_system_attr(self.study._study_id, CHECKED_ATTR, True)

    def parent_run(self) -> str:
        """The sweep's parent run: the one with this study's tags in the experiment, or a new one."""
        tags = {STUDY_TAG: self.study_name, STORAGE_TAG: public_url(self.storage_url), METRIC_TAG: self.spec.metric,
                DIRECTION_TAG: self.spec.direction}
        client = self.store.client
        experiment = self.store.experiment_id(self.experiment)
        found = client.search_runs(
            [experiment], filter_string=f"tags.`{groups.KIND_TAG}` = 'sweep' and tags.`{STUDY_TAG}` = '{self.study_name}'",
            order_by=["attributes.start_time ASC"], max_results=100)
        found = [r for r in found if r.data.tags.get(STORAGE_TAG) == tags[STORAGE_TAG]]
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status != "RUNNING":
                client.update_run(run_id, status="RUNNING")
            return run_id
        return groups.open_parent_run(self.store, self.experiment, self.study_name, "sweep", tags)

    def enqueue_grid(self) -> None:
        if self.spec.sampler != "grid" or self.study_attrs().get(ENQUEUED_ATTR):
            return
        for point in self.spec.grid_points()[: self.spec.trials]:
            self.study.enqueue_trial(point)
        self.storage.set_study_system_attr(self.study._study_id, ENQUEUED_ATTR, True)

    # -- trials ---------------------------------------------------------------------------------------------------
    def _dead(self, trial: Any, now: float) -> bool:
        identity = trial.user_attrs.get(WORKER_ATTR)
        if not identity:
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            return now - started > UNCLAIMED_SECONDS
        if identity == self.identity:
            return False
        host, pid, _ = identity.split(":", 2)
        if host == socket.gethostname():
            return process_identity(int(pid)) != identity
        return now - float(trial.user_attrs.get(HEARTBEAT_ATTR, 0)) > STALE_AFTER_SECONDS

    def recover(self) -> None:
        """Put back in the queue what a dead worker left RUNNING, and retry what failed with an error."""
        from optuna.trial import TrialState

        now = time.time()
        with study_lock(self.storage, self.storage_url, self.study_name):
            for trial in self.study.get_trials(deepcopy=False):
                if trial.state == TrialState.RUNNING and self._dead(trial, now):
                    print(f"sweep {self.study_name}: trial {trial.number}'s worker is gone; it is queued to resume", flush=True)
                    self.storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
                elif (trial.state == TrialState.FAIL and not trial.system_attrs.get(SURPLUS_ATTR)
                      and RETRIED_ATTR not in trial.system_attrs):
                    self.study.enqueue_trial(trial.params, user_attrs={RUNS_ATTR: trial.user_attrs.get(RUNS_ATTR, {}),
                                                                       RETRY_OF_ATTR: trial.number})
                    self.storage.set_trial_system_attr(trial._trial_id, RETRIED_ATTR, True)

    def _kept(self, trials: list) -> list:
        return [t for t in trials if not t.system_attrs.get(SURPLUS_ATTR) and RETRIED_ATTR not in t.system_attrs]

    def next_trial(self):
        """The next trial this worker runs, or None when the study needs none: a queued one (a grid point, a trial
        to resume) taken as Optuna's own queue does (WAITING -> RUNNING succeeds for one worker only), else a
        sampler's new one while fewer than ``trials`` exist."""
        import optuna
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        for waiting in (t for t in trials if t.state == TrialState.WAITING):
            try:
                if self.storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING):
                    return optuna.trial.Trial(self.study, waiting._trial_id)
            except UpdateFinishedTrialError:
                continue
        if self.spec.sampler == "grid" or len(self._kept(trials)) >= self.spec.trials:
            return None
        trial = self.study.ask()
        earlier = [t for t in self._kept(self.study.get_trials(deepcopy=False)) if t.number < trial.number]
        if len(earlier) >= self.spec.trials:  # another worker asked at the same moment: this one is one too many
            self.storage.set_trial_system_attr(trial._trial_id, SURPLUS_ATTR, True)
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        return trial

    def suggest(self, trial: Any, d: Dimension) -> Any:
        if d.kind in ("grid", "categorical"):
            return trial.suggest_categorical(d.key, d.choices())
        if d.kind == "int":
            return trial.suggest_int(d.key, int(d.low), int(d.high), log=d.log, step=int(d.step or 1))
        return trial.suggest_float(d.key, d.low, d.high, log=d.log, step=d.step)

    def run_trial(self, trial: Any, parent: str) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr(WORKER_ATTR, self.identity)
        trial.set_user_attr(HEARTBEAT_ATTR, time.time())
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(trial, stop), daemon=True)
        beat.start()
        try:
            params = {d.key: self.suggest(trial, d) for d in self.spec.dimensions}
            values = {d.key: d.config_value(params[d.key]) for d in self.spec.dimensions}
            runs: dict[str, dict[str, Any]] = dict(self.storage.get_trial(trial._trial_id).user_attrs.get(RUNS_ATTR, {}))
            print(f"sweep {self.study_name}: trial {trial.number} {json.dumps(values, default=str)}", flush=True)
            pruned = False
            for index, seed in enumerate(self.seeds):
                entry = dict(runs.get(str(seed), {}))
                if entry.get("value") is not None:
                    continue
                run = self.run_recipe if self.spec.recipe is not None else self.run_seed
                entry, pruned = run(trial, parent, values, seed, index, entry, runs)
                runs[str(seed)] = entry
                trial.set_user_attr(RUNS_ATTR, runs)
                if pruned:
                    break
        except KeyboardInterrupt:  # stopped by its user: queued again, to resume as it is under its number
            stop.set()
            with contextlib.suppress(Exception):
                self.storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
            raise
        except BaseException:  # an error: FAIL, retried under a new number by the next invocation
            stop.set()
            with contextlib.suppress(Exception):
                self.study.tell(trial, state=TrialState.FAIL)
            raise
        stop.set()
        if pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        scores = [runs[str(seed)]["value"] for seed in self.seeds]
        self.study.tell(trial, sum(scores) / len(scores))
        self.store.client.log_metric(parent, self.spec.metric, sum(scores) / len(scores), step=trial.number)

    def _heartbeat(self, trial: Any, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):  # a missed beat is judged after an hour, not now
                self.storage.set_trial_user_attr(trial._trial_id, HEARTBEAT_ATTR, time.time())

    def _tags(self, trial: Any, values: dict[str, Any]) -> dict[str, str]:
        return {TRIAL_TAG: str(trial.number), groups.CONFIG_TAG: groups.config_key(values), STUDY_TAG: self.study_name}

    def run_seed(self, trial: Any, parent: str, values: dict[str, Any], seed: int | None, index: int,
                 entry: dict[str, Any], runs: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """One child run of the trial (or the resumed one): its id and metric value, and whether it was pruned."""
        options = [*self.args, *point_arguments(values)]
        if seed is not None:
            options += ["--seed_everything", str(seed)]
        options += groups.child_arguments(parent, self._tags(trial, values))
        options += ["--run_name", f"{self.study_name}-t{trial.number}" + ("" if seed is None else f"-s{seed}")]
        key = f"{self.study_name}:{trial.number}:{os.getpid()}"
        if self.spec.pruning is not None and index == 0:  # one curve per trial: the first seed's
            monitor, mode = self.spec.pruning.monitor, self.spec.pruning.mode
            sign = -1.0 if (mode == "min") != (self.spec.direction == "minimize") else 1.0
            _LIVE[key] = _Live(trial, monitor, sign)
            callback = {"class_path": f"{__name__}.TrialPruning", "init_args": {"key": key}}
            options += ["--additional_callbacks", json.dumps([callback])]
        if entry.get("run_id"):
            print(f"sweep {self.study_name}: trial {trial.number} resumes run {entry['run_id']}", flush=True)
            options += ["--run_id", entry["run_id"]]

        def opened(run_id: str) -> None:
            entry["run_id"] = run_id
            trial.set_user_attr(RUNS_ATTR, {**runs, str(seed): dict(entry)})

        try:
            result = train([], {}, extra=options, on_open=opened)
        finally:
            live = _LIVE.pop(key, None)
        run = self.store.get_run(result.run_id)
        if live is not None and live.pruned:
            self.store.client.set_tag(result.run_id, PRUNED_TAG, f"epoch {live.step}")
            return {"run_id": result.run_id, "value": None, "pruned": True}, True
        value = metric_value(result.metrics, run.data.metrics, self.spec.metric)
        if value is None:
            raise ConfigError(f"run {result.run_id} logged no {self.spec.metric}; the sweep's metric must be logged "
                              "by every trial")
        return {"run_id": result.run_id, "value": value}, False

    def run_recipe(self, trial: Any, parent: str, values: dict[str, Any], seed: int | None, index: int,
                   entry: dict[str, Any], runs: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """One recipe of the trial (its own record resumes it); its runs become the parent's children after it."""
        from affectlab.experiments.recipe import Recipe, RecipeOptions

        fields = recipe_trial_fields({**self.spec.recipe, **values})
        options = RecipeOptions(**{**fields, "seed": DEFAULT_SEED if seed is None else seed,
                                   "store": None if self.store.folder is None else str(self.store.folder),
                                   "extra": list(self.recipe_extra), "quiet": True})
        options.fractions = tuple(options.fractions)
        recipe = Recipe(options)
        rows = recipe.run()
        metrics = recipe_metrics(rows, options.variant)
        tags = {**self._tags(trial, values), PARENT_TAG: parent, "affectlab.seed": str(options.seed)}
        for run_id in {r.run_id for r in rows} | {recipe.record.pretrain_run_id} - {None}:
            for key, value in tags.items():
                self.store.client.set_tag(run_id, key, value)
        if self.spec.metric not in metrics:
            raise ConfigError(f"recipe of {options.variant} has no row {self.spec.metric}; its rows: {sorted(metrics)}")
        return {"run_id": recipe.record.pretrain_run_id, "value": metrics[self.spec.metric],
                "runs": sorted({r.run_id for r in rows}), "record": str(recipe.record_path)}, False

    # -- the whole sweep ------------------------------------------------------------------------------------------
    def run(self) -> list[TrialRow]:
        self.check_metric()  # before the parent run and the grid exist: a refused sweep leaves nothing behind
        with study_lock(self.storage, self.storage_url, self.study_name):
            parent = self.parent_run()
            self.enqueue_grid()
        while True:
            self.recover()
            trial = self.next_trial()
            if trial is None:
                break
            self.run_trial(trial, parent)
        rows = self.rows()
        from optuna.trial import TrialState

        unfinished = [t for t in self.study.get_trials(deepcopy=False)
                      if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        if not unfinished:
            done = [r for r in rows if r.state == "COMPLETE"]
            if done:
                best = done[0]
                self.store.client.set_tag(parent, "affectlab.sweep.best_trial", str(best.number))
                self.store.client.log_metric(parent, f"best/{self.spec.metric}", best.value)
            groups.end_parent_run(self.store, parent)
        self.parent = parent
        return rows

    def rows(self) -> list[TrialRow]:
        """Every trial of the study that counts (surplus and retried ones left out), best first."""
        by_key = {d.key: d for d in self.spec.dimensions}
        rows = [TrialRow(t.number, t.state.name, t.value if t.state.name == "COMPLETE" else None,
                         {k: by_key[k].config_value(v) if k in by_key else v for k, v in t.params.items()},
                         t.user_attrs.get(RUNS_ATTR, {}))
                for t in self._kept(self.study.get_trials(deepcopy=False))]
        sign = -1.0 if self.spec.direction == "maximize" else 1.0
        return sorted(rows, key=lambda r: (r.value is None, sign * (r.value or 0.0), r.number))


# Recipe options that only add rows: a recipe base may give one as a list of variants (on for those, off for the
# others), since a grid over variants cannot say "the floor only for the reference" (the ConCluGen ablation).
PER_VARIANT = ("floor", "ceiling", "per_modality", "finetune")


def recipe_trial_fields(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe trial's ``RecipeOptions`` fields: each per-variant list resolved to whether the trial's variant
    is in it (a plain true/false applies to every variant)."""
    resolved = dict(recipe)
    for key in PER_VARIANT:
        if isinstance(resolved.get(key), list):
            resolved[key] = resolved.get("variant") in resolved[key]
    return resolved


def recipe_metric_names(spec: SweepSpec) -> list[str]:
    """The metric names a recipe trial has (``recipe_metrics``), from its options."""
    from affectlab.experiments.recipe import DEFAULT_FRACTIONS

    recipe = spec.recipe or {}
    fractions = recipe.get("fractions", DEFAULT_FRACTIONS)
    names = [f"probe/{f:g}" for f in fractions]
    if recipe.get("floor", True):
        names += [f"floor/{f:g}" for f in fractions]
    if recipe.get("finetune", False):
        names += [f"finetune/{f:g}" for f in fractions]
    if recipe.get("ceiling", True):
        names.append("ceiling/1")
    return [f"{n}/{m}" for n in names for m in ("acc", "f1_weighted")]


def recipe_metrics(rows: list, variant: str) -> dict[str, float]:
    """A recipe's rows as metrics: ``probe/<fraction>/acc`` (the variant's probe), ``floor/..``, ``finetune/..``,
    ``ceiling/1``, ``<modality>/1`` (single-modality probes), each with ``acc`` and ``f1_weighted``."""
    from affectlab.experiments.recipe import CEILING, FLOOR

    metrics: dict[str, float] = {}
    for row in rows:
        if row.representation == variant:
            name = "probe"
        elif row.representation == CEILING:
            name = "ceiling"
        elif row.representation.startswith(FLOOR[:-1]):
            name = "floor"
        elif row.representation.endswith("fine-tuned"):
            name = "finetune"
        else:
            name = row.representation.removeprefix(variant).strip().removesuffix(" only")
        for metric in ("acc", "f1_weighted"):
            metrics[f"{name}/{row.fraction:g}/{metric}"] = float(getattr(row, metric))
    return metrics


def format_table(rows: list[TrialRow], metric: str) -> str:
    """The trials as a plain-text table (value, params, run ids), best first."""
    keys = sorted({k for r in rows for k in r.params})
    header = ["trial", "state", metric, *keys, "runs"]
    lines = [header]
    for r in rows:
        ids = ", ".join(str(e.get("run_id", ""))[:8] for e in r.runs.values())
        lines.append([str(r.number), r.state, "" if r.value is None else f"{r.value:.4f}",
                      *[json.dumps(r.params.get(k), default=str) for k in keys], ids])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
