"""Under DDP every real reader's validation and test samples are counted exactly once: the loaders shard them
with ``UnrepeatedDistributedSampler`` instead of Lightning's padding ``DistributedSampler``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import CONFIGS, TEST_CONFIGS, TINY_DATA, affectlab, mlflow_client, printed_run_id

from affectlab.data import AffectSynthDataModule, FolderDataModule
from affectlab.data.synth.export import export_folder_dataset


@pytest.fixture(scope="module")
def rafdb(tiny_data, tmp_path_factory):
    synth = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA)
    synth.prepare_data()
    root = tmp_path_factory.mktemp("rafdb")
    export_folder_dataset(synth.arrays, "rafdb", root)
    next((root / "test").rglob("*.jpg")).unlink()  # whole identities per split: 8 clips each, an even count
    return root


def _odd_splits(root) -> FolderDataModule:
    data = FolderDataModule("rafdb", str(root), image_size=32, batch_size=4)
    data.setup()
    sizes = {split: len(files) for split, (files, _, _) in data.splits.items()}
    assert sizes["val"] % 2 and sizes["test"] % 2, f"the export must give odd val and test splits, not {sizes}"
    return data


def test_each_rank_gets_a_disjoint_share_that_covers_every_sample(rafdb):
    data = _odd_splits(rafdb)
    for split in ("val", "test"):
        seen = []
        for rank in (0, 1):
            data.trainer = SimpleNamespace(world_size=2, global_rank=rank)
            seen += [i for batch in data.loader(split) for i in batch["id"].tolist()]
        data.trainer = None
        assert sorted(seen) == sorted(data.splits[split][2].tolist())  # no sample twice, none left out


def test_ddp_run_counts_every_validation_and_test_sample_once(rafdb, tmp_path):
    data = _odd_splits(rafdb)
    store = tmp_path / "store"
    result = affectlab(
        "run", "--model", str(CONFIGS / "model/supervised.yaml"), "--config", str(TEST_CONFIGS / "tiny_supervised.yaml"),
        "--model.init_args.modalities", "[video]", "--data", str(CONFIGS / "data/rafdb.yaml"),
        "--data.init_args.root", str(rafdb), "--data.init_args.image_size", "32", "--data.init_args.batch_size", "4",
        "--config", str(CONFIGS / "trainer/ddp_cpu.yaml"), "--trainer.max_epochs", "1",
        "--trainer.enable_progress_bar", "false", "--store", str(store),
        timeout=400,
    )
    metrics = mlflow_client(store).get_run(printed_run_id(result.stdout)).data.metrics
    assert metrics["val/num_samples"] == len(data.splits["val"][0])
    assert metrics["test/num_samples"] == len(data.splits["test"][0])
    assert np.isfinite(metrics["test/acc"])
