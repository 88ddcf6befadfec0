"""The ConCluGen recipe (``affectlab recipe VARIANT DATASET``): pretrain a ConCluGen variant, probe it, print the table.

The equivalent of seed 000's ``run.sh model_name dataset_name``, as a chain of ordinary AffectLab runs in the
run store (each can be opened, re-run or resumed on its own):

1. pretrain ``configs/model/conclugen/<VARIANT>.yaml`` on the unlabelled clips
   (``configs/experiment/synth/pretrain.yaml``: labels are never read);
2. per label fraction (1 %, 10 %, 100 % by default): the linear probe (``configs/model/probe.yaml``) on the
   frozen pretrained representations, trained on that fraction of the train labels, tested on the test split;
3. beside it, the floor: the same probe on the same architecture, randomly initialised;
4. and the ceiling: the supervised baseline (``configs/experiment/synth/supervised.yaml``) on all labels.

On ``mosei``, ``meld`` and ``caer`` the same chain runs on precomputed features (``experiments/recipe_data.py``):
``configs/experiment/<DATASET>/{pretrain,probe,supervised}.yaml``, the pretraining served no label (or VoxCeleb2's
store, ``--pretrain-data voxceleb2 --pretrain-root STORE``), the probes with the paper's protocol (7 classes with
inverse-frequency weights; MOSEI's six emotions multi-label with BCE ``pos_weight``), and as ceiling the
variant's architecture trained end to end on every label. MELD and CAER are read from their prepared store
(``--features``; a missing one is answered with the ``affectlab data prepare`` command to run).

Optional rows: ``--finetune`` (the probe with the backbone trained too), ``--per-modality`` (a probe per
single modality at 100 % labels, to see what fusing them adds).

Every finished step is recorded in ``<store>/recipes/<VARIANT>-<DATASET>-seed<SEED>.json``; running the same
recipe again skips what is done and resumes an interrupted pretraining from its run id. The record keeps a
digest of the bundled configs and options its numbers depend on, and a record made with others is refused
rather than mixed into a table with new numbers (code changes are not seen: delete records after those).

``--dry_run`` passes ``--dry_run`` to every run of the recipe (2 batches of each split, CPU, experiments
``<exp_name>-dry``: ``runs/dry_run.py``) and keeps its own record, ``...-seed<SEED>-dry.json`` marked
``dry_run: true``: a dry recipe is never read back as a real one, nor a real one continued dry.

Probes train for a fixed number of steps (``--probe-steps``), not epochs, so that 1 % of the labels (one
batch per epoch) gets as many updates as 100 %.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from affectlab.data.registry import get_dataset, layout_error
from affectlab.errors import ConfigError, DataError
from affectlab.experiments.recipe_data import (
    PRETRAIN_DATA,
    RECIPE_SETS,
    STORE_SETS,
    DataInputs,
    check_pretrain_fits,
    check_views,
    mosei_inputs,
    needs_paired_views,
    store_folder,
    store_inputs,
    variant_modalities,
    variant_model,
)
from affectlab.experiments.train import RunResult, train
from affectlab.io import atomic_write_json, atomic_write_text
from affectlab.runs.configs import config_path, config_root
from affectlab.runs.dry_run import split_dry_run
from affectlab.runs.lifecycle import BEST, DEFAULT_SEED
from affectlab.runs.store import RunStore

DEFAULT_FRACTIONS = (0.01, 0.1, 1.0)
# The original probes with batches of 4096: on the real data sets (features; the frozen backbone's output cached
# after the first pass) the probes do too, so that 1 % of the labels still puts a few dozen in each batch.
PROBE_BATCH_SIZE = 4096
FLOOR, CEILING = "floor (random init)", "ceiling (supervised)"
METRICS = ("acc", "f1_weighted")


def variants() -> list[str]:
    return sorted(p.stem for p in (config_root() / "model/conclugen").glob("*.yaml"))


def floor_name(variant: str) -> str:
    """The floor's row name: one shared floor for the variants with ConCluGen's three-modality architecture
    (the same randomly initialised model), a floor of their own for the others (fewer modalities, SimCLR)."""
    config = yaml.safe_load(config_path(f"model/conclugen/{variant}.yaml").read_text())
    modalities = set(config.get("init_args", {}).get("modalities") or ("video", "audio", "text"))
    if config.get("class_path", "").endswith("ConCluGen") and modalities == {"video", "audio", "text"}:
        return FLOOR
    return f"{FLOOR[:-1]}, {variant})"


@dataclass
class Row:
    representation: str  # what was probed: the variant, the floor, the ceiling, a modality
    fraction: float  # of the train labels
    acc: float
    f1_weighted: float
    run_id: str
    precision_weighted: float | None = None  # None in records from before they were kept
    recall_weighted: float | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> precision, recall, f1 (, acc)
    seconds: float | None = None  # wall time of its run


@dataclass
class RecipeRecord:
    """What a recipe has done so far; saved after every step so a re-run continues where it stopped."""

    variant: str
    dataset: str
    seed: int
    pretrain_run_id: str | None = None
    pretrain_done: bool = False
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the runs so far, across interruptions
    pretrain_seconds: float = 0.0  # of the pretraining's runs
    config_digest: str | None = None  # of what the numbers depend on (``recipe_digest``); None: not yet known
    dry_run: bool = False  # its runs were dry runs (2 batches a split): its numbers mean nothing

    @classmethod
    def load(cls, path: Path, variant: str, dataset: str, seed: int) -> "RecipeRecord":
        if not path.is_file():
            return cls(variant, dataset, seed)
        data = json.loads(path.read_text())
        data["rows"] = [Row(**row) for row in data.get("rows", [])]
        return cls(**data)

    def save(self, path: Path) -> None:
        atomic_write_json(path, asdict(self), indent=2)  # a killed recipe never leaves half a record

    @property
    def nothing_done(self) -> bool:
        """No step finished or under way: other options mix nothing into it."""
        return not self.rows and not self.pretrain_done and self.pretrain_run_id is None

    def find(self, representation: str, fraction: float) -> Row | None:
        return next((r for r in self.rows if r.representation == representation and r.fraction == fraction), None)


@dataclass
class RecipeOptions:
    variant: str
    dataset: str
    seed: int = DEFAULT_SEED
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    floor: bool = True
    ceiling: bool = True
    finetune: bool = False
    per_modality: bool = False
    pretrain_epochs: int | None = None  # None: the experiment config's (configs/experiment/synth/pretrain.yaml)
    ceiling_epochs: int | None = None
    probe_steps: int = 500
    data_root: str | None = None
    features: str | None = None  # meld, caer: their prepared feature store (default: <data root>-features)
    pretrain_data: str = "own"  # or voxceleb2 (its prepared store at pretrain_root)
    pretrain_root: str | None = None
    store: str | None = None
    extra: list[str] = field(default_factory=list)  # LightningCLI options for every run, e.g. --data.init_args.num_clips 1200
    quiet: bool = False
    dry_run: bool = False  # every run a dry run (runs/dry_run.py), recorded apart


class Recipe:
    def __init__(self, options: RecipeOptions) -> None:
        dry, extra = split_dry_run(options.extra)  # --dry_run among the run options (a sweep's): a dry recipe
        if dry or len(extra) != len(options.extra):
            options = replace(options, dry_run=options.dry_run or dry, extra=extra)
        if options.variant not in variants():
            raise ConfigError(f"unknown variant {options.variant!r}; choose one of: {', '.join(variants())}")
        layout = get_dataset(options.dataset)
        if not layout.labelled:
            # Labelled data sets probe on their labels; voxceleb2 would pretrain only, with another probe set.
            raise layout_error(options.dataset, options.data_root)
        if options.dataset not in RECIPE_SETS:
            raise ConfigError(
                f"recipe: {options.dataset} ({layout.description}) is read ({layout.reader}), but its recipe "
                f"(pretraining configs, probe task, ceiling) does not exist yet; recipes run on {', '.join(RECIPE_SETS)}. "
                f"Train on it with 'affectlab run --data {options.dataset} --model ...'"
            )
        if options.pretrain_data not in PRETRAIN_DATA:
            raise ConfigError(f"--pretrain-data: {options.pretrain_data!r} is not one of {', '.join(PRETRAIN_DATA)}")
        if (options.pretrain_data == "voxceleb2") != bool(options.pretrain_root):
            raise ConfigError("--pretrain-data voxceleb2 needs --pretrain-root STORE (VoxCeleb2 prepared with 'affectlab "
                              "data prepare voxceleb2 --raw DIR --out STORE'), and --pretrain-root needs it")
        if options.features and options.dataset not in STORE_SETS:
            raise ConfigError(f"--features: {options.dataset}'s recipe reads its own files (--data-root); a prepared "
                              f"store is read for {', '.join(STORE_SETS)}")
        if options.dataset == "synth" and options.pretrain_data != "own":
            raise ConfigError("recipe: synth pretrains on AffectSynth's own unlabelled clips (configs/data/synth_pretrain.yaml); "
                              "--pretrain-data voxceleb2 applies to mosei, meld and caer")
        bad = [f for f in options.fractions if not 0.0 < f <= 1.0]
        if bad:
            raise ConfigError(f"--fractions: {bad} are not fractions in (0, 1]; e.g. --fractions 0.01 0.1 1")
        self.options = options
        self.store = options.store
        self.root = Path(options.store or "runs") / "recipes"
        pretrained_on = "-voxceleb2" if options.pretrain_data == "voxceleb2" else ""
        dry = "-dry" if options.dry_run else ""  # a dry recipe's record is never the real one's
        self.record_path = self.root / f"{options.variant}-{options.dataset}{pretrained_on}-seed{options.seed}{dry}.json"
        self.data_root = options.data_root or layout.default_root
        self.real = options.dataset != "synth"
        self.pair_views = False  # SimCLR on features: the pretraining is served two stored views per sample
        if self.real:  # the features read, before any run: a missing store is named now, not after a pretraining
            self.inputs = self.data_inputs()
            self.pretrain_inputs = self.pretrain_data_inputs()
            self.pair_views = needs_paired_views(options.variant, self.pretrain_inputs)
            if self.pair_views:
                check_views(self.pretrain_inputs, f"the pretraining of {options.variant}")
        self.record = RecipeRecord.load(self.record_path, options.variant, options.dataset, options.seed)
        if self.record.dry_run != options.dry_run and not self.record.nothing_done:
            raise ConfigError(
                f"{self.record_path} records a {'dry' if self.record.dry_run else 'real'} recipe and this one is "
                f"{'dry' if options.dry_run else 'real'}: the numbers of 2-batch runs would be mixed with real ones. "
                "Move the record away (dry records are named ...-dry.json)"
            )
        self.record.dry_run = options.dry_run
        digest = recipe_digest(options, [asdict(self.inputs), asdict(self.pretrain_inputs)] if self.real else None)
        if self.record.config_digest not in (None, digest) and not self.record.nothing_done:
            raise ConfigError(
                f"{self.record_path} was made with other configs or options than this recipe's (digest "
                f"{self.record.config_digest} against {digest}: a bundled config under configs/, the features read, or "
                "one of --pretrain-epochs, --ceiling-epochs, --probe-steps, --data-root or the model options changed); "
                "its numbers would be mixed with new ones. Delete it to run this recipe afresh, or restore what changed"
            )
        self.record.config_digest = digest  # records from before digests existed are taken as they are
        if not self.real:  # before any run: a size that gives a run no training batch is refused now
            for role, name in (("pretraining", "pretrain"), ("probes and ceiling", "probe")):
                check_synth_batches(self.experiment(name), options.extra, role)
        if self.real:  # the variant's model, written to fit the features
            self.model_config = self._write_config("model", variant_model(options.variant, self.inputs))

    # -- data ---------------------------------------------------------------------------------------------------
    def data_inputs(self) -> DataInputs:
        """What the probed data set serves: MOSEI's computational sequences, or MELD's or CAER's store."""
        needed = variant_modalities(self.options.variant, self.options.dataset)
        if self.options.dataset in STORE_SETS:
            store = store_folder(self.options.dataset, self.data_root, self.options.features)
            return store_inputs(self.options.dataset, self.data_root, store, needed, f"{self.options.variant} on {self.options.dataset}")
        return mosei_inputs(self.data_root, needed)

    def pretrain_data_inputs(self) -> DataInputs:
        if self.options.pretrain_data == "own":
            return self.inputs
        root = str(self.options.pretrain_root)
        inputs = store_inputs("voxceleb2", "VOXCELEB2_DIR", Path(root), list(self.inputs.dims),
                              f"the pretraining of {self.options.variant} (--pretrain-root)")
        check_pretrain_fits(inputs, self.inputs)
        return inputs

    def experiment(self, name: str) -> Path:
        """``configs/experiment/<dataset>/<name>.yaml`` (pretraining on VoxCeleb2: ``voxceleb2/pretrain.yaml``)."""
        dataset = "voxceleb2" if name == "pretrain" and self.options.pretrain_data == "voxceleb2" else self.options.dataset
        return config_path(f"experiment/{dataset}/{name}.yaml")

    def _data(self, inputs: DataInputs) -> dict[str, Any]:
        """Where the runs read the data: the root, and only the modalities the variant reads (a two-modality
        variant gets a two-modality data config, not the original's three-modality one)."""
        if not self.real:
            return {"data.init_args.root": self.data_root}
        return {"data.init_args.data.init_args.root": inputs.where,
                "data.init_args.data.init_args.modalities": list(inputs.dims)}

    # -- runs -------------------------------------------------------------------------------------------------
    def _common(self) -> dict[str, Any]:
        """Overrides of every run."""
        overrides: dict[str, Any] = {"seed_everything": self.options.seed}
        if self.options.dry_run:
            overrides["dry_run"] = True
        if self.store:
            overrides["store"] = self.store
        if self.options.quiet:
            overrides |= {"trainer.enable_progress_bar": False, "trainer.enable_model_summary": False}
        return overrides

    def _run(self, configs: list[Path], overrides: dict[str, Any], role: str, model: Path | None = None,
             **kwargs: Any) -> RunResult:
        """One run of ``role`` (pretrain, probe, ceiling: where the user's model options go)."""
        data = self._data(self.pretrain_inputs if self.real and role == "pretrain" else getattr(self, "inputs", None))
        if role == "pretrain" and self.pair_views:
            data["data.init_args.data.init_args.pair_views"] = True
        result = train(configs, {**overrides, **data, **self._common()}, model, model_overrides(self.options.extra, role),
                       **kwargs)
        self.record.seconds += result.seconds
        return result

    def _write_config(self, name: str, content: dict[str, Any]) -> Path:
        path = self.root / f"{self.record_path.stem}-{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, yaml.safe_dump(content, sort_keys=False))
        return path.resolve()  # paths inside a config are read relative to its folder: name it absolutely

    def pretrain(self) -> Path:
        """Pretrain the variant (or finish an interrupted pretraining); the path of its best checkpoint."""
        record = self.record
        if not record.pretrain_done:
            configs = [self.experiment("pretrain")]
            if self.options.pretrain_epochs:
                configs.append(self._write_config("pretrain-epochs", pretrain_schedule(self.options.pretrain_epochs)))
            overrides: dict[str, Any] = {"run_name": f"{self.options.variant}-{self.options.dataset}-seed{self.options.seed}"}
            if record.pretrain_run_id:  # interrupted: the spine resumes fit from the run's last.ckpt
                overrides["run_id"] = record.pretrain_run_id

            def opened(run_id: str) -> None:
                record.pretrain_run_id = run_id
                record.save(self.record_path)

            result = self._run(configs, overrides, "pretrain", self.variant_config(), on_open=opened)
            record.pretrain_seconds += result.seconds
            checkpoint = RunStore.resolve(self.store).checkpoint_dir(record.pretrain_run_id) / BEST
            if not checkpoint.is_file():  # done means its outputs exist: nothing of it is recorded
                failed, record.pretrain_run_id = record.pretrain_run_id, None
                record.save(self.record_path)
                raise ConfigError(
                    f"pretraining run {failed} ended without {BEST}: it trained on no batch, or stopped before its "
                    f"first epoch ended (see its log). {self.record_path} records nothing of it as done; change what "
                    "stopped it (sizes, --trainer options) and run the recipe again, which starts a new pretraining"
                )
            record.pretrain_done = True
            record.save(self.record_path)
        checkpoint = RunStore.resolve(self.store).checkpoint_dir(record.pretrain_run_id) / BEST
        if not checkpoint.is_file():
            raise ConfigError(f"pretraining run {record.pretrain_run_id} has no {BEST}; delete {self.record_path} to start over")
        return checkpoint

    def probe(self, representation: str, fraction: float, checkpoint: Path | None, freeze: bool = True,
              modalities: list[str] | None = None) -> Row:
        """One probe run (or its recorded result): train on ``fraction`` of the labels, test."""
        done = self.record.find(representation, fraction)
        if done is not None:
            return done
        model = {
            "backbone": str(self.variant_config()),
            "checkpoint_path": str(checkpoint) if checkpoint else None,
            "freeze": freeze,
            "modalities": modalities,
        }
        probe_config = self._write_config(f"probe-{slug(representation)}", {"model": {"init_args": model}})
        overrides = {
            "run_name": f"probe-{slug(representation)}-{fraction:g}-seed{self.options.seed}",
            "data.init_args.label_fraction": fraction,
            "data.init_args.label_seed": self.options.seed,
            "trainer.max_steps": self.options.probe_steps,
            "trainer.max_epochs": -1,
            "trainer.check_val_every_n_epoch": None,
            "trainer.val_check_interval": max(1, self.options.probe_steps // 20),
        }
        if self.real:  # a --data.init_args.data.init_args.batch_size of the user's comes later and wins
            overrides["data.init_args.data.init_args.batch_size"] = PROBE_BATCH_SIZE
        result = self._run([self.experiment("probe"), probe_config], overrides, "probe", config_path("model/probe.yaml"))
        self._require_best(result.run_id, f"probe {representation} at {fraction:g}")
        return self._add(representation, fraction, result.run_id, result.metrics.get("test", {}), result.seconds)

    def ceiling(self) -> Row:
        done = self.record.find(CEILING, 1.0)
        if done is not None:
            return done
        overrides: dict[str, Any] = {"run_name": f"supervised-ceiling-seed{self.options.seed}"}
        if self.options.ceiling_epochs:
            overrides["trainer.max_epochs"] = self.options.ceiling_epochs
        if self.real:  # the variant's architecture from random weights, trained end to end on every label
            backbone = self._write_config("ceiling", {"model": {"init_args": {"backbone": str(self.model_config),
                                                                              "checkpoint_path": None}}})
            result = self._run([self.experiment("supervised"), backbone], overrides, "probe", config_path("model/probe.yaml"))
        else:
            result = self._run([config_path("experiment/synth/supervised.yaml")], overrides, "ceiling")
        self._require_best(result.run_id, "supervised ceiling")
        return self._add(CEILING, 1.0, result.run_id, result.metrics.get("test", {}), result.seconds)

    def _require_best(self, run_id: str, what: str) -> None:
        """A row is recorded only for a run whose ``best.ckpt`` exists: without one its test scored an
        untrained model."""
        if not (RunStore.resolve(self.store).checkpoint_dir(run_id) / BEST).is_file():
            raise ConfigError(f"{what}: run {run_id} ended without {BEST} (it trained on no batch, or stopped before "
                              f"its first validation; see its log), so its test scores are not recorded in "
                              f"{self.record_path}; change what stopped it and run the recipe again")

    def _add(self, representation: str, fraction: float, run_id: str, metrics: dict[str, float],
             seconds: float | None = None) -> Row:
        missing = [f"test/{m}" for m in METRICS if f"test/{m}" not in metrics]
        if missing:
            raise ConfigError(f"run {run_id} logged no {missing}; was the test split empty?")
        per_class: dict[str, dict[str, float]] = {}
        for key, value in metrics.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[1] in ("precision", "recall", "f1", "acc"):
                per_class.setdefault(parts[2], {})[parts[1]] = value
        row = Row(representation, fraction, metrics["test/acc"], metrics["test/f1_weighted"], run_id,
                  metrics.get("test/precision_weighted"), metrics.get("test/recall_weighted"), per_class, seconds)
        self.record.rows.append(row)
        self.record.save(self.record_path)
        return row

    # -- the whole recipe ---------------------------------------------------------------------------------------
    def run(self) -> list[Row]:
        options = self.options
        checkpoint = self.pretrain()
        rows = []
        for fraction in options.fractions:
            rows.append(self.probe(options.variant, fraction, checkpoint))
            if options.finetune:
                rows.append(self.probe(f"{options.variant} fine-tuned", fraction, checkpoint, freeze=False))
            if options.floor:
                rows.append(self.probe(floor_name(options.variant), fraction, None))
        if options.per_modality:
            for modality in self.modalities():
                rows.append(self.probe(f"{options.variant} {modality} only", 1.0, checkpoint, modalities=[modality]))
        if options.ceiling:
            rows.append(self.ceiling())
        return rows

    def modalities(self) -> list[str]:
        if self.real:  # those the variant reads on this data set (CAER: no text)
            return list(self.inputs.dims)
        config = yaml.safe_load(config_path(f"model/conclugen/{self.options.variant}.yaml").read_text())
        return list(config["init_args"].get("modalities") or ["video"])

    def variant_config(self) -> Path:
        """The variant's model config: the bundled one on synth, the one written to fit the data elsewhere."""
        return self.model_config if self.real else config_path(f"model/conclugen/{self.options.variant}.yaml")


def recipe_digest(options: RecipeOptions, inputs: list[Any] | None = None) -> str:
    """A short hash of what a recipe's numbers depend on besides the code: the bundled configs its runs read
    (the variant, every encoder, the reconstruction targets the variant names, the synth experiments and data
    sets, the probe and supervised models) and the options that change a run. Fractions, ``--finetune`` and
    ``--per-modality`` only add rows, so they are out. ``inputs``: what the features read are (sizes, and how a
    store was prepared: its backbones and their checksums), for the real data sets."""
    root = config_root()
    variant = root / f"model/conclugen/{options.variant}.yaml"
    targets = sorted({Path(os.path.normpath(variant.parent / name)) for name in re.findall(r"[\w./]*nn/targets/[\w.]+\.yaml", variant.read_text())})
    files = [variant, root / "model/probe.yaml", root / "model/supervised.yaml",
             *sorted((root / "nn/encoders").glob("*.yaml")), *targets, *sorted((root / "experiment/synth").glob("*.yaml")),
             *sorted((root / "data").glob("synth*.yaml"))]
    if options.dataset != "synth":  # its experiments, the data configs they wrap, and where the data comes from
        files += [*sorted((root / f"experiment/{options.dataset}").glob("*.yaml")), root / "experiment/voxceleb2/pretrain.yaml",
                  root / "data/mosei.yaml", root / "data/feature_store.yaml"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    changing = [options.dataset, options.pretrain_epochs, options.ceiling_epochs, options.probe_steps,
                options.data_root, list(options.extra)]
    if options.dataset != "synth":
        changing += [options.features, options.pretrain_data, options.pretrain_root, inputs]
    digest.update(json.dumps(changing).encode())
    return digest.hexdigest()[:16]


def pretrain_schedule(epochs: int) -> dict[str, Any]:
    """Override of the pretraining experiment for ``epochs`` epochs. The cosine's length follows the trainer's
    ``max_epochs`` (``methods/optim.py``: ``t_initial`` is left out); its warm-up is 5 % of the epochs."""
    # timm warms up per epoch: a run under 20 epochs cannot spare a whole one at 1e-5 (as pretrain.yaml's 10)
    warmup = epochs // 20
    return {
        "trainer": {"max_epochs": epochs},
        "model": {"init_args": {"lr_scheduler_init": {
            "class_path": "affectlab.methods.optim.TrainerCosineLRScheduler",
            "init_args": {"warmup_t": warmup, "warmup_lr_init": 1.0e-5, "lr_min": 1.0e-5},
        }}},
    }


def option_values(extra: list[str], prefix: str) -> dict[str, Any]:
    """``--<prefix>KEY VALUE`` and ``--<prefix>KEY=VALUE`` of the command-line tail, values read as YAML (as the
    parser reads them); later ones win."""
    values: dict[str, Any] = {}
    for i, option in enumerate(extra):
        if not option.startswith(prefix):
            continue
        key, given, value = option[len(prefix):].partition("=")
        if not given:
            if i + 1 >= len(extra) or extra[i + 1].startswith("--"):
                continue
            value = extra[i + 1]
        values[key] = yaml.safe_load(value)
    return values


def experiment_data(experiment: Path) -> tuple[dict[str, Any], Path]:
    """The data section of an experiment config (a config file it names is read), and the file it is in."""
    data = yaml.safe_load(experiment.read_text()).get("data")
    if isinstance(data, str):
        path = (experiment.parent / data).resolve()
        return yaml.safe_load(path.read_text()), path
    return data or {}, experiment


def synth_train_batches(args: dict[str, Any]) -> tuple[int, int, int]:
    """(train batches per epoch, train clips, train identities) of ``AffectSynthDataModule(**args)``, computed
    from the generator's identity deal and the identity split, without generating a clip. Batches as its
    loader makes them: ``IdentityBatchSampler`` (``clips_per_identity``; only whole groups of an identity's
    clips, ``batch_size / clips_per_identity`` groups a batch), else any train clip gives one."""
    from affectlab.data.samplers import IdentityBatchSampler
    from affectlab.data.splits import identity_split
    from affectlab.data.synth import SynthConfig
    from affectlab.data.synth.generator import clip_identities

    config = SynthConfig(num_clips=int(args.get("num_clips", 1200)), num_identities=int(args.get("num_identities", 60)),
                         seed=int(args.get("synth_seed", 0)))  # AffectSynthDataModule's defaults
    subjects = clip_identities(config)
    try:
        train = subjects[identity_split(subjects, tuple(args.get("split_fractions", (0.7, 0.15, 0.15))),
                                        int(args.get("split_seed", 0)))["train"]]
    except DataError as error:
        raise ConfigError(f"data.init_args.num_identities / num_clips: {error}") from None
    per_identity, batch_size = args.get("clips_per_identity"), int(args.get("batch_size", 32))
    batches = len(IdentityBatchSampler(train, batch_size, int(per_identity))) if per_identity else int(len(train) > 0)
    return batches, len(train), len(np.unique(train))


def check_synth_batches(experiment: Path, extra: list[str], role: str) -> None:
    """Refuse, before any run, AffectSynth sizes (the config's, with the user's ``--data.init_args.*``) that
    give ``role``'s runs no training batch, naming the smallest ``num_clips`` that gives one."""
    data, path = experiment_data(experiment)
    args = {**data.get("init_args", {}), **option_values(extra, "--data.init_args.")}
    if not str(data.get("class_path", "")).endswith("AffectSynthDataModule") or args.get("split", "identity") != "identity":
        return  # other splits (k-fold, LOSO) are not the recipe's
    batches, clips, identities = synth_train_batches(args)
    if batches:
        return
    args = {"num_clips": 1200, "num_identities": 60, **args}
    smallest = upper = max(1, int(args["num_clips"]))
    while not synth_train_batches({**args, "num_clips": upper})[0]:  # doubling, then bisection: more clips,
        if upper > 1 << 24:  # never fewer batches
            raise ConfigError(f"recipe: the {role} would get no training batch from {path} with {args}, whatever the "
                              "number of clips; check batch_size, clips_per_identity and num_identities")
        smallest, upper = upper, upper * 2
    while smallest < upper:
        middle = (smallest + upper) // 2
        smallest, upper = (smallest, middle) if synth_train_batches({**args, "num_clips": middle})[0] else (middle + 1, upper)
    per_identity = args.get("clips_per_identity")
    why = (f"a batch takes {args.get('batch_size', 32)} clips, {per_identity} of each of "
           f"{int(args.get('batch_size', 32)) // int(per_identity)} identities, and no batch can be filled"
           if per_identity else "the train split is empty")
    raise ConfigError(
        f"recipe: with num_clips {args['num_clips']} and num_identities {args['num_identities']}, the {role} ({path.name}) "
        f"would train on no batch: its train split holds {clips} clips of {identities} identities and {why}. The "
        f"smallest num_clips that gives one is {upper} (--data.init_args.num_clips {upper}); or lower "
        "--data.init_args.num_identities, which --data.init_args.* sets for every run of the recipe"
    )


MODEL_PREFIX = "--model.init_args."


def model_overrides(extra: list[str], role: str) -> list[str]:
    """The extra command-line options as they apply to a run of ``role``.

    ``--model.init_args.X`` options are meant for the pretrained variant: the pretraining takes them as they
    are, a probe passes them on to its backbone (``--model.init_args.backbone.init_args.X``, so that the
    architecture matches the checkpoint), and the supervised ceiling, another model, drops them.
    """
    result: list[str] = []
    i = 0
    while i < len(extra):
        option = extra[i]
        takes_value = "=" not in option and i + 1 < len(extra) and not extra[i + 1].startswith("--")
        group = extra[i : i + 2] if takes_value else extra[i : i + 1]
        i += len(group)
        if option.startswith(MODEL_PREFIX):
            if role == "ceiling":
                continue
            if role == "probe":
                group = [option.replace(MODEL_PREFIX, MODEL_PREFIX + "backbone.init_args.", 1), *group[1:]]
        result += group
    return result


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.split(" (")[0]).strip("_")
