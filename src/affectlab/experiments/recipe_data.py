"""Where a recipe reads a real data set (CMU-MOSEI, MELD, CAER, VoxCeleb2) and the variant's model that fits it.

The recipe on ``synth`` trains its encoders on raw AffectSynth clips. On the real data sets it follows the
original set-up: precomputed features, one frozen backbone per modality computed beforehand, and only
ConCluGen's heads train (``PrecomputedFeatures`` encoders, pooled over time):

- ``mosei``: the SDK's computational sequences read as they are distributed (FACET, COVAREP, word vectors);
- ``meld``, ``caer``: the feature store of ``affectlab data prepare NAME --raw DIR --out STORE`` (``--features
  STORE``; by default ``<data root>-features``, or the data root itself if it is a store). A modality stored raw
  (face crops without ``--encoder``, MELD's token ids without ``--text-encoder``) is read by the variant's own
  encoder of it instead; a log-mel spectrogram without ``--audio-encoder`` is a feature row like any other;
- ``--pretrain-data voxceleb2 --pretrain-root STORE``: VoxCeleb2's store (``affectlab data prepare voxceleb2``),
  prepared with the same backbones as the probed data set, so that the pretrained heads fit its features.

SimCLR (``simclr``) contrasts two views of each clip's video. On features these are two of the K views a store
holds (``data prepare ... --views K``, K >= 2; the original drew from 10), served with ``pair_views: true`` to
the pretraining; a store of one view, and MOSEI's sequences (one view), are refused with what to prepare.

The variant's config (``configs/model/conclugen/<VARIANT>.yaml``) is written anew per recipe with encoders that
match the data's feature sizes (``variant_model``); everything else in it is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from affectlab.data.store.feature_store import INDEX, views_command
from affectlab.errors import ConfigError, DataError
from affectlab.runs.configs import config_path

RECIPE_SETS = ("synth", "mosei", "meld", "caer")
STORE_SETS = ("meld", "caer")  # read from their prepared feature store
PRETRAIN_DATA = ("own", "voxceleb2")


@dataclass
class DataInputs:
    """What a data set serves the encoders: feature size per modality, and which modalities are stored raw
    (face crops, token ids), for the variant's own encoder to read, rather than as a backbone's features."""

    where: str  # the folder read
    dims: dict[str, int]
    raw: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)  # how the store was prepared (its index's record)


#: the modalities each data set has at all (CAER's clips have no transcript); a variant reads those it has.
DATASET_MODALITIES = {"mosei": ("video", "audio", "text"), "meld": ("video", "audio", "text"), "caer": ("video", "audio")}


def variant_modalities(variant: str, dataset: str) -> list[str]:
    """The modalities ``variant`` reads on ``dataset``: its own, less those the data set has none of."""
    config = yaml.safe_load(config_path(f"model/conclugen/{variant}.yaml").read_text())
    args = config.get("init_args", {})
    if is_single_encoder(config):  # SimCLR: one video encoder, two views of its input
        if dataset not in STORE_SETS:
            raise ConfigError(
                f"recipe: {variant} contrasts two views of each clip's video; {dataset}'s features hold one view per "
                f"sample (both would be the same vector). Its recipe runs on synth and on the stores of "
                f"{', '.join(STORE_SETS)} prepared with several views ('affectlab data prepare NAME ... --views 10')"
            )
        return ["video"]
    wanted = list(args.get("modalities") or args["encoders"])
    has = DATASET_MODALITIES[dataset]
    modalities = [m for m in wanted if m in has]
    if len(modalities) < min(2, len(wanted)):
        raise ConfigError(f"recipe: {variant} reads {wanted}, but {dataset} has no {[m for m in wanted if m not in has]}; "
                          f"choose a variant of {list(has)}")
    return modalities


def is_single_encoder(config: dict[str, Any]) -> bool:
    """SimCLR's form: one ``encoder`` (of video), not an ``encoders`` dict per modality."""
    return "encoders" not in config.get("init_args", {})


def needs_paired_views(variant: str, inputs: "DataInputs") -> bool:
    """The variant contrasts two views of stored features (SimCLR on a store whose video is not raw crops)."""
    config = yaml.safe_load(config_path(f"model/conclugen/{variant}.yaml").read_text())
    return is_single_encoder(config) and "video" not in inputs.raw


def check_views(inputs: "DataInputs", what: str) -> None:
    """A store read for two views per sample must hold at least two; else the ``data prepare`` to run."""
    index = json.loads((Path(inputs.where) / INDEX).read_text())
    views = int(index.get("views", 1))
    if views < 2:
        raise ConfigError(
            f"recipe: {what} contrasts two distinct views of each sample's video features, and the store "
            f"{inputs.where} holds {views} view per sample. Prepare one of several views with:\n  "
            f"{views_command(index.get('source', {}), inputs.where)}\n(N >= 2 in --views N; the original drew from "
            "10), then pass it with --features (or --pretrain-root)"
        )


def store_folder(dataset: str, data_root: str, features: str | None) -> Path:
    """The feature store a video data set's recipe reads: ``--features``, the data root if it is a store, or
    ``<data root>-features``."""
    if features:
        return Path(features)
    if (Path(data_root) / INDEX).is_file():
        return Path(data_root)
    return Path(f"{str(data_root).rstrip('/')}-features")


def prepare_command(dataset: str, raw: str, store: Path) -> str:
    return f"affectlab data prepare {dataset} --raw {raw} --out {store}"


def store_inputs(dataset: str, raw: str, store: Path, needed: list[str], what: str) -> DataInputs:
    """The inputs of the prepared store of ``dataset``; a missing store or modality names the command to run."""
    if not (store / INDEX).is_file():
        raise ConfigError(
            f"recipe: {what} reads the prepared features of {dataset} from {store}, and there are none there ({INDEX} "
            f"is missing). Prepare them once with:\n  {prepare_command(dataset, raw, store)}\n(add --encoder NAME "
            "--encoder-checkpoint PATH for a backbone's features, the paper's set-up), then run the recipe again; "
            "or pass --features DIR where they are"
        )
    index = json.loads((store / INDEX).read_text())
    dims = {m: int(d) for m, d in index["dims"].items()}
    missing = [m for m in needed if m not in dims]
    if missing:
        raise ConfigError(
            f"recipe: the store {store} holds {sorted(dims)}, but {what} reads {needed} ({missing} missing); prepare a "
            f"store of every modality with:\n  {prepare_command(dataset, raw, store.with_name(store.name + '-all'))}\n"
            "and pass it with --features"
        )
    raw = set(index.get("shapes", {})) | set(index.get("token_ids", []))  # crops [3, S, S] rows, token-id rows
    return DataInputs(str(store), {m: dims[m] for m in needed}, sorted(m for m in raw if m in needed),
                      index.get("source", {}))


def mosei_inputs(root: str, needed: list[str]) -> DataInputs:
    """MOSEI's feature sizes, read from the first video of each computational sequence."""
    from affectlab.data.readers.mosei import DEFAULT_FILES, ComputationalSequence

    files = yaml.safe_load(config_path("data/mosei.yaml").read_text())["init_args"].get("files") or DEFAULT_FILES
    if not Path(root).is_dir():
        raise DataError(f"mosei: root {root} is not a folder; expected {', '.join(files.values())} and "
                        "CMU_MOSEI_Labels.csd there (--data-root; see affectlab.data.readers.mosei)")
    return DataInputs(root, {m: ComputationalSequence(Path(root) / files[m]).dim for m in needed})


def check_pretrain_fits(pretrain: DataInputs, probed: DataInputs) -> None:
    """The pretraining data must feed the same encoders as the probed data: same modalities, same sizes."""
    unfit = {m: (pretrain.dims.get(m), d) for m, d in probed.dims.items()
             if pretrain.dims.get(m) != d or (m in pretrain.raw) != (m in probed.raw)}
    if unfit:
        described = ", ".join(f"{m}: {a} against {b}" for m, (a, b) in unfit.items())
        raise ConfigError(
            f"--pretrain-root {pretrain.where}: its features do not fit those of {probed.where} ({described}); the "
            "pretrained heads read the probed data's features, so prepare both with the same backbones "
            "(the same 'data prepare --encoder ... --encoder-checkpoint ...')"
        )


def variant_model(variant: str, inputs: DataInputs) -> dict[str, Any]:
    """The variant's config with an encoder per modality that fits ``inputs``: ``PrecomputedFeatures`` of the
    stored size for features; for raw rows (crops, token ids) the variant's own encoder and reconstruction target (paths made
    absolute, as the written config lives elsewhere). Feature modalities rebuild their features themselves."""
    path = config_path(f"model/conclugen/{variant}.yaml")
    config = yaml.safe_load(path.read_text())
    args = config["init_args"]
    modalities = list(inputs.dims)  # the variant's that the data set has (``variant_modalities``)

    def absolute(value: Any) -> Any:
        return str((path.parent / value).resolve()) if isinstance(value, str) else value

    if is_single_encoder(config):  # SimCLR: its video encoder, or the stored features' size
        encoder = absolute(args["encoder"]) if "video" in inputs.raw else {
            "class_path": "affectlab.nn.encoders.PrecomputedFeatures",
            "init_args": {"in_features": inputs.dims["video"], "modality": "video"}}
        return {**config, "init_args": {**args, "encoder": encoder}}

    encoders: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    for modality in modalities:
        if modality in inputs.raw:
            encoders[modality] = absolute(args["encoders"][modality])
            if modality in (args.get("reconstruction_targets") or {}):
                targets[modality] = absolute(args["reconstruction_targets"][modality])
        else:
            encoders[modality] = {"class_path": "affectlab.nn.encoders.PrecomputedFeatures",
                                  "init_args": {"in_features": inputs.dims[modality], "modality": modality}}
    args = {**args, "encoders": encoders, "modalities": modalities, "reconstruction_targets": targets or None}
    return {**config, "init_args": args}
