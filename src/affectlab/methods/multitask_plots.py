"""Pictures of a multi-task function fit over training (compositeSine, seed 002): what the original's logging
callback shows, drawn from the data actually trained on.

``TaskFitPictures`` (a Lightning callback, listed under ``trainer.callbacks``) reads the data module's
``task_points(split)`` (task -> ``x [n]``, targets ``[n, d]``: ``CompositeSineDataModule``) and what the
method's forward returns for each task (``MultiTaskMethod``: task -> ``[B, d]``), and logs

- ``plots/fit_epoch<E>.png`` after the first epoch, every ``every_n_epochs`` epochs (``E`` counts from 0: after
  epoch N it is N - 1; with ``check_val_every_n_epoch`` equal to it, every validation draws) and after the
  last: one panel per output of
  every task, its training points (the very points trained on; the original plotted a second noise draw), the
  true function on the validation grid, and the network's fit;
- ``plots/fit_over_training.png`` at the end: the fits of all those epochs in one panel per output, light
  (early) to dark (late), over the truth;
- ``plots/fit_errors.png`` at the end: each task's mean squared error per epoch on all its training points
  and on its validation grid, measured at the epoch's end with the same network (the method's own
  ``plots/task_losses.png`` averages the batches' losses over the epoch instead), also logged as the metrics
  ``fit/<task>/train_mse`` and ``fit/<task>/val_mse``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from affectlab.plots import log_figure, plt

CHUNK = 1024  # points per forward pass when predicting a whole grid


class TaskFitPictures(Callback):
    """Args:
        every_n_epochs: a fit picture every this many epochs (and after the last); the original's
            ``logging_epoch_interval`` was 50.
        input_key: the batch key of the input (``x``).
        losses: compute and draw the per-task errors every epoch (two passes over the points per epoch).
    """

    def __init__(self, every_n_epochs: int = 50, input_key: str = "x", losses: bool = True) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be at least 1, got {every_n_epochs}")
        self.every_n_epochs, self.input_key, self.losses = every_n_epochs, input_key, losses
        self.snapshots: list[tuple[int, dict[str, np.ndarray]]] = []  # (epoch, task -> val predictions [n, d])
        self.curves: dict[str, list[float]] = {}  # "<split>/<task>" -> MSE at each epoch of curve_epochs
        self.curve_epochs: list[int] = []  # the epochs validated (check_val_every_n_epoch may skip some)

    def predict(self, module: LightningModule, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every task's predictions ``[n, d]`` at the inputs ``x`` ``[n]``."""
        was_training = module.training
        module.eval()
        parts: dict[str, list[np.ndarray]] = {}
        with torch.no_grad():
            for start in range(0, len(x), CHUNK):
                inputs = torch.as_tensor(x[start : start + CHUNK], dtype=torch.float32, device=module.device)
                predicted = module({self.input_key: inputs.unsqueeze(1)})  # task -> (b, d), and "shared"
                for task, values in predicted.items():
                    parts.setdefault(task, []).append(values.float().cpu().numpy().reshape(len(inputs), -1))
        module.train(was_training)
        return {task: np.concatenate(chunks) for task, chunks in parts.items()}

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not hasattr(trainer.datamodule, "task_points"):
            return
        epoch = trainer.current_epoch
        last = epoch == trainer.max_epochs - 1 or trainer.should_stop
        picture = epoch == 0 or (epoch + 1) % self.every_n_epochs == 0 or last  # after epochs 1, N, 2N, ..., last
        if not (picture or self.losses):
            return
        train, val = trainer.datamodule.task_points("train"), trainer.datamodule.task_points("val")
        fits = self._fits(pl_module, val)
        if self.losses:
            errors = {f"val/{task}": float(np.mean((fits[task] - y) ** 2)) for task, (_, y) in val.items()}
            on_train = self._fits(pl_module, train)
            errors |= {f"train/{task}": float(np.mean((on_train[task] - y) ** 2)) for task, (_, y) in train.items()}
            self.curve_epochs.append(epoch)
            for key, value in errors.items():
                self.curves.setdefault(key, []).append(value)
                stage, task = key.split("/")
                pl_module.log(f"fit/{task}/{stage}_mse", value, on_epoch=True, logger=True)
        if picture and (not self.snapshots or self.snapshots[-1][0] != epoch):
            self.snapshots.append((epoch, fits))
            log_figure(trainer, fit_figure(train, val, [(epoch, fits)], f"fit at epoch {epoch}", _names(trainer)),
                       f"plots/fit_epoch{epoch:04d}.png")

    def _fits(self, module: LightningModule, points: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        fits = {}
        for task, (x, _) in points.items():
            fits[task] = self.predict(module, x)[task]
        return fits

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.snapshots:
            return
        datamodule = trainer.datamodule
        train, val = datamodule.task_points("train"), datamodule.task_points("val")
        log_figure(trainer, fit_figure(train, val, self.snapshots, "fits over training (light: early, dark: late)",
                                       _names(trainer)), "plots/fit_over_training.png")
        if self.curves:
            log_figure(trainer, fit_errors_figure(self.curves, self.curve_epochs), "plots/fit_errors.png")


def _names(trainer: Trainer) -> dict[str, list[str]] | None:
    """The data module's names of each task's outputs (``output_names()``), for the panels' titles."""
    names = getattr(trainer.datamodule, "output_names", None)
    return names() if callable(names) else None


def _panels(val: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, int]]:
    return [(task, d) for task, (_, y) in val.items() for d in range(y.shape[1])]


def fit_figure(train: dict[str, tuple[np.ndarray, np.ndarray]], val: dict[str, tuple[np.ndarray, np.ndarray]],
               snapshots: list[tuple[int, dict[str, np.ndarray]]], title: str = "",
               names: dict[str, list[str]] | None = None) -> Any:
    """One panel per (task, output): training points (grey), truth on the validation grid (black), the fit at
    each snapshot (red; several: light to dark). ``names``: task -> its outputs' names (default: their index)."""
    panels = _panels(val)
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    shades = plt.cm.Reds(np.linspace(1.0 if len(snapshots) == 1 else 0.35, 1.0, len(snapshots)))
    for ax, (task, d) in zip(axes.flat, panels):
        x_train, y_train = train[task]
        x_val, y_val = val[task]
        ax.plot(x_train, y_train[:, d], "o", color="grey", markersize=2, label="trained on")
        ax.plot(x_val, y_val[:, d], "k-", linewidth=1, label="truth")
        for shade, (epoch, fits) in zip(shades, snapshots):
            ax.plot(x_val, fits[task][:, d], "-", color=shade, linewidth=1, label=f"fit, epoch {epoch}")
        ax.set_title(f"{task}: {names[task][d] if names else f'output {d}'}", fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fit_errors_figure(curves: dict[str, list[float]], epochs: list[int]) -> Any:
    """Each task's mean squared error at ``epochs``, train solid and validation dashed, log scale."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    tasks = sorted({key.split("/", 1)[1] for key in curves})
    colours = plt.cm.tab10(np.arange(len(tasks)) % 10)
    for colour, task in zip(colours, tasks):
        for stage, style in (("train", "-"), ("val", "--")):
            values = curves.get(f"{stage}/{task}")
            if values:
                ax.plot(epochs, values, style, color=colour, marker=".", label=f"{task} {stage}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error")
    ax.set_title("per-task error at each epoch's end")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
