"""CMU-MOSEI read from computational sequences written in the CMU Multimodal SDK's layout."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from conftest import TINY_DATA

from affectlab.data.synth.datamodule import AffectSynthDataModule
from affectlab.data.collate import subsample
from affectlab.data.readers.mosei import MOSEI_EMOTIONS, MoseiDataModule, overlapping
from affectlab.data.synth.export import export_mosei, write_csd
from affectlab.errors import DataError


@pytest.fixture(scope="module")
def mosei(tiny_data, tmp_path_factory):
    module = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA)
    module.prepare_data()
    out = tmp_path_factory.mktemp("mosei")
    counts = export_mosei(module.arrays, out)
    return out, counts, module.arrays


def test_segments_folds_and_batches(mosei):
    root, counts, arrays = mosei
    module = MoseiDataModule(str(root), max_steps=6, batch_size=4)
    module.setup()
    assert {s: len(module.splits[s]) for s in ("train", "val", "test")} == {
        "train": counts["train"], "val": counts["valid"], "test": counts["test"]}
    batch = module.on_after_batch_transfer(next(iter(module.test_dataloader())), 0)
    assert batch["video"].shape[0] == 4 and batch["video"].shape[2] == 35 and batch["video"].shape[1] <= 6
    assert batch["audio"].shape[2] == 74 and batch["text"].shape[2] == 300
    assert batch["video_mask"].any(dim=1).all() and torch.isfinite(batch["audio"]).all()
    assert batch["targets"]["emotion_presence"].shape == (4, 6)
    assert torch.equal(batch["targets"]["emotion_presence"], (batch["targets"]["emotion_intensity"] > 0).float())
    assert module.class_names["emotion_presence"] == MOSEI_EMOTIONS
    assert module.class_counts().shape == (6, 2)


def test_each_segment_gets_its_own_clip_features(mosei):
    root, _, arrays = mosei
    module = MoseiDataModule(str(root), max_steps=100)
    module.setup()
    dataset = module.dataset("train")
    sample = dataset[0]
    video, start, end, label = dataset.segments[0]
    clip = np.flatnonzero(np.asarray(arrays.identity) == int(video[3:]))[int(round(start / 2.0))]
    assert torch.allclose(sample["video"][:, :12], torch.from_numpy(np.asarray(arrays.au_intensity[clip])))
    assert sample["targets"]["sentiment"].item() == pytest.approx(float(arrays.sentiment[clip]))
    assert sample["text"].shape[0] == int(arrays.text_len[clip])


def test_non_finite_features_are_zeroed_and_counted(mosei):
    root, _, _ = mosei
    module = MoseiDataModule(str(root), batch_size=64)
    module.setup()
    for split in ("train", "val", "test"):
        for batch in module.loader(split):
            assert torch.isfinite(module.on_after_batch_transfer(batch, 0)["audio"]).all()
    assert module.non_finite == 6  # one -inf in the first acoustic frame of each of the 6 videos


def test_without_folds_file_a_seeded_video_split_is_used(mosei, tmp_path):
    root, _, _ = mosei
    module = MoseiDataModule(str(root), folds_file="absent.json")
    with pytest.warns(UserWarning, match="not comparable to published ones"):
        module.setup()
    assert sum(len(v) for v in module.splits.values()) == len(module.segments)


def test_bad_files_name_the_file(mosei, tmp_path):
    root, _, _ = mosei
    with pytest.raises(DataError, match="root .* is not a folder"):
        MoseiDataModule(str(tmp_path / "none")).setup()
    (tmp_path / "CMU_MOSEI_Labels.csd").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="CMU_MOSEI_VisualFacet42.csd is missing"):
        MoseiDataModule(str(tmp_path)).setup()
    for name in ("CMU_MOSEI_VisualFacet42.csd", "CMU_MOSEI_COVAREP.csd", "CMU_MOSEI_TimestampedWordVectors.csd"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    with pytest.raises(DataError, match="CMU_MOSEI_Labels.csd: not a readable HDF5 file"):
        MoseiDataModule(str(tmp_path)).setup()
    write_csd(tmp_path / "CMU_MOSEI_Labels.csd", "All Labels",
              {"vid0000": (np.array([[9.0, 0, 0, 0, 0, 0, 0]], np.float32), np.array([[0.0, 2.0]]))}, {})
    with pytest.raises(DataError, match="segment 0: labels \\[9.0"):
        MoseiDataModule(str(tmp_path)).setup()
    (tmp_path / "folds.json").write_text(json.dumps({"train": []}))
    write_csd(tmp_path / "CMU_MOSEI_Labels.csd", "All Labels",
              {"vid0000": (np.zeros((1, 7), np.float32), np.array([[0.0, 2.0]]))}, {})
    with pytest.raises(DataError, match="folds.json: not a JSON object with 'train', 'valid' and 'test'"):
        MoseiDataModule(str(tmp_path)).setup()


def test_sdk_layout_is_what_the_sdk_reads(mosei):
    """The SDK's read_CSD takes the first root group's 'data' and 'metadata' (JSON strings)."""
    root, _, _ = mosei
    with h5py.File(root / "CMU_MOSEI_Labels.csd", "r") as handle:
        group = handle[list(handle.keys())[0]]
        assert set(group.keys()) == {"data", "metadata"}
        assert json.loads(group["metadata"]["dataset version"][0]) == "1.0"
        entry = group["data"]["vid0000"]
        assert entry["features"].shape[1] == 7 and entry["intervals"].shape[1] == 2


def test_alignment_helpers():
    intervals = np.array([[0.0, 0.5], [0.5, 1.0], [1.0, 1.5], [1.5, 2.0]])
    assert overlapping(intervals, 0.5, 1.5).tolist() == [1, 2]
    assert subsample(np.arange(10), 4).tolist() == [0, 3, 6, 9]


def test_check_counts_segments_with_and_without_each_sequence(mosei, tmp_path, capsys):
    """``data check mosei`` counts, per .csd, the labelled segments with rows in their span: here one video is
    removed from COVAREP (its segments lack audio) and one segment's words are moved out of its span."""
    import shutil

    from affectlab.data.check import check_reader, mosei_modality_counts

    root = shutil.copytree(mosei[0], tmp_path / "mosei")
    with h5py.File(root / "CMU_MOSEI_Labels.csd", "r") as labels:
        per_video = {v: len(labels["All Labels"]["data"][v]["intervals"]) for v in labels["All Labels"]["data"]}
    videos = sorted(per_video)
    with h5py.File(root / "CMU_MOSEI_COVAREP.csd", "a") as acoustic:
        del acoustic["COVAREP"]["data"][videos[0]]
    with h5py.File(root / "CMU_MOSEI_TimestampedWordVectors.csd", "a") as textual:
        intervals = textual["glove_vectors"]["data"][videos[1]]["intervals"]
        moved = intervals[:]
        moved[moved[:, 1] <= 2.0] += 1000.0  # the first segment's (0-2 s) words now lie far after every segment
        intervals[...] = moved
    module = MoseiDataModule(str(root))
    with pytest.warns(UserWarning, match="1 labelled videos lack features"):
        module.setup()
    counts, lacking = mosei_modality_counts(module)
    total = sum(per_video.values())
    assert counts == {"video": [total, 0], "audio": [total - per_video[videos[0]], per_video[videos[0]]],
                      "text": [total - 1, 1]}
    assert lacking["text"] == [f"{videos[1]}[0]"] and lacking["audio"][0] == f"{videos[0]}[0]"
    with pytest.warns(UserWarning):
        check_reader("mosei", str(root))
    assert f"modality audio: {total - per_video[videos[0]]} segments have it, {per_video[videos[0]]} lack it" in \
        capsys.readouterr().out
