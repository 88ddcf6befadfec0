"""``affectlab data prepare meld|caer|voxceleb2 --raw DIR --out DIR``: video clips -> aligned face crops in a
feature store, once, so that training reads crops instead of decoding videos and detecting faces every epoch.

Per clip, in the reader's fixed order (train, val, test; ``data/readers/meld.py``, ``caer.py``, ``voxceleb2.py``):

1. decode and sample frames (``video_clips.sample_frames``): ``--num-frames N`` evenly spaced over the clip
   (default 8), or ``--fps F`` per second, at most ``--max-frames``;
2. detect faces with MTCNN (``face_detection.FaceDetector``, the clip's frames in one batch), keep the
   largest face of each frame (in MELD and CAER scenes, the person in front);
3. a frame without a face (``--no-face``): ``nearest`` (default) crops it at the face of the nearest frame in
   time that has one (faces move little between sampled frames; MTCNN misses some frames of a clip it finds
   elsewhere), or the whole frame resized when no frame of the clip has a face; ``frame`` always uses the
   whole frame resized; ``skip`` drops the frame, and a clip left without frames is skipped. Each case is
   counted;
4. align and crop (``face_detection.align_crop``): eyes levelled, a square of ``--scale`` x the face's size
   (1.3: brows to chin), resized to ``--size`` S (64);
5. store: modality ``video``, one row per frame, the crop's RGB values in [0, 1] channel-first and flattened
   (``3 * S * S`` float16 values, the store's one row format); ``index.json`` records the step shape
   ``[3, S, S]``, so ``--data feature_store`` serves ``video`` ``[B, T, 3, S, S]`` as the batch contract wants,
   with the reader's targets (MELD: emotion, sentiment_class, sentiment; CAER: emotion; VoxCeleb2: none) and
   class names;
6. or, with ``--encoder NAME`` (a timm model name), precompute features instead (``CropEncoder``): each crop
   goes through the model (randomly initialised, or ``--encoder-checkpoint PATH``'s local state dict; weights
   are never downloaded), in eval mode without gradients, ``--encoder-batch N`` crops at a time (batches span
   clips), its input resized and normalised as timm's ``resolve_data_config`` describes the model. The store
   then holds one row of the model's D pooled features per frame and no step shape, so ``--data
   feature_store`` serves ``video`` ``[B, T, D]``, which the ``PrecomputedFeatures`` encoder (or any sequence
   encoder) reads. The store's ``source`` records the encoder (name, checkpoint and its SHA-256, D, input).
6b. with ``--video3d-encoder NAME`` (a torchvision video model: ``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ...;
   ``encoders.Video3DEncoder``), the original's ResNet3D stream: the clip's sampled crops are cut into windows of
   ``--video3d-window W`` (16) consecutive frames without overlap, the last window padded by repeating the clip's
   last frame (a clip with fewer than W sampled frames is one padded window), and each window goes through the
   model (randomly initialised with the recorded warning, or ``--video3d-encoder-checkpoint PATH``; built with
   ``weights=None``, never downloaded), its frames resized from ``--size`` to the model's Kinetics crop size
   (112 for the ResNet3D family, so 64-pixel crops are upsampled) and normalised with the Kinetics mean and std.
   The video modality then holds one row per window: its D3 features alone, or, with ``--encoder`` too, followed
   by the mean of the ``--encoder`` features of the window's real frames (D3 + D2 per row: the original's 2048
   ResNet3D-101 features beside its 2048 per-frame ResNet-152 features, pooled over the same frames). ``--data
   feature_store`` serves it as ``video`` ``[B, windows, D]``, which ``PrecomputedFeatures`` reads. Use
   ``--num-frames`` (or ``--fps``, the original's density) so that a clip has whole windows. The store's
   ``source.video3d_encoder`` records the model's name, checkpoint and SHA-256, window, input size and
   normalisation.

7. audio (MELD, CAER): the clip's audio track decoded, mixed to mono and resampled to 16 kHz, at most
   ``--audio-seconds`` (10), stored as its 128-bin log-mel spectrogram of METHODS.md (n_fft 2048, hop 160:
   one row of 128 per 10 ms, ``data/media/audio.py``); or, with ``--audio-encoder NAME``, one row of a timm
   model's pooled features of that spectrogram (``encoders.MelEncoder``, ``--audio-encoder-checkpoint PATH``).
   A clip without an audio track is stored without audio rows (``--data feature_store`` serves it as one zero
   step, masked) and counted (``no_audio``);
8. text (MELD): the utterance's token ids, one row each (``[L, 1]``, the reader's vocabulary, recorded in
   ``source.text.vocabulary``; ``index.json``'s ``token_ids`` lists the modality, so the store serves it as
   ``text`` ``[B, L]`` long again); or, with ``--text-encoder affectlab|FOLDER``, one row of the mean token
   embedding (``encoders.TextEncoder``, ``--text-encoder-checkpoint PATH``). An utterance without a word is
   stored without text rows and counted (``no_text``).

Every backbone is frozen, from a local checkpoint or randomly initialised; then ``source.warnings`` (and the
console) says so, and ``source.encoder`` / ``video3d_encoder`` / ``audio_encoder`` / ``text_encoder`` each
record the backbone's name, checkpoint path and SHA-256, feature size and input.

Views (``--views K``, default 1; the original drew one of 10 augmented feature views per sample): each clip is
stored K times per modality, view 0 as is and views 1..K-1 augmented before their encoder, each from its own
seeded generator (``AUGMENT_SEED``, the clip's position, the view): crops flipped horizontally (p 0.5),
brightness and contrast scaled by U(0.8, 1.2), a random 90 % crop resized back; the waveform's gain changed by
U(-6, 6) dB with noise 30 dB below its level; each token replaced by ``<unk>`` with p 0.1 (for a
transformers text encoder, each word of the utterance replaced by its tokenizer's unknown token with p 0.1). A
view keeps its clip's step counts, so the store keeps one slice per sample and modality holding the K views one
after the other (``index.json`` ``views: K``; ``FeatureStore.features(i, m, view=v)`` cuts view v out). ``--data
feature_store`` serves the train split one view per sample drawn at random each time the sample is loaded
(so once per epoch, from torch's generator, which ``seed_everything`` and the loader's workers seed), and the
val and test splits view 0.

Damage does not stop the run: a file FFmpeg cannot open, or whose stream holds no decodable frame, is skipped,
counted and listed with the reason; a truncated file is stored with the frames before the damage and listed
as damaged. The report (``<out>/prepare_report.json``, also kept in ``index.json`` under ``source.report``)
holds those lists, the face counts and the time spent decoding and detecting.

Resumable and idempotent as every store (``feature_store.py``): each finished shard is recorded together with
the report so far, a restarted preparation continues after the last stored clip with the same report, and a
complete store is not redone. The options (crops, sampling, modalities, encoders, views) are saved with the store: a resumed
preparation, or a second run on a complete store, with other options (another encoder included) is refused
rather than mixing rows of two kinds. Sample ids are the clips' positions in the reader's order.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from affectlab.data.media.audio import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    log_mel,
    read_audio,
)
from affectlab.data.media.video import VideoDecodeError
from affectlab.data.media.video_clips import (
    UNK,
    VideoClip,
    VideoClipDataModule,
    encode_text,
    resize_frames,
    sample_frames,
)
from affectlab.data.store.encoders import (  # noqa: F401
    FLOAT16_MAX,
    INIT_SEED,
    CropEncoder,
    MelEncoder,
    TextEncoder,
    Video3DEncoder,
    checkpoint_identity,
    feature_rows,
    load_encoder_weights,
)
from affectlab.data.store.feature_store import INDEX, FeatureStoreWriter, StoreSample, option_differences
from affectlab.errors import ConfigError, DataError
from affectlab.io import atomic_write_json

NO_FACE_POLICIES = ("nearest", "frame", "skip")
REPORT = "prepare_report.json"


_differences = option_differences  # shared with the feature data sets' preparation (store/prepare.py)


def video_reader(name: str, root: str | Path, **options: Any) -> VideoClipDataModule:
    """The reader of the video data set ``name`` (its spec in the registry), pointed at ``root``; ``options``
    (``audio_seconds``, ``text_length``, ``vocab_size``) go to it where it has the modality they concern."""
    from affectlab.data.registry import get_dataset, video_sets

    if name not in video_sets():
        raise ConfigError(f"{name!r} is not a video data set; video data sets: {', '.join(video_sets())}")
    spec = get_dataset(name)
    available = spec.open(root).available_modalities
    concerns = {"audio_seconds": "audio", "text_length": "text", "vocab_size": "text"}
    return spec.open(root, **{k: v for k, v in options.items() if concerns[k] in available})


@dataclass
class PrepareReport:
    """What a preparation did; JSON-ready (``asdict``), saved with every shard and at the end."""

    clips: int = 0  # clips processed: written + skipped
    written: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}: not stored
    damaged: list[dict[str, str]] = field(default_factory=list)  # {"file", "problem"}: stored, frames missing
    frames: int = 0  # frames stored
    face: int = 0  # frames cropped at their own face
    nearest: int = 0  # frames cropped at the face of the nearest frame that has one
    whole: int = 0  # frames stored whole (resized): no face in the clip, or --no-face frame
    dropped: int = 0  # frames left out (--no-face skip)
    decoded_frames: int = 0  # frames decoded to reach the sampled ones
    decode_seconds: float = 0.0
    detect_seconds: float = 0.0  # MTCNN
    crop_seconds: float = 0.0  # alignment and resizing
    encode_seconds: float = 0.0  # --encoder: the feature model
    no_audio: int = 0  # stored clips without an audio track (no audio rows)
    no_text: int = 0  # stored clips whose utterance has no word (no text rows)
    audio_seconds: float = 0.0  # audio stored, in seconds of the clips (view 0)
    audio_decode_seconds: float = 0.0  # decoding and resampling
    audio_encode_seconds: float = 0.0  # log-mel and --audio-encoder
    text_encode_seconds: float = 0.0  # --text-encoder

    def summary(self) -> str:
        sampled = self.face + self.nearest + self.whole + self.dropped
        line = (f"{self.written} clips stored, {len(self.skipped)} skipped, {len(self.damaged)} damaged (stored "
                f"with the frames before the damage); {sampled} frames sampled: {self.face} with a face, "
                f"{self.nearest} cropped at the nearest frame's face, {self.whole} whole, {self.dropped} dropped")
        if self.decoded_frames and sampled:
            line += (f"; decode {1000 * self.decode_seconds / self.decoded_frames:.2f} ms per decoded frame, "
                     f"detection {1000 * self.detect_seconds / sampled:.1f} ms per sampled frame")
        if self.encode_seconds and self.frames:
            line += f", encoder {1000 * self.encode_seconds / self.frames:.1f} ms per stored frame"
        if self.audio_decode_seconds:
            line += (f"; audio: {self.audio_seconds:.1f} s stored, {self.no_audio} clips without an audio track, "
                     f"decode {self.audio_decode_seconds:.2f} s, spectrogram/encoder {self.audio_encode_seconds:.2f} s")
        if self.no_text or self.text_encode_seconds:
            line += f"; text: {self.no_text} utterances without a word"
            if self.text_encode_seconds:
                line += f", encoder {self.text_encode_seconds:.2f} s"
        return line

    def mark(self) -> dict[str, Any]:
        """Where the report stands now, cheaply (list lengths, not copies): ``at`` rebuilds it from this later."""
        return {key: len(value) if isinstance(value, list) else value for key, value in vars(self).items()}

    def at(self, mark: dict[str, Any]) -> dict[str, Any]:
        """The report as it was at ``mark``, JSON-ready (the lists only grow, so their first entries are it)."""
        return {key: list(value[: mark[key]]) if isinstance(value, list) else mark[key]
                for key, value in asdict(self).items()}


class FaceCropper:
    """Steps 2-4 for one clip's frames: MTCNN, the no-face policy, aligned crops.

    Args:
        size: side of the square crops.
        scale: crop side over the face's size.
        no_face: ``nearest``, ``frame`` or ``skip`` (module docstring).
        min_face_size: MTCNN's smallest face, in pixels.
        device: where MTCNN runs.
    """

    def __init__(self, size: int = 64, scale: float = 1.3, no_face: str = "nearest", min_face_size: int = 20,
                 device: str = "cpu") -> None:
        from affectlab.data.media.face_detection import FaceDetector

        if no_face not in NO_FACE_POLICIES:
            raise ConfigError(f"--no-face: {no_face!r} is not one of {', '.join(NO_FACE_POLICIES)}")
        if size < 8 or scale <= 0:
            raise ConfigError(f"--size ({size}) must be at least 8 and --scale ({scale}) positive")
        self.size, self.scale, self.no_face = size, scale, no_face
        self.detector = FaceDetector(min_face_size=min_face_size, largest_only=True, device=device)

    def __call__(self, images: list[np.ndarray], report: PrepareReport) -> np.ndarray:
        """``[T', S, S, 3]`` uint8 crops of ``images`` (``T' < T`` only with ``skip``); counts go to ``report``."""
        from affectlab.data.media.face_detection import align_crop

        start = time.perf_counter()
        faces = [found[0] if found else None for found in self.detector.detect(images)]
        report.detect_seconds += time.perf_counter() - start
        start = time.perf_counter()
        with_face = [t for t, face in enumerate(faces) if face is not None]
        crops = []
        for t, (image, face) in enumerate(zip(images, faces)):
            if face is not None and self.no_face != "frame":
                crops.append(align_crop(image, face, self.size, self.scale))
                report.face += 1
            elif self.no_face == "skip":
                report.dropped += 1
            elif self.no_face == "nearest" and with_face:
                nearest = min(with_face, key=lambda s: (abs(s - t), s))  # ties: the earlier frame
                crops.append(align_crop(image, faces[nearest], self.size, self.scale))
                report.nearest += 1
            else:
                crops.append(resize_frames([image], self.size)[0])
                report.whole += 1
        report.crop_seconds += time.perf_counter() - start
        return np.stack(crops) if crops else np.zeros((0, self.size, self.size, 3), np.uint8)


def prepare_clip(clip: VideoClip, cropper: FaceCropper, report: PrepareReport, num_frames: int | None,
                 fps: float | None, max_frames: int | None) -> np.ndarray | None:
    """Steps 1-4 for one clip: its crops ``[T, S, S, 3]`` uint8, or None when it is skipped (listed in ``report``)."""
    start = time.perf_counter()
    try:
        sampled = sample_frames(clip.path, num_frames, fps, max_frames)
    except VideoDecodeError as error:
        report.decode_seconds += time.perf_counter() - start
        report.skipped.append({"file": str(clip.path), "reason": str(error)})
        return None
    report.decode_seconds += time.perf_counter() - start
    report.decoded_frames += sampled.decoded
    if not sampled.frames:
        reason = sampled.problem or f"{clip.path}: no frame could be decoded"
        report.skipped.append({"file": str(clip.path), "reason": reason})
        return None
    if sampled.problem:
        report.damaged.append({"file": str(clip.path), "problem": sampled.problem})
    crops = cropper([f.image for f in sampled.frames], report)
    if len(crops) == 0:
        report.skipped.append({"file": str(clip.path), "reason": f"{clip.path}: no face in any of its "
                               f"{len(sampled.frames)} sampled frames (--no-face skip)"})
        return None
    return crops


def window_rows(video3d: Video3DEncoder, crops: np.ndarray, frame_features: np.ndarray | None) -> np.ndarray:
    """Step 6b for one view of a clip: ``[T, S, S, 3]`` crops -> ``[ceil(T / W), D3]`` 3D features, one row per
    window; with ``frame_features`` (``[T, D2]``, the per-frame ``--encoder`` features), each row followed by the
    mean of its window's frames' features (its real frames: the padding of a short last window repeats a frame
    the 3D model sees, not one the mean counts twice)."""
    rows = video3d(crops)
    if frame_features is None:
        return rows
    window = video3d.window
    means = np.stack([frame_features[start:start + window].mean(0) for start in range(0, len(crops), window)])
    return np.concatenate([rows, means.astype(np.float32)], axis=1)


def crop_rows(crops: np.ndarray) -> np.ndarray:
    """``[T, S, S, 3]`` uint8 -> ``[T, 3 * S * S]`` float16 in [0, 1], channel-first: the store's row format."""
    return (crops.transpose(0, 3, 1, 2).reshape(len(crops), -1).astype(np.float32) / 255.0).astype(np.float16)


AUGMENT_SEED = 1  # with the clip's position and the view, seeds each augmented view (module docstring)


def augment_crops(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[T, S, S, 3]`` uint8 crops, one augmentation for the whole clip: a horizontal flip (p 0.5), brightness
    and contrast scaled by U(0.8, 1.2), a random 90 % square crop resized back to S."""
    from PIL import Image

    size = crops.shape[1]
    flip, brightness, contrast = rng.random() < 0.5, rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    side = max(1, int(round(0.9 * size)))
    x0, y0 = (int(rng.integers(0, size - side + 1)) for _ in range(2))
    out = []
    for crop in crops:
        image = crop[:, ::-1] if flip else crop
        image = np.asarray(Image.fromarray(np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side]))
                           .resize((size, size), Image.BILINEAR), np.float32)
        mean = image.mean()
        out.append(np.clip((image - mean) * contrast + mean * brightness, 0, 255).round().astype(np.uint8))
    return np.stack(out)


def augment_waveform(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[S]`` float waveform: gain U(-6, 6) dB, Gaussian noise 30 dB below its RMS level, clipped to [-1, 1]."""
    gain = 10 ** (rng.uniform(-6.0, 6.0) / 20)
    rms = float(np.sqrt(np.mean(waveform.astype(np.float64) ** 2))) if len(waveform) else 0.0
    noise = rng.normal(0.0, rms * gain * 10 ** (-30 / 20), len(waveform))
    return np.clip(waveform * gain + noise, -1.0, 1.0).astype(np.float32)


def augment_ids(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[L]`` token ids with each replaced by ``<unk>`` with p 0.1 (length kept)."""
    return np.where(rng.random(len(ids)) < 0.1, UNK, ids).astype(ids.dtype)


@dataclass
class ClipViews:
    """One stored clip's raw modalities, view by view (view 0 as decoded); None: the clip lacks the modality."""

    crops: list[np.ndarray]  # per view [T, S, S, 3] uint8
    waveforms: list[np.ndarray] | None = None  # per view [S] float32, 16 kHz
    ids: list[np.ndarray] | None = None  # per view [L] int64
    text: str = ""  # the utterance (for a transformers text encoder)
    unknown_words: list[np.ndarray] | None = None  # per view, which of the utterance's words (at spaces) are unknown


def view_texts(views_: ClipViews, text_encoder: TextEncoder) -> list[str]:
    """Per view, the utterance a transformers text encoder reads: view 0 as is, the others with each word
    (split at spaces) drawn unknown replaced by the tokenizer's unknown token (its mask token when it has none;
    kept when it has neither). The affectlab encoder reads the views' ids instead (``augment_ids``)."""
    unknown = text_encoder.unknown_token
    if unknown is None or views_.unknown_words is None:
        return [views_.text] * (len(views_.ids) if views_.ids is not None else 1)
    spoken = views_.text.split()
    return [views_.text] + [" ".join(unknown if drop else word for word, drop in zip(spoken, drops))
                            for drops in views_.unknown_words[1:]]


def clip_views(position: int, clip: VideoClip, crops: np.ndarray, module: VideoClipDataModule,
               report: PrepareReport, views: int) -> ClipViews:
    """Steps 7 and 8 before their encoders, and the augmented views (module docstring)."""
    rngs = [np.random.default_rng([AUGMENT_SEED, position, view]) for view in range(views)]
    result = ClipViews([crops] + [augment_crops(crops, rngs[v]) for v in range(1, views)])
    if "audio" in module.available_modalities:
        started = time.perf_counter()
        track = read_audio(clip.path, SAMPLE_RATE, module.audio_seconds)
        report.audio_decode_seconds += time.perf_counter() - started
        if track is not None and track.problem:
            report.damaged.append({"file": str(clip.path), "problem": track.problem})
        if track is None or len(track.waveform) == 0:
            report.no_audio += 1
        else:
            report.audio_seconds += len(track.waveform) / SAMPLE_RATE
            result.waveforms = [track.waveform] + [augment_waveform(track.waveform, rngs[v]) for v in range(1, views)]
    if "text" in module.available_modalities:
        ids = encode_text(clip.text or "", {w: i for i, w in enumerate(module.vocabulary)}, module.text_length)
        result.text = clip.text or ""
        if len(ids) == 0:
            report.no_text += 1
        else:
            result.ids = [ids] + [augment_ids(ids, rngs[v]) for v in range(1, views)]
            spoken = len(result.text.split())  # a transformers model's words: drawn after the ids, which stay
            result.unknown_words = [np.zeros(spoken, bool)] + [rngs[v].random(spoken) < 0.1 for v in range(1, views)]
    return result


def prepare_video(name: str, raw: str, out: str, num_frames: int | None = 8, fps: float | None = None,
                  max_frames: int = 64, size: int = 64, scale: float = 1.3, no_face: str = "nearest",
                  min_face_size: int = 20, device: str = "cpu", shard_samples: int = 256,
                  encoder: str | None = None, encoder_checkpoint: str | None = None,
                  encoder_batch: int | None = None, audio_encoder: str | None = None,
                  audio_encoder_checkpoint: str | None = None, text_encoder: str | None = None,
                  text_encoder_checkpoint: str | None = None, video3d_encoder: str | None = None,
                  video3d_encoder_checkpoint: str | None = None, video3d_window: int | None = None,
                  views: int = 1, audio_seconds: float = 10.0,
                  text_length: int = 48, vocab_size: int = 512, progress: bool = True) -> PrepareReport:
    """Prepare the video data set ``name`` read from ``raw`` into the feature store ``out`` (module docstring).

    Args:
        name: ``meld``, ``caer`` or ``voxceleb2``.
        raw: the data set's folder, laid out as distributed.
        out: the store's folder.
        num_frames: frames per clip, evenly spaced (ignored when ``fps`` is given).
        fps: frames per second of video to keep instead, at most ``max_frames`` per clip.
        max_frames: with ``fps``, frames per clip at most.
        size: side of the square crops (stored, or given to the encoder).
        scale: crop side over the detected face's size.
        no_face: what a frame without a face becomes: ``nearest``, ``frame`` or ``skip``.
        min_face_size: MTCNN's smallest face in pixels.
        device: where MTCNN and the encoders run (``cpu``, ``cuda``).
        shard_samples: clips per shard (a shard of 256 clips of 8 64x64 crops is 50 MB).
        encoder: a timm model name: store its pooled features per frame instead of the crops.
        encoder_checkpoint: a local state dict for ``encoder`` (default: random initialisation).
        encoder_batch: crops per forward pass of the encoder (default 64).
        audio_encoder: a timm model name: store its pooled features of each clip's log-mel spectrogram.
        audio_encoder_checkpoint: a local state dict for ``audio_encoder`` (default: random initialisation).
        text_encoder: ``affectlab`` or a local transformers folder: store the utterance's mean token embedding.
        text_encoder_checkpoint: with ``affectlab``, a local ``TextTransformerEncoder`` state dict.
        video3d_encoder: a torchvision video model name: store its pooled features per window of frames (alone,
            or beside the window's mean ``encoder`` features; module docstring, step 6b).
        video3d_encoder_checkpoint: a local state dict for ``video3d_encoder`` (default: random initialisation).
        video3d_window: sampled frames per window of ``video3d_encoder`` (default 16, the original's).
        views: feature views stored per clip (view 0 as is, the others augmented).
        audio_seconds: audio per clip at most.
        text_length: tokens per utterance at most.
        vocab_size: the reader's vocabulary size (at most 2048 when ids are stored: float16 holds whole numbers
            exactly up to 2048).
        progress: show a progress bar.

    Returns:
        The report (also in ``<out>/prepare_report.json``).
    """
    if fps is not None and fps <= 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if fps is None and (num_frames is None or num_frames < 1):
        raise ConfigError(f"--num-frames must be at least 1, got {num_frames}")
    for flag, given, needed in (("--encoder-checkpoint", encoder_checkpoint, encoder),
                                ("--encoder-batch", encoder_batch, encoder),
                                ("--audio-encoder-checkpoint", audio_encoder_checkpoint, audio_encoder),
                                ("--text-encoder-checkpoint", text_encoder_checkpoint, text_encoder),
                                ("--video3d-encoder-checkpoint", video3d_encoder_checkpoint, video3d_encoder),
                                ("--video3d-window", video3d_window, video3d_encoder)):
        if given is not None and needed is None:
            model_flag = flag.removesuffix("-checkpoint").removesuffix("-batch").removesuffix("-window")
            model_flag = "--video3d-encoder" if model_flag == "--video3d" else model_flag
            raise ConfigError(f"{flag} needs {model_flag} NAME, the model that computes the features")
    if views < 1:
        raise ConfigError(f"--views must be at least 1, got {views}")
    module = video_reader(name, raw, audio_seconds=audio_seconds, text_length=text_length, vocab_size=vocab_size)
    modalities = tuple(module.available_modalities)
    for flag, given, modality in (("--audio-encoder", audio_encoder, "audio"), ("--text-encoder", text_encoder, "text")):
        if given is not None and modality not in modalities:
            raise ConfigError(f"{flag}: {name} has no {modality} (its modalities: {', '.join(modalities)})")
    if "text" in modalities and text_encoder is None and vocab_size > 2048:
        raise ConfigError(f"--vocab-size {vocab_size}: token ids are stored as float16, exact up to 2048; lower it, "
                          "or store features with --text-encoder")
    options: dict[str, Any] = {"num_frames": None if fps is not None else num_frames, "fps": fps,
                               "max_frames": max_frames if fps is not None else None, "size": size, "scale": scale,
                               "no_face": no_face, "min_face_size": min_face_size}
    if encoder is not None:  # only then: stores of crops keep the options they were saved with
        options["encoder"] = {"name": encoder,
                              "checkpoint": checkpoint_identity(encoder_checkpoint) if encoder_checkpoint else None}
    if video3d_encoder is not None:
        video3d_window = 16 if video3d_window is None else video3d_window
        options["video3d_encoder"] = {"name": video3d_encoder, "window": video3d_window,
                                      "checkpoint": checkpoint_identity(video3d_encoder_checkpoint,
                                                                        "--video3d-encoder-checkpoint")
                                      if video3d_encoder_checkpoint else None}
    if modalities != ("video",):
        options["modalities"] = list(modalities)
    if "audio" in modalities:
        options["audio"] = {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH, "n_mels": N_MELS,
                            "max_seconds": audio_seconds}
        if audio_encoder is not None:
            options["audio_encoder"] = {"name": audio_encoder, "checkpoint": checkpoint_identity(
                audio_encoder_checkpoint, "--audio-encoder-checkpoint") if audio_encoder_checkpoint else None}
    if "text" in modalities:
        options["text"] = {"text_length": text_length, "vocab_size": vocab_size}
        if text_encoder is not None:
            folder = text_encoder if text_encoder != "affectlab" else text_encoder_checkpoint
            options["text_encoder"] = {"name": text_encoder, "checkpoint": checkpoint_identity(
                folder, "--text-encoder-checkpoint") if folder else None}
    if views > 1:
        options["views"] = views
    console = Console()
    if (Path(out) / INDEX).is_file():  # complete: checked before listing a million clips
        saved = json.loads((Path(out) / INDEX).read_text())["source"]
        if saved.get("name") != name or "report" not in saved:
            raise ConfigError(f"{out} already holds a complete store of {saved.get('name')!r}, not of {name}'s "
                              "videos; choose another --out, or delete that folder")
        if saved.get("options") != options:
            raise ConfigError(f"{out} already holds a complete store of {name} made with "
                              f"{_differences(saved.get('options'), options)}; choose another --out, or delete that "
                              "folder to prepare it again")
        console.print(f"{out}: already prepared ({saved['report']['written']} clips of {saved['name']}); "
                      "nothing to do", soft_wrap=True)
        return PrepareReport(**saved["report"])
    cropper = FaceCropper(size, scale, no_face, min_face_size, device)  # checks the options before any work
    features = CropEncoder(encoder, encoder_checkpoint, encoder_batch or 64, device) if encoder else None
    video3d = (Video3DEncoder(video3d_encoder, video3d_encoder_checkpoint, video3d_window, device=device)
               if video3d_encoder else None)
    module.setup()  # lists the clips (and builds the vocabulary); a layout problem stops here, naming the file
    sound = MelEncoder(audio_encoder, audio_encoder_checkpoint, device) if audio_encoder else None
    words = TextEncoder(text_encoder, text_encoder_checkpoint, vocab_size, text_length, device) if text_encoder else None
    clips = module.clips
    source: dict[str, Any] = {"name": name, "raw": str(Path(raw).resolve()), "options": options}
    dims = {"video": features.dim if features else 3 * size * size}
    if video3d is not None:  # a row per window: its 3D features, then the mean of its frames' --encoder features
        dims["video"] = video3d.dim + (features.dim if features else 0)
    backbones = {"encoder": features, "video3d_encoder": video3d, "audio_encoder": sound, "text_encoder": words}
    for key, backbone in backbones.items():
        if backbone is not None:
            source[key] = backbone.describe()
    warnings_ = [backbone.describe()["warning"] for backbone in backbones.values()
                 if backbone is not None and "warning" in backbone.describe()]
    if warnings_:
        source["warnings"] = warnings_
    if "audio" in modalities:
        dims["audio"] = sound.dim if sound else N_MELS
    if "text" in modalities:
        dims["text"] = words.dim if words else 1
        source["text"] = {"vocabulary": list(module.vocabulary), "text_length": text_length,
                          "tokens": "lower-cased words (data/media/video_clips.py words), ids in the vocabulary, "
                                    "0 padding, 1 unknown"}
    writer = FeatureStoreWriter(
        out, dims, {task: () for task in module.tasks}, shard_samples, source=source,
        task_dtypes=dict(module.task_dtypes),
        shapes=None if features or video3d else {"video": (3, size, size)},  # features: plain [T, D] rows
        class_names={task: list(names) for task, names in module.class_names.items()},
        token_ids=("text",) if "text" in modalities and words is None else (), views=views,
    )
    written = writer.written_ids()
    saved = writer.saved_state() or {}
    if written and saved.get("options") != options:
        raise ConfigError(f"{out} holds an unfinished preparation made with "
                          f"{_differences(saved.get('options'), options)}; run it again with the same options, or "
                          "delete the folder to start over")
    report = PrepareReport(**saved["report"]) if written else PrepareReport()
    start = written[-1] + 1 if written else 0  # ids are positions in the reader's order
    # With an encoder, cropped clips wait in ``pending`` until --encoder-batch crops can go through it at once.
    # The report then runs ahead of the samples handed to the writer; each pending clip keeps the report's mark
    # after it, and ``state`` saves the report at the last clip handed over, so a resumed preparation (which
    # restarts after the last stored clip) counts no clip twice. Audio and text are encoded clip by clip, before
    # the mark is taken.
    pending: list[tuple[int, VideoClip, list[np.ndarray], dict[str, np.ndarray], dict[str, Any]]] = []
    handed = {"mark": report.mark()}

    def other_rows(views_: ClipViews) -> dict[str, np.ndarray]:
        """Steps 7 and 8: each view's audio and text rows, the views one after the other."""
        rows: dict[str, np.ndarray] = {}
        if "audio" in modalities:
            started = time.perf_counter()
            if views_.waveforms is None:
                rows["audio"] = np.zeros((0, dims["audio"]), np.float32)
            else:
                mels = [log_mel(w) for w in views_.waveforms]  # per view [F, 128]
                rows["audio"] = np.concatenate([feature_rows(sound(m)) if sound else m for m in mels])
            report.audio_encode_seconds += time.perf_counter() - started
        if "text" in modalities:
            started = time.perf_counter()
            if views_.ids is None:
                rows["text"] = np.zeros((0, dims["text"]), np.float32)
            elif words is None:
                rows["text"] = np.concatenate([ids[:, None].astype(np.float32) for ids in views_.ids])
            else:
                rows["text"] = np.concatenate([feature_rows(words(ids, text))
                                               for ids, text in zip(views_.ids, view_texts(views_, words))])
            report.text_encode_seconds += time.perf_counter() - started
        return rows

    def flush():
        """Hand the pending clips to the writer, in order: their crops as rows, or the encoder's features."""
        if features is None and video3d is None:
            video_rows = [np.concatenate([crop_rows(c) for c in crops]) for _, _, crops, _, _ in pending]
        else:
            started = time.perf_counter()
            flat = [c for _, _, crops, _, _ in pending for c in crops]  # every view of every pending clip
            per_view = [None] * len(flat)
            if features is not None:
                encoded = features(np.concatenate(flat))  # [sum T, D] float32
                per_view = np.split(encoded, np.cumsum([len(c) for c in flat])[:-1])
            if video3d is not None:
                per_view = [window_rows(video3d, crops, frames) for crops, frames in zip(flat, per_view)]
            per_view = [feature_rows(rows) for rows in per_view]
            video_rows = [np.concatenate(per_view[k * views:(k + 1) * views]) for k in range(len(pending))]
            report.encode_seconds += time.perf_counter() - started
        for (position, clip, _, rows, mark), video in zip(pending, video_rows):
            handed["mark"] = {**mark, "encode_seconds": report.encode_seconds}
            targets = {task: clip.targets[task] for task in module.tasks}
            yield StoreSample(position, clip.split, {"video": video, **rows}, targets)
        pending.clear()

    def samples(advance):
        for position in range(start, len(clips)):
            clip = clips[position]
            crops = prepare_clip(clip, cropper, report, num_frames if fps is None else None, fps, max_frames)
            report.clips += 1
            advance()
            if crops is not None:
                report.written += 1
                report.frames += len(crops)
                raw_views = clip_views(position, clip, crops, module, report, views)
                pending.append((position, clip, raw_views.crops, other_rows(raw_views), report.mark()))
            # (the 3D encoder batches a clip's windows itself: without --encoder, each clip is handed over at once)
            if pending and (features is None or sum(len(c) for p in pending for c in p[2]) >= (encoder_batch or 64)):
                yield from flush()
        if pending:
            yield from flush()
        if report.written == 0:
            raise DataError(f"{name}: none of the {len(clips)} clips under {raw} could be prepared; the first "
                            f"skipped: {report.skipped[0]['reason'] if report.skipped else 'none'}")
        writer.source["report"] = asdict(report)  # index.json is written after this generator ends

    def state() -> dict[str, Any]:  # saved with each shard: what a resumed preparation starts from
        return {"options": options, "report": report.at(handed["mark"])}

    columns = (TextColumn(f"preparing {name}"), BarColumn(), TextColumn("{task.completed}/{task.total} clips"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task(name, total=len(clips), completed=start)
        writer.write(samples(lambda: bar.advance(task)), None, state=state)
    atomic_write_json(Path(out) / REPORT, asdict(report))
    console.print(f"{out}: {name}, {report.summary()}" + (f"; resumed after clip {start}" if start else ""),
                  soft_wrap=True)
    stored = ", ".join(f"{m} {d}" for m, d in dims.items())
    console.print(f"{out}: modalities stored (values per row): {stored}" + (f"; {views} views per clip" if views > 1
                                                                             else ""), soft_wrap=True)
    if features is not None:
        console.print(f"{out}: each frame stored as {features.name}'s {features.dim} pooled features "
                      f"({'weights from ' + encoder_checkpoint if encoder_checkpoint else 'random init'})", soft_wrap=True)
    if video3d is not None:
        console.print(f"{out}: each window of {video3d.window} sampled frames stored as {video3d.name}'s {video3d.dim} "
                      "pooled features" + (f", then the mean of its frames' {features.dim} {features.name} features"
                                           if features is not None else "")
                      + f" ({'weights from ' + video3d_encoder_checkpoint if video3d_encoder_checkpoint else 'random init'})",
                      soft_wrap=True)
    for line in warnings_:
        console.print(f"[yellow]warning[/]: {line}", soft_wrap=True)
    for entry in report.skipped[:10]:
        console.print(f"[yellow]skipped[/]: {entry['reason']}", soft_wrap=True)
    if len(report.skipped) > 10:
        console.print(f"... and {len(report.skipped) - 10} more skipped, all listed in {Path(out) / REPORT}",
                      soft_wrap=True)
    return report


def prepare_clips(name: str, raw: str, out: str, shard_samples: int | None = None, max_rows: int | None = None,
                  **options: Any) -> PrepareReport:
    """``prepare_video`` called as the registry calls every preparer; ``max_rows`` (the feature data sets' row
    limit) does not apply: a clip keeps the frames its sampling options choose."""
    return prepare_video(name, raw, out, shard_samples=shard_samples or 256, **options)
