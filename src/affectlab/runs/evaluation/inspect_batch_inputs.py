"""Log a picture of one batch's inputs: frames, audio spectrogram, text, labels. The first thing to look at
when a model will not learn: are the inputs what you think they are?"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from affectlab.runs.evaluation._batches import frame_image, stage_loader
from affectlab.plots import log_figure, plt


def inspect_batch_inputs(
    model: Any, datamodule: Any, trainer: Any, stage: str = "train", num_samples: int = 8, frames_per_sample: int = 4
) -> str:
    """Log ``plots/batch_inputs_<stage>.png`` showing the first ``num_samples`` samples of a ``stage`` batch.

    Args:
        stage: ``train``, ``val`` or ``test``.
        num_samples: rows of the picture.
        frames_per_sample: frames shown per clip, evenly spaced.
    """
    batch = next(iter(stage_loader(datamodule, stage)))
    rows = min(num_samples, len(batch["id"]))
    has_video = "video" in batch and batch["video"].ndim >= 4
    has_audio = "audio" in batch and batch["audio"].ndim == 2
    has_text = "text" in batch
    columns = (frames_per_sample if has_video else 0) + int(has_audio) + int(has_text)
    columns = max(columns, 1)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.0 * rows), squeeze=False)
    names = getattr(datamodule, "class_names", {}).get("emotion")
    for row in range(rows):
        column = 0
        label = ""
        if "emotion" in batch.get("targets", {}):
            value = int(batch["targets"]["emotion"][row])
            label = names[value] if names else str(value)
        if has_video:
            video = batch["video"][row]
            count = video.shape[0] if video.ndim == 4 else 1
            for index in np.linspace(0, count - 1, frames_per_sample).round().astype(int):
                image = frame_image(video, int(index))
                axes[row, column].imshow(image)
                axes[row, column].set_title(f"id {int(batch['id'][row])} t={index} {label}", fontsize=7)
                column += 1
        if has_audio:
            waveform = batch["audio"][row].float().numpy()
            axes[row, column].specgram(waveform, NFFT=256, Fs=getattr(datamodule, "sample_rate", 8000), noverlap=128)
            axes[row, column].set_title("audio", fontsize=7)
            column += 1
        if has_text:
            tokens = batch["text"][row]
            decode = getattr(datamodule, "decode_text", None)
            text = decode(tokens) if decode and tokens.dtype == torch.long else f"features {tuple(tokens.shape)}"
            axes[row, column].text(0.0, 0.5, text, wrap=True, fontsize=8, va="center")
            column += 1
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{stage} batch inputs")
    fig.tight_layout()
    path = f"plots/batch_inputs_{stage}.png"
    log_figure(trainer, fig, path)
    return path
