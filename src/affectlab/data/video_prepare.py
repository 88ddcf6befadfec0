"""``affectlab data prepare meld|caer|voxceleb2 --raw DIR --out DIR``: video clips -> aligned face crops in a
feature store, once, so that training reads crops instead of decoding videos and detecting faces every epoch.

Per clip, in the reader's fixed order (train, val, test; ``data/meld.py``, ``caer.py``, ``voxceleb2.py``):

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
   class names.

Damage does not stop the run: a file FFmpeg cannot open, or whose stream holds no decodable frame, is skipped,
counted and listed with the reason; a truncated file is stored with the frames before the damage and listed
as damaged. The report (``<out>/prepare_report.json``, also kept in ``index.json`` under ``source.report``)
holds those lists, the face counts and the time spent decoding and detecting.

Resumable and idempotent as every store (``feature_store.py``): each finished shard is recorded together with
the report so far, a restarted preparation continues after the last stored clip with the same report, and a
complete store is not redone. Sample ids are the clips' positions in the reader's order.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from affectlab.data.feature_store import INDEX, FeatureStoreWriter, StoreSample, _atomic_json
from affectlab.data.video import VideoDecodeError
from affectlab.data.video_clips import VideoClip, VideoClipDataModule, resize_frames, sample_frames
from affectlab.errors import ConfigError, DataError

VIDEO_SETS = ("caer", "meld", "voxceleb2")
NO_FACE_POLICIES = ("nearest", "frame", "skip")
REPORT = "prepare_report.json"


def video_reader(name: str, root: str | Path) -> VideoClipDataModule:
    """The reader of the video data set ``name`` (its class path in ``data/layouts.py``), pointed at ``root``."""
    from affectlab.data.layouts import dataset_layout

    if name not in VIDEO_SETS:
        raise ConfigError(f"{name!r} is not a video data set; video data sets: {', '.join(VIDEO_SETS)}")
    module_path, class_name = dataset_layout(name).reader.rsplit(".", 1)
    return getattr(importlib.import_module(module_path), class_name)(root=str(root))


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

    def summary(self) -> str:
        sampled = self.face + self.nearest + self.whole + self.dropped
        line = (f"{self.written} clips stored, {len(self.skipped)} skipped, {len(self.damaged)} damaged (stored "
                f"with the frames before the damage); {sampled} frames sampled: {self.face} with a face, "
                f"{self.nearest} cropped at the nearest frame's face, {self.whole} whole, {self.dropped} dropped")
        if self.decoded_frames and sampled:
            line += (f"; decode {1000 * self.decode_seconds / self.decoded_frames:.2f} ms per decoded frame, "
                     f"detection {1000 * self.detect_seconds / sampled:.1f} ms per sampled frame")
        return line


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
        from affectlab.data.face_detection import FaceDetector

        if no_face not in NO_FACE_POLICIES:
            raise ConfigError(f"--no-face: {no_face!r} is not one of {', '.join(NO_FACE_POLICIES)}")
        if size < 8 or scale <= 0:
            raise ConfigError(f"--size ({size}) must be at least 8 and --scale ({scale}) positive")
        self.size, self.scale, self.no_face = size, scale, no_face
        self.detector = FaceDetector(min_face_size=min_face_size, largest_only=True, device=device)

    def __call__(self, images: list[np.ndarray], report: PrepareReport) -> np.ndarray:
        """``[T', S, S, 3]`` uint8 crops of ``images`` (``T' < T`` only with ``skip``); counts go to ``report``."""
        from affectlab.data.face_detection import align_crop

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


def prepare_video(name: str, raw: str, out: str, num_frames: int | None = 8, fps: float | None = None,
                  max_frames: int = 64, size: int = 64, scale: float = 1.3, no_face: str = "nearest",
                  min_face_size: int = 20, device: str = "cpu", shard_samples: int = 256,
                  progress: bool = True) -> PrepareReport:
    """Prepare the video data set ``name`` read from ``raw`` into the feature store ``out`` (module docstring).

    Args:
        name: ``meld``, ``caer`` or ``voxceleb2``.
        raw: the data set's folder, laid out as distributed.
        out: the store's folder.
        num_frames: frames per clip, evenly spaced (ignored when ``fps`` is given).
        fps: frames per second of video to keep instead, at most ``max_frames`` per clip.
        max_frames: with ``fps``, frames per clip at most.
        size: side of the stored square crops.
        scale: crop side over the detected face's size.
        no_face: what a frame without a face becomes: ``nearest``, ``frame`` or ``skip``.
        min_face_size: MTCNN's smallest face in pixels.
        device: where MTCNN runs (``cpu``, ``cuda``).
        shard_samples: clips per shard (a shard of 256 clips of 8 64x64 crops is 50 MB).
        progress: show a progress bar.

    Returns:
        The report (also in ``<out>/prepare_report.json``).
    """
    if fps is not None and fps <= 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if fps is None and (num_frames is None or num_frames < 1):
        raise ConfigError(f"--num-frames must be at least 1, got {num_frames}")
    options = {"num_frames": None if fps is not None else num_frames, "fps": fps,
               "max_frames": max_frames if fps is not None else None, "size": size, "scale": scale,
               "no_face": no_face, "min_face_size": min_face_size}
    console = Console()
    if (Path(out) / INDEX).is_file():  # complete: checked before listing a million clips
        saved = json.loads((Path(out) / INDEX).read_text())["source"]
        if saved.get("name") != name or "report" not in saved:
            raise ConfigError(f"{out} already holds a complete store of {saved.get('name')!r}, not of {name}'s "
                              "videos; choose another --out, or delete that folder")
        console.print(f"{out}: already prepared ({saved['report']['written']} clips of {saved['name']}); "
                      "nothing to do", soft_wrap=True)
        return PrepareReport(**saved["report"])
    cropper = FaceCropper(size, scale, no_face, min_face_size, device)  # checks the options before any work
    module = video_reader(name, raw)
    module.setup()  # lists the clips; a layout problem stops here, naming the file
    clips = module.clips
    writer = FeatureStoreWriter(
        out, {"video": 3 * size * size}, {task: () for task in module.tasks}, shard_samples,
        source={"name": name, "raw": str(Path(raw).resolve()), "options": options},
        task_dtypes=dict(module.task_dtypes), shapes={"video": (3, size, size)},
        class_names={task: list(names) for task, names in module.class_names.items()},
    )
    written = writer.written_ids()
    saved = writer.saved_state() or {}
    if written and saved.get("options") != options:
        raise ConfigError(f"{out} holds an unfinished preparation made with {saved.get('options')}, not {options}; "
                          "run it again with the same options, or delete the folder to start over")
    report = PrepareReport(**saved["report"]) if written else PrepareReport()
    start = written[-1] + 1 if written else 0  # ids are positions in the reader's order

    def samples(advance):
        for position in range(start, len(clips)):
            clip = clips[position]
            crops = prepare_clip(clip, cropper, report, num_frames if fps is None else None, fps, max_frames)
            report.clips += 1
            advance()
            if crops is None:
                continue
            report.written += 1
            report.frames += len(crops)
            targets = {task: clip.targets[task] for task in module.tasks}
            yield StoreSample(position, clip.split, {"video": crop_rows(crops)}, targets)
        if report.written == 0:
            raise DataError(f"{name}: none of the {len(clips)} clips under {raw} could be prepared; the first "
                            f"skipped: {report.skipped[0]['reason'] if report.skipped else 'none'}")
        writer.source["report"] = asdict(report)  # index.json is written after this generator ends

    def state() -> dict[str, Any]:  # saved with each shard: what a resumed preparation starts from
        return {"options": options, "report": asdict(report)}

    columns = (TextColumn(f"preparing {name}"), BarColumn(), TextColumn("{task.completed}/{task.total} clips"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task(name, total=len(clips), completed=start)
        writer.write(samples(lambda: bar.advance(task)), None, state=state)
    _atomic_json(Path(out) / REPORT, asdict(report))
    console.print(f"{out}: {name}, {report.summary()}" + (f"; resumed after clip {start}" if start else ""),
                  soft_wrap=True)
    for entry in report.skipped[:10]:
        console.print(f"[yellow]skipped[/]: {entry['reason']}", soft_wrap=True)
    if len(report.skipped) > 10:
        console.print(f"... and {len(report.skipped) - 10} more skipped, all listed in {Path(out) / REPORT}",
                      soft_wrap=True)
    return report
