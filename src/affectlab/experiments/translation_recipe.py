"""``affectlab recipe translation synth``: Pose2Text on AffectSynth sign over seeds, against two baselines.

1. The data set's runs are parsed once (``configs/experiment/synth_sign/pose2text.yaml`` plus the user's
   options): a misspelt key stops here, before anything trains.
2. The baselines, from the same data module (its own seed makes the data, so they do not change with the
   training seed), scored on the test split with the model's sacrebleu BLEU and chrF:
   - *most frequent*: every test sample gets the training split's most frequent sentence (ties: the first
     in the training order);
   - *nearest neighbour*: every test sample gets the sentence of the training sample whose pose sequence is
     closest: each sequence's real frames cut into ``SEGMENTS`` equal stretches, each stretch mean-pooled
     (missing keypoints left out of the mean), the vector standardised per dimension over the training
     split, Euclidean distance. Pooling per stretch keeps the order of the signs, which a mean over the
     whole sequence loses; dynamic time warping would too, at T x T per pair.
3. One Pose2Text run per seed, the children of one ``seeds`` group (``experiments/seeds.py``); the parent also
   holds the baselines as ``baseline/<name>/test/bleu`` and ``.../chrf``.
The result is one row per system: BLEU and chrF (mean ± std over seeds for the model).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from affectlab.errors import ConfigError
from affectlab.experiments.seeds import GroupTarget, SeedsResult, group_target, run_seeds
from affectlab.imports import import_allowed
from affectlab.metrics.translation import translation_scores
from affectlab.runs.configs import config_path
from affectlab.runs.store import RunStore

#: data set name -> the experiment its recipe runs.
EXPERIMENTS = {"synth": "experiment/synth_sign/pose2text.yaml"}
SEGMENTS = 4
TASK = "translation"


@dataclass
class TranslationOptions:
    dataset: str = "synth"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    store: str | None = None
    dry_run: bool = False
    extra: list[str] = field(default_factory=list)  # options passed to every run (and to the data module)


@dataclass
class TranslationResult:
    seeds: SeedsResult
    baselines: dict[str, dict[str, float]]  # baseline -> {"bleu": ..., "chrf": ...}
    signatures: dict[str, str]  # metric -> sacrebleu's signature

    def rows(self) -> list[tuple[str, str, str]]:
        """(system, BLEU, chrF) as printed: the model's mean ± std over seeds, each baseline's value."""
        rows = []
        summary = self.seeds.summary
        if "test/bleu" in summary:
            (bleu, bleu_std, _), (chrf, chrf_std, _) = summary["test/bleu"], summary["test/chrf"]
            rows.append((f"Pose2Text (seeds {', '.join(map(str, self.seeds.seeds))})",
                         f"{bleu:.2f} ± {bleu_std:.2f}", f"{chrf:.2f} ± {chrf_std:.2f}"))
        for name, scores in self.baselines.items():
            rows.append((BASELINE_NAMES[name], f"{scores['bleu']:.2f}", f"{scores['chrf']:.2f}"))
        return rows


BASELINE_NAMES = {"most_frequent": "copy the most frequent training sentence",
                  "nearest_neighbour": f"copy the nearest training sample's sentence ({SEGMENTS}-stretch mean poses)"}


def experiment_config(dataset: str):
    if dataset not in EXPERIMENTS:
        raise ConfigError(f"recipe translation: no recipe for data set {dataset!r}; the recipe runs on "
                          f"{', '.join(EXPERIMENTS)} (PHOENIX-2014T: affectlab run --config "
                          "configs/experiment/phoenix/pose2text.yaml --data.init_args.root DIR)")
    return config_path(EXPERIMENTS[dataset])


def run_arguments(options: TranslationOptions) -> list[str]:
    args = ["--config", str(experiment_config(options.dataset)), *options.extra]
    if options.store is not None:
        args += ["--store", options.store]
    if options.dry_run:
        args.append("--dry_run")
    return args


# -- the baselines ----------------------------------------------------------------------------------------------
def _parsed_data(args: list[str]) -> Any:
    """The data section of the runs' parsed config (every option applied)."""
    from affectlab.experiments.seeds import _Parsed, _ParseOnly

    try:
        _ParseOnly(args)
    except _Parsed as parsed:
        return parsed.config.data
    raise AssertionError("the parser returned without parsing")  # pragma: no cover


def build_datamodule(args: list[str]) -> Any:
    """The data module the runs of ``args`` train on, built from their parsed ``data`` section."""
    data = _parsed_data(args)
    cls = import_allowed(data.class_path, "data.class_path", "a data module class", lambda found: isinstance(found, type))
    init_args = data.init_args.as_dict() if hasattr(data.init_args, "as_dict") else dict(data.init_args or {})
    return cls(**init_args)


def pooled_poses(loader: Any, segments: int = SEGMENTS) -> tuple[np.ndarray, list[str]]:
    """Per sample: the mean pose of each of ``segments`` equal stretches of its real frames, ``[N, S * K * C]``,
    and its sentence, in the loader's order."""
    vectors, sentences = [], []
    for batch in loader:
        pose = batch["pose"].float().numpy()  # (B, T, K, C)
        frames = batch["pose_mask"].numpy().astype(bool) if "pose_mask" in batch else np.ones(pose.shape[:2], bool)
        points = batch["pose_points_mask"].numpy().astype(bool) if "pose_points_mask" in batch \
            else np.ones(pose.shape[:3], bool)
        points &= np.isfinite(pose).all(axis=-1)
        for b in range(pose.shape[0]):
            real = np.flatnonzero(frames[b])
            stretches = np.array_split(real, segments) if len(real) else [real] * segments
            parts = []
            for stretch in stretches:
                present = points[b, stretch][..., None]  # (t, K, 1)
                values = np.where(present, pose[b, stretch], 0.0).sum(axis=0)
                parts.append(values / np.maximum(present.sum(axis=0), 1))  # (K, C)
            vectors.append(np.concatenate([p.ravel() for p in parts]))
        sentences += list(batch["targets"][TASK])
    return np.stack(vectors), sentences


def translation_baselines(datamodule: Any) -> dict[str, dict[str, Any]]:
    """Each baseline's test hypotheses and sacrebleu scores: ``{name: {"hypotheses", "bleu", "chrf"}}``."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    train_vectors, train_sentences = pooled_poses(datamodule.train_dataloader())
    datamodule.setup("test")
    test_vectors, references = pooled_poses(datamodule.test_dataloader())
    counts = Counter(train_sentences)
    most_frequent = max(counts, key=lambda s: (counts[s], -train_sentences.index(s)))
    mean, std = train_vectors.mean(axis=0), train_vectors.std(axis=0) + 1e-6
    train_z, test_z = (train_vectors - mean) / std, (test_vectors - mean) / std
    distances = ((test_z[:, None, :] - train_z[None, :, :]) ** 2).sum(axis=-1)  # (N_test, N_train)
    nearest = [train_sentences[i] for i in distances.argmin(axis=1)]
    baselines = {}
    for name, hypotheses in (("most_frequent", [most_frequent] * len(references)), ("nearest_neighbour", nearest)):
        scores = translation_scores(hypotheses, references)
        baselines[name] = {"hypotheses": hypotheses, **{k: s for k, s in scores.items()}}
    return baselines


# -- the recipe -------------------------------------------------------------------------------------------------
def run_translation_recipe(options: TranslationOptions, on_open=None) -> TranslationResult:
    """Steps 1-3 of the module docstring; ``on_open(parent_run_id)`` once the seeds' parent exists."""
    args = run_arguments(options)
    target: GroupTarget = group_target(args)  # 1. a bad key stops here
    baselines = translation_baselines(build_datamodule(args))  # 2.
    result = run_seeds(args, list(options.seeds), target, on_open=on_open)  # 3.
    scores = {name: {metric: float(values[metric].score) for metric in ("bleu", "chrf")}
              for name, values in baselines.items()}
    signatures = {metric: baselines["most_frequent"][metric].signature for metric in ("bleu", "chrf")}
    log_baselines(RunStore.resolve(target.store), result.parent_run_id, scores)
    return TranslationResult(result, scores, signatures)


def log_baselines(store: RunStore, parent_run_id: str, scores: dict[str, dict[str, float]]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"baseline/{name}/test/{metric}", value, now, 0)
               for name, values in scores.items() for metric, value in values.items()]
    store.client.log_batch(parent_run_id, metrics=metrics)
