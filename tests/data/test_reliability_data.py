"""Data reliability probes (issue 17 points 4, 5, 7, 8, 11), kept as tests.

- The malformed-input table: every reader in ``data/readers/`` reads a tiny copy that AffectSynth's exporter
  writes in its layout, with one file truncated, garbled or missing (or a folder mis-cased, a label row
  dangling); every row ends in a counted skip or a clear DataError/ConfigError naming the file, never another
  exception, and ``affectlab data check`` on the same copy exits 1 or 2 without a traceback.
- What ``data check`` flags is never dropped silently by a data module: an error under ``corrupt: raise``, a
  counted skip under ``skip``, and the counts reach the run (MLflow) of a real training run.
- A batch without a readable sample is left out and counted (it crashed a whole fit and test before); a split
  whose unreadable share passes ``max_unreadable_fraction`` stops before the first training step.
- ``data prepare`` refuses to resume or re-run with other options, naming the option.
- MMSA labels and shapes are validated; ``data check mmsa`` lists the problems, ``prepare`` stores no NaN.
"""

from __future__ import annotations

import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_DATA, affectlab_inline

from affectlab.data.registry import export_dataset, get_dataset
from affectlab.errors import ConfigError, DataError

SIZES = {k: TINY_DATA[k] for k in ("num_clips", "num_identities", "num_frames", "image_size")}
READERS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "src/affectlab/data/readers").glob("*.py")
                 if p.stem != "__init__")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_data) -> Callable[[str], Path]:
    """``exported(name)``: the tiny AffectSynth written in data set ``name``'s layout once per module (a pristine
    copy: tests break private copies of it)."""
    base = tmp_path_factory.mktemp("exported")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            root = base / name
            if name == "phoenix":  # AffectSynth sign draws its own sentences: its export is PHOENIX-2014T's layout
                from affectlab.data.synth.export_sign import export_sign

                export_sign(root, num_sentences=24, num_signers=3, vocabulary_size=8)
            elif name == "disfa":  # distributed as videos: the reader trains from the frames `data prepare` writes
                from affectlab.data.synth.datamodule import AffectSynthDataModule
                from affectlab.data.synth.export_disfa import export_disfa_frames

                synth = AffectSynthDataModule(root=str(tiny_data), **SIZES)
                synth.prepare_data()
                export_disfa_frames(synth.arrays, root)
            else:
                export_dataset(name, root, cache=tiny_data, **SIZES)
            made[name] = root
        return made[name]

    return get


def copy_of(exported, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(exported(name), target)
    return target


def first(root: Path, pattern: str) -> Path:
    found = sorted(p for p in root.glob(pattern) if p.is_file())
    assert found, f"no {pattern} under {root}"
    return found[0]


# -- corruptions: each takes the copy's root and returns the file (or folder) it broke --------------------------
def truncate(pattern: str, keep: float = 0.4) -> Callable[[Path], Path]:
    def apply(root: Path) -> Path:
        path = first(root, pattern)
        data = path.read_bytes()
        path.write_bytes(data[: max(1, int(len(data) * keep))])
        return path
    apply.__name__ = f"truncate {pattern}"
    return apply


def garble(pattern: str) -> Callable[[Path], Path]:
    def apply(root: Path) -> Path:
        path = first(root, pattern)
        path.write_bytes(np.random.default_rng(0).integers(0, 256, max(64, path.stat().st_size), np.uint8).tobytes())
        return path
    apply.__name__ = f"garble {pattern}"
    return apply


def empty(pattern: str) -> Callable[[Path], Path]:
    def apply(root: Path) -> Path:
        path = first(root, pattern)
        path.write_bytes(b"")
        return path
    apply.__name__ = f"empty {pattern}"
    return apply


def remove(pattern: str) -> Callable[[Path], Path]:
    def apply(root: Path) -> Path:
        path = first(root, pattern)
        path.unlink()
        return path
    apply.__name__ = f"remove {pattern}"
    return apply


def miscase(folder: str) -> Callable[[Path], Path]:
    """Rename class folder ``folder`` (a path under the root) to its lower-case name, as a re-upload does."""
    def apply(root: Path) -> Path:
        path = root / folder
        target = path.with_name(path.name.lower() if path.name != path.name.lower() else path.name.upper())
        path.rename(target)
        return target
    apply.__name__ = f"miscase {folder}"
    return apply


def drop_lines(pattern: str, count: int = 2) -> Callable[[Path], Path]:
    """Remove the last ``count`` lines of a text file (a label file missing frames the others list)."""
    def apply(root: Path) -> Path:
        path = first(root, pattern)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:-count]))
        return path
    apply.__name__ = f"drop lines of {pattern}"
    return apply


def append_line(pattern: str, line: str) -> Callable[[Path], Path]:
    def apply(root: Path) -> Path:
        path = first(root, pattern)
        path.write_text(path.read_text().rstrip("\n") + "\n" + line + "\n")
        return path
    apply.__name__ = f"append to {pattern}"
    return apply


def pickle_edit(change: Callable[[dict], None], what: str) -> Callable[[Path], Path]:
    def apply(root: Path) -> Path:
        path = root / "aligned_50.pkl"
        data = pickle.loads(path.read_bytes())
        change(data)
        path.write_bytes(pickle.dumps(data, protocol=4))
        return path
    apply.__name__ = what
    return apply


def _set_label(value):
    def change(data):
        labels = np.asarray(data["train"]["regression_labels"], dtype=object if isinstance(value, str) else np.float32)
        labels[1] = value
        data["train"]["regression_labels"] = labels
    return change


def _narrow_features(data):
    data["valid"]["vision"] = np.asarray(data["valid"]["vision"])[:, :, :-1]  # one feature fewer than train's


# reader file -> (data set, corruption, expected: "error" (DataError/ConfigError naming the file) or "skip"
# (counted: unreadable files or left-out samples), options for the data module)
TABLE = [
    ("afe", "afe", truncate("src/image/*/*.jpg"), "skip", {}),
    ("afe", "afe", remove("src/image/*/*.jpg"), "skip", {}),
    ("afe", "afe", garble("annos/TrainTest/Train.csv"), "error", {}),
    ("afe", "afe", empty("annos/TrainTest/Test.csv"), "error", {}),
    ("affectnet", "affectnet", truncate("Manually_Annotated_Images/*/*.jpg"), "skip", {}),
    ("affectnet", "affectnet", remove("Manually_Annotated_Images/*/*.jpg"), "skip", {}),
    ("affectnet", "affectnet", garble("Manually_Annotated_file_lists/training.csv"), "error", {}),
    ("caer", "caer", truncate("train/*/*.avi", 0.2), "skip", {}),
    ("caer", "caer", garble("train/*/*.avi"), "skip", {}),
    ("caer", "caer", miscase("train/Happy"), "error", {}),
    ("caer_s", "caer_s", truncate("train/*/*.png"), "skip", {}),
    ("caer_s", "caer_s", garble("train/*/*.png"), "skip", {}),
    ("caer_s", "caer_s", miscase("train/Happy"), "skip", {}),
    ("disfa", "disfa", truncate("Frames_LeftCamera/*/*.png"), "skip", {}),
    ("disfa", "disfa", remove("Frames_LeftCamera/*/*.png"), "skip", {}),
    ("disfa", "disfa", garble("ActionUnit_Labels/SN001/SN001_au1.txt"), "error", {}),
    ("disfa", "disfa", drop_lines("ActionUnit_Labels/SN001/SN001_au4.txt"), "error", {}),
    ("disfa", "disfa", remove("ActionUnit_Labels/SN001/SN001_au9.txt"), "error", {}),
    ("expw", "expw", truncate("image/origin/*.jpg"), "skip", {}),
    ("expw", "expw", remove("image/origin/*.jpg"), "skip", {}),
    ("expw", "expw", garble("label/label.lst"), "error", {}),
    ("fer2013", "fer2013", truncate("fer2013.csv", 0.5), "skip", {}),
    ("fer2013", "fer2013", garble("fer2013.csv"), "error", {}),
    ("folders", "caer_s", truncate("test/*/*.png"), "skip", {}),
    ("folders", "caer_s", miscase("test/Neutral"), "skip", {}),
    ("frame_tables", "openface", truncate("clip_*.csv", 0.5), "error", {}),
    ("frame_tables", "openface", garble("clip_*.csv"), "error", {}),
    ("frame_tables", "openface", remove("clip_*.csv"), "skip", {}),
    ("frame_tables", "pyfeat", truncate("clip_*.csv", 0.5), "error", {}),
    ("frame_tables", "pyfeat", remove("clip_*.csv"), "skip", {}),
    ("frame_tables", "pyfeat", garble("labels.csv"), "error", {}),
    ("meld", "meld", truncate("train_splits/*.mp4", 0.2), "skip", {}),
    ("meld", "meld", garble("train_splits/*.mp4"), "skip", {}),
    ("meld", "meld", garble("train_sent_emo.csv"), "error", {}),
    ("meld", "meld", remove("train_splits/*.mp4"), "skip", {}),
    ("meld", "meld", empty("dev_sent_emo.csv"), "error", {}),
    ("fer2013", "fer2013", empty("fer2013.csv"), "error", {}),
    ("rafdb", "rafdb", empty("basic/EmoLabel/list_patition_label.txt"), "error", {}),
    ("expw", "expw", empty("label/label.lst"), "error", {}),
    ("mmsa", "mmsa", empty("aligned_50.pkl"), "error", {}),
    ("mosei", "mosei", remove("CMU_MOSEI_Labels.csd"), "error", {}),
    ("affectnet", "affectnet", empty("Manually_Annotated_file_lists/validation.csv"), "error", {}),
    ("mmsa", "mmsa", truncate("aligned_50.pkl"), "error", {}),
    ("mmsa", "mmsa", garble("aligned_50.pkl"), "error", {}),
    ("mmsa", "mmsa", pickle_edit(_set_label(float("nan")), "a NaN label"), "error", {}),
    ("mmsa", "mmsa", pickle_edit(_set_label("positive"), "a string label"), "error", {}),
    ("mmsa", "mmsa", pickle_edit(_set_label(7.5), "a label out of range"), "error", {}),
    ("mmsa", "mmsa", pickle_edit(_narrow_features, "features narrower in one split"), "error", {}),
    ("mosei", "mosei", truncate("CMU_MOSEI_COVAREP.csd"), "error", {}),
    ("mosei", "mosei", garble("CMU_MOSEI_Labels.csd"), "error", {}),
    ("mosei", "mosei", garble("folds.json"), "error", {}),
    ("rafdb", "rafdb", truncate("basic/Image/aligned/train_*.jpg"), "skip", {}),
    ("rafdb", "rafdb", remove("basic/Image/aligned/train_*.jpg"), "skip", {}),
    ("rafdb", "rafdb", garble("basic/EmoLabel/list_patition_label.txt"), "error", {}),
    ("phoenix", "phoenix", truncate("poses/train/*.pose", 0.5), "skip", {}),
    ("phoenix", "phoenix", remove("poses/train/*.pose"), "skip", {}),
    ("phoenix", "phoenix", garble("annotations/manual/PHOENIX-2014-T.train.corpus.csv"), "error", {}),
    ("voxceleb2", "voxceleb2", truncate("dev/mp4/*/*/*.mp4", 0.2), "skip", {}),
    ("voxceleb2", "voxceleb2", garble("dev/mp4/*/*/*.mp4"), "skip", {}),
]


def data_root(name: str, root: Path) -> Path:
    spec = get_dataset(name)
    return root / spec.layout.split()[0] if spec.root_arg == "path" else root


def read_everything(name: str, root: Path, **options):
    """Open data set ``name`` at ``root`` and serve every sample of every split once (batches of one, so no
    sample is dropped by ``drop_last``); returns the data module."""
    module = get_dataset(name).open(str(data_root(name, root)), batch_size=1, **options)
    module.setup()
    for split in ("train", "val", "test"):
        for batch in module.loader(split):
            module.on_after_batch_transfer(batch, 0)
    return module


def counted(module) -> int:
    unreadable = len(module.unreadable.paths) if module.unreadable is not None else 0
    return unreadable + sum(module.skips.counts.values())


def test_the_table_covers_every_reader():
    assert sorted({row[0] for row in TABLE}) == READERS


@pytest.mark.parametrize(("reader", "name", "corrupt", "expected", "options"), TABLE,
                         ids=[f"{row[0]}-{row[1]}-{row[2].__name__}" for row in TABLE])
def test_malformed_input_is_a_counted_skip_or_a_clear_error(reader, name, corrupt, expected, options, exported,
                                                           tmp_path):
    root = copy_of(exported, name, tmp_path)
    broken = corrupt(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            module = read_everything(name, root, **options)
        except (DataError, ConfigError) as error:  # anything else fails the test: a raw traceback
            outcome, said = "error", str(error)
        else:
            outcome, said = "skip", " ".join(str(w.message) for w in caught)
            assert counted(module) > 0, f"{broken} left out without being counted"
    assert outcome == expected, said
    assert broken.name in said or broken.parent.name in said, f"the message does not name {broken}: {said}"
    result = affectlab_inline("data", "check", name, "--root", str(data_root(name, root)), check=False)
    printed = result.stdout + result.stderr
    assert "Traceback" not in printed, printed
    if expected == "error":  # 1: errors found, 2: the data set cannot be read
        assert result.returncode in (1, 2), printed
    else:  # an error, or a warning naming what the reader leaves out
        assert result.returncode in (1, 2) or broken.name in printed or broken.parent.name in printed, printed


# -- what data check flags, the data modules refuse or count ------------------------------------------------------
def test_a_miscased_class_folder_is_an_error_under_raise_and_a_counted_skip_under_skip(exported, tmp_path):
    from affectlab.data.readers.folders import FolderDataModule

    root = copy_of(exported, "caer_s", tmp_path)
    images = len(list((root / "train" / "Happy").glob("*.png")))
    (root / "train" / "Happy").rename(root / "train" / "happy")
    with pytest.raises(DataError, match=r"train/happy \(did you mean 'Happy'\?\).*rename each to one of Anger"):
        FolderDataModule("caer_s", str(root), corrupt="raise").setup()
    module = FolderDataModule("caer_s", str(root))
    with pytest.warns(UserWarning, match=r"1 folder\(s\) that are no class folder of caer_s"):
        module.setup()
    assert module.skips.counts == {"unknown_class_folder": images} and module.data_counts()[
        "data/left_out/unknown_class_folder"] == images


def test_openface_label_rows_without_a_table_are_an_error_under_raise_and_counted_under_skip(exported, tmp_path):
    from affectlab.data.readers.frame_tables import FrameTableDataModule

    root = copy_of(exported, "openface", tmp_path)
    first(root, "clip_*.csv").unlink()
    with open(root / "labels.csv", "a") as labels:
        labels.write("not_there.csv,happy,train\n")
    with pytest.raises(DataError, match=r"2 row\(s\) of labels.csv naming no table.*clip_00000.csv, .*not_there.csv"):
        FrameTableDataModule("openface", str(root), corrupt="raise").setup()
    module = FrameTableDataModule("openface", str(root))
    with pytest.warns(UserWarning, match="naming no table"):
        module.setup()
    assert module.skips.counts == {"label_without_file": 2}


def test_disfa_frames_without_an_image_are_an_error_under_raise_and_counted_under_skip(exported, tmp_path):
    from affectlab.data.readers.disfa import DisfaDataModule

    root = copy_of(exported, "disfa", tmp_path)
    remove("Frames_LeftCamera/SN002/*.png")(root)
    with pytest.raises(DataError, match=r"SN002 left: 1 of \d+ labelled frames have no image.*data prepare disfa"):
        DisfaDataModule(str(root), corrupt="raise").setup()
    module = DisfaDataModule(str(root))
    with pytest.warns(UserWarning, match="SN002 left"):
        module.setup()
    assert module.skips.counts == {"frame_without_image": 1}


# -- a batch without a readable sample; the unreadable share before training -------------------------------------
@pytest.fixture(scope="module")
def broken_caer_s(exported, tmp_path_factory) -> Path:
    """CAER-S with a mis-cased train folder and the first test batch (of two) wholly unreadable."""
    root = tmp_path_factory.mktemp("broken") / "caer_s"
    shutil.copytree(exported("caer_s"), root)
    for path in sorted((root / "test").rglob("*.png"))[:2]:  # the test split is served in index order
        path.write_bytes(b"\x89PNG garbage")
    (root / "train" / "Sad").rename(root / "train" / "sad")
    return root


def _run_on(root: Path, store: Path, *extra: str):
    from conftest import CONFIGS, TEST_CONFIGS, affectlab

    return affectlab(
        "run", "--model", str(CONFIGS / "model/supervised.yaml"), "--config", str(TEST_CONFIGS / "tiny_supervised.yaml"),
        "--model.init_args.modalities", "[video]", "--data", "caer_s", "--data.init_args.root", str(root),
        "--data.init_args.image_size", "32", "--data.init_args.batch_size", "2", "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "2", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--store", str(store), *extra, check=False)


class FrameMeans(__import__("lightning").pytorch.LightningModule):
    """The least a method does with a batch: read its frames (``batch["video"]``, the KeyError of issue 17.5)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 7)
        self.seen = {"train": 0, "test": 0}

    def loss(self, batch, stage: str) -> torch.Tensor:
        self.seen[stage] += len(batch["video"])
        logits = self.head(batch["video"].mean(dim=(1, 3, 4)))
        return torch.nn.functional.cross_entropy(logits, batch["targets"]["emotion"])

    def training_step(self, batch, batch_idx):
        return self.loss(batch, "train")

    def test_step(self, batch, batch_idx):
        self.loss(batch, "test")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(store: Path):
    from lightning.pytorch import Trainer
    from lightning.pytorch.loggers import MLFlowLogger

    logger = MLFlowLogger(experiment_name="reliability", tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
                          artifact_location=str(store / "artifacts"))
    return Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=2, logger=logger, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                   limit_val_batches=0), logger


def test_an_unreadable_batch_is_left_out_and_counted_in_a_real_fit_and_test(broken_caer_s, tmp_path):
    from conftest import mlflow_client

    from affectlab.data.readers.caer_s import CaerSDataModule

    tmp_path.joinpath("store").mkdir()
    trainer, logger = _trainer(tmp_path / "store")
    data, model = CaerSDataModule(str(broken_caer_s), image_size=16, batch_size=2), FrameMeans()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, datamodule=data)
        trainer.test(model, datamodule=data)
    tests = len(list((broken_caer_s / "test").rglob("*.png")))
    assert model.seen["test"] == tests - 2 and data.unreadable.empty_batches == 1
    metrics = mlflow_client(tmp_path / "store").get_run(logger.run_id).data.metrics
    assert metrics["data/unreadable"] == 2 and metrics["data/empty_batches"] == 1
    assert metrics["data/left_out/unknown_class_folder"] == len(list((broken_caer_s / "train" / "sad").glob("*.png")))


def test_an_unreadable_share_above_the_threshold_stops_a_real_fit_before_its_first_step(broken_caer_s, tmp_path):
    from affectlab.data.readers.caer_s import CaerSDataModule

    tmp_path.joinpath("store").mkdir()
    trainer, _ = _trainer(tmp_path / "store")
    data, model = CaerSDataModule(str(broken_caer_s), image_size=16, batch_size=2, max_unreadable_fraction=0.05), FrameMeans()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"caer_s test: 2 of \d+ images .* unreadable, more than "
                                            r"data.init_args.max_unreadable_fraction \(0.05\): .*test/Anger/0001.png"):
            trainer.fit(model, datamodule=data)
    assert model.seen["train"] == 0 and trainer.global_step == 0
    lenient = CaerSDataModule(str(broken_caer_s), image_size=16, batch_size=2, max_unreadable_fraction=0.5)
    trainer, _ = _trainer(tmp_path / "store")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(FrameMeans(), datamodule=lenient)  # under the threshold: named, counted, trained
    assert len(lenient.unreadable.paths) == 2 and trainer.global_step == 2


@pytest.mark.slow
def test_an_unreadable_batch_is_skipped_and_the_counts_reach_the_run(broken_caer_s, tmp_path):
    from conftest import mlflow_client, printed_run_id

    result = _run_on(broken_caer_s, tmp_path / "store")
    assert result.returncode == 0, result.stdout + result.stderr  # was KeyError: 'video' at test, after the fit
    metrics = mlflow_client(tmp_path / "store").get_run(printed_run_id(result.stdout)).data.metrics
    tests = len(list((broken_caer_s / "test").rglob("*.png")))
    assert metrics["test/num_samples"] == tests - 2
    assert metrics["data/unreadable"] == 2 and metrics["data/empty_batches"] >= 1
    assert metrics["data/left_out/unknown_class_folder"] == len(list((broken_caer_s / "train" / "sad").glob("*.png")))


@pytest.mark.slow
def test_an_unreadable_share_above_the_threshold_stops_before_training(broken_caer_s, tmp_path):
    result = _run_on(broken_caer_s, tmp_path / "store", "--data.init_args.max_unreadable_fraction", "0.05")
    printed = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in printed, printed
    assert "caer_s test: 2 of" in printed and "max_unreadable_fraction (0.05)" in printed
    assert "test/Anger/0001.png" in printed
    assert not list((tmp_path / "store").rglob("*.ckpt")), "it trained before stopping"


def test_a_split_without_any_readable_batch_is_a_clear_error(exported, tmp_path):
    from affectlab.data.readers.folders import FolderDataModule

    root = copy_of(exported, "caer_s", tmp_path)
    for path in (root / "test").rglob("*.png"):
        path.write_bytes(b"garbage")
    module = FolderDataModule("caer_s", str(root), batch_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"split 'test': no batch held a readable sample"):
            list(module.loader("test"))
    assert module.unreadable.empty_batches == -(-len(list((root / "test").rglob("*.png"))) // 2)


# -- data prepare records its options ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["openface", "pyfeat", "mosei", "mmsa"])
def test_prepare_refuses_another_max_rows_on_a_complete_store(name, exported, tmp_path):
    from affectlab.data.store.prepare import prepare

    raw = data_root(name, exported(name))
    prepare(name, str(raw), str(tmp_path / "store"), max_rows=50)
    prepare(name, str(raw), str(tmp_path / "store"), max_rows=50, shard_samples=7)  # the same samples: nothing to do
    with pytest.raises(ConfigError, match=r"complete store made with max_rows 50 \(not max_rows 40\).*delete .* to "
                                          "start over"):
        prepare(name, str(raw), str(tmp_path / "store"), max_rows=40)


def test_prepare_refuses_to_resume_with_other_options(exported, tmp_path, monkeypatch):
    from affectlab.data.store import prepare as preparing

    raw = exported("openface")
    original = preparing.store_samples

    def killed_after_ten(module, start):
        for count, sample in enumerate(original(module, start)):
            if count == 10:
                raise KeyboardInterrupt  # the kill, after two finished shards of four
            yield sample

    monkeypatch.setattr(preparing, "store_samples", killed_after_ten)
    with pytest.raises(KeyboardInterrupt):
        preparing.prepare("openface", str(raw), str(tmp_path / "store"), shard_samples=4, max_rows=50)
    monkeypatch.setattr(preparing, "store_samples", original)
    with pytest.raises(ConfigError, match=r"unfinished preparation made with max_rows 50 \(not max_rows 30\); run it "
                                          "again with the same options"):
        preparing.prepare("openface", str(raw), str(tmp_path / "store"), shard_samples=4, max_rows=30)
    other = tmp_path / "other"
    shutil.copytree(raw, other)
    with pytest.raises(ConfigError, match=r"raw '.*openface' \(not raw '.*other'\)"):
        preparing.prepare("openface", str(other), str(tmp_path / "store"), shard_samples=4, max_rows=50)
    preparing.prepare("openface", str(raw), str(tmp_path / "store"), shard_samples=4, max_rows=50)  # resumes
    assert (tmp_path / "store" / "index.json").is_file()


# -- MMSA labels and shapes --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "what", "message"), [
    (_set_label(float("nan")), "nan", r"split 'train': regression_labels is NaN or infinite at samples 1"),
    (_set_label("positive"), "string", (r"split 'train': regression_labels holds values that are not numbers "
                                        r"\(samples 1, e.g. 'positive'\)")),
    (_set_label(-4.0), "range", r"split 'train': regression_labels outside \[-3, 3\] at samples 1 \(e.g. -4\)"),
    (_narrow_features, "shape", r"split 'valid': vision has 11 features per step, split 'train' has 12"),
], ids=["nan", "string", "range", "shape"])
def test_mmsa_check_flags_bad_labels_and_shapes_and_prepare_stores_none(change, what, message, exported, tmp_path):
    from affectlab.data.readers.mmsa import MmsaDataModule
    from affectlab.data.store.prepare import prepare

    root = copy_of(exported, "mmsa", tmp_path)
    pickle_edit(change, what)(root)
    result = affectlab_inline("data", "check", "mmsa", "--root", str(root / "aligned_50.pkl"), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert any(line.startswith("error:") for line in result.stdout.splitlines()), result.stdout
    assert __import__("re").search(message, result.stdout.replace("\n", " ")), result.stdout
    with pytest.raises(DataError, match=message):
        MmsaDataModule(str(root / "aligned_50.pkl")).setup()
    with pytest.raises(DataError, match=message):
        prepare("mmsa", str(root / "aligned_50.pkl"), str(tmp_path / "store"))
    assert not (tmp_path / "store" / "index.json").exists()


# -- seeded random damage to any file of every exported layout ---------------------------------------------------
LABEL_SUFFIXES = (".csv", ".txt", ".lst", ".json", ".pkl", ".csd")
FUZZ_SEEDS = range(6)
FOUND_BY_FUZZING = {  # seeds that once ended in a raw exception, kept
    "fer2013": (3,),  # a cut CSV without train rows: ValueError num_samples=0 from torch's sampler
    "meld": (3,),  # flipped bytes in an MP4 header: AttributeError, a stream without a codec context
    "mosei": (6, 12),  # a damaged HDF5 heap or B-tree: h5py's RuntimeError
    "voxceleb2": (9, 15),  # MP4 metadata that is not UTF-8: PyAV's UnicodeDecodeError
}


def damage(root: Path, seed: int) -> Path:
    """Flip 2 % of the bytes of, cut short, or append garbage to one file under ``root`` (a label or feature
    file on even seeds where the layout has one), chosen by ``seed``; returns it."""
    rng = np.random.default_rng(seed)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    labels = [p for p in files if p.suffix.lower() in LABEL_SUFFIXES]
    pool = labels if labels and seed % 2 == 0 else files
    path = pool[rng.integers(len(pool))]
    data = bytearray(path.read_bytes())
    if seed % 3 == 0 and data:
        for i in rng.integers(0, len(data), max(1, len(data) // 50)):
            data[i] = rng.integers(0, 256)
    elif seed % 3 == 1:
        data = data[: rng.integers(0, max(1, len(data)))]
    else:
        data += bytes(rng.integers(0, 256, 100, dtype=np.uint8))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", sorted({row[1] for row in TABLE}))
def test_seeded_random_damage_never_ends_in_a_raw_exception(name, exported, tmp_path):
    for seed in sorted({*FUZZ_SEEDS, *FOUND_BY_FUZZING.get(name, ())}):
        root = tmp_path / f"{name}_{seed}"
        shutil.copytree(exported(name), root)
        broken = damage(root, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                read_everything(name, root)  # harmless damage (a flipped pixel) reads; a counted skip reads
            except (DataError, ConfigError):
                pass
            except Exception as error:  # noqa: BLE001  (what this test exists to catch)
                pytest.fail(f"{name}, seed {seed}, {broken.relative_to(root)}: {type(error).__name__}: {error}")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted({row[1] for row in TABLE}))
def test_many_seeds_of_damage_never_end_in_a_raw_exception_in_the_reader_or_data_check(name, exported, tmp_path):
    """48 seeds per layout through the reader and through ``data check`` (minutes: outside CI)."""
    import contextlib
    import io

    from affectlab.data.registry import check_dataset

    for seed in range(48):
        root = tmp_path / f"{name}_{seed}"
        shutil.copytree(exported(name), root)
        broken = damage(root, seed)
        for step in ("reader", "check"):
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                try:
                    if step == "reader":
                        read_everything(name, root)
                    else:
                        check_dataset(name, str(data_root(name, root)))
                except (DataError, ConfigError):
                    pass
                except Exception as error:  # noqa: BLE001  (what this test exists to catch)
                    pytest.fail(f"{step} {name}, seed {seed}, {broken.relative_to(root)}: {type(error).__name__}: "
                                f"{error}")
        shutil.rmtree(root)
