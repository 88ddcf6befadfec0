"""Figures shared by every layer, and one way to hand a figure to whichever loggers a run has.

matplotlib runs on the Agg backend: runs are headless (CI, Slurm nodes) and figures go to the run store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402


def confusion_matrix_figure(matrix: np.ndarray, labels: Sequence[str], title: str = "") -> plt.Figure:
    """Counts and row-normalised shading of a ``[C, C]`` confusion matrix (rows true, columns predicted)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="recall")
    fig.tight_layout()
    return fig


def log_figure(trainer: Any, figure: plt.Figure, artifact_path: str) -> None:
    """Log ``figure`` as ``artifact_path`` (e.g. ``plots/val_confusion_epoch003.png``) to every logger that takes
    figures, then close it. Only global rank 0 logs: the other ranks hold the same figure after metric sync."""
    if trainer is None or not trainer.is_global_zero:
        plt.close(figure)
        return
    for logger in trainer.loggers:
        experiment = logger.experiment
        run_id = getattr(logger, "run_id", None)
        if run_id is not None and hasattr(experiment, "log_figure"):  # MLflow
            experiment.log_figure(run_id, figure, artifact_path)
        elif hasattr(experiment, "add_figure"):  # TensorBoard
            experiment.add_figure(artifact_path, figure, global_step=trainer.global_step)
        elif hasattr(experiment, "log_figure"):  # Comet, W&B-like
            experiment.log_figure(figure_name=artifact_path, figure=figure)
    plt.close(figure)


def loss_curves_figure(curves: dict[str, list[float]], title: str = "") -> plt.Figure:
    """One line per loss term (``stage/term`` keys), one point per epoch; train solid, validation dashed."""
    terms = sorted({key.split("/", 1)[1] for key in curves})
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 2.8), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for stage, style in (("train", "-"), ("val", "--")):
            values = curves.get(f"{stage}/{term}")
            if values:
                ax.plot(range(len(values)), values, style, marker=".", label=stage)
        ax.set_title(term)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def embedding_map_figure(
    points: np.ndarray, colours: dict[str, np.ndarray], names: dict[str, Sequence[str] | None],
    title: str = "", seed: int = 0,
) -> plt.Figure:
    """A 2D t-SNE map of ``points`` ``[N, D]``, one panel per colouring (e.g. by emotion, by cluster)."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(points) - 1) // 3)))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points.astype(np.float32))
    fig, axes = plt.subplots(1, max(len(colours), 1), figsize=(4.6 * max(len(colours), 1), 4.2), squeeze=False)
    for ax, (what, labels) in zip(axes[0], colours.items()):
        scatter = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10" if labels.max() < 10 else "tab20", s=6)
        label_names = names.get(what)
        if label_names is not None:
            handles = [plt.Line2D([], [], marker="o", ls="", color=scatter.cmap(scatter.norm(i)), label=n)
                       for i, n in enumerate(label_names)]
            ax.legend(handles=handles, fontsize=7, loc="best")
        ax.set_title(f"coloured by {what}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def label_efficiency_figure(
    curves: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    references: dict[str, float] | None = None, title: str = "", ylabel: str = "test accuracy",
) -> plt.Figure:
    """Score against the fraction of labels (log axis), one line per representation with its spread.

    Args:
        curves: name -> (fractions, means, standard deviations).
        references: horizontal lines, e.g. ``{"ceiling (supervised)": 0.78}``.
    """
    fig, ax = plt.subplots(figsize=(8.4, 4.2))
    for name, (fractions, means, stds) in curves.items():
        dashed = name.startswith("floor")
        ax.errorbar(fractions, means, yerr=stds, marker="o", ms=4, capsize=3, label=name,
                    linestyle="--" if dashed else "-", color="black" if dashed else None)
    for name, value in (references or {}).items():
        ax.axhline(value, color="black", linestyle=":", linewidth=1, label=name)
    ax.set_xscale("log")
    fractions = sorted({f for curve in curves.values() for f in curve[0]})
    ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("fraction of train labels")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: eight variants and more
    ax.set_title(title)
    fig.tight_layout()
    return fig


def per_au_bar_figure(values: dict[str, Sequence[float]], au_names: Sequence[str], title: str = "") -> plt.Figure:
    """Grouped bars: one group per action unit, one bar per metric (e.g. F1, ICC), the mean in the legend."""
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(au_names) * max(1, len(names))), 3.2))
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(au_names))
    for i, name in enumerate(names):
        series = np.asarray(values[name], dtype=float)
        ax.bar(x + (i - (len(names) - 1) / 2) * width, series, width, label=f"{name} (mean {series.mean():.3f})")
    ax.set_xticks(x, list(au_names), fontsize=8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def au_timeline_figure(rows: Sequence[dict], title: str = "", face_id: int | None = None) -> plt.Figure:
    """AU intensities (or presence probabilities) of one face track over a video's time, one strip per AU,
    and the emotion probabilities stacked below when present. ``face_id``: the track (None: the first row's).
    Frames where the track has no face are gaps, not zeros."""
    columns = {k for r in rows for k in r}
    keys = sorted(k for k in columns if k.endswith("_r")) or sorted(k for k in columns if k.endswith("_p"))
    emotions = sorted(k for k in columns if k.startswith("emotion_"))
    if face_id is None:
        face_id = next((r["face_id"] for r in rows if r.get("success")), 0)
    # One value per frame of the video: the track's face, NaN where it has none.
    track = {float(r["timestamp"]): r for r in rows if r.get("success") and str(r.get("face_id")) == str(face_id)}
    times = sorted({float(r["timestamp"]) for r in rows})
    first = [track.get(t, {"timestamp": t, "success": 0}) for t in times]
    time = np.array(times)
    value = lambda r, k: float(r[k]) if r.get("success") and r.get(k, "") != "" else np.nan  # noqa: E731
    top = 5.0 if keys and keys[0].endswith("_r") else 1.0
    panels = len(keys) + (1 if emotions else 0)
    fig, axes = plt.subplots(panels, 1, figsize=(8, 0.55 * len(keys) + (1.6 if emotions else 0) + 0.6),
                             sharex=True, squeeze=False, gridspec_kw={"height_ratios": [1] * len(keys) + ([3] if emotions else [])})
    for ax, key in zip(axes[:, 0], keys):
        series = np.array([value(r, key) for r in first])
        ax.fill_between(time, 0, series, step="mid", alpha=0.6)
        ax.set_ylim(0, top)
        ax.set_yticks([])
        ax.set_ylabel(key.rsplit("_", 1)[0], rotation=0, ha="right", va="center", fontsize=8)
    if emotions:
        ax = axes[-1, 0]
        stack = np.nan_to_num(np.array([[value(r, k) for r in first] for k in emotions]))
        ax.stackplot(time, stack, labels=[k.removeprefix("emotion_") for k in emotions], step="mid")
        ax.set_ylim(0, 1)
        ax.set_ylabel("emotion", fontsize=8)
        ax.legend(fontsize=6, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title(f"{title} (AU {'intensity 0-5' if top == 5.0 else 'probability'})", fontsize=9)
    fig.tight_layout(h_pad=0.1)
    return fig
