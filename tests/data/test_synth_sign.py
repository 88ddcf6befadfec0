"""AffectSynth sign: the grammar reorders, the generator is byte-for-byte deterministic, the data module keeps
the pose-translation contract, and its PHOENIX-layout export is read back by pose-format."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import affectlab_inline

from affectlab.data import AffectSynthSignDataModule
from affectlab.data.contract import check_batch
from affectlab.data.pose import FACE_CONTOUR, HAND_POINTS, PoseOptions, pose_arrays, read_pose
from affectlab.data.synth.sign import SignConfig, generate, sample_name
from affectlab.data.synth.sign_grammar import NOUNS, VERBS, draw_sentence, vocabulary
from affectlab.errors import ConfigError, DataError

TINY = {"num_sentences": 24, "num_signers": 3, "vocabulary_size": 8}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_sign") / "export"
    result = affectlab_inline("data", "export", "synth_sign", "--out", str(out), "--num-clips", "24",
                              "--num-identities", "3")
    assert "wrote synth_sign" in result.stdout
    return out


def test_glosses_are_verb_final_and_the_sentence_is_v2_with_articles_and_inflections():
    words = vocabulary(31)
    seen_time = seen_plain = False
    for i in range(200):
        sentence = draw_sentence(np.random.default_rng(i), words)
        verb = next(v for v in VERBS if v[0] in sentence.glosses)
        tokens = sentence.translation.split()
        assert tokens[-1] == "." and sentence.translation == sentence.translation.lower()
        body = [g for g in sentence.glosses if g != "NICHT"]
        assert body[-1] == verb[0]  # verb-final glosses (NICHT after the verb)
        if sentence.glosses[0] in ("HEUTE", "MORGEN", "JETZT", "MONTAG"):
            seen_time = True
            lead = 2 if sentence.glosses[0] == "MONTAG" else 1  # "am montag"
            assert tokens[lead] == verb[1]  # V2: the inflected verb right after the time adverbial
        else:
            seen_plain = True
            assert tokens[0] in ("der", "die", "das") and verb[1] in tokens[2:5]
    assert seen_time and seen_plain
    drawn = [draw_sentence(np.random.default_rng(i), words) for i in range(3000)]
    # the object (glossed first) takes the accusative, a masculine one with the weak ending "-en"
    hund = next(s for s in drawn if s.glosses[:2] == ("HUND", "KLEIN"))
    assert "den kleinen hund" in hund.translation
    katze = next(s for s in drawn if s.glosses[:2] == ("KATZE", "ALT"))
    assert "die alte katze" in katze.translation
    subject = next(s for s in drawn if s.glosses[-3:] == ("MANN", "ROT", "SEHEN"))
    assert subject.translation.startswith("der rote mann sieht ")


def test_a_vocabulary_is_a_prefix_of_a_larger_one_and_its_size_is_checked():
    small, large = vocabulary(8), vocabulary(24)
    assert len(small.glosses) == 8 and len(large.glosses) == 24
    assert large.nouns[:len(small.nouns)] == small.nouns and small.nouns[0] == NOUNS[0]
    with pytest.raises(ConfigError, match="vocabulary_size"):
        AffectSynthSignDataModule(root=None, vocabulary_size=99)


def test_two_generations_give_identical_bytes_and_a_sample_does_not_depend_on_the_count(exported, tmp_path):
    again = tmp_path / "again"
    affectlab_inline("data", "export", "synth_sign", "--out", str(again), "--num-clips", "24", "--num-identities", "3")
    first, second = _files(exported), _files(again)
    assert first == second and len([f for f in first if f.endswith(".pose")]) == 24
    fewer = generate(SignConfig(num_sentences=5, num_signers=3, vocabulary_size=24))
    more = generate(SignConfig(num_sentences=9, num_signers=3, vocabulary_size=24))
    assert all(np.array_equal(a.data, b.data) and a.sentence == b.sentence for a, b in zip(fewer, more))
    other = generate(SignConfig(num_sentences=5, num_signers=3, vocabulary_size=24, seed=1))
    assert not np.array_equal(other[0].data[:5], fewer[0].data[:5])


def test_the_export_is_laid_out_as_phoenix_and_read_back_by_pose_format(exported):
    rows = (exported / "annotations/manual/PHOENIX-2014-T.train.corpus.csv").read_text().splitlines()
    assert rows[0] == "name|video|start|end|speaker|orth|translation"
    name, video, start, end, speaker, orth, translation = rows[1].split("|")
    assert video == f"{name}/1/*.png" and (start, end) == ("-1", "-1") and speaker.startswith("Signer")
    tsv = (exported / "multimodalhugs/train.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["signal", "signal_start", "signal_end", "encoder_prompt", "decoder_prompt", "output"]
    signal, s0, s1, _, _, output = tsv[1].split("\t")
    assert (s0, s1) == ("0", "0") and output == translation and signal == f"poses/train/{name}.pose"
    pose = read_pose(exported / signal)
    assert [c.name for c in pose.header.components] == ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                                                        "RIGHT_HAND_LANDMARKS"]
    assert pose.header.components[1].points == list(FACE_CONTOUR) and pose.header.components[2].points == list(HAND_POINTS)
    index = int(name.split("-")[1])
    sample = generate(SignConfig(num_sentences=max(index + 1, 3), num_signers=3, vocabulary_size=24))[index]
    assert sample.sentence.gloss == orth and sample.sentence.translation == translation
    assert np.array_equal(np.ma.getdata(pose.body.data)[:, 0], sample.data)
    assert np.array_equal(np.asarray(pose.body.confidence)[:, 0], sample.confidence)
    counts = {s: len((exported / f"annotations/manual/PHOENIX-2014-T.{s}.corpus.csv").read_text().splitlines()) - 1
              for s in ("train", "dev", "test")}
    assert sum(counts.values()) == 24 and min(counts.values()) >= 1


def test_the_data_module_keeps_the_pose_translation_contract(caplog):
    data = AffectSynthSignDataModule(root=None, batch_size=4, max_frames=40, **TINY)
    with caplog.at_level(logging.WARNING, logger="affectlab.data.synth.sign"):
        data.setup("fit")
    assert "longer than max_frames=40" in caplog.text
    assert (data.modalities, data.tasks, data.class_names) == (("pose",), ("translation",), {})
    assert (data.num_keypoints, data.num_channels, data.frame_size) == (178, 3, 534)
    batch = next(iter(data.train_dataloader()))
    check_batch(batch, data.modalities, data.tasks)
    pose, mask, points = batch["pose"], batch["pose_mask"], batch["pose_points_mask"]
    assert pose.dtype == torch.float32 and pose.shape[0] == 4 and pose.shape[1] <= 40 and pose.shape[2:] == (178, 3)
    assert points.shape == pose.shape[:3] and mask.shape == pose.shape[:2]
    assert (pose[~points] == 0).all() and not points[~mask].any()  # padding and missing points hold 0, masked
    assert not points[..., 6:8].any()  # the hips, hidden with the legs
    assert len(batch["targets"]["translation"]) == 4 and all(g.isupper() for g in batch["targets"]["gloss"])
    assert batch["subject"].dtype == torch.long and batch["id"].dtype == torch.long
    train = data.sentences("train")
    assert len(train) == len(data.dataset("train")) and set(train).isdisjoint(set()) and train[0].endswith(" .")
    assert set(data.splits["train"]).isdisjoint(data.splits["test"])
    signer = AffectSynthSignDataModule(root=None, split="signer", **TINY)
    signer.setup()
    signers = {s: set(signer.arrays["signers"][signer.splits[s]]) for s in ("train", "val", "test")}
    assert signers["train"].isdisjoint(signers["test"]) and signers["train"].isdisjoint(signers["val"])


def test_the_served_poses_are_pose_formats_preprocessing_of_the_written_files(exported, tmp_path):
    data = AffectSynthSignDataModule(root=str(tmp_path), **{**TINY, "vocabulary_size": 24})
    data.setup()
    cached = AffectSynthSignDataModule(root=str(tmp_path), **{**TINY, "vocabulary_size": 24})
    cached.setup()  # read back from the cache written by the first
    assert data.cache_path().is_file() and np.array_equal(cached.arrays["data"], data.arrays["data"])
    for index in (0, 5):
        folder = next(s for s in ("train", "dev", "test") if (exported / f"poses/{s}/{sample_name(index)}.pose").exists())
        arrays = pose_arrays(read_pose(exported / f"poses/{folder}/{sample_name(index)}.pose"), PoseOptions())
        served, frames, points = data.sample_arrays(index)
        assert np.array_equal(arrays.data, served) and np.array_equal(arrays.points_mask, points)
        assert np.array_equal(arrays.frame_mask, frames)


def test_a_broken_pose_batch_is_named_by_the_contract():
    data = AffectSynthSignDataModule(root=None, batch_size=3, **TINY)
    batch = next(iter(data.val_dataloader()))
    broken = dict(batch, pose_points_mask=batch["pose_points_mask"][:, :, :5])
    with pytest.raises(DataError, match=r"pose_points_mask.*bool \[B, T, K\]"):
        check_batch(broken, data.modalities, data.tasks)
    broken = dict(batch, targets={**batch["targets"], "translation": batch["targets"]["translation"][:1]})
    with pytest.raises(DataError, match=r"'translation'\]: 1 strings, the batch holds 3"):
        check_batch(broken, data.modalities, data.tasks)
    broken = dict(batch, targets={**batch["targets"], "gloss": "A B"})
    with pytest.raises(DataError, match=r"'gloss'\]: not a list of 3 strings"):
        check_batch(broken, data.modalities, data.tasks)
