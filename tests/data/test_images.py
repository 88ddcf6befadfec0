"""One image-extension set: a face saved as .tif is found by the folder readers and by ``predict`` alike."""

from __future__ import annotations

from PIL import Image
from conftest import TINY_DATA

import affectlab.inference
from affectlab.data import AffectSynthDataModule, FolderDataModule
from affectlab.data.images import IMAGE_EXTENSIONS
from affectlab.data.synth.export import export_folder_dataset


def test_predict_and_the_readers_share_one_extension_set():
    assert affectlab.inference.IMAGE_SUFFIXES is IMAGE_EXTENSIONS
    assert {".tif", ".tiff", ".jpg", ".png"} <= set(IMAGE_EXTENSIONS)


def test_a_tif_face_is_read_by_a_folder_reader(tiny_data, tmp_path):
    synth = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA)
    synth.prepare_data()
    export_folder_dataset(synth.arrays, "rafdb", tmp_path)
    jpg = sorted((tmp_path / "test").rglob("*.jpg"))[0]
    with Image.open(jpg) as image:
        image.save(jpg.with_suffix(".tif"))
    jpg.unlink()
    data = FolderDataModule("rafdb", str(tmp_path), image_size=32)
    data.setup()
    files = [path for files, _, _ in data.splits.values() for path in files]
    assert jpg.with_suffix(".tif") in files
    sample = data.dataset("test")[[p.suffix for p in data.splits["test"][0]].index(".tif")]
    assert sample["video"].shape == (1, 3, 32, 32)
