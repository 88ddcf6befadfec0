"""Write AffectSynth in the native layout of a real data set, so every reader is tested on files laid out
exactly as the real ones (DESIGN.md section 4). ``affectlab data export NAME --out DIR``.

Folder-per-class image sets get one image per clip (its apex frame, where the expression peaks), in the
data set's split folders and class folder names, in its file format (FER2013: 48x48 greyscale PNG). Official
splits are identity-disjoint here: the test split holds the clips of the last ``test_fraction`` of identities.
AFE (``export_afe``) gets the apex frame pasted into a larger photograph, its face box in the annotation files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth.cache import AffectSynthArrays

_FORMATS = {"rafdb": ("jpg", None), "fer2013": ("png", 48), "expw": ("jpg", None), "affectnet": ("jpg", None),
            "caer_s": ("png", None)}


def export_folder_dataset(arrays: AffectSynthArrays, name: str, out: str | Path, test_fraction: float = 0.2) -> dict[str, int]:
    """Write ``arrays`` as the folder-per-class data set ``name`` under ``out``; returns images per split."""
    from PIL import Image

    from affectlab.data.readers.folders import FOLDER_LAYOUTS

    layout = FOLDER_LAYOUTS[name]
    folder_of = {emotion: folder for folder, emotion in layout.classes.items() if emotion is not None}
    extension, size = _FORMATS[name]
    identities = np.unique(arrays.identity)
    test_ids = identities[len(identities) - max(1, round(test_fraction * len(identities))):]
    counts: dict[str, int] = {}
    out = Path(out)
    for clip in range(len(arrays)):
        if "test" in layout.splits:
            split = "test" if arrays.identity[clip] in test_ids else "train"
        else:
            split = "all"
        intensity = np.asarray(arrays.au_intensity[clip]).sum(axis=1)  # (T,)
        frame = np.asarray(arrays.frames[clip, int(intensity.argmax())])  # (H, W, 3) the apex
        image = Image.fromarray(frame)
        if size is not None:
            image = image.convert("L").resize((size, size), Image.BILINEAR)
        folder = out / layout.splits[split] / folder_of[EMOTIONS[int(arrays.emotion[clip])]]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{name}_{clip:06d}.{extension}")
        counts[split] = counts.get(split, 0) + 1
    return counts


def write_csd(path: str | Path, name: str, data: dict[str, tuple[np.ndarray, np.ndarray]], metadata: dict) -> None:
    """Write a computational sequence as the CMU Multimodal SDK's ``write_CSD`` does: one root group ``name``
    holding ``data/<video>/features`` and ``data/<video>/intervals`` and ``metadata/<key>`` (a one-element
    variable-length string dataset holding the value as JSON). The SDK is not on PyPI, so tests cannot
    install it; this mirrors its file layout (mmsdk/mmdatasdk/computational_sequence/file_ops.py)."""
    import json

    import h5py

    with h5py.File(path, "w") as handle:
        root = handle.create_group(name)
        group = root.create_group("data")
        for video, (features, intervals) in data.items():
            entry = group.create_group(video)
            entry.create_dataset("features", data=features)
            entry.create_dataset("intervals", data=intervals)
        meta = root.create_group("metadata")
        for key, value in metadata.items():
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            meta[key][0] = json.dumps(value)


MOSEI_FROM_SYNTH = {"happy": 0, "sad": 1, "anger": 2, "surprise": 3, "disgust": 4, "fear": 5}  # neutral: none


def export_mosei(arrays: AffectSynthArrays, out: str | Path, clip_seconds: float = 2.0) -> dict[str, int]:
    """Write ``arrays`` as CMU-MOSEI computational sequences: each identity a video, each clip a segment.

    visual: 35 values per frame (the frame's 12 AU intensities, then noise), acoustic: 74 per 100 ms (log
    energy and zero-crossing rate of the waveform, then noise, one value -inf per video as COVAREP has),
    textual: a fixed random 300-d vector per word, labels: sentiment and the intensity (1-3) of the clip's
    emotion among MOSEI's six (neutral clips: all 0), ``folds.json`` by identity. Returns segments per fold.
    """
    import json

    from affectlab.data.synth import VOCAB

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(len(VOCAB), 300)).astype(np.float32)
    visual, acoustic, textual, labels = {}, {}, {}, {}
    identities = np.unique(arrays.identity)
    for identity in identities:
        video = f"vid{int(identity):04d}"
        clips = np.flatnonzero(np.asarray(arrays.identity) == identity)
        v_rows, v_int, a_rows, a_int, t_rows, t_int, l_rows, l_int = [], [], [], [], [], [], [], []
        for k, clip in enumerate(clips):
            start = k * clip_seconds
            au = np.asarray(arrays.au_intensity[clip])  # (T, 12)
            for f, row in enumerate(au):
                v_rows.append(np.concatenate([row, rng.normal(size=23)]))
                v_int.append([start + f * clip_seconds / len(au), start + (f + 1) * clip_seconds / len(au)])
            wave = np.asarray(arrays.audio[clip], dtype=np.float32) / 32767.0
            for c, chunk in enumerate(np.array_split(wave, 10)):
                energy = np.log(np.mean(chunk**2) + 1e-8)
                crossings = np.mean(np.abs(np.diff(np.sign(chunk)))) / 2
                a_rows.append(np.concatenate([[energy, crossings], rng.normal(size=72)]))
                a_int.append([start + c * clip_seconds / 10, start + (c + 1) * clip_seconds / 10])
            tokens = np.asarray(arrays.text[clip])[: int(arrays.text_len[clip])]
            for w, token in enumerate(tokens):
                t_rows.append(embedding[token])
                t_int.append([start + w * clip_seconds / len(tokens), start + (w + 1) * clip_seconds / len(tokens)])
            label = np.zeros(7)
            label[0] = float(arrays.sentiment[clip])
            emotion = EMOTIONS[int(arrays.emotion[clip])]
            if emotion in MOSEI_FROM_SYNTH:
                label[1 + MOSEI_FROM_SYNTH[emotion]] = 1.0 + round(2 * abs(float(arrays.arousal[clip])))
            l_rows.append(label)
            l_int.append([start, start + clip_seconds])
        a_rows[0][5] = -np.inf  # MOSEI's COVAREP holds -inf values; readers must cope
        visual[video] = (np.asarray(v_rows, np.float32), np.asarray(v_int))
        acoustic[video] = (np.asarray(a_rows, np.float32), np.asarray(a_int))
        textual[video] = (np.asarray(t_rows, np.float32), np.asarray(t_int))
        labels[video] = (np.asarray(l_rows, np.float32), np.asarray(l_int))
    meta = {"dataset name": "AffectSynth as CMU-MOSEI", "dataset version": "1.0"}
    write_csd(out / "CMU_MOSEI_VisualFacet42.csd", "FACet 4.2", visual, meta)
    write_csd(out / "CMU_MOSEI_COVAREP.csd", "COVAREP", acoustic, meta)
    write_csd(out / "CMU_MOSEI_TimestampedWordVectors.csd", "glove_vectors", textual, meta)
    write_csd(out / "CMU_MOSEI_Labels.csd", "All Labels", labels, meta)
    videos = [f"vid{int(i):04d}" for i in identities]
    n_test = max(1, round(0.15 * len(videos)))
    folds = {"train": videos[: -2 * n_test], "valid": videos[-2 * n_test : -n_test], "test": videos[-n_test:]}
    (out / "folds.json").write_text(json.dumps(folds))
    per_video = {v: int((np.asarray(arrays.identity) == i).sum()) for v, i in zip(videos, identities)}
    return {fold: sum(per_video[v] for v in ids) for fold, ids in folds.items()}


OPENFACE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)  # intensity; presence adds 28
PYFEAT_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43)
PYFEAT_EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def export_frame_tables(arrays: AffectSynthArrays, out: str | Path, tool: str = "openface", fps: float = 25.0) -> int:
    """One CSV per clip in the output format of OpenFace 2.0 (``FeatureExtraction``; ", "-separated, with
    landmark columns) or py-feat (``Fex.to_csv``), holding the clip's AU intensities, plus ``labels.csv``
    (file, emotion, subject). AUs AffectSynth does not model are 0. Returns the number of files."""
    from affectlab.data.contract import ACTION_UNITS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = ["file,emotion,subject"]
    for clip in range(len(arrays)):
        intensity = np.asarray(arrays.au_intensity[clip])  # (T, 12)
        value = {au: intensity[:, i] for i, au in enumerate(ACTION_UNITS)}
        zeros = np.zeros(len(intensity))
        if tool == "openface":
            header = (["frame", "face_id", "timestamp", "confidence", "success"]
                      + [f"gaze_{e}_{a}" for e in (0, 1) for a in "xyz"] + ["gaze_angle_x", "gaze_angle_y"]
                      + [f"pose_{k}" for k in ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")]
                      + [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
                      + [f"AU{au:02d}_r" for au in OPENFACE_AUS] + [f"AU{au:02d}_c" for au in (*OPENFACE_AUS[:-1], 28, 45)])
            rows = []
            for t in range(len(intensity)):
                r = [t + 1, 0, round(t / fps, 3), 0.98, 1]
                r += rng.normal(0, 0.1, 8).round(4).tolist() + rng.normal(0, 0.2, 6).round(4).tolist()
                r += rng.uniform(0, 64, 136).round(2).tolist()
                r += [round(float(value.get(au, zeros)[t]), 2) for au in OPENFACE_AUS]
                r += [int(value.get(au, zeros)[t] >= 1) for au in (*OPENFACE_AUS[:-1], 28, 45)]
                rows.append(", ".join(map(str, r)))
            text = ", ".join(header) + "\n" + "\n".join(rows) + "\n"
        else:
            header = (["frame", "FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight", "FaceScore"]
                      + [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)] + ["Pitch", "Roll", "Yaw"]
                      + [f"AU{au:02d}" for au in PYFEAT_AUS] + list(PYFEAT_EMOTIONS) + ["input", "approx_time"])
            rows = []
            for t in range(len(intensity)):
                r = [t, 4.0, 5.0, 50.0, 52.0, 0.99] + rng.uniform(0, 64, 136).round(2).tolist()
                r += rng.normal(0, 5, 3).round(2).tolist()
                r += [round(float(value.get(au, zeros)[t]) / 5, 3) for au in PYFEAT_AUS]
                r += (rng.dirichlet(np.ones(7)).round(4)).tolist() + [f"clip_{clip:05d}.mp4", f"00:00:{t / fps:05.2f}"]
                rows.append(",".join(map(str, r)))
            text = ",".join(header) + "\n" + "\n".join(rows) + "\n"
        (out / f"clip_{clip:05d}.csv").write_text(text)
        labels.append(f"clip_{clip:05d}.csv,{EMOTIONS[int(arrays.emotion[clip])]},person{int(arrays.identity[clip])}")
    (out / "labels.csv").write_text("\n".join(labels) + "\n")
    return len(arrays)


# -- video data sets ----------------------------------------------------------------------------------------------
# AffectSynth's frames are 64x64 and filled by the head; MTCNN looks for faces of 20 px and more with context
# around them. So each frame is upscaled to ``face_size`` and placed in a larger scene (width, height), as a
# face sits in a TV frame; its position is drawn per clip and drifts a pixel or two over time.
VIDEO_SCENE = (160, 128)
VIDEO_FACE_SIZE = 96


def _identity_splits(arrays: AffectSynthArrays, fractions: dict[str, float]) -> dict[int, str]:
    """identity -> split: the last identities go to the splits named in ``fractions`` (at least one each, in
    reverse order of the dict), the rest to ``train``; so the official splits are identity-disjoint here."""
    identities = np.unique(arrays.identity).tolist()
    split_of = {identity: "train" for identity in identities}
    end = len(identities)
    for split, fraction in reversed(list(fractions.items())):
        count = max(1, round(fraction * len(identities)))
        for identity in identities[max(1, end - count):end]:
            split_of[identity] = split
        end = max(1, end - count)
    return split_of


def scene_video(frames: np.ndarray, rng: np.random.Generator, scene: tuple[int, int] = VIDEO_SCENE,
                face_size: int = VIDEO_FACE_SIZE, num_frames: int | None = None) -> np.ndarray:
    """``[T', H, W, 3]`` uint8: a clip's ``[T, h, w, 3]`` frames upscaled to ``face_size`` in a scene of
    ``scene`` (width, height) pixels over a soft two-colour gradient with a darker block (furniture). With
    ``num_frames``, the clip is played forwards and backwards until it is that long (for long test videos)."""
    from PIL import Image

    width, height = scene
    if face_size > min(width, height):
        raise ValueError(f"face_size {face_size} does not fit a {width}x{height} scene")
    background = _background(rng, width, height)
    x0, y0 = int(rng.integers(0, width - face_size + 1)), int(rng.integers(0, height - face_size + 1))
    count = len(frames)
    order = np.arange(count) if num_frames is None else _ping_pong(count, num_frames)
    out = np.empty((len(order), height, width, 3), np.uint8)
    faces = [np.asarray(Image.fromarray(np.asarray(f)).resize((face_size, face_size), Image.BILINEAR)) for f in frames]
    for t, source in enumerate(order):
        dx = int(round(np.sin(t / 7.0)))  # a small drift: sampled frames are not all identical
        x, y = min(max(x0 + dx, 0), width - face_size), y0
        out[t] = background.astype(np.uint8)
        out[t, y:y + face_size, x:x + face_size] = faces[source]
    return out


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """``[H, W, 3]`` float: a soft vertical two-colour gradient with a darker block in its lower third."""
    top, bottom = rng.uniform(60, 200, 3), rng.uniform(40, 160, 3)
    weights = np.linspace(0.0, 1.0, height)[:, None, None]  # (H, 1, 1)
    background = np.broadcast_to((1 - weights) * top + weights * bottom, (height, width, 3)).copy()
    bx = int(rng.integers(0, width // 2))
    background[height * 2 // 3:, bx:bx + width // 3] *= 0.6
    return background


def _ping_pong(count: int, length: int) -> np.ndarray:
    """Frame indices 0, 1, ..., count-1, count-2, ..., 0, 1, ... of ``length``: a clip played back and forth."""
    cycle = np.concatenate([np.arange(count), np.arange(count - 2, 0, -1)]) if count > 1 else np.zeros(1, int)
    return np.resize(cycle, length)


def _write_clip(arrays: AffectSynthArrays, clip: int, path: Path, rng: np.random.Generator, fps: float,
                frames_per_clip: int | None, codec: str = "libx264", audio_codec: str | None = None,
                channels: int = 1) -> None:
    """One clip's scene video; with ``audio_codec``, its AffectSynth waveform (int16 at the synth's rate) as the
    clip's audio track (``media/audio.write_clip``)."""
    from affectlab.data.media.audio import write_clip
    from affectlab.data.media.video import write_video

    video = scene_video(np.asarray(arrays.frames[clip]), rng, num_frames=frames_per_clip)
    if audio_codec is None:
        write_video(path, video, fps=fps, codec=codec)
        return
    write_clip(path, video, fps, codec, np.asarray(arrays.audio[clip]), arrays.config.sample_rate, audio_codec,
               channels)


def _timestamp(seconds: float) -> str:
    """MELD's StartTime/EndTime format, hh:mm:ss,mmm."""
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def export_meld(arrays: AffectSynthArrays, out: str | Path, fps: float = 25.0, frames_per_clip: int | None = None,
                utterances_per_dialogue: int = 3, seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as MELD (``data/readers/meld.py``): the three CSV files and a ``dia<D>_utt<U>.mp4`` per clip.

    Each identity is a speaker (``Person 03``), each clip an utterance: its words (the ``Utterance`` column, the
    clip's AffectSynth text), its voice (the clip's waveform as a stereo AAC track, both channels equal, at the
    synth's sample rate), its emotion in MELD's name
    (happy -> joy, sad -> sadness), its sentiment from AffectSynth's score (below -0.5 negative, above 0.5
    positive), consecutive clips of a split grouped into dialogues. Splits are identity-disjoint: the last 20 %
    of identities are test, the 15 % before them dev. Returns utterances per split (train, val, test).
    """
    import csv

    from affectlab.data.readers.meld import COLUMNS, MELD_TO_CANONICAL, SPLIT_FILES
    from affectlab.data.synth import decode

    meld_name = {canonical: meld for meld, canonical in MELD_TO_CANONICAL.items()}
    out = Path(out)
    rng = np.random.default_rng(seed)
    split_of = _identity_splits(arrays, {"val": 0.15, "test": 0.2})
    counts = {}
    for split, (csv_name, folder) in SPLIT_FILES.items():
        clips = [c for c in range(len(arrays)) if split_of[int(arrays.identity[c])] == split]
        rows = []
        for k, clip in enumerate(clips):
            dialogue, utterance = divmod(k, utterances_per_dialogue)
            score = float(arrays.sentiment[clip])
            sentiment = "negative" if score < -0.5 else "positive" if score > 0.5 else "neutral"
            words = decode(np.asarray(arrays.text[clip])[: int(arrays.text_len[clip])])
            start = 2.0 * utterance + 60.0 * dialogue
            length = (frames_per_clip or arrays.config.num_frames) / fps
            rows.append([k + 1, " ".join(words).capitalize() + ".", f"Person {int(arrays.identity[clip]):02d}",
                         meld_name[EMOTIONS[int(arrays.emotion[clip])]], sentiment, dialogue, utterance, 1,
                         1 + dialogue // 10, _timestamp(start), _timestamp(start + length)])
            _write_clip(arrays, clip, out / folder / f"dia{dialogue}_utt{utterance}.mp4", rng, fps, frames_per_clip,
                        audio_codec="aac", channels=2)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / csv_name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        (out / folder).mkdir(parents=True, exist_ok=True)  # an empty split still has its folder
        counts[split] = len(rows)
    return counts


def export_caer(arrays: AffectSynthArrays, out: str | Path, fps: float = 25.0, frames_per_clip: int | None = None,
                seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as CAER (``data/readers/caer.py``): ``<train|validation|test>/<Emotion>/<NNNN>.avi`` (MPEG-4
    part 2 in AVI, as CAER's clips, with the clip's waveform as a 16-bit PCM mono track), numbered per folder. Identity-disjoint splits: the last 20 % of
    identities are test, the 10 % before them validation. Returns clips per split (train, val, test)."""
    from affectlab.data.readers.caer import CAER_CLASSES, CAER_SPLITS

    folder_of = {emotion: folder for folder, emotion in CAER_CLASSES.items()}
    out = Path(out)
    rng = np.random.default_rng(seed)
    split_of = _identity_splits(arrays, {"val": 0.1, "test": 0.2})
    counts: dict[str, int] = {split: 0 for split in CAER_SPLITS}
    numbers: dict[Path, int] = {}
    for clip in range(len(arrays)):
        split = split_of[int(arrays.identity[clip])]
        folder = out / CAER_SPLITS[split] / folder_of[EMOTIONS[int(arrays.emotion[clip])]]
        numbers[folder] = numbers.get(folder, 0) + 1
        _write_clip(arrays, clip, folder / f"{numbers[folder]:04d}.avi", rng, fps, frames_per_clip, codec="mpeg4",
                    audio_codec="pcm_s16le")
        counts[split] += 1
    for split_folder in CAER_SPLITS.values():
        (out / split_folder).mkdir(parents=True, exist_ok=True)
    return counts


def export_voxceleb2(arrays: AffectSynthArrays, out: str | Path, fps: float = 25.0, frames_per_clip: int | None = None,
                     clips_per_video: int = 2, test_fraction: float = 0.2, seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as VoxCeleb2 (``data/voxceleb2.py``): ``<dev|test>/mp4/id<NNNNN>/<video id>/<NNNNN>.mp4``,
    each identity a speaker, its clips grouped ``clips_per_video`` to a (YouTube-like, 11 characters) video id;
    the last ``test_fraction`` of identities are test (speaker-disjoint). Returns clips per set (dev, test)."""
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
    out = Path(out)
    rng = np.random.default_rng(seed)
    split_of = _identity_splits(arrays, {"test": test_fraction})
    counts = {"dev": 0, "test": 0}
    for identity in np.unique(arrays.identity).tolist():
        split = "test" if split_of[identity] == "test" else "dev"
        clips = np.flatnonzero(np.asarray(arrays.identity) == identity)
        for start in range(0, len(clips), clips_per_video):
            video = "".join(rng.choice(alphabet, 11))
            for k, clip in enumerate(clips[start:start + clips_per_video]):
                path = out / split / "mp4" / f"id{identity:05d}" / video / f"{k + 1:05d}.mp4"
                _write_clip(arrays, int(clip), path, rng, fps, frames_per_clip)
                counts[split] += 1
    return counts


def export_afe(arrays: AffectSynthArrays, out: str | Path, test_fraction: float = 0.2, seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as AFE (``data/readers/afe.py``): one photograph per clip, ``src/image/<identity>/afe_<clip>.jpg``,
    and ``annos/TrainTest/{Train,Test}.csv`` listing ``<path> <left> <top> <right> <bottom> <emotion 0-6>``.

    Each photograph is a scene (the video exporters' background) with the clip's apex frame pasted into it,
    stretched to a face box of 1 to 1.5 times the frame's size in each direction (AFE's boxes are not square)
    at a random place; the CSV holds that box exactly (PIL's convention: right and bottom exclusive). The last
    ``test_fraction`` of identities are Test (identity-disjoint). Returns faces per split (train, test).
    """
    from PIL import Image

    from affectlab.data.readers.afe import AFE_ANNOTATIONS, AFE_CODES, AFE_IMAGES, AFE_SPLIT_FILES

    code_of = {emotion: code for code, emotion in enumerate(AFE_CODES)}
    out = Path(out)
    rng = np.random.default_rng(seed)
    split_of = _identity_splits(arrays, {"test": test_fraction})
    lines: dict[str, list[str]] = {split: [] for split in AFE_SPLIT_FILES}
    for clip in range(len(arrays)):
        intensity = np.asarray(arrays.au_intensity[clip]).sum(axis=1)  # (T,)
        frame = np.asarray(arrays.frames[clip, int(intensity.argmax())])  # (h, w, 3) the apex
        size = frame.shape[0]
        face_w, face_h = (int(round(size * rng.uniform(1.0, 1.5))) for _ in range(2))
        width, height = face_w + int(rng.integers(8, size + 1)), face_h + int(rng.integers(8, size + 1))
        left, top = int(rng.integers(0, width - face_w + 1)), int(rng.integers(0, height - face_h + 1))
        scene = _background(rng, width, height).astype(np.uint8)  # (H, W, 3)
        scene[top:top + face_h, left:left + face_w] = np.asarray(
            Image.fromarray(frame).resize((face_w, face_h), Image.BILINEAR))
        path = f"{int(arrays.identity[clip]):03d}/afe_{clip:06d}.jpg"
        (out / AFE_IMAGES / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene).save(out / AFE_IMAGES / path, quality=95)
        split = split_of[int(arrays.identity[clip])]
        emotion = code_of[EMOTIONS[int(arrays.emotion[clip])]]
        lines[split].append(f"{path} {left} {top} {left + face_w} {top + face_h} {emotion}")
    (out / AFE_ANNOTATIONS).mkdir(parents=True, exist_ok=True)
    for split, name in AFE_SPLIT_FILES.items():
        (out / AFE_ANNOTATIONS / name).write_text("".join(line + "\n" for line in lines[split]))
    return {split: len(found) for split, found in lines.items()}


VIDEO_EXPORTERS = {"meld": export_meld, "caer": export_caer, "voxceleb2": export_voxceleb2}


MMSA_STEPS = 10  # aligned pickles hold every modality at one length (MMSA's ``aligned_50`` holds 50)


def export_mmsa(arrays: AffectSynthArrays, out: str | Path, seed: int = 0) -> dict[str, int]:
    """Write ``arrays`` as MMSA's aligned feature pickle ``<out>/aligned_50.pkl``: per clip ``vision`` (the AU
    intensities of ``MMSA_STEPS`` frames), ``audio`` (the waveform's energy in ``MMSA_STEPS`` windows, 4 bands),
    ``text`` (a fixed random embedding of the tokens, 16 values), ``regression_labels`` (the sentiment);
    splits identity-disjoint. Returns samples per split."""
    import pickle

    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(int(np.max(arrays.text)) + 1, 16)).astype(np.float32)
    split_of = _identity_splits(arrays, {"valid": 0.15, "test": 0.15})
    parts: dict[str, dict[str, list]] = {s: {"vision": [], "audio": [], "text": [], "regression_labels": [], "id": []}
                                         for s in ("train", "valid", "test")}
    for clip in range(len(arrays)):
        part = parts[split_of[int(arrays.identity[clip])]]
        au = np.asarray(arrays.au_intensity[clip], dtype=np.float32)  # (T, 12)
        part["vision"].append(au[np.linspace(0, len(au) - 1, MMSA_STEPS).round().astype(int)])
        audio = np.asarray(arrays.audio[clip], dtype=np.float32) / 32767.0  # (S,)
        windows = np.array_split(audio, MMSA_STEPS * 4)
        part["audio"].append(np.asarray([np.sqrt(np.mean(w ** 2)) for w in windows], np.float32).reshape(MMSA_STEPS, 4))
        tokens = np.asarray(arrays.text[clip], dtype=np.int64)[:MMSA_STEPS]
        part["text"].append(np.pad(embedding[tokens], ((0, MMSA_STEPS - len(tokens)), (0, 0))))
        part["regression_labels"].append(float(arrays.sentiment[clip]))
        part["id"].append(f"synth{clip}$_$0")
    data = {split: {key: (np.asarray(values, dtype=np.float32) if key != "id" else values) for key, values in part.items()}
            for split, part in parts.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "aligned_50.pkl").write_bytes(pickle.dumps(data, protocol=4))
    return {split: len(part["id"]) for split, part in parts.items()}
