"""PHOENIX-2014T's readers on files in the exact layouts (AffectSynth sign's export: the corpus CSVs and the
multimodalhugs TSVs, poses written by pose-format): what they serve, signers, missing and unreadable poses,
partial files, and ``affectlab data check phoenix``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import affectlab_inline

from affectlab.data import AffectSynthSignDataModule, PhoenixDataModule
from affectlab.data.contract import check_batch
from affectlab.data.pose import holistic_header, make_pose, pose_bytes
from affectlab.data.readers.phoenix import scan
from affectlab.data.synth.export_sign import export_sign
from affectlab.errors import DataError

SIZE = {"num_sentences": 24, "num_signers": 3, "vocabulary_size": 8}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("phoenix") / "phoenix"
    export_sign(out, **SIZE)
    return out


@pytest.fixture
def copy(exported, tmp_path):
    return shutil.copytree(exported, tmp_path / "phoenix")


def test_the_corpus_layout_serves_what_affectsynth_sign_serves(exported):
    data = PhoenixDataModule(root=str(exported), batch_size=4)
    synth = AffectSynthSignDataModule(root=None, **SIZE)
    data.setup(), synth.setup()
    assert data.listing.annotations == "corpus" and data.signers == ["Signer01", "Signer02", "Signer03"]
    for split in ("train", "val", "test"):
        assert data.sentences(split) == synth.sentences(split)
    batch = next(iter(data.val_dataloader()))
    check_batch(batch, data.modalities, data.tasks)
    reference = next(iter(synth.val_dataloader()))
    for key in ("pose", "pose_mask", "pose_points_mask"):
        assert np.array_equal(batch[key].numpy(), reference[key].numpy()), key
    assert batch["targets"] == reference["targets"]
    assert batch["subject"].tolist() == reference["subject"].tolist()
    assert (data.num_keypoints, data.num_channels, data.frame_size) == (178, 3, 534)
    own = PhoenixDataModule(root=str(exported), keypoints="file", reduce_holistic=False)  # the files' own 203 points
    assert own.num_keypoints == 33 + 128 + 21 + 21 and own.load(own.rows("test")[0]).data.shape[1:] == (203, 3)


def test_the_multimodalhugs_tsvs_and_a_time_window(copy):
    tsv = copy / "multimodalhugs/dev.tsv"
    lines = tsv.read_text().splitlines()
    first = lines[1].split("\t")
    lines.append("\t".join([str(copy / first[0]), "400", "800", "__dgs__", "__de__", "ein fenster ."]))  # absolute
    tsv.write_text("\n".join(lines) + "\n")
    data = PhoenixDataModule(root=str(copy), annotations="tsv", batch_size=2)
    data.setup()
    rows = data.rows("val")
    assert data.listing.annotations == "tsv" and rows[-1].translation == "ein fenster ."
    assert rows[0].speaker.startswith("Signer") and rows[0].gloss  # taken from the corpus CSVs beside them
    window = data.load(rows[-1])
    assert len(window.data) == 10  # 400 to 800 ms at 25 fps
    shutil.rmtree(copy / "annotations")
    alone = PhoenixDataModule(root=str(copy), batch_size=2)
    alone.setup()
    assert alone.listing.annotations == "tsv" and alone.signers == ["unknown"] and alone.rows("train")[0].gloss == ""
    check_batch(next(iter(alone.train_dataloader())), alone.modalities, alone.tasks)


def test_missing_and_unreadable_poses_are_skipped_and_counted_or_raised(copy):
    train = sorted((copy / "poses/train").glob("*.pose"))
    train[0].unlink()
    train[1].write_bytes(train[1].read_bytes()[:200])  # truncated
    data = PhoenixDataModule(root=str(copy), batch_size=64)
    with pytest.warns(UserWarning, match="1 rows whose .pose file is missing"):
        data.setup()
    assert data.skips.counts == {"missing_pose": 1} and len(data.rows("train")) == len(train) - 1
    with pytest.warns(UserWarning, match="skipped unreadable pose file"):
        batch = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert len(batch["id"]) == len(train) - 2 and "skipped" not in batch
    assert len(data.unreadable.paths) == 1 and train[1].name in data.unreadable.paths[0]
    with pytest.raises(DataError, match="missing"):
        PhoenixDataModule(root=str(copy), corrupt="raise").setup()


def test_a_file_with_only_a_body_is_served_with_face_and_hands_masked(copy):
    target = sorted((copy / "poses/test").glob("*.pose"))[0]
    header = holistic_header(256, 256, components=("POSE_LANDMARKS",))
    data = np.random.default_rng(0).uniform(50, 200, (30, 33, 3)).astype(np.float32)
    target.write_bytes(pose_bytes(make_pose(header, data, np.ones((30, 33)), fps=25)))
    module = PhoenixDataModule(root=str(copy))
    row = next(r for r in module.rows("test") if r.pose == target)
    arrays = module.load(row)
    assert arrays.points_mask[:, :6].all() and not arrays.points_mask[:, 8:].any() and arrays.frame_mask.all()
    result = affectlab_inline("data", "check", "phoenix", "--root", str(copy))
    assert "components POSE_LANDMARKS (33): 1 file(s)" in result.stdout.replace("\n", " ")
    assert "no FACE_LANDMARKS, LEFT_HAND_LANDMARKS, RIGHT_HAND_LANDMARKS: masked" in result.stdout


def _table(text: str) -> dict[str, list[int]]:
    """The check's table rows: split -> rows, frames, glosses, tokens, missing, unreadable."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 7 and cells[0] in ("train", "dev", "test"):
            rows[cells[0]] = [int(c) for c in cells[1:]]
    return rows


def test_data_check_counts_rows_frames_glosses_tokens_and_names_bad_files(copy, exported):
    listing = scan(exported)
    result = affectlab_inline("data", "check", "phoenix", "--root", str(exported))
    table = _table(result.stdout)
    dev = [r for r in listing.rows if r.split == "val"]
    frames = sum(len(PhoenixDataModule(root=str(exported)).load(r).data) for r in dev)
    assert table["dev"] == [len(dev), frames, sum(len(r.gloss.split()) for r in dev),
                            sum(len(r.translation.split()) for r in dev), 0, 0]
    assert sum(t[0] for t in table.values()) == SIZE["num_sentences"]
    text = result.stdout.replace("\n", " ")
    assert ("components POSE_LANDMARKS (33), FACE_LANDMARKS (128), LEFT_HAND_LANDMARKS (21), RIGHT_HAND_LANDMARKS "
            "(21): 24 file(s)") in text and "signers in more than one split" in text and "OK: 0 error(s)" in text
    quick = affectlab_inline("data", "check", "phoenix", "--root", str(exported), "--quick")
    assert _table(quick.stdout) == table  # the frame counts from the header alone
    bad = sorted((copy / "poses/dev").glob("*.pose"))
    bad[0].write_bytes(b"not a pose")
    bad[1].unlink()
    failed = affectlab_inline("data", "check", "phoenix", "--root", str(copy), check=False)
    assert failed.returncode == 1 and f"unreadable: {bad[0]}" in failed.stdout.replace("\n", "")
    assert _table(failed.stdout)["dev"][4:] == [1, 1] and "1 row(s) without their .pose file" in failed.stdout
