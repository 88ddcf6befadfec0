"""Log the samples the model gets wrong, with true and predicted labels: a picture and a CSV of all of them."""

from __future__ import annotations

import csv
import io
from typing import Any

import torch

from affectlab.runs.evaluation._batches import frame_image, stage_loader, to_device
from affectlab.errors import ConfigError
from affectlab.plots import log_figure, plt
from affectlab.io import load_checkpoint


def examine_incorrectly_classified_images(
    model: Any, datamodule: Any, trainer: Any, stage: str = "test", ckpt_path: str | None = None, max_images: int = 32
) -> dict[str, Any]:
    """Predict every sample of ``stage``, log ``plots/misclassified_<stage>.png`` (up to ``max_images``) and
    ``eval/misclassified_<stage>.csv`` (all of them).

    Args:
        stage: ``train``, ``val`` or ``test``.
        ckpt_path: weights to evaluate (``$ckpt_dir/best.ckpt`` works); default: the run's best checkpoint.
        max_images: samples shown in the picture.
    """
    if ckpt_path:
        model.load_state_dict(load_checkpoint(ckpt_path)["state_dict"])
    device = next(model.parameters()).device
    names = list(getattr(model, "class_names", None) or [])
    wrong: list[dict[str, Any]] = []
    total = 0
    model.eval()
    with torch.no_grad():
        for index, batch in enumerate(stage_loader(datamodule, stage)):
            batch = to_device(batch, device)
            output = model.predict_step(batch, index)
            if not isinstance(output, dict) or "target" not in output:
                raise ConfigError(
                    f"eval_func examine_incorrectly_classified_images needs a model whose predict_step returns "
                    f"'prediction' and 'target'; {type(model).__name__} does not"
                )
            total += len(output["target"])
            for row in torch.nonzero(output["prediction"] != output["target"]).flatten().tolist():
                wrong.append(
                    {
                        "id": int(output["id"][row]),
                        "true": int(output["target"][row]),
                        "predicted": int(output["prediction"][row]),
                        "confidence": float(output["probabilities"][row].max()),
                        "image": frame_image(batch["video"][row]) if "video" in batch and len(wrong) < max_images else None,
                    }
                )

    def label(value: int) -> str:
        return names[value] if value < len(names) else str(value)

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "true", "predicted", "confidence"])
    for item in wrong:
        writer.writerow([item["id"], label(item["true"]), label(item["predicted"]), f"{item['confidence']:.4f}"])
    shown = [item for item in wrong if item["image"] is not None][:max_images]
    columns = 8
    rows = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, item in zip(axes.flat, shown):
        ax.imshow(item["image"])
        ax.set_title(f"{label(item['true'])} -> {label(item['predicted'])}\n({item['confidence']:.2f})", fontsize=7)
    fig.suptitle(f"{stage}: {len(wrong)} of {total} misclassified (true -> predicted)")
    fig.tight_layout()
    log_figure(trainer, fig, f"plots/misclassified_{stage}.png")
    if trainer is not None and trainer.is_global_zero:
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "log_text") and getattr(logger, "run_id", None):
                logger.experiment.log_text(logger.run_id, buffer.getvalue(), f"eval/misclassified_{stage}.csv")
    print(f"eval: {len(wrong)} of {total} {stage} samples misclassified", flush=True)
    return {"misclassified": len(wrong), "total": total}
