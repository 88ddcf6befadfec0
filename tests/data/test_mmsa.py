"""MMSA feature pickles: aligned and unaligned, safe loading, malformed files."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from affectlab.data.readers.mmsa import MmsaDataModule, load_feature_pickle
from affectlab.errors import DataError


def _split(n, rng, aligned=True, bert=False):
    part = {
        "vision": rng.normal(size=(n, 10, 35)).astype(np.float32),
        "audio": rng.normal(size=(n, 10, 74)).astype(np.float32),
        "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        "id": [f"video{i}$_${i}" for i in range(n)],
        "raw_text": ["some words"] * n,
    }
    if bert:
        part["text_bert"] = rng.integers(0, 100, size=(n, 3, 10)).astype(np.float32)
    else:
        part["text"] = rng.normal(size=(n, 10, 768)).astype(np.float32)
    part["audio"][0, 0, 0] = -np.inf
    if not aligned:
        part["vision_lengths"] = rng.integers(1, 11, n)
        part["audio_lengths"] = rng.integers(1, 11, n)
    return part


def _write(path, **kwargs):
    rng = np.random.default_rng(0)
    data = {"train": _split(12, rng, **kwargs), "valid": _split(4, rng, **kwargs), "test": _split(5, rng, **kwargs)}
    path.write_bytes(pickle.dumps(data, protocol=4))
    return data


@pytest.mark.parametrize("aligned, bert", [(True, False), (False, False), (True, True)])
def test_pickle_is_served_in_the_batch_contract(tmp_path, aligned, bert):
    data = _write(tmp_path / "mosei.pkl", aligned=aligned, bert=bert)
    module = MmsaDataModule(str(tmp_path / "mosei.pkl"), batch_size=5)
    module.setup()
    batch = next(iter(module.test_dataloader()))
    assert batch["video"].shape[0] == 5 and batch["video"].shape[2] == 35
    assert batch["text"].shape[2] == (1 if bert else 768)
    assert torch.allclose(batch["targets"]["sentiment"], torch.from_numpy(data["test"]["regression_labels"]))
    if not aligned:
        assert batch["video_mask"].sum(dim=1).tolist() == data["test"]["vision_lengths"].tolist()
    train = next(iter(module.loader("train")))
    assert torch.isfinite(train["audio"]).all()
    ids = np.concatenate([module.dataset(s).ids for s in ("train", "val", "test")])
    assert sorted(ids.tolist()) == list(range(21))  # unique across splits


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": Exploit()}))
    with pytest.raises(DataError, match=r"refusing to load posix.system|refusing to load os.system"):
        load_feature_pickle(path)


def test_malformed_pickles_name_what_is_wrong(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(b"\x80\x04 truncated")
    with pytest.raises(DataError, match="bad.pkl: not a readable feature pickle"):
        MmsaDataModule(str(path)).setup()
    path.write_bytes(pickle.dumps({"train": {}, "valid": {}}))
    with pytest.raises(DataError, match=r"no split\(s\) \['test'\]"):
        MmsaDataModule(str(path)).setup()
    data = _write(path)
    data["valid"]["audio"] = data["valid"]["audio"][:2]
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match="'valid' arrays disagree on the number of samples"):
        MmsaDataModule(str(path)).setup()
    with pytest.raises(DataError, match="not a file"):
        MmsaDataModule(str(tmp_path / "none.pkl")).setup()
