"""Video decoding (data/video.py): round trip through a real encoder, subsampling, and damaged files."""

from __future__ import annotations

import numpy as np
import pytest

from affectlab.data.media.video import VideoDecodeError, VideoReader, probe, write_video


def moving_square(num_frames: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """``[T, H, W, 3]`` frames of a bright square moving right one pixel per frame over a grey field."""
    width, height = size
    frames = np.full((num_frames, height, width, 3), 80, np.uint8)
    for t in range(num_frames):
        frames[t, 10:30, 5 + t:25 + t] = (230, 200, 40)
    return frames


def test_frames_come_back_in_order_with_times_and_little_loss(tmp_path):
    frames = moving_square(30)
    path = write_video(tmp_path / "clip.mp4", frames, fps=10)
    info = probe(path)
    assert (info.width, info.height, info.fps) == (64, 48, 10.0) and info.declared_frames == 30
    reader = VideoReader(path)
    decoded = list(reader)
    assert [f.index for f in decoded] == list(range(30)) and reader.problem is None
    assert np.allclose([f.time for f in decoded], np.arange(30) / 10)
    assert decoded[0].image.shape == (48, 64, 3) and decoded[0].image.dtype == np.uint8
    error = np.abs(np.stack([f.image for f in decoded]).astype(int) - frames).mean()
    assert error < 4  # lossy (x264, crf 18) but close; a wrong channel order or frame would be far off
    # The square moves one pixel right per frame: its centre does too when the frames are in order.
    centres = [np.nonzero(f.image[12:28, :, 0].mean(axis=0) > 155)[0].mean() for f in decoded]
    assert np.allclose(np.diff(centres), 1.0, atol=0.5)


def test_subsampling_by_stride_by_rate_and_by_count(tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_square(30), fps=10)
    assert [f.index for f in VideoReader(path, every=4)] == [0, 4, 8, 12, 16, 20, 24, 28]
    assert [f.index for f in VideoReader(path, fps=2.5)] == [0, 4, 8, 12, 16, 20, 24, 28]
    assert [f.index for f in VideoReader(path, fps=100)] == list(range(30))  # faster than the video: every frame
    assert [f.index for f in VideoReader(path, max_frames=3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="fps must be positive"):
        VideoReader(path, fps=0)


def test_a_file_that_is_no_video_names_itself(tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(VideoDecodeError, match="not_a_video.mp4: cannot open as a video"):
        VideoReader(bad)
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        probe(tmp_path / "missing.mp4")


def test_a_truncated_video_yields_its_good_frames_and_says_so(tmp_path):
    # Matroska keeps its index at the front, so a cut file still opens and decodes up to the cut.
    path = write_video(tmp_path / "clip.mkv", moving_square(60), fps=10)
    whole = VideoReader(path)
    assert len(list(whole)) == 60 and whole.problem is None
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    reader = VideoReader(cut)
    frames = list(reader)
    assert 0 < len(frames) < 60
    assert reader.problem is not None and "cut.mkv" in reader.problem
    # MP4 from FFmpeg writes its index (moov) at the end: a cut one cannot be opened at all, and says which.
    mp4 = write_video(tmp_path / "clip.mp4", moving_square(60), fps=10)
    cut_mp4 = tmp_path / "cut.mp4"
    cut_mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        list(VideoReader(cut_mp4))
