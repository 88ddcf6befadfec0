"""MELD (Poria et al. 2019, https://affective-meld.github.io): utterances of the TV series Friends with an
emotion (7 classes) and a sentiment (3 classes) each, read from MELD's own files.

Expected under ``root`` (``MELD.Raw`` as distributed, its video archives extracted in place)::

    train_sent_emo.csv                            one row per utterance (columns below)
    dev_sent_emo.csv
    test_sent_emo.csv
    train_splits/dia<Dialogue_ID>_utt<Utterance_ID>.mp4
    dev_splits_complete/dia<Dialogue_ID>_utt<Utterance_ID>.mp4
    output_repeated_splits_test/dia<Dialogue_ID>_utt<Utterance_ID>.mp4

CSV columns: ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode,
StartTime, EndTime``; the reader needs ``Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID`` (the others
are checked for presence by ``affectlab data check meld`` only). Dialogue ids restart in each split, so a clip
is named by its split and ``dia<D>_utt<U>``.

Splits: MELD's official ones, train / dev (served as ``val``) / test. They share speakers (the six main
characters speak in all three), so results on them are not speaker-independent; ``subject`` is the speaker's
index among all speakers sorted by name, and ``data check`` reports the overlap.

Targets:
- ``emotion`` ``[B]`` long: MELD's neutral, joy, sadness, anger, surprise, fear, disgust mapped onto AffectLab's
  canonical order (``contract.EMOTIONS``: joy is ``happy``, sadness ``sad``);
- ``sentiment_class`` ``[B]`` long: 0 negative, 1 neutral, 2 positive (``SENTIMENTS``);
- ``sentiment`` ``[B]`` float: -1, 0 or +1, the same label on the contract's sentiment scale ([-3, 3]).

Per sample (``modalities``, default all three): ``video``, the clip's ``num_frames`` frames, evenly spaced, whole
frames resized; ``audio``, the clip's audio track at 16 kHz mono, at most ``audio_seconds``; ``text``, the
``Utterance`` column's words as ids of the train split's vocabulary (``data/media/video_clips.py`` says how).
A clip without an audio track, or an utterance without a word, is served with that modality masked and
counted. Face crops, log-mel spectrograms and token ids, or frozen backbones' features of them, come from
``affectlab data prepare meld`` (``data/store/video_prepare.py``). A row whose video file is
missing is left out with a warning (MELD's own train set lacks ``dia125_utt3.mp4``); a malformed row (missing
columns, an id that is no number, an emotion or sentiment outside MELD's sets, a duplicate) stops the reader
with its file and line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from affectlab.data.contract import EMOTIONS
from affectlab.data.media.video_clips import VideoClip, VideoClipDataModule, VideoScan
from affectlab.data.spec import DatasetSpec
from affectlab.errors import DataError

# MELD's emotions in its own order, and what each is in AffectLab's canonical order.
MELD_EMOTIONS = ("neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust")
MELD_TO_CANONICAL = {"neutral": "neutral", "joy": "happy", "sadness": "sad", "anger": "anger",
                     "surprise": "surprise", "fear": "fear", "disgust": "disgust"}
SENTIMENTS = ("negative", "neutral", "positive")
COLUMNS = ("Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
           "Episode", "StartTime", "EndTime")
REQUIRED = ("Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
# AffectLab split -> (CSV file, folder of its clips)
SPLIT_FILES = {
    "train": ("train_sent_emo.csv", "train_splits"),
    "val": ("dev_sent_emo.csv", "dev_splits_complete"),
    "test": ("test_sent_emo.csv", "output_repeated_splits_test"),
}


@dataclass(frozen=True)
class MeldRow:
    line: int  # in its CSV file, from 1 (the header)
    dialogue: int
    utterance: int
    speaker: str
    emotion: int  # index into contract.EMOTIONS
    sentiment: int  # index into SENTIMENTS
    text: str

    @property
    def clip_name(self) -> str:
        return f"dia{self.dialogue}_utt{self.utterance}"


SPEC = DatasetSpec(
    "meld", "MELD: Friends utterances with emotion (7) and sentiment (3) labels (13,708 utterances)", "data/meld",
    "\n".join([*(name for name, _ in SPLIT_FILES.values()),
               *(f"{folder}/dia<Dialogue_ID>_utt<Utterance_ID>.mp4" for _, folder in SPLIT_FILES.values())]),
    reader="affectlab.data.MeldDataModule", check="affectlab.data.check.check_video_dataset",
    prepare="affectlab.data.store.video_prepare.prepare_clips", export="affectlab.data.synth.export.export_meld",
    export_styles=("shaded",), subjects="shared",  # the main cast speaks in all three official splits
)


def layout_tree(root: Path) -> str:
    return SPEC.tree(root)


def read_meld_csv(path: Path) -> tuple[list[MeldRow], list[str]]:
    """The rows of one MELD CSV file, and a message per malformed row (``file:line: what, expected what``).

    A missing file, or one without MELD's columns, is a DataError: nothing of the split can be read then.
    """
    if not path.is_file():
        raise DataError(f"meld: {path} is missing; expected MELD's CSV files and clip folders:\n"
                        f"{layout_tree(path.parent)}")
    # MELD's CSV files are UTF-8 with some mis-encoded apostrophes: undecodable bytes become U+FFFD.
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as error:
        raise DataError(f"{path}:1: not a CSV header ({error}); MELD's header is {','.join(COLUMNS)}") from None
    absent = [c for c in REQUIRED if c not in header]
    if absent:
        raise DataError(f"{path}:1: header lacks column(s) {absent}; MELD's header is {','.join(COLUMNS)}")
    column = {name: header.index(name) for name in REQUIRED}
    rows: list[MeldRow] = []
    errors: list[str] = []
    seen: dict[tuple[int, int], int] = {}
    while True:
        try:
            values = next(reader, None)
        except csv.Error as error:  # an unclosed quote, a stray quote inside a field: the rest cannot be split
            errors.append(f"{path}:{reader.line_num}: not a CSV row ({error}); rows after it are not read")
            break
        if values is None:
            break
        line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue  # blank line
        where = f"{path}:{line}"
        if len(values) != len(header):
            errors.append(f"{where}: {len(values)} fields, the header has {len(header)} ({','.join(header)}); a row "
                          "with missing columns, or an utterance with a comma but no quotes")
            continue
        try:
            dialogue, utterance = (int(values[column[c]].strip()) for c in ("Dialogue_ID", "Utterance_ID"))
            if dialogue < 0 or utterance < 0:
                raise ValueError
        except ValueError:
            errors.append(f"{where}: Dialogue_ID {values[column['Dialogue_ID']]!r} and Utterance_ID "
                          f"{values[column['Utterance_ID']]!r} must be whole numbers >= 0")
            continue
        emotion = values[column["Emotion"]].strip().lower()
        if emotion not in MELD_TO_CANONICAL:
            errors.append(f"{where}: Emotion {values[column['Emotion']]!r} is not one of MELD's seven "
                          f"({', '.join(MELD_EMOTIONS)})")
            continue
        sentiment = values[column["Sentiment"]].strip().lower()
        if sentiment not in SENTIMENTS:
            errors.append(f"{where}: Sentiment {values[column['Sentiment']]!r} is not one of {', '.join(SENTIMENTS)}")
            continue
        key = (dialogue, utterance)
        if key in seen:
            errors.append(f"{where}: dia{dialogue}_utt{utterance} is listed twice (first on line {seen[key]})")
            continue
        seen[key] = line
        speaker = values[column["Speaker"]].strip()
        utterance_text = values[header.index("Utterance")] if "Utterance" in header else ""
        rows.append(MeldRow(line, dialogue, utterance, speaker, EMOTIONS.index(MELD_TO_CANONICAL[emotion]),
                            SENTIMENTS.index(sentiment), utterance_text))
    return rows, errors


def scan_meld(root: str | Path) -> tuple[VideoScan, dict[str, list[MeldRow]]]:
    """Every utterance of every split with its clip, and what is wrong (malformed rows, missing clips)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"meld: root {root} is not a folder; expected MELD's files there:\n{layout_tree(root)}")
    found = VideoScan([])
    rows_by_split: dict[str, list[MeldRow]] = {}
    for split, (csv_name, folder) in SPLIT_FILES.items():
        rows, errors = read_meld_csv(root / csv_name)
        if not (root / folder).is_dir():
            raise DataError(f"meld: clip folder {root / folder} is missing (for {csv_name}); extract MELD's "
                            f"video archive there:\n{layout_tree(root)}")
        rows_by_split[split] = rows
        found.errors += errors
    speakers = sorted({row.speaker for rows in rows_by_split.values() for row in rows})
    subject = {name: i for i, name in enumerate(speakers)}
    found.subject_names = dict(enumerate(speakers))
    for split, rows in rows_by_split.items():
        folder = root / SPLIT_FILES[split][1]
        for row in rows:
            path = folder / f"{row.clip_name}.mp4"
            if not path.is_file():
                found.missing.append(str(path))
                continue
            targets = {"emotion": row.emotion, "sentiment_class": row.sentiment, "sentiment": float(row.sentiment - 1)}
            found.clips.append(VideoClip(path, split, targets, subject[row.speaker], row.clip_name, row.text))
    return found, rows_by_split


class MeldDataModule(VideoClipDataModule):
    """MELD's utterance clips with emotion and sentiment labels, official splits (module docstring: the layout).

    Args:
        root: MELD's folder (``MELD.Raw``), laid out as distributed.
        num_frames: frames per clip, evenly spaced over it.
        image_size: frames are resized to this square size.
        corrupt: ``skip`` unreadable clips (counted, named in a warning) or ``raise`` at the first.
        batch_size: clips per batch.
        num_workers: data loader worker processes.
        max_unreadable_fraction: null (no check), or the share of a split that may be unreadable, checked
            before training (``data/base.py``).
        modalities: which of ``video``, ``audio``, ``text`` to serve; None serves all three.
        audio_seconds: audio per clip at most (16 kHz mono).
        text_length: words per utterance at most.
        vocab_size: entries of the vocabulary built from the train split's utterances (padding and unknown
            included; 512, TextTransformerEncoder's default); a text encoder's ``vocab_size`` must be at least this.
    """

    name = "meld"
    tasks = ("emotion", "sentiment_class", "sentiment")
    task_dtypes = {"emotion": "int64", "sentiment_class": "int64", "sentiment": "float32"}
    class_names = {"emotion": EMOTIONS, "sentiment_class": SENTIMENTS}
    disjoint_subjects = False  # MELD's official splits share speakers (see the module docstring)
    available_modalities = ("video", "audio", "text")

    def __init__(self, root: str = "data/meld", num_frames: int = 8, image_size: int = 64, corrupt: str = "skip",
                 batch_size: int = 16, num_workers: int = 0, modalities: list[str] | None = None,
                 audio_seconds: float = 10.0, text_length: int = 48, vocab_size: int = 512,
                 max_unreadable_fraction: float | None = None) -> None:
        super().__init__(root, num_frames, image_size, corrupt, batch_size, num_workers, modalities, audio_seconds,
                         text_length, vocab_size, max_unreadable_fraction=max_unreadable_fraction)

    def scan(self) -> VideoScan:
        return scan_meld(self.root)[0]
