"""AffectLab from Python: ``affectlab.train(config)`` runs a config, ``affectlab.load(run_id)`` gives a trained
face model that predicts on images, folders and videos into a pandas DataFrame, and two figures read that
DataFrame (AU intensities per face track over time, emotion probabilities over time).

These are the same library functions the ``affectlab`` command calls: ``train`` is
``affectlab.experiments.train`` (what ``affectlab run`` does, in this process), ``FaceModel.predict`` runs
``inference.FacePredictor.predict_file`` per input (what ``affectlab predict`` does) and reads the CSV it
writes, so the DataFrame has exactly the predict CSV's columns, plus ``source`` (the input file) in front.
docs/api.md shows them at work.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectlab.errors import ConfigError, DataError

if TYPE_CHECKING:  # pandas and matplotlib are imported when used: `import affectlab` stays fast
    import pandas as pd
    from matplotlib.figure import Figure

    from affectlab.experiments.train import RunResult

PathLike = str | Path


def _config_file(config: PathLike) -> Path:
    """A config file as given, or else the bundled config of that name (``"experiment/au_synth.yaml"``)."""
    path = Path(config).expanduser()
    if path.is_file():
        return path
    from affectlab.runs.configs import config_root

    bundled = config_root() / str(config)
    if bundled.is_file():
        return bundled
    raise ConfigError(f"config {str(config)!r}: no such file here, nor a bundled config of that name under "
                      f"{config_root()} (e.g. 'experiment/au_synth.yaml')")


def train(config: PathLike | Iterable[PathLike], overrides: Mapping[str, Any] | None = None,
          store: PathLike | None = None, model: PathLike | None = None) -> RunResult:
    """Run one config (or several, later ones overriding earlier ones) as ``affectlab run`` would, in this
    process, and return its ``RunResult``: ``run_id`` and ``metrics`` per command (``{"test": {"test/acc":
    0.61, ...}}``).

    Args:
        config: a YAML file, or a bundled config's name relative to ``configs/`` (``"experiment/au_synth.yaml"``);
            the config's own ``commands:`` chain runs (``fit-test`` for the experiments).
        overrides: dotted keys as on the command line, ``{"trainer.max_epochs": 1, "data.init_args.root": ...}``.
        store: the run store folder (default: ``MLFLOW_TRACKING_URI`` or ``./runs``).
        model: a model config put first, as ``--model FILE`` (for configs that name none).
    """
    from affectlab.experiments.train import train as run_config

    configs = [config] if isinstance(config, (str, Path)) else list(config)
    options = dict(overrides or {})
    if store is not None:
        options["store"] = str(store)
    with warnings.catch_warnings():
        # LightningCLI warns when a script that has its own command line passes args: here the args are the
        # whole run by design, and the script's argv is not LightningCLI's to read.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        return run_config([_config_file(c) for c in configs], options,
                          model=None if model is None else _config_file(model))


class FaceModel:
    """A trained face model of a run (an AU model: AU occurrence and intensity, and emotion when it has that
    head), with MTCNN to find the faces. Made by ``affectlab.load``."""

    def __init__(self, run_id: str, model: Any, detector: Any, onnx: PathLike | None = None,
                 **predictor_options: Any) -> None:
        from affectlab.inference import FacePredictor, ModelBackend, head_specs

        self.run_id = run_id
        self.model = model
        self.predictor = FacePredictor(ModelBackend(model, onnx), detector, head_specs(model), **predictor_options)

    @property
    def columns(self) -> list[str]:
        """The DataFrame's columns: ``source``, then the predict CSV's."""
        return ["source"] + [c for c in self.predictor.columns if c != "source"]

    def predict(self, paths: PathLike | Iterable[PathLike], fps: float | None = None, every: int = 1,
                skip_unreadable: bool = False) -> pd.DataFrame:
        """One row per face per frame of every image and video in ``paths`` (files, or folders searched
        recursively), in the predict CSV's columns with ``source`` (the file) first; a frame without a face is
        a row with ``success`` 0. Videos can be subsampled (``fps``, or one frame in ``every``).

        A file that cannot be read raises ``DataError`` naming it, or with ``skip_unreadable`` is left out
        with a warning (as ``affectlab predict`` does).
        """
        import pandas as pd

        from affectlab.inference import iterate_inputs

        if every < 1:
            raise ConfigError(f"every={every}: give a positive number of frames")
        if fps is not None and fps <= 0:
            raise ConfigError(f"fps={fps}: give a positive rate")
        files = list(iterate_inputs([paths] if isinstance(paths, (str, Path)) else paths))
        if not files:
            raise DataError(f"no images or videos in {paths}")
        tables = []
        with tempfile.TemporaryDirectory(prefix="affectlab-predict-") as work:
            for number, path in enumerate(files):
                out = Path(work) / str(number)  # one folder per input: no two inputs' CSVs can collide
                report = self.predictor.predict_file(path, out, fps=fps, every=every, timeline=False)
                if report.skipped or report.csv is None:
                    message = f"{path}: " + "; ".join(report.problems or ["not predicted"])
                    if not skip_unreadable:
                        raise DataError(message + " (skip_unreadable=True leaves such files out)")
                    warnings.warn(f"skipped {message}", stacklevel=2)
                    continue
                for problem in report.problems:
                    warnings.warn(problem, stacklevel=2)
                table = pd.read_csv(report.csv, keep_default_na=False, na_values=[""])
                table["source"] = str(path)  # the file as the caller named it (reordered first below)
                tables.append(table)
        if not tables:
            raise DataError(f"none of the {len(files)} files could be read")
        frame = pd.concat(tables, ignore_index=True)
        frame = frame[["source"] + [c for c in frame.columns if c != "source"]]
        for column in ("frame", "face_id", "success"):
            if column in frame:
                frame[column] = frame[column].astype("Int64")  # integers, with <NA> where no face was found
        frame.attrs["run_id"] = self.run_id
        return frame

    @staticmethod
    def plot_au_timeline(predictions: pd.DataFrame, source: PathLike | None = None) -> Figure:
        """``plot_au_timeline`` (module function) on this model's predictions."""
        return plot_au_timeline(predictions, source)

    @staticmethod
    def plot_emotions(predictions: pd.DataFrame, source: PathLike | None = None) -> Figure:
        """``plot_emotions`` (module function) on this model's predictions."""
        return plot_emotions(predictions, source)


def load(run_id: str, store: PathLike | None = None, checkpoint: str = "best.ckpt", onnx: PathLike | None = None,
         detector: Any = "mtcnn", detector_weights: PathLike | None = None, min_face_size: int = 20,
         largest_only: bool = False, **predictor_options: Any) -> FaceModel:
    """The trained face model of run ``run_id`` (its ``best.ckpt`` by default), ready to ``predict``.

    Args:
        store: the run store folder holding the run (default: ``MLFLOW_TRACKING_URI`` or ``./runs``).
        onnx: a graph exported by ``affectlab export onnx`` to run in onnxruntime instead of PyTorch.
        detector: a detector's name (``mtcnn``, ``yunet``, or a dotted class path; docs/predict.md), built with
            ``detector_weights`` (a local file), ``min_face_size`` and ``largest_only`` where it takes them; or
            a detector object (anything with ``detect(images)``), used as it is.
        predictor_options: ``inference.FacePredictor``'s options, as ``affectlab predict`` has them:
            ``detect_every`` (detect on every k-th frame, track between), ``max_missed``, ``crop_scale``,
            ``openface_columns``.
    """
    from affectlab.data.media.face_detection import create_detector
    from affectlab.runs.models import load_deployed_model

    model = load_deployed_model(run_id, None if store is None else str(store), checkpoint)
    if not hasattr(model, "heads") or not hasattr(model, "onnx_forward"):
        raise ConfigError(f"run {run_id} trained {type(model).__name__}, which has no face heads: load() needs an "
                          "AU model run (configs/experiment/au_synth.yaml and its variants)")
    data = (model.run_config.get("data") or {}).get("init_args") or {}
    model.image_size = int(data.get("image_size", getattr(model, "image_size", 64)))  # the crops it was trained on
    if isinstance(detector, str):
        detector = create_detector(detector, None if detector_weights is None else str(detector_weights),
                                   min_face_size=min_face_size, largest_only=largest_only)
    return FaceModel(run_id, model, detector, onnx=onnx, **predictor_options)


def _one_source(predictions: pd.DataFrame, source: PathLike | None) -> pd.DataFrame:
    """The rows of one input file: ``source``, or the only (else first) file in ``predictions``."""
    if predictions.empty:
        raise DataError("no predictions to plot")
    if "source" not in predictions:
        return predictions
    sources = list(dict.fromkeys(predictions["source"]))
    chosen = str(source) if source is not None else sources[0]
    rows = predictions[predictions["source"] == chosen]
    if rows.empty:
        raise DataError(f"source {chosen!r} is not in these predictions; they hold {sources}")
    return rows


def _tracks(rows: pd.DataFrame, value_columns: list[str]) -> dict[int, pd.DataFrame]:
    """Per face track (``face_id``), its values at every frame of the file, NaN where it was not seen (so a
    line has gaps where the face was missing, not a straight segment across them)."""
    frames = rows.drop_duplicates("frame").set_index("frame")["timestamp"].sort_index()
    tracks = {}
    for face_id, track in rows[rows["success"] == 1].groupby("face_id", sort=True):
        values = track.drop_duplicates("frame").set_index("frame")[value_columns].reindex(frames.index)
        tracks[int(face_id)] = values.assign(timestamp=frames.to_numpy())
    return tracks


def plot_au_timeline(predictions: pd.DataFrame, source: PathLike | None = None) -> Figure:
    """AU intensities (``AUxx_r``, 0-5; presence probabilities ``AUxx_p`` for a model without intensity)
    over time for one file: one strip per AU in AU order, one line per face track (``face_id``), gaps where
    the face was not found."""
    import matplotlib.pyplot as plt

    from affectlab import plots  # noqa: F401  (selects the headless Agg backend)

    rows = _one_source(predictions, source)
    found = rows[rows["success"] == 1]
    predicted = [c for c in rows.columns if c.startswith("AU") and found[c].notna().any()]  # not OpenFace's empty ones
    keys = sorted(c for c in predicted if c.endswith("_r")) or sorted(c for c in predicted if c.endswith("_p"))
    if not keys:
        raise DataError("these predictions have no AU columns (AUxx_r or AUxx_p)")
    top = 5.0 if keys[0].endswith("_r") else 1.0
    tracks = _tracks(rows, keys)
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 0.6 * len(keys) + 0.9), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        for face_id, track in tracks.items():
            ax.plot(track["timestamp"], track[key], color=f"C{face_id % 10}", label=f"face {face_id}")
        ax.set_ylim(0, top)
        ax.set_yticks([])
        ax.set_ylabel(key.rsplit("_", 1)[0], rotation=0, ha="right", va="center", fontsize=8)
    if tracks:
        axes[0, 0].legend(fontsize=7, ncol=min(len(tracks), 6), loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    name = Path(str(rows["source"].iloc[0])).name if "source" in rows else ""
    axes[0, 0].set_title(f"{name} AU {'intensity 0-5' if top == 5.0 else 'probability'} per face", fontsize=9)
    fig.tight_layout(h_pad=0.1)
    return fig


def plot_emotions(predictions: pd.DataFrame, source: PathLike | None = None) -> Figure:
    """Emotion probabilities (``emotion_<name>``) over time for one file, stacked, one panel per face track."""
    import matplotlib.pyplot as plt
    import numpy as np

    from affectlab import plots  # noqa: F401  (selects the headless Agg backend)

    rows = _one_source(predictions, source)
    keys = [c for c in rows.columns if c.startswith("emotion_")]
    if not keys:
        raise DataError("these predictions have no emotion columns: the run's model has no emotion head")
    tracks = _tracks(rows, keys)
    if not tracks:
        raise DataError("no face was found in this file: there is no emotion to plot")
    fig, axes = plt.subplots(len(tracks), 1, figsize=(8, 1.8 * len(tracks) + 0.6), sharex=True, squeeze=False)
    for ax, (face_id, track) in zip(axes[:, 0], tracks.items()):
        ax.stackplot(track["timestamp"], np.nan_to_num(track[keys].to_numpy().T),
                     labels=[k.removeprefix("emotion_") for k in keys], step="mid")
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"face {face_id}", fontsize=8)
    axes[0, 0].legend(fontsize=6, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    name = Path(str(rows["source"].iloc[0])).name if "source" in rows else ""
    axes[0, 0].set_title(f"{name} emotion probabilities", fontsize=9)
    fig.tight_layout(h_pad=0.1)
    return fig
