"""A contact sheet of AffectSynth clips, for docs and for eyeballing what a config produces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import load
from affectlab.data.synth.faces import RENDER_STYLES


def preview(path: str | Path, out_png: str | Path, n: int = 16) -> Path:
    """Writes a grid of the apex frame of ``n`` clips, each titled with its emotion and render style.

    Clips are taken evenly across the cache; the apex frame is the one with the highest summed AU intensity.

    Args:
        path: the cache directory (verified like ``load``).
        out_png: the image to write.
        n: clips to show.

    Returns:
        ``out_png`` as a ``Path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    arrays = load(path)
    picks = np.unique(np.linspace(0, len(arrays) - 1, min(n, len(arrays))).round().astype(int))
    cols = int(np.ceil(np.sqrt(len(picks))))
    rows = int(np.ceil(len(picks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i in zip(axes.flat, picks):
        apex = int(np.asarray(arrays.au_intensity[i]).sum(axis=1).argmax())
        ax.imshow(arrays.frames[i, apex])
        ax.set_title(f"{EMOTIONS[arrays.emotion[i]]} / {RENDER_STYLES[arrays.domain[i]]}", fontsize=8)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
