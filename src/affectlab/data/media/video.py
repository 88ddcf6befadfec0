"""Video files as frames: decoding with PyAV (FFmpeg), frame sampling, and the damage real files carry.

``read_video`` yields ``VideoFrame``s (index, time in seconds, ``[H, W, 3]`` uint8 RGB) one at a time, so memory
stays flat whatever the length, and decoding cost per frame is constant: frames are decoded in order, never
sought. What goes wrong in real collections is reported, not raised mid-way:
- a file FFmpeg cannot open at all raises ``VideoDecodeError`` naming it (callers skip and count it);
- a truncated or partly corrupt file yields the frames before the damage; ``VideoReader.problem`` then says
  what happened (decoded N frames of the M the container declares), for the caller's report;
- frames whose size changes mid-stream are yielded at their own size (face detection handles each size).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectlab.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")


class VideoDecodeError(DataError):
    """A video file that cannot be opened or holds no decodable video stream."""


@dataclass(frozen=True)
class VideoFrame:
    index: int  # position among the stream's decoded frames, from 0
    time: float  # presentation time in seconds
    image: np.ndarray  # (H, W, 3) uint8 RGB


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    declared_frames: int  # what the container says (0: unknown)
    width: int
    height: int
    duration: float  # seconds, what the container says (0: unknown)


def _av():
    import av  # imported here: only video work pays for FFmpeg's start-up

    return av


def probe(path: str | Path) -> VideoInfo:
    """The video stream's rate, declared frame count and size, without decoding."""
    av = _av()
    path = Path(path)
    try:
        # metadata_errors: tags that are not UTF-8 (a damaged header) are replaced, not a UnicodeDecodeError
        with av.open(str(path), metadata_errors="replace") as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: holds no video stream (audio only?)")
            stream = container.streams.video[0]
            if stream.codec_context is None:  # a damaged header names a codec FFmpeg has no decoder for
                raise VideoDecodeError(f"{path}: its video stream names no codec FFmpeg can decode; is the file "
                                       "complete and undamaged?")
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = container.duration / 1e6 if container.duration else 0.0  # microseconds
            return VideoInfo(path, fps, int(stream.frames or 0), stream.codec_context.width,
                             stream.codec_context.height, duration)
    except (av.error.FFmpegError, OSError) as error:
        raise VideoDecodeError(f"{path}: cannot open as a video ({error}); is the file complete and a video "
                               f"format FFmpeg reads ({', '.join(VIDEO_SUFFIXES)})?") from None


class VideoReader:
    """Iterates a video's frames, optionally subsampled.

    Args:
        path: the video file.
        fps: frames per second to keep (the first frame at or after each multiple of ``1 / fps``); None keeps
            every ``every``-th frame.
        every: keep one decoded frame in ``every`` (ignored when ``fps`` is given).
        max_frames: stop after this many kept frames.
    """

    def __init__(self, path: str | Path, fps: float | None = None, every: int = 1,
                 max_frames: int | None = None) -> None:
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.path = Path(path)
        self.info = probe(self.path)
        self.fps, self.every, self.max_frames = fps, every, max_frames
        self.decoded = 0  # frames decoded so far
        self.problem: str | None = None  # set when the stream ends in damage

    def __iter__(self) -> Iterator[VideoFrame]:
        av = _av()
        kept, next_time, last_time = 0, 0.0, -1.0
        try:
            # One colour converter for the whole stream: frame.to_ndarray(format=...) builds a new one per frame,
            # which costs more than decoding a small frame.
            to_rgb = av.video.reformatter.VideoReformatter()
            with av.open(str(self.path), metadata_errors="replace") as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    index = self.decoded
                    self.decoded += 1
                    time = float(frame.time) if frame.time is not None else index / (self.info.fps or 1.0)
                    last_time = time
                    if self.fps is not None:
                        if time + 1e-6 < next_time:
                            continue
                        next_time += 1.0 / self.fps * max(1, int((time - next_time) * self.fps) + 1)
                    elif index % self.every:
                        continue
                    yield VideoFrame(index, time, to_rgb.reformat(frame, format="rgb24").to_ndarray())
                    kept += 1
                    if self.max_frames is not None and kept >= self.max_frames:
                        return
        except (av.error.FFmpegError, OSError) as error:
            self.problem = f"{self.path}: decoding stopped after {self.decoded} frames: {error}"
            return
        declared, duration, fps = self.info.declared_frames, self.info.duration, self.info.fps
        if declared and self.decoded < declared - 1:  # containers may count one frame more than they hold
            self.problem = (f"{self.path}: truncated: decoded {self.decoded} frames, the container declares "
                            f"{declared}")
        elif not declared and duration and fps and last_time < duration - 2.0 / fps:  # no count (Matroska)
            self.problem = (f"{self.path}: truncated: frames end at {last_time:.2f} s, the container declares "
                            f"{duration:.2f} s")
        elif self.decoded == 0:
            self.problem = f"{self.path}: no frame could be decoded"


def write_video(path: str | Path, frames: np.ndarray | list[np.ndarray], fps: float = 25.0,
                codec: str = "libx264") -> Path:
    """Encodes ``[T, H, W, 3]`` uint8 RGB frames (or a list, all of one even size) as a video file.

    Used by the AffectSynth exporters to write data sets in their native video layouts.
    """
    av = _av()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
