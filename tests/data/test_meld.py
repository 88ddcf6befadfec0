"""MELD (data/meld.py) read from files written in its exact layout (export_meld): official splits, labels in
the canonical order, speakers; bad input names its file and line; a fuzz test of malformed rows and clips."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch

from affectlab.data.check import check_video_dataset
from affectlab.data.contract import EMOTIONS
from affectlab.data.readers.meld import COLUMNS, MELD_TO_CANONICAL, SENTIMENTS, MeldDataModule, read_meld_csv
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_meld
from affectlab.data.media.video import VideoDecodeError
from affectlab.data.media.video_clips import sample_frames
from affectlab.errors import DataError

SMALL = SynthConfig(num_clips=14, num_identities=7, num_frames=8, image_size=64, styles=("shaded",))


@pytest.fixture(scope="module")
def meld_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("meld")
    arrays = ensure(root / "synth", SMALL, progress=False)
    counts = export_meld(arrays, root / "MELD.Raw")
    assert counts == {"train": 10, "val": 2, "test": 2}
    return root / "MELD.Raw"


@pytest.fixture
def meld_copy(meld_root, tmp_path):
    """A private copy to damage."""
    return shutil.copytree(meld_root, tmp_path / "MELD.Raw")


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _write_rows(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def test_official_splits_labels_in_canonical_order_and_speakers(meld_root):
    module = MeldDataModule(str(meld_root), num_frames=4, image_size=32, batch_size=4)
    module.setup()
    assert {split: len(index) for split, index in module.splits.items()} == {"train": 10, "val": 2, "test": 2}
    # Every clip's labels are its CSV row's, mapped: MELD's name -> canonical index, sentiment -> class and score.
    for split, csv_name, folder in (("train", "train_sent_emo.csv", "train_splits"),
                                    ("val", "dev_sent_emo.csv", "dev_splits_complete"),
                                    ("test", "test_sent_emo.csv", "output_repeated_splits_test")):
        header, *rows = _rows(meld_root / csv_name)
        assert tuple(header) == COLUMNS
        clips = {module.clips[i].name: module.clips[i] for i in module.splits[split]}
        assert len(clips) == len(rows)
        for row in rows:
            clip = clips[f"dia{row[5]}_utt{row[6]}"]
            assert clip.path == meld_root / folder / f"dia{row[5]}_utt{row[6]}.mp4"
            assert clip.targets["emotion"] == EMOTIONS.index(MELD_TO_CANONICAL[row[3]])
            assert clip.targets["sentiment_class"] == SENTIMENTS.index(row[4])
            assert clip.targets["sentiment"] == SENTIMENTS.index(row[4]) - 1.0
    speakers = _speaker_of(module, meld_root)  # each clip's speaker name, in clip order
    assert module.subjects().tolist() == [sorted(set(speakers)).index(name) for name in speakers]
    batch = next(iter(module.test_dataloader()))
    assert batch["video"].shape == (2, 4, 3, 32, 32) and batch["video_mask"].all()
    assert 0.0 <= batch["video"].min() and batch["video"].max() <= 1.0 and batch["video"].std() > 0.05
    assert batch["targets"]["emotion"].dtype == torch.long and batch["targets"]["sentiment"].dtype == torch.float32
    assert set(batch["target_mask"]) == {"emotion", "sentiment_class", "sentiment"}
    assert module.class_counts("emotion").sum() == 10 and module.class_counts("sentiment_class").shape == (3,)


def _speaker_of(module, root):
    """Each clip's speaker name, from the CSV files."""
    names = {}
    for split, csv_name in (("train", "train_sent_emo.csv"), ("val", "dev_sent_emo.csv"), ("test", "test_sent_emo.csv")):
        for row in _rows(root / csv_name)[1:]:
            names[(split, f"dia{row[5]}_utt{row[6]}")] = row[2]
    return [names[(clip.split, clip.name)] for clip in module.clips]


def test_frames_are_the_clips_own(meld_root):
    """The served frames are the video's frames resized (not another clip's, not blank)."""
    from PIL import Image

    module = MeldDataModule(str(meld_root), num_frames=8, image_size=40)
    module.setup()
    sample = module.dataset("val")[0]
    decoded = sample_frames(module.clips[module.splits["val"][0]].path, 8).frames
    expected = np.asarray(Image.fromarray(decoded[3].image).resize((40, 40), Image.BILINEAR))
    served = (sample["video"][3].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(served - expected).mean() < 1.0


def test_bad_input_names_the_file_and_what_was_expected(meld_copy, tmp_path):
    with pytest.raises(DataError, match=r"(?s)root .*nowhere is not a folder.*train_sent_emo\.csv"):
        MeldDataModule(str(tmp_path / "nowhere")).setup()
    rows = _rows(meld_copy / "train_sent_emo.csv")
    rows[2][3] = "happy"  # not one of MELD's names (MELD says joy)
    _write_rows(meld_copy / "train_sent_emo.csv", rows)
    with pytest.raises(DataError, match=r"train_sent_emo\.csv:3: Emotion 'happy' is not one of MELD's seven \(neutral, joy"):
        MeldDataModule(str(meld_copy)).setup()
    (meld_copy / "dev_sent_emo.csv").unlink()
    with pytest.raises(DataError, match=r"(?s)dev_sent_emo\.csv is missing; expected MELD's CSV files"):
        MeldDataModule(str(meld_copy)).setup()
    _write_rows(meld_copy / "dev_sent_emo.csv", [["Sr No.", "Utterance", "Speaker", "Emotion"]])
    with pytest.raises(DataError, match=r"dev_sent_emo\.csv:1: header lacks column\(s\) \['Sentiment', 'Dialogue_ID'"):
        MeldDataModule(str(meld_copy)).setup()
    shutil.rmtree(meld_copy / "output_repeated_splits_test")
    _write_rows(meld_copy / "dev_sent_emo.csv", [COLUMNS])
    _write_rows(meld_copy / "train_sent_emo.csv", [COLUMNS])
    with pytest.raises(DataError, match=r"(?s)output_repeated_splits_test is missing \(for test_sent_emo\.csv\)"):
        MeldDataModule(str(meld_copy)).setup()


def test_missing_and_damaged_clips_are_left_out_and_reported(meld_copy):
    clips = sorted((meld_copy / "train_splits").glob("*.mp4"))
    clips[0].unlink()  # MELD's own train set lacks a clip: left out with a warning
    clips[1].write_bytes(clips[1].read_bytes()[:500])  # truncated: FFmpeg cannot open it
    module = MeldDataModule(str(meld_copy), num_frames=2, image_size=16, batch_size=16)
    with pytest.warns(UserWarning, match=rf"1 listed clip\(s\) are missing on disk: .*{clips[0].name}.*; left out"):
        module.setup()
    assert len(module.splits["train"]) == 9
    batch = next(iter(module.train_dataloader()))
    assert batch["skipped"] == [str(clips[1])] and len(batch["id"]) == 8  # the unreadable one skipped
    strict = MeldDataModule(str(meld_copy), num_frames=2, image_size=16, corrupt="raise")
    with pytest.warns(UserWarning):
        strict.setup()
    with pytest.raises(DataError, match=rf"{clips[1].name}: cannot open as a video.*corrupt: skip"):
        strict.dataset("train")[[c.path for c in strict.clips].index(clips[1])]
    report = check_video_dataset("meld", meld_copy)
    assert any(clips[1].name in e and "unreadable" in e for e in report.errors)
    assert any(clips[0].name in w and "missing" in w for w in report.warnings)


def test_check_reports_speakers_shared_between_splits_as_meld_has_them(meld_copy):
    report = check_video_dataset("meld", meld_copy, decode=False)
    assert report.errors == [] and report.identities == "none (7 speakers)"
    assert sum(report.counts["train"]) == 10 and any("sentiment" in n for n in report.notes)
    rows = _rows(meld_copy / "test_sent_emo.csv")
    rows[1][2] = _rows(meld_copy / "train_sent_emo.csv")[1][2]  # a train speaker speaks in test, as in MELD
    _write_rows(meld_copy / "test_sent_emo.csv", rows)
    report = check_video_dataset("meld", meld_copy, decode=False)
    assert report.errors == [] and "train & test: 1" in report.identities
    assert any("not speaker-independent" in w for w in report.warnings)


def test_fuzz_malformed_rows_give_file_and_line_never_a_crash(meld_root, tmp_path):
    """Seeded random damage to MELD rows: every damaged row is reported with its file and line, every intact
    row is read, and nothing but a DataError ever leaves the reader."""
    header, *good = _rows(meld_root / "train_sent_emo.csv")
    rng = np.random.default_rng(0)

    def damage(row):
        row = list(row)
        kind = rng.integers(6)
        if kind == 0:
            row = row[: rng.integers(1, len(row))]  # missing columns
        elif kind == 1:
            row[5] = str(rng.choice(["", "x", "-1", "1.5", "1e3", " "]))  # a bad dialogue id
        elif kind == 2:
            row[6] = str(rng.choice(["utt", "-3", "NaN"]))  # a bad utterance id
        elif kind == 3:
            row[3] = str(rng.choice(["happy", "Joyful", "", "contempt", "neutral!"]))  # no MELD emotion
        elif kind == 4:
            row[4] = str(rng.choice(["pos", "", "0", "mixed"]))  # no MELD sentiment
        else:
            row = [*row, "extra"]  # a comma too many
        return row

    for trial in range(30):
        rows, damaged_lines = [], set()
        for line, row in enumerate(good, start=2):
            if rng.random() < 0.4:
                rows.append(damage(row))
                damaged_lines.add(line)
            else:
                rows.append(row)
        path = tmp_path / f"trial{trial}.csv"
        _write_rows(path, [header, *rows])
        parsed, errors = read_meld_csv(path)
        assert {r.line for r in parsed} | {int(e.split(":")[1]) for e in errors} == set(range(2, len(good) + 2))
        assert {int(e.split(":")[1]) for e in errors} == damaged_lines
        assert all(e.startswith(f"{path}:") for e in errors)
    # An unclosed quote: the rows before it are read, the rest is reported from its line on.
    path = tmp_path / "quote.csv"
    _write_rows(path, [header, *good[:3]])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('99,"an unclosed quote,Person 01,joy,positive,7,0,1,1,"00:00:01,000","00:00:02,000"\n')
    parsed, errors = read_meld_csv(path)
    assert len(parsed) == 3 and len(errors) == 1 and errors[0].startswith(f"{path}:") and "not a CSV row" in errors[0]
    # Not CSV at all, or no bytes: a DataError naming the file, nothing else.
    for content in (b"", b"\x00\xff\xfe garbage \x81" * 50, "Sr No.,Utterance\n1,\"unclosed".encode()):
        path = tmp_path / "odd.csv"
        path.write_bytes(content)
        with pytest.raises(DataError, match="odd.csv"):
            read_meld_csv(path)


def test_fuzz_damaged_clips_are_skipped_never_a_crash(meld_copy):
    """Clips cut at random points, overwritten with random bytes or with bytes flipped: the reader serves each
    one or skips it, naming the file; sampling raises nothing but VideoDecodeError."""
    rng = np.random.default_rng(1)
    clips = sorted((meld_copy / "train_splits").glob("*.mp4"))
    for k, path in enumerate(clips):
        data = bytearray(path.read_bytes())
        if k % 3 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        elif k % 3 == 1:
            data = bytearray(rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes())
        else:
            for i in rng.integers(len(data) // 2, len(data), 40):
                data[i] = int(rng.integers(256))
        path.write_bytes(bytes(data))
        try:
            sample_frames(path, 4)
        except VideoDecodeError as error:
            assert path.name in str(error)
    module = MeldDataModule(str(meld_copy), num_frames=4, image_size=16, batch_size=32)
    module.setup()
    batch = next(iter(module.train_dataloader()))
    assert len(batch["skipped"]) + len(batch["id"]) == 10 and len(batch["skipped"]) >= 4  # cut or random: unreadable
    assert all(s.endswith(".mp4") for s in batch["skipped"])
    if len(batch["id"]):
        assert batch["video"].shape[1:] == (4, 3, 16, 16) and torch.isfinite(batch["video"]).all()


# -- every modality: video, audio from the clip, text from the CSV ---------------------------------------------------


def _synth_clip_of(arrays, split: str, clip_name: str) -> int:
    """The AffectSynth clip export_meld wrote as ``clip_name`` of ``split`` (its order: see export_meld)."""
    from affectlab.data.synth.export import _identity_splits

    split_of = _identity_splits(arrays, {"val": 0.15, "test": 0.2})
    clips = [c for c in range(len(arrays)) if split_of[int(arrays.identity[c])] == split]
    dialogue, utterance = (int(part[3:]) for part in clip_name.split("_"))
    return clips[3 * dialogue + utterance]


def test_batches_serve_video_audio_and_the_csvs_utterance_in_the_contract(meld_root):
    from affectlab.data.contract import check_batch
    from affectlab.data.media.video_clips import words
    from affectlab.data.synth import decode

    arrays = ensure(meld_root.parent / "synth", SMALL, progress=False)
    module = MeldDataModule(str(meld_root), num_frames=2, image_size=16, batch_size=16)
    module.setup()
    assert module.modalities == ("video", "audio", "text")
    vocabulary = module.vocabulary
    assert vocabulary[:2] == ("<pad>", "<unk>") and len(set(vocabulary)) == len(vocabulary)
    train_words = {w for i in module.splits["train"] for w in words(module.clips[i].text)}
    assert set(vocabulary[2:]) == train_words  # built from the train split only
    for split in ("train", "test"):
        batch = module.on_after_batch_transfer(next(iter(module.loader(split))), 0)
        check_batch(batch, module.modalities, module.tasks)
        assert batch["audio"].dtype == torch.float32 and batch["text"].dtype == torch.long
        for row, i in enumerate(batch["id"].tolist()):
            clip = module.clips[i]
            synth_clip = _synth_clip_of(arrays, clip.split, clip.name)
            said = decode(np.asarray(arrays.text[synth_clip])[: int(arrays.text_len[synth_clip])])
            assert words(clip.text) == said  # the CSV's Utterance holds the clip's words
            ids = batch["text"][row][batch["text_mask"][row]].tolist()
            assert [vocabulary[k] for k in ids] == [w if w in train_words else "<unk>" for w in said]
            audio = batch["audio"][row][batch["audio_mask"][row]].numpy()
            exported = np.asarray(arrays.audio[synth_clip], np.float64) / 32768.0  # 8 kHz
            reference = np.fft.irfft(np.fft.rfft(exported), n=2 * len(exported)) * 2  # 16 kHz
            assert len(audio) == len(reference) and np.corrcoef(audio, reference)[0, 1] > 0.98  # AAC: lossy
    assert module.missing_modalities == {}


def test_a_clip_without_audio_is_served_masked_and_counted_and_check_counts_it(meld_copy, capsys):
    from affectlab.data.media.video import write_video

    path = meld_copy / "train_splits" / "dia1_utt0.mp4"
    write_video(path, [f.image for f in sample_frames(path, 100).frames])  # the same frames, no audio track
    rows = _rows(meld_copy / "train_sent_emo.csv")
    rows[2][1] = "...!"  # dia0_utt1: an utterance without a word
    _write_rows(meld_copy / "train_sent_emo.csv", rows)
    module = MeldDataModule(str(meld_copy), num_frames=2, image_size=16, batch_size=16)
    module.setup()
    batch = module.on_after_batch_transfer(next(iter(module.loader("train"))), 0)
    names = [module.clips[i].name for i in batch["id"].tolist()]
    silent, wordless = names.index("dia1_utt0"), names.index("dia0_utt1")
    assert not batch["audio_mask"][silent].any() and batch["audio_mask"].sum(1).gt(0).sum() == len(names) - 1
    assert not batch["text_mask"][wordless].any() and batch["video_mask"][silent].all()
    assert {m: len(ids) for m, ids in module.missing_modalities.items()} == {"audio": 1, "text": 1}
    module.teardown("fit")
    assert "1 without audio, 1 without text" in capsys.readouterr().out
    for decode_clips in (True, False):
        report = check_video_dataset("meld", meld_copy, decode=decode_clips)
        assert report.modalities == {"video": [14, 0], "audio": [13, 1], "text": [13, 1]}
        assert report.lacking["audio"] == ["dia1_utt0"] and report.lacking["text"] == ["dia0_utt1"]
        assert report.errors == []


def test_modalities_selects_a_subset_and_refuses_what_meld_lacks(meld_root):
    from affectlab.errors import ConfigError

    module = MeldDataModule(str(meld_root), num_frames=2, image_size=16, batch_size=4, modalities=["audio", "text"])
    batch = next(iter(module.val_dataloader()))
    assert module.modalities == ("audio", "text") and "video" not in batch and batch["audio"].shape[0] == 2
    with pytest.raises(ConfigError, match=r"data.init_args.modalities: \['video', 'pose'\]; meld has \['video', "
                                          r"'audio', 'text'\]"):
        MeldDataModule(str(meld_root), modalities=["video", "pose"])
