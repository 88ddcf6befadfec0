"""The CluP recipe on AffectSynth (``affectlab recipe clup synth``): source-free cross-domain expression recognition
from start to end, as a chain of ordinary runs in the run store, and the table that compares its methods.

The source domain is AffectSynth faces in some render styles (``configs/data/synth_clup_source.yaml``), the target
other styles and other people (``configs/data/synth_clup_target.yaml``). Stages, each one run (or a recorded one):

1. ``source``: the source model (``configs/model/clup/source.yaml``) trained on the labelled source, tested on its
   own test split;
2. ``source_only``: that model tested on the target's test split (``affectlab test --run_id SOURCE --data
   TARGET``, a cross-domain child run of the source run): the row every adaptation has to beat;
3. ``swav``: SwAV (``configs/model/swav.yaml``) on the unlabelled target training images
   (``configs/experiment/clup/swav_synth.yaml``);
4. ``clup``: the CluP student (``configs/model/clup/student.yaml``, ``configs/experiment/clup/synth.yaml``),
   initialised from the SwAV run, trained on the source model's cluster-level pseudo-labels of the target;
5. ``shot``: SHOT (``configs/experiment/clup/shot_synth.yaml``), the source model's feature extractor adapted to
   the target, its classifier frozen;
6. ``oracle``: the source model's architecture trained supervised on the target's training labels (a ceiling).

No adaptation reads a target training label; each selects ``best.ckpt`` on the target's *validation* split and
is scored once on its test split. Every finished stage is recorded in ``<store>/recipes/clup-synth-seed<S>.json``
(replaced atomically after every stage): running the recipe again skips what is done and resumes an interrupted
stage from its run id. The record keeps a digest of the bundled configs and options its numbers depend on; a
record made with others is refused rather than mixed with new numbers (code changes are not seen: delete
records after those). ``--dry_run`` runs every stage on 2 batches of each split and keeps its own record
(``...-dry.json``).

Options of every run (``--data.init_args.num_clips 600``, ``--trainer.*``) follow the recipe's own; an option
meant for one stage is written with its name in front, ``--clup.model.init_args.labeled_samples_size 0.3``. The
source stage's ``--model.init_args.*`` options also reach the models built from the source run's weights
(SHOT's ``source``), so that their architecture matches its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from affectlab.errors import ConfigError
from affectlab.experiments.train import RunResult, train
from affectlab.io import atomic_write_json
from affectlab.runs.configs import config_path, config_root
from affectlab.runs.dry_run import split_dry_run
from affectlab.runs.lifecycle import BEST, DEFAULT_SEED
from affectlab.runs.store import RunStore

EXPERIMENT = "clup-synth"  # every run of the recipe, so the seeds' parent nests them all in MLflow's UI
STAGES = ("source", "source_only", "swav", "clup", "shot", "oracle")
TRAINED = ("source", "swav", "clup", "shot", "oracle")  # the stages that fit (and leave a best.ckpt)
SCORED = ("source", "source_only", "clup", "shot", "oracle")  # those tested on labels (SwAV learns none)
ROWS = {"source_only": "source only", "clup": "CluP", "shot": "SHOT", "oracle": "target oracle"}  # table order
METRICS = ("acc", "f1_weighted", "wacc")
SOURCE_DATA, TARGET_DATA = "data/synth_clup_source.yaml", "data/synth_clup_target.yaml"
SOURCE_MODEL = "model/clup/source.yaml"
MODEL_PREFIX = "--model.init_args."
# How a stage is given the checkpoints of the stages before it (a .ckpt path each).
SOURCE_CHECKPOINT = {"shot": "model.init_args.source_checkpoint", "clup": "model.init_args.teacher_checkpoint"}
SWAV_CHECKPOINT = {"clup": "model.init_args.student_init"}
# Where the source stage's model options go in a model built from the source run's weights.
SOURCE_ARCHITECTURE = {"shot": MODEL_PREFIX + "source.init_args.", "clup": MODEL_PREFIX + "teacher.init_args."}


@dataclass
class StageRecord:
    run_id: str | None = None
    done: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # test/acc, test/f1_weighted, ...
    seconds: float = 0.0


@dataclass
class ClupRecord:
    """What a recipe has done so far; saved after every stage so a re-run continues where it stopped."""

    seed: int
    stages: dict[str, StageRecord] = field(default_factory=dict)
    config_digest: str | None = None
    dry_run: bool = False

    @classmethod
    def load(cls, path: Path, seed: int) -> "ClupRecord":
        if not path.is_file():
            return cls(seed)
        data = json.loads(path.read_text())
        data["stages"] = {name: StageRecord(**stage) for name, stage in data.get("stages", {}).items()}
        return cls(**data)

    def save(self, path: Path) -> None:
        atomic_write_json(path, asdict(self), indent=2)  # a killed recipe never leaves half a record

    def stage(self, name: str) -> StageRecord:
        return self.stages.setdefault(name, StageRecord())

    @property
    def nothing_done(self) -> bool:
        return not any(s.done or s.run_id for s in self.stages.values())


@dataclass
class ClupRecipeOptions:
    dataset: str = "synth"
    seed: int = DEFAULT_SEED
    source_epochs: int | None = None  # None: each stage's config's own
    swav_epochs: int | None = None
    clup_epochs: int | None = None
    shot_epochs: int | None = None
    oracle_epochs: int | None = None
    store: str | None = None
    extra: list[str] = field(default_factory=list)  # options of every run, and --<stage>.KEY options of one stage
    quiet: bool = False
    dry_run: bool = False


def split_stage_options(extra: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(options of every run, per stage its ``--<stage>.KEY`` options as ``--KEY``), each option with its value."""
    common: list[str] = []
    staged: dict[str, list[str]] = {name: [] for name in STAGES}
    i = 0
    while i < len(extra):
        option = extra[i]
        takes_value = "=" not in option and i + 1 < len(extra) and not extra[i + 1].startswith("--")
        group = extra[i:i + 2] if takes_value else extra[i:i + 1]
        i += len(group)
        stage, dot, key = option[2:].partition(".") if option.startswith("--") else ("", "", "")
        if dot and stage in STAGES:
            staged[stage] += ["--" + key, *group[1:]]
        elif option.startswith("--model"):
            raise ConfigError(f"recipe clup: {option} would reach five different models; name the stage it is for, "
                              f"e.g. --clup.{option[2:]} (stages: {', '.join(STAGES)})")
        else:
            common += group
    return common, staged


def source_architecture(options: list[str], prefix: str) -> list[str]:
    """The source stage's ``--model.init_args.X`` options as ``--<prefix>X``, for a model holding the source's."""
    result, i = [], 0
    while i < len(options):
        option = options[i]
        takes_value = "=" not in option and i + 1 < len(options) and not options[i + 1].startswith("--")
        group = options[i:i + 2] if takes_value else options[i:i + 1]
        i += len(group)
        if option.startswith(MODEL_PREFIX):
            result += [prefix + option[len(MODEL_PREFIX):], *group[1:]]
    return result


def digest_files() -> list[Path]:
    """The bundled configs the recipe's numbers depend on."""
    root = config_root()
    return [*sorted((root / "model/clup").glob("*.yaml")), root / "model/shot.yaml",
            *sorted((root / "data").glob("synth_clup_*.yaml")), *sorted((root / "experiment/clup").glob("*synth*.yaml"))]


def recipe_digest(options: ClupRecipeOptions) -> str:
    digest = hashlib.sha256()
    root = config_root()
    for path in digest_files():
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    changing = [options.dataset, options.source_epochs, options.swav_epochs, options.clup_epochs, options.shot_epochs,
                options.oracle_epochs, list(options.extra)]
    digest.update(json.dumps(changing).encode())
    return digest.hexdigest()[:16]


class ClupRecipe:
    def __init__(self, options: ClupRecipeOptions) -> None:
        dry, extra = split_dry_run(options.extra)  # --dry_run among the run options: a dry recipe
        if dry or len(extra) != len(options.extra):
            options = replace(options, dry_run=options.dry_run or dry, extra=extra)
        if options.dataset != "synth":
            raise ConfigError(f"recipe clup: {options.dataset!r} has no CluP recipe; the recipe runs on synth (AffectSynth's "
                              "render styles as domains). On real data sets run the stages with 'affectlab run --config "
                              "configs/experiment/clup/<source>_to_<target>.yaml'")
        for name in ("source_epochs", "swav_epochs", "clup_epochs", "shot_epochs", "oracle_epochs"):
            value = getattr(options, name)
            if value is not None and value < 1:
                raise ConfigError(f"recipe clup: --{name.replace('_', '-')} {value}: give at least one epoch")
        self.common, self.staged = split_stage_options(options.extra)
        self.options = options
        self.store = options.store
        self.root = Path(options.store or "runs") / "recipes"
        self.record_path = self.root / f"clup-synth-seed{options.seed}{'-dry' if options.dry_run else ''}.json"
        self.record = ClupRecord.load(self.record_path, options.seed)
        if self.record.dry_run != options.dry_run and not self.record.nothing_done:
            raise ConfigError(f"{self.record_path} records a {'dry' if self.record.dry_run else 'real'} recipe and this "
                              f"one is {'dry' if options.dry_run else 'real'}; move the record away")
        self.record.dry_run = options.dry_run
        digest = recipe_digest(options)
        if self.record.config_digest not in (None, digest) and not self.record.nothing_done:
            raise ConfigError(
                f"{self.record_path} was made with other configs or options than this recipe's (digest "
                f"{self.record.config_digest} against {digest}: a bundled config of the CluP recipe, an epoch option "
                "or a run option changed); its numbers would be mixed with new ones. Delete it to run this recipe "
                "afresh, or restore what changed"
            )
        self.record.config_digest = digest

    # -- runs -------------------------------------------------------------------------------------------------
    def _common(self, stage: str) -> dict[str, Any]:
        overrides: dict[str, Any] = {"seed_everything": self.options.seed, "exp_name": EXPERIMENT}
        epochs = getattr(self.options, f"{stage}_epochs", None)
        if epochs:
            overrides["trainer.max_epochs"] = epochs
        if stage in TRAINED:
            overrides["run_name"] = f"{stage}-seed{self.options.seed}"
        if self.options.dry_run:
            overrides["dry_run"] = True
        if self.store:
            overrides["store"] = self.store
        if self.options.quiet:
            overrides |= {"trainer.enable_progress_bar": False, "trainer.enable_model_summary": False}
        return overrides

    def _stage(self, stage: str, configs: list[Path], overrides: dict[str, Any], model: Path | None = None,
               extra: list[str] = ()) -> StageRecord:
        """Run ``stage`` (or return its record): a fit stage resumes an interrupted run from its id, and counts
        as done only once its ``best.ckpt`` exists and it logged its test metrics."""
        record = self.record.stage(stage)
        if record.done:
            return record
        overrides = {**self._common(stage), **overrides}
        if record.run_id and stage in TRAINED:  # interrupted: the spine resumes fit from the run's last.ckpt
            overrides["run_id"] = record.run_id

        def opened(run_id: str) -> None:
            record.run_id = run_id
            self.record.save(self.record_path)

        result: RunResult = train(configs, overrides, model, [*self.common, *extra, *self.staged[stage]], on_open=opened)
        record.seconds += result.seconds
        if stage in TRAINED and not self.checkpoint(stage, must_exist=False).is_file():
            failed, record.run_id = record.run_id, None
            self.record.save(self.record_path)
            raise ConfigError(f"recipe clup: the {stage} run {failed} ended without {BEST} (it trained on no batch, or "
                              f"stopped before its first validation; see its log); {self.record_path} records nothing "
                              "of it as done; change what stopped it and run the recipe again")
        test = result.metrics.get("test", {})
        missing = [f"test/{m}" for m in METRICS if f"test/{m}" not in test]
        if missing and stage in SCORED:
            raise ConfigError(f"recipe clup: the {stage} run {record.run_id} logged no {missing}; was the test split empty?")
        record.run_id = record.run_id or result.run_id
        record.metrics = {key: float(value) for key, value in test.items() if key.count("/") == 1}
        record.done = True
        self.record.save(self.record_path)
        return record

    def checkpoint(self, stage: str, must_exist: bool = True) -> Path:
        run_id = self.record.stage(stage).run_id
        path = RunStore.resolve(self.store).checkpoint_dir(run_id) / BEST if run_id else Path("/nonexistent") / BEST
        if must_exist and not path.is_file():
            raise ConfigError(f"recipe clup: the {stage} run {run_id} has no {BEST}; delete {self.record_path} to "
                              "start over")
        return path

    def run(self) -> dict[str, StageRecord]:
        for stage in STAGES:
            getattr(self, f"run_{stage}")()
        return self.record.stages

    def run_source(self) -> StageRecord:
        return self._stage("source", [], {"data": str(config_path(SOURCE_DATA)), "commands": "fit-test"},
                           config_path(SOURCE_MODEL))

    def run_source_only(self) -> StageRecord:
        """The source run reused on the target's data: a cross-domain child of it (``runs/cross_domain.py``)."""
        source = self.record.stage("source").run_id  # its stored config first, as 'affectlab test --run_id' puts it
        return self._stage("source_only", [RunStore.resolve(self.store).first_config(source)],
                           {"run_id": source, "commands": "test", "data": str(config_path(TARGET_DATA))})

    def run_swav(self) -> StageRecord:
        return self._stage("swav", [config_path("experiment/clup/swav_synth.yaml")], {}, config_path("model/swav.yaml"))

    def run_clup(self) -> StageRecord:
        checkpoints = {SOURCE_CHECKPOINT["clup"]: str(self.checkpoint("source")),
                       SWAV_CHECKPOINT["clup"]: str(self.checkpoint("swav"))}
        return self._stage("clup", [config_path("experiment/clup/synth.yaml")], checkpoints,
                           config_path("model/clup/student.yaml"),
                           extra=source_architecture(self.staged["source"], SOURCE_ARCHITECTURE["clup"]))

    def run_shot(self) -> StageRecord:
        return self._stage("shot", [config_path("experiment/clup/shot_synth.yaml")],
                           {SOURCE_CHECKPOINT["shot"]: str(self.checkpoint("source"))},
                           extra=source_architecture(self.staged["source"], SOURCE_ARCHITECTURE["shot"]))

    def run_oracle(self) -> StageRecord:
        return self._stage("oracle", [], {"data": str(config_path(TARGET_DATA)), "commands": "fit-test"},
                           config_path(SOURCE_MODEL))

    def rows(self) -> dict[str, dict[str, float]]:
        """Table row -> its test metrics (``acc``, ``f1_weighted``, ``wacc``) on the target's test split."""
        stages = self.record.stages
        return {row: {m: stages[stage].metrics[f"test/{m}"] for m in METRICS}
                for stage, row in ROWS.items() if stage in stages and stages[stage].done}

    def run_ids(self) -> list[str]:
        return [s.run_id for s in self.record.stages.values() if s.run_id]


def summarise(recipes: list[ClupRecipe]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Row -> metric -> (mean, sample std, number of seeds), over the recipes' finished rows."""
    from affectlab.experiments.report import mean_std

    values: dict[str, dict[str, list[float]]] = {}
    for recipe in recipes:
        for row, metrics in recipe.rows().items():
            for metric, value in metrics.items():
                values.setdefault(row, {}).setdefault(metric, []).append(value)
    return {row: {m: (*mean_std(v), len(v)) for m, v in metrics.items()} for row, metrics in values.items()}


def metric_name(row: str, metric: str) -> str:
    """``source only``, ``acc`` -> ``source_only/acc``: a row's metric as the seeds' parent logs it."""
    return f"{row.replace(' ', '_')}/{metric}"


def group_seeds(recipes: list[ClupRecipe]) -> str:
    """The recipes of ``--seeds`` (already run) as one group (``runs/groups.py``): a parent of kind ``seeds`` in
    experiment ``clup-synth`` (``-dry`` for dry recipes) holding ``<row>/<metric>_mean`` / ``_std`` of every row,
    and each recipe's runs tagged as its children (``affectlab.seed``, ``affectlab.group.config`` ``{}``). The
    cross-domain test keeps its source run as parent (MLflow nests it there) and gets the other tags. Returns the
    parent's id."""
    import time

    from mlflow.entities import Metric

    from affectlab.runs.dry_run import experiment_name
    from affectlab.runs.groups import CONFIG_TAG, config_key, end_parent_run, open_parent_run
    from affectlab.runs.lifecycle import PARENT_TAG

    first = recipes[0].options
    store = RunStore.resolve(first.store)
    seeds = [recipe.options.seed for recipe in recipes]
    parent = open_parent_run(store, experiment_name(EXPERIMENT, first.dry_run), f"clup-synth-seeds-{'-'.join(map(str, seeds))}",
                             "seeds", {"affectlab.seeds": json.dumps(seeds)})
    for recipe in recipes:
        for stage, record in recipe.record.stages.items():
            if not record.run_id:
                continue
            tags = {CONFIG_TAG: config_key({}), "affectlab.seed": str(recipe.options.seed)}
            if stage != "source_only":
                tags[PARENT_TAG] = parent
            for key, value in tags.items():
                store.client.set_tag(record.run_id, key, value)
    now = int(time.time() * 1000)
    metrics = [Metric(f"{metric_name(row, m)}_{part}", value, now, 0) for row, cells in summarise(recipes).items()
               for m, (mean, std, _) in cells.items() for part, value in (("mean", mean), ("std", std))]
    store.client.log_batch(parent, metrics=metrics)
    end_parent_run(store, parent)
    return parent
