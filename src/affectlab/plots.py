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
