"""Pictures any method can ask for, as Lightning callbacks: loss curves and a map of the representation.

A method requests them by default through ``LightningModule.configure_callbacks`` (ConCluGen does), so a
run draws them without a trainer option; a config may also list them under ``trainer.callbacks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from affectlab.data.contract import EMOTIONS
from affectlab.plots import embedding_map_figure, log_figure, loss_curves_figure

MIN_MAP_SAMPLES = 5  # fewer points make no map worth drawing (and t-SNE needs more than its perplexity)


class LossCurves(Callback):
    """Per-epoch means of logged loss terms, train and validation, drawn as ``plots/loss_terms.png`` at the end
    of training.

    Args:
        terms: the logged names after the stage prefix (``train/<term>``, ``val/<term>``).
        title: of the picture.
    """

    def __init__(self, terms: Sequence[str] = ("loss",), title: str = "loss terms per epoch") -> None:
        self.terms, self.title = tuple(terms), title
        self.curves: dict[str, list[float]] = {}

    def _record(self, trainer: Trainer, stage: str) -> None:
        metrics = trainer.callback_metrics
        for term in self.terms:
            # A term logged on_step and on_epoch is stored as <name>_epoch, one logged on_epoch only as <name>.
            value = metrics.get(f"{stage}/{term}_epoch", metrics.get(f"{stage}/{term}"))
            if value is not None:
                self.curves.setdefault(f"{stage}/{term}", []).append(float(value))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer, "train")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        curves = {k: v for k, v in self.curves.items() if v}
        if curves:
            log_figure(trainer, loss_curves_figure(curves, self.title), "plots/loss_terms.png")


class RepresentationMap(Callback):
    """A 2D t-SNE map of a method's representation (``represent(batch)``, its modalities concatenated) of the
    clips of ``stage``, coloured by emotion and, where the method has ``cluster_assignments(represented)``,
    by cluster; drawn as ``plots/<stage>_representation_map.png`` at the end of that stage's epoch.

    Args:
        stage: ``test`` or ``val``.
        max_samples: clips drawn at most (t-SNE is quadratic).
    """

    def __init__(self, stage: str = "test", max_samples: int = 2000) -> None:
        self.stage, self.max_samples = stage, max_samples

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.stage == "test":
            self.draw(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.stage == "val" and not trainer.sanity_checking:
            self.draw(trainer, pl_module)

    def draw(self, trainer: Trainer, module: Any) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not trainer.is_global_zero:
            return
        vectors, emotions, clusters = [], [], []
        loader = getattr(datamodule, f"{self.stage}_dataloader")()
        was_training = module.training
        module.eval()
        with torch.no_grad():
            for batch in loader:
                batch = module.transfer_batch_to_device(batch, module.device, 0)
                represented = module.represent(batch)
                vectors.append(torch.cat(list(represented.values()), dim=-1).cpu())
                emotions.append(batch["targets"]["emotion"].cpu() if "emotion" in batch.get("targets", {}) else None)
                assigned = module.cluster_assignments(represented) if hasattr(module, "cluster_assignments") else None
                if assigned is not None:
                    clusters.append(assigned.cpu())
                if sum(len(v) for v in vectors) >= self.max_samples:
                    break
        module.train(was_training)
        points = torch.cat(vectors).numpy()
        if len(points) < MIN_MAP_SAMPLES:  # t-SNE needs more points than its perplexity (at least 2)
            rank_zero_info(f"representation map: {len(points)} {self.stage} samples are too few for a t-SNE map "
                           f"(at least {MIN_MAP_SAMPLES}); not drawn")
            return
        colours = {"emotion": torch.cat(emotions).numpy() if emotions and emotions[0] is not None else None,
                   "cluster": torch.cat(clusters).numpy() if clusters else None}
        names = {"emotion": list(getattr(datamodule, "class_names", {}).get("emotion", EMOTIONS)), "cluster": None}
        figure = embedding_map_figure(points, {k: v for k, v in colours.items() if v is not None}, names,
                                      f"{self.stage} representations (t-SNE)", seed=int(np.uint32(trainer.global_step)))
        log_figure(trainer, figure, f"plots/{self.stage}_representation_map.png")
