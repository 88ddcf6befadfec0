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

Damage does not stop the run: a file FFmpeg cannot open, or whose stream holds no decodable frame, is skipped,
counted and listed with the reason; a truncated file is stored with the frames before the damage and listed
as damaged. The report (``<out>/prepare_report.json``, also kept in ``index.json`` under ``source.report``)
holds those lists, the face counts and the time spent decoding and detecting.

Resumable and idempotent as every store (``feature_store.py``): each finished shard is recorded together with
the report so far, a restarted preparation continues after the last stored clip with the same report, and a
complete store is not redone. The options (crops, sampling, encoder) are saved with the store: a resumed
preparation, or a second run on a complete store, with other options (another encoder included) is refused
rather than mixing rows of two kinds. Sample ids are the clips' positions in the reader's order.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from affectlab.data.store.feature_store import INDEX, FeatureStoreWriter, StoreSample
from affectlab.data.media.video import VideoDecodeError
from affectlab.data.media.video_clips import VideoClip, VideoClipDataModule, resize_frames, sample_frames
from affectlab.errors import ConfigError, DataError
from affectlab.io import atomic_write_json, load_checkpoint

NO_FACE_POLICIES = ("nearest", "frame", "skip")
REPORT = "prepare_report.json"


def _differences(saved: dict[str, Any] | None, given: dict[str, Any]) -> str:
    """The options that differ between a store's ``saved`` ones and the ``given`` ones: "size 16 (not size 24)"."""
    saved = saved or {}
    keys = [k for k in {**saved, **given} if saved.get(k) != given.get(k)]
    was = ", ".join(f"{k} {saved.get(k)!r}" for k in keys)
    return f"{was} (not {', '.join(f'{k} {given.get(k)!r}' for k in keys)})"


def video_reader(name: str, root: str | Path) -> VideoClipDataModule:
    """The reader of the video data set ``name`` (its spec in the registry), pointed at ``root``."""
    from affectlab.data.registry import get_dataset, video_sets

    if name not in video_sets():
        raise ConfigError(f"{name!r} is not a video data set; video data sets: {', '.join(video_sets())}")
    return get_dataset(name).open(root)


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


def crop_rows(crops: np.ndarray) -> np.ndarray:
    """``[T, S, S, 3]`` uint8 -> ``[T, 3 * S * S]`` float16 in [0, 1], channel-first: the store's row format."""
    return (crops.transpose(0, 3, 1, 2).reshape(len(crops), -1).astype(np.float32) / 255.0).astype(np.float16)


FLOAT16_MAX = 65504.0  # the store's rows are float16
INIT_SEED = 0  # seeds a randomly initialised encoder


class CropEncoder:
    """Step 6: face crops -> the pooled feature vector of a timm model (module docstring).

    The model is built with ``timm.create_model(name, pretrained=False, num_classes=0)`` (no classifier: its
    output is the pooled feature vector), put in eval mode and run without gradients. Its input follows
    ``timm.data.resolve_data_config``: crops resized to ``input_size`` with its ``interpolation`` and normalised
    with its ``mean``/``std``. Its ``crop_pct`` centre crop is not applied: the face crop already frames the face.

    Args:
        name: a timm model name (``timm.list_models()``).
        checkpoint: a local state dict for it (``torch.save(model.state_dict(), path)``, or a checkpoint holding
            one under ``state_dict``/``model``), loaded with ``weights_only=True``; None: random initialisation,
            seeded (``INIT_SEED``) so that a resumed preparation computes with the same weights.
        batch: crops per forward pass.
        device: where the model runs.
    """

    def __init__(self, name: str, checkpoint: str | None = None, batch: int = 64, device: str = "cpu") -> None:
        import timm
        import torch

        if batch < 1:
            raise ConfigError(f"--encoder-batch must be at least 1, got {batch}")
        if not timm.is_model(name):
            raise ConfigError(f"--encoder: {name!r} is not a timm model name; list them with "
                              "python -c \"import timm; print(timm.list_models('resnet*'))\"")
        self.name, self.batch, self.device = name, batch, torch.device(device)
        with torch.random.fork_rng(devices=[]):  # a fixed random init: a resumed preparation builds the same model
            torch.manual_seed(INIT_SEED)
            self.model = timm.create_model(name, pretrained=False, num_classes=0)
        self.checkpoint = checkpoint_identity(checkpoint) if checkpoint else None
        if checkpoint:
            load_encoder_weights(self.model, checkpoint)
        self.model.eval().to(self.device)
        config = timm.data.resolve_data_config({}, model=self.model)
        self.input_size = tuple(int(v) for v in config["input_size"][1:])  # (H, W)
        self.interpolation = config["interpolation"] if config["interpolation"] in ("bilinear", "bicubic") else "bilinear"
        self.mean = torch.tensor(config["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(config["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.dim = int(self(np.zeros((1, 8, 8, 3), np.uint8)).shape[1])  # what the model pools to, whatever its head

    def describe(self) -> dict[str, Any]:
        """What the store's ``source`` records about the encoder."""
        return {"name": self.name, "checkpoint": self.checkpoint,
                "init": "checkpoint" if self.checkpoint else f"random (torch seed {INIT_SEED})",
                "dim": self.dim, "input_size": list(self.input_size),
                "interpolation": self.interpolation, "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist()}

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """``[N, S, S, 3]`` uint8 crops -> ``[N, D]`` float32 features."""
        import torch
        import torch.nn.functional as F

        features = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch):
                x = torch.from_numpy(np.ascontiguousarray(crops[start:start + self.batch])).to(self.device)
                x = x.permute(0, 3, 1, 2).float().div(255.0)  # [n, 3, S, S] in [0, 1]
                if tuple(x.shape[-2:]) != self.input_size:
                    x = F.interpolate(x, size=self.input_size, mode=self.interpolation, align_corners=False,
                                      antialias=True).clamp(0.0, 1.0)  # bicubic overshoots
                features.append(self.model((x - self.mean) / self.std).float().cpu().numpy())  # [n, D]
        return np.concatenate(features) if features else np.zeros((0, 0), np.float32)


def checkpoint_identity(path: str) -> dict[str, str]:
    """``--encoder-checkpoint``'s absolute path and SHA-256: what the store records, and what a resumed
    preparation must find again (the same path holding other weights is another encoder)."""
    if not Path(path).is_file():
        raise ConfigError(f"--encoder-checkpoint: {path} does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(Path(path).resolve()), "sha256": digest.hexdigest()}


def load_encoder_weights(model: Any, path: str) -> None:
    """Load ``--encoder-checkpoint`` ``path`` into the timm ``model`` strictly (its classifier's weights, which
    ``num_classes=0`` removed, are left out)."""
    import torch

    key = "--encoder-checkpoint"
    try:
        state = load_checkpoint(path, key=key)
    except ConfigError as error:
        if not Path(path).is_file():
            raise
        raise ConfigError(f"{error}; save the state dict alone: torch.save(model.state_dict(), path)") from None
    for wrapper in ("state_dict", "model"):  # common checkpoint layouts around the state dict
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{key}: {path} holds no state dict (a dict of tensors); save one with "
                          "torch.save(model.state_dict(), path)")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel / DDP
    heads = model.pretrained_cfg.get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    state = {k: v for k, v in state.items() if not any(k.startswith(head + ".") for head in heads)}
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ConfigError(f"{key}: the weights in {path} do not fit timm's {model.default_cfg.get('architecture')}: "
                          f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys "
                          f"{unexpected[:5]}; is --encoder the architecture they were saved from?")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # same keys, other shapes
        raise ConfigError(f"{key}: the weights in {path} do not fit --encoder: {error}") from None


def feature_rows(features: np.ndarray) -> np.ndarray:
    """``[T, D]`` float32 encoder features -> the store's float16 rows; values float16 cannot hold are an error."""
    largest = float(np.abs(features).max()) if features.size else 0.0
    if not np.isfinite(largest) or largest > FLOAT16_MAX:
        raise DataError(f"--encoder: the features reach {largest:g}, beyond float16 (the store's format, at most "
                        f"{FLOAT16_MAX:g}); choose a model whose pooled output is normalised, or other weights")
    return features.astype(np.float16)


def prepare_video(name: str, raw: str, out: str, num_frames: int | None = 8, fps: float | None = None,
                  max_frames: int = 64, size: int = 64, scale: float = 1.3, no_face: str = "nearest",
                  min_face_size: int = 20, device: str = "cpu", shard_samples: int = 256,
                  encoder: str | None = None, encoder_checkpoint: str | None = None,
                  encoder_batch: int | None = None, progress: bool = True) -> PrepareReport:
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
        device: where MTCNN and the encoder run (``cpu``, ``cuda``).
        shard_samples: clips per shard (a shard of 256 clips of 8 64x64 crops is 50 MB).
        encoder: a timm model name: store its pooled features per frame instead of the crops.
        encoder_checkpoint: a local state dict for ``encoder`` (default: random initialisation).
        encoder_batch: crops per forward pass of the encoder (default 64).
        progress: show a progress bar.

    Returns:
        The report (also in ``<out>/prepare_report.json``).
    """
    if fps is not None and fps <= 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if fps is None and (num_frames is None or num_frames < 1):
        raise ConfigError(f"--num-frames must be at least 1, got {num_frames}")
    if encoder is None and (encoder_checkpoint is not None or encoder_batch is not None):
        flag = "--encoder-checkpoint" if encoder_checkpoint is not None else "--encoder-batch"
        raise ConfigError(f"{flag} needs --encoder NAME, the timm model that computes the features")
    options = {"num_frames": None if fps is not None else num_frames, "fps": fps,
               "max_frames": max_frames if fps is not None else None, "size": size, "scale": scale,
               "no_face": no_face, "min_face_size": min_face_size}
    if encoder is not None:  # only then: stores of crops keep the options they were saved with
        options["encoder"] = {"name": encoder,
                              "checkpoint": checkpoint_identity(encoder_checkpoint) if encoder_checkpoint else None}
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
    module = video_reader(name, raw)
    module.setup()  # lists the clips; a layout problem stops here, naming the file
    clips = module.clips
    source = {"name": name, "raw": str(Path(raw).resolve()), "options": options}
    if features is not None:
        source["encoder"] = features.describe()
    writer = FeatureStoreWriter(
        out, {"video": features.dim if features else 3 * size * size}, {task: () for task in module.tasks},
        shard_samples, source=source, task_dtypes=dict(module.task_dtypes),
        shapes=None if features else {"video": (3, size, size)},  # features: plain [T, D] rows
        class_names={task: list(names) for task, names in module.class_names.items()},
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
    # restarts after the last stored clip) counts no clip twice.
    pending: list[tuple[int, VideoClip, np.ndarray, dict[str, Any]]] = []  # position, clip, crops, report mark
    handed = {"mark": report.mark()}

    def flush():
        """Hand the pending clips to the writer, in order: their crops as rows, or the encoder's features."""
        if features is None:
            rows = [crop_rows(crops) for _, _, crops, _ in pending]
        else:
            started = time.perf_counter()
            encoded = feature_rows(features(np.concatenate([crops for _, _, crops, _ in pending])))  # [sum T, D]
            rows = np.split(encoded, np.cumsum([len(crops) for _, _, crops, _ in pending])[:-1])  # per clip [T, D]
            report.encode_seconds += time.perf_counter() - started
        for (position, clip, _, mark), video in zip(pending, rows):
            handed["mark"] = {**mark, "encode_seconds": report.encode_seconds}
            targets = {task: clip.targets[task] for task in module.tasks}
            yield StoreSample(position, clip.split, {"video": video}, targets)
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
                pending.append((position, clip, crops, report.mark()))
            if pending and (features is None or sum(len(p[2]) for p in pending) >= (encoder_batch or 64)):
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
    if features is not None:
        console.print(f"{out}: each frame stored as {features.name}'s {features.dim} pooled features "
                      f"({'weights from ' + encoder_checkpoint if encoder_checkpoint else 'random init'})", soft_wrap=True)
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
