"""``affectlab data prepare disfa --raw DIR --out DIR [--cameras left|right|both] [--size S] [--scale X]``: DISFA's
distributed videos -> aligned face crops named by frame number, the layout ``--data disfa`` trains from.

Per subject (``ActionUnit_Labels/SN###`` of ``--raw``) and camera (``Videos_LeftCamera/LeftVideoSN###_comp.avi``,
``Videos_RightCamera/RightVideoSN###_comp.avi``):

1. its 12 label files are read (``readers/disfa.read_subject_labels``: a malformed line or files that disagree
   skip the subject, listed with the reason) and copied to ``<out>/ActionUnit_Labels/SN###/``;
2. the video is decoded frame by frame (``media/video.VideoReader``: memory stays flat over DISFA's 4845
   frames of 1024x768), ``--chunk`` frames at a time through MTCNN (``video_prepare.FaceCropper``'s detector,
   the largest face), each frame aligned and cropped as ``predict`` and the video preparation do
   (``face_detection.align_crop``: eyes levelled, a square of ``--scale`` x the face's size, ``--size`` S);
3. a frame without a face (``--no-face``): ``nearest`` (default) is cropped at the nearest face of its chunk,
   or at the last face seen before it when its chunk has none, or whole (resized) when no face was seen yet;
   ``frame`` stores every frame whole; ``skip`` writes no image, which the reader then reports as a missing
   frame. Each case is counted;
4. video frame n (from 1, DISFA's label numbering) is written as ``<out>/Frames_<Camera>Camera/SN###/<n:06d>.png``.

Alignment: DISFA's label files have one line per video frame, numbered from 1 (4845 per subject). When the
decoded frame count differs from the label count, the preparation keeps the common prefix (frames 1 to the
smaller count) and reports the mismatch with both counts: video and labels start together at the recording's
first frame, so a difference lies at the end (a truncated download stops early; a container may carry a frame
more), and the prefix stays frame-aligned. Skipping the subject instead would throw away thousands of correctly
aligned frames for a few at the end. A shorter video leaves its last labelled frames without images: the reader
reports them, with their frame numbers, and leaves them out.

Damage does not stop the run: a missing or unreadable video, or a subject whose labels are malformed, is
skipped, listed with the reason, and the other subjects are prepared; a video that ends in damage keeps the
frames before it (a mismatch, reported as above).

Cost: MTCNN dominates (27 subjects x 4845 frames of 1024x768 per camera). DISFA films one face close up, a few
hundred pixels tall, so a larger ``--min-face-size`` (e.g. 100) skips MTCNN's small pyramid levels, which cost
most of its time at the default 20; ``--device cuda`` runs MTCNN on a GPU.

Resumable and idempotent: each subject's frames are written into ``SN###.partial/`` beside their final folder
and renamed to ``SN###`` when complete, with their record (``prepare.json``: counts, the options, the time)
inside, so after a kill a subject is either complete or redone from its start; a complete subject is not
redone. Completed subjects made with other options (``--size``, ``--scale``, ``--no-face``, ``--min-face-size``)
are refused rather than mixed. Frames inside a partial folder are written plainly (the folder's rename is the
atomic step: one fsync per frame would cost more than the frame). The report, ``<out>/prepare_report.json``
(faces found and missing per subject and camera, mismatches, skipped, seconds), is rewritten after every
subject, from the records, so a resumed preparation reports the whole data set.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from affectlab.data.contract import ACTION_UNITS
from affectlab.data.readers.disfa import (CAMERA_CHOICES, CAMERAS, FRAMES, LABELS, label_subjects,
                                          read_subject_labels, video_path)
from affectlab.errors import ConfigError, DataError
from affectlab.io import atomic_write_bytes, atomic_write_json

REPORT = "prepare_report.json"
RECORD = "prepare.json"  # a subject's record, inside its frames folder
COUNTS = ("face", "nearest", "whole", "dropped")


class _Faces:
    """Step 2-3 for a stream of frames, one chunk at a time: crops (None for a dropped frame), counts kept."""

    def __init__(self, cropper: Any) -> None:
        self.cropper = cropper  # video_prepare.FaceCropper: MTCNN loaded once for all videos
        self.last_face = None  # the last face found in an earlier chunk: for a chunk that holds none
        self.counts = dict.fromkeys(COUNTS, 0)
        self.detect_seconds = 0.0

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray | None]:
        from affectlab.data.media.face_detection import align_crop
        from affectlab.data.media.video_clips import resize_frames

        cropper = self.cropper
        start = time.perf_counter()
        faces = [found[0] if found else None for found in cropper.detector.detect(images)]
        self.detect_seconds += time.perf_counter() - start
        with_face = [t for t, face in enumerate(faces) if face is not None]
        crops: list[np.ndarray | None] = []
        for t, (image, face) in enumerate(zip(images, faces)):
            if face is not None and cropper.no_face != "frame":
                crops.append(align_crop(image, face, cropper.size, cropper.scale))
                self.counts["face"] += 1
            elif cropper.no_face == "skip":
                crops.append(None)
                self.counts["dropped"] += 1
            elif cropper.no_face == "nearest" and (with_face or self.last_face is not None):
                near = faces[min(with_face, key=lambda s: (abs(s - t), s))] if with_face else self.last_face
                crops.append(align_crop(image, near, cropper.size, cropper.scale))
                self.counts["nearest"] += 1
            else:
                crops.append(resize_frames([image], cropper.size)[0])
                self.counts["whole"] += 1
        if with_face:
            self.last_face = faces[with_face[-1]]
        return crops


def _png(crop: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="PNG")
    return buffer.getvalue()


def prepare_view(video: Path, labelled: int, folder: Path, faces: _Faces, chunk: int,
                 advance: Any = lambda n: None) -> dict[str, Any]:
    """Steps 2-4 for one video into ``folder`` (a partial folder): its record's counts. Raises
    ``VideoDecodeError`` for a video that cannot be opened."""
    from affectlab.data.media.video import VideoReader

    started = time.perf_counter()
    reader = VideoReader(video)
    pending: list[np.ndarray] = []
    kept = written = 0  # frames handed to the detector (the common prefix with the labels), images written

    def flush() -> None:
        nonlocal written
        first = kept - len(pending) + 1  # frame numbers follow from the frames before, whatever was dropped
        for number, crop in enumerate(faces(pending), first):
            if crop is not None:
                (folder / f"{number:06d}.png").write_bytes(_png(crop))
                written += 1
        advance(len(pending))
        pending.clear()

    for frame in reader:  # decoding goes on past the labels only to count the video's frames
        if kept < labelled:
            pending.append(frame.image)
            kept += 1
            if len(pending) == chunk:
                flush()
    if pending:
        flush()
    decoded = reader.decoded
    record: dict[str, Any] = {"video": str(video), "labelled": labelled, "decoded": decoded, "written": written,
                              **faces.counts, "problem": reader.problem, "mismatch": None}
    if decoded != labelled:
        record["mismatch"] = (f"{video}: {decoded} frames decoded, {labelled} label lines; kept the common first "
                              f"{min(decoded, labelled)} frames"
                              + (f", labelled frames {decoded + 1}-{labelled} have no image" if decoded < labelled else
                                 f", video frames {labelled + 1}-{decoded} have no label"))
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["detect_seconds"] = round(faces.detect_seconds, 3)
    return record


def _cameras(cameras: str) -> tuple[str, ...]:
    if cameras not in CAMERA_CHOICES:
        raise ConfigError(f"--cameras: {cameras!r} is not one of {', '.join(CAMERA_CHOICES)}")
    return CAMERAS if cameras == "both" else (cameras,)


def _copy_labels(raw: Path, out: Path, subject_dir: Path) -> None:
    target = out / LABELS / subject_dir.name
    if target.resolve() == subject_dir.resolve():
        return  # --out is --raw: the label files are already there
    for au in ACTION_UNITS:
        name = f"{subject_dir.name}_au{au}.txt"
        source = subject_dir / name
        if not (target / name).is_file() or (target / name).read_bytes() != source.read_bytes():
            atomic_write_bytes(target / name, source.read_bytes())


def _summary(records: dict[str, dict[str, dict[str, Any]]], skipped: list[dict[str, str]]) -> dict[str, Any]:
    views = [r for per_camera in records.values() for r in per_camera.values()]
    totals = {key: sum(r[key] for r in views) for key in ("labelled", "decoded", "written", *COUNTS)}
    return {"views": len(views), "skipped": len(skipped),
            "mismatches": sum(1 for r in views if r["mismatch"]), **totals}


def prepare_disfa(name: str, raw: str, out: str, shard_samples: int | None = None, max_rows: int | None = None,
                  cameras: str = "left", size: int = 128, scale: float = 1.3, no_face: str = "nearest",
                  min_face_size: int = 20, device: str = "cpu", chunk: int = 32,
                  progress: bool = True) -> dict[str, Any]:
    """Prepare DISFA as distributed under ``raw`` into ``out`` (module docstring); the report, also saved as
    ``<out>/prepare_report.json``.

    Args:
        name: ``disfa`` (the registry calls every preparer with the data set's name).
        raw: DISFA's folder as distributed (``ActionUnit_Labels/``, ``Videos_LeftCamera/``, ...).
        out: where the prepared layout goes (may be ``raw`` itself: the frames then sit beside the videos).
        shard_samples, max_rows: the feature stores' options; they do not apply to frames and are ignored.
        cameras: ``left``, ``right`` or ``both``.
        size: side of the square crops in pixels (the reader resizes them to its ``image_size``).
        scale: crop side over the detected face's size.
        no_face: ``nearest``, ``frame`` or ``skip`` (module docstring).
        min_face_size: MTCNN's smallest face in pixels.
        device: where MTCNN runs (``cpu``, ``cuda``).
        chunk: frames per MTCNN batch.
        progress: show progress bars (subjects, and the frames of the current video).
    """
    del shard_samples, max_rows
    views = _cameras(cameras)
    if chunk < 1:
        raise ConfigError(f"chunk: {chunk} frames per MTCNN batch must be 1 or more")
    raw_path, out_path = Path(raw), Path(out)
    if not (raw_path / LABELS).is_dir():
        from affectlab.data.readers.disfa import SPEC

        raise DataError(f"data prepare disfa: no {raw_path / LABELS}; --raw is DISFA's folder as distributed:\n"
                        f"{SPEC.tree(raw_path)}")
    options = {"size": size, "scale": scale, "no_face": no_face, "min_face_size": min_face_size}
    from affectlab.data.store.video_prepare import FaceCropper

    cropper = FaceCropper(size, scale, no_face, min_face_size, device)  # checks the options before any work
    subjects = label_subjects(raw_path)
    console = Console()
    records: dict[str, dict[str, dict[str, Any]]] = {}
    skipped: list[dict[str, str]] = []
    started, reused = time.perf_counter(), 0

    def save_report() -> dict[str, Any]:
        report = {"name": name, "raw": str(raw_path.resolve()), "cameras": list(views), "options": options,
                  "summary": _summary(records, skipped), "subjects": records, "skipped": skipped,
                  "mismatches": [r["mismatch"] for per in records.values() for r in per.values() if r["mismatch"]],
                  "seconds": round(time.perf_counter() - started, 3)}
        atomic_write_json(out_path / REPORT, report)
        return report

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not progress) as bar:
        overall = bar.add_task("disfa: subjects", total=len(subjects) * len(views))
        for subject_dir in subjects:
            subject = subject_dir.name
            try:
                frames, _ = read_subject_labels(subject_dir, ACTION_UNITS)
            except DataError as error:
                skipped.append({"subject": subject, "camera": "labels", "reason": str(error)})
                bar.advance(overall, len(views))
                continue
            _copy_labels(raw_path, out_path, subject_dir)
            for camera in views:
                final = out_path / FRAMES[camera] / subject
                if final.is_dir():  # complete: its record says with which options
                    record = json.loads((final / RECORD).read_text()) if (final / RECORD).is_file() else None
                    if record is not None and record.get("options") != options:
                        raise ConfigError(f"{final} was prepared with {record.get('options')}, not {options}; "
                                          "prepare again with the same options, or delete that folder (or "
                                          "choose another --out)")
                    if record is not None:
                        records.setdefault(subject, {})[camera] = record
                        reused += 1
                    bar.advance(overall)
                    continue
                video = video_path(raw_path, subject, camera)
                if not video.is_file():
                    skipped.append({"subject": subject, "camera": camera, "reason": f"{video} is missing"})
                    bar.advance(overall)
                    continue
                partial = final.with_name(f"{subject}.partial")
                shutil.rmtree(partial, ignore_errors=True)  # a killed run's half: redone from its start
                partial.mkdir(parents=True)
                frames_bar = bar.add_task(f"{subject} {camera}", total=len(frames))
                try:
                    record = prepare_view(video, len(frames), partial, _Faces(cropper), chunk,
                                          lambda n, task=frames_bar: bar.advance(task, n))
                except DataError as error:  # VideoDecodeError: cannot be opened, no video stream
                    shutil.rmtree(partial, ignore_errors=True)
                    skipped.append({"subject": subject, "camera": camera, "reason": str(error)})
                    continue
                finally:
                    bar.remove_task(frames_bar)
                    bar.advance(overall)
                if record["decoded"] == 0:
                    shutil.rmtree(partial, ignore_errors=True)
                    skipped.append({"subject": subject, "camera": camera,
                                    "reason": record["problem"] or f"{video}: no frame could be decoded"})
                    continue
                record["options"] = options
                atomic_write_json(partial / RECORD, record)
                os.replace(partial, final)  # the subject appears complete or not at all
                records.setdefault(subject, {})[camera] = record
                save_report()
    report = save_report()
    summary = report["summary"]
    console.print(f"{out_path}: disfa, {summary['views']} videos prepared ({reused} already done), "
                  f"{summary['skipped']} skipped; {summary['written']} frames written: {summary['face']} with a face, "
                  f"{summary['nearest']} cropped at a nearby frame's face, {summary['whole']} whole, "
                  f"{summary['dropped']} dropped; {summary['mismatches']} frame-count mismatch(es)", soft_wrap=True)
    for line in report["mismatches"]:
        console.print(f"[yellow]mismatch[/]: {line}", soft_wrap=True)
    for entry in skipped:
        console.print(f"[yellow]skipped[/] {entry['subject']} {entry['camera']}: {entry['reason']}", soft_wrap=True)
    if not records:
        raise DataError(f"data prepare disfa: none of the {len(subjects)} subjects under {raw_path} could be "
                        f"prepared; the first skipped: {skipped[0]['reason'] if skipped else 'none'}")
    console.print(f"train with --data disfa --data.init_args.root {out_path}"
                  + (f" --data.init_args.camera {cameras}" if cameras != "left" else ""), soft_wrap=True)
    return report
