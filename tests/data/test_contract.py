"""The batch contract, executable: ``check_batch`` names what is wrong, and every data config's data module,
built on tiny data exported in its layout, serves batches that keep it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, TINY_DATA

from affectlab.data import AffectSynthDataModule, CompositeSineDataModule, FeatureStoreDataModule
from affectlab.data.contract import check_batch
from affectlab.data.registry import export_dataset, specs
from affectlab.data.spec import resolve
from affectlab.data.store.prepare import prepare
from affectlab.errors import DataError

DATA_CONFIGS = sorted((CONFIGS / "data").glob("*.yaml"))
SIZES = {k: TINY_DATA[k] for k in ("num_clips", "num_identities", "num_frames", "image_size")}


@pytest.fixture
def batch(datamodule):
    return next(iter(datamodule.val_dataloader()))


def test_a_batch_of_affectsynth_keeps_the_contract(datamodule, batch):
    check_batch(batch, datamodule.modalities, datamodule.tasks)


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b.pop("video_mask"), r"no 'video_mask', the padding mask of 'video'"),
    (lambda b: b.pop("audio"), r"no 'audio', which the data module declares"),
    (lambda b: b.__setitem__("text", b["text"].float()), r"batch\['text'\]: token ids of dtype torch.float32"),
    (lambda b: b.__setitem__("video", b["video"].flatten(1, 2)), r"batch\['video'\]: shape \[8, \d+, 32, 32\]"),
    (lambda b: b.__setitem__("video_mask", b["video_mask"].long()), r"batch\['video_mask'\]: dtype torch.int64"),
    (lambda b: b.__setitem__("audio_mask", b["audio_mask"][:, :5]), r"batch\['audio_mask'\]: shape \[8, 5\]"),
    (lambda b: b["targets"].__setitem__("emotion", b["targets"]["emotion"].float()),
     r"batch\['targets'\]\['emotion'\]: torch.float32 of shape \[8\]; the contract wants long \[B\]"),
    (lambda b: b["target_mask"].pop("au"), r"batch\['target_mask'\]: no 'au'"),
    (lambda b: b.__setitem__("id", b["id"][:3]), r"batch\['id'\]: 3 samples \(shape \[3\]\), the batch holds 8"),
    (lambda b: b["targets"].pop("sentiment"), r"batch\['targets'\]: no 'sentiment'"),
    (lambda b: b.pop("id"), r"batch: no 'id'"),
])
def test_a_broken_batch_is_named_by_key_shape_and_dtype(datamodule, batch, change, message):
    change(batch)
    with pytest.raises(DataError, match=message):
        check_batch(batch, datamodule.modalities, datamodule.tasks)


def test_a_data_module_that_declares_no_modality_fails(batch):
    with pytest.raises(DataError, match="declares no modality"):
        check_batch(batch, (), ("emotion",))
    with pytest.raises(DataError, match="'pose_' is not a modality"):
        check_batch(batch, ("video", "pose_"), ())


def _spec_of(class_path: str, init_args: dict):
    cls = resolve(class_path)
    named = init_args.get("name") or init_args.get("format")
    matches = [s for s in specs() if resolve(s.reader) is cls and (named is None or s.name == named)]
    assert len(matches) == 1, f"{class_path} {named}: {[s.name for s in matches]}"
    return matches[0]


def _build(config: Path, tiny_data: Path, tmp_path: Path):
    text = yaml.safe_load(config.read_text())
    cls, args = resolve(text["class_path"]), dict(text["init_args"])
    if cls is AffectSynthDataModule:
        args.update(root=str(tiny_data), **SIZES)
    elif text["class_path"] == "affectlab.data.MultiTaskDataModule":  # one AffectSynth per task, each tiny
        args["datasets"] = {name: resolve(m["class_path"])(**{**m["init_args"], "root": str(tiny_data), **SIZES,
                                                               "batch_size": 4}) for name, m in args["datasets"].items()}
    elif cls is FeatureStoreDataModule:
        export_dataset("mosei", tmp_path / "mosei", cache=tiny_data, **SIZES)
        prepare("mosei", str(tmp_path / "mosei"), str(tmp_path / "store"))
        args["root"] = str(tmp_path / "store")
    elif cls is CompositeSineDataModule:  # generated in memory from its formulas: nothing to export or point at
        pass
    else:
        spec = _spec_of(text["class_path"], args)
        root = tmp_path / spec.name
        if spec.name == "disfa":  # distributed as videos: its reader trains from the frames `data prepare` writes
            from affectlab.data.synth.export_disfa import export_disfa_frames

            synth = AffectSynthDataModule(root=str(tiny_data), **SIZES)
            synth.prepare_data()
            export_disfa_frames(synth.arrays, root)
        else:
            export_dataset(spec.name, root, cache=tiny_data, **SIZES)
        args[spec.root_arg] = str(root / spec.layout.split()[0] if spec.root_arg == "path" else root)
    args["batch_size"] = 4
    return cls(**args)


@pytest.mark.parametrize("config", DATA_CONFIGS, ids=[c.stem for c in DATA_CONFIGS])
def test_every_data_config_serves_batches_that_keep_the_contract(config, tiny_data, tmp_path):
    data = _build(config, tiny_data, tmp_path)
    data.setup("fit")
    for loader in (data.train_dataloader(), data.val_dataloader()):
        batch = next(iter(loader))
        if isinstance(batch, tuple):  # a CombinedLoader's (batch, batch_idx, dataloader_idx)
            batch = batch[0]
        batch = data.on_after_batch_transfer(data.on_before_batch_transfer(batch, 0), 0)
        check_batch(batch, data.modalities, data.tasks)
