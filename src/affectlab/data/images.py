"""Face images on disk: which files are images, and how one becomes a frame.

One extension set for every reader and for ``predict``, so a face saved as ``.tif`` is found everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def load_image(path: Path, size: int) -> torch.Tensor:
    """``[1, 3, size, size]`` float in [0, 1]: one frame, RGB, resized (faces in these sets come cropped)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB").resize((size, size), Image.BILINEAR)
        array = np.array(image, dtype=np.uint8)  # a writable copy, as torch.from_numpy wants
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255.0).unsqueeze(0)
