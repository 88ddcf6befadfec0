"""Video preparation's cost per frame against video length: it must stay flat (linear total cost), because
frames are decoded in one pass in order (never sought from the start) and the face detector sees each sampled
frame once.

Writes AffectSynth clips (shaded style, 64 px faces upscaled to 96 px in a 160x128 scene, 25 fps) played back
and forth to 50, 100, 200 and 400 frames, then runs the preparation of each clip
(``video_prepare.prepare_clip``: decode, sample ``--fps`` frames per second, MTCNN, aligned 64 px crops) and
prints per length:

- the total time per video frame (ms), and the ratio longest / shortest (goal: about 1.0);
- decoding alone, per decoded frame (ms), and detection alone, per sampled frame (ms).

Each length is prepared for ``--clips`` different clips, ``--repeats`` times; the fastest repeat of each clip
counts (the least disturbed by other processes), then the median over clips. The detector is warmed up first.

    .venv/bin/python benchmarks/video_prepare.py [--fps 5] [--clips 3] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import scene_video
from affectlab.data.media.video import write_video
from affectlab.data.media.video_clips import VideoClip
from affectlab.data.store.video_prepare import FaceCropper, PrepareReport, prepare_clip

LENGTHS = (50, 100, 200, 400)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second of video sampled (of 25)")
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: comparable on a busy machine)")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    with tempfile.TemporaryDirectory() as tmp:
        arrays = ensure(Path(tmp) / "synth", SynthConfig(num_clips=options.clips, num_identities=options.clips,
                                                         styles=("shaded",)), progress=False)
        videos = {length: [write_video(Path(tmp) / f"clip{c}_{length}.mp4",
                                       scene_video(np.asarray(arrays.frames[c]), np.random.default_rng(c),
                                                   num_frames=length))
                           for c in range(options.clips)]
                  for length in LENGTHS}
        cropper = FaceCropper(device=options.device)
        prepare_clip(VideoClip(videos[LENGTHS[0]][0], "train"), cropper, PrepareReport(), None, options.fps, None)  # warm-up
        print(f"device {options.device}, torch threads {options.threads}, sampling {options.fps} of 25 fps, "
              f"{options.clips} clips x {options.repeats} repeats per length (fastest repeat, median over clips)")
        print(f"{'frames':>7} {'sampled':>8} {'ms/frame':>9} {'decode ms/decoded frame':>24} "
              f"{'detect ms/sampled frame':>24} {'faces found':>12}")
        per_frame = {}
        for length in LENGTHS:
            totals, decode, detect, sampled, found = [], [], [], 0, 0
            for path in videos[length]:
                best = None
                for _ in range(options.repeats):
                    report = PrepareReport()
                    start = time.perf_counter()
                    crops = prepare_clip(VideoClip(path, "train"), cropper, report, None, options.fps, None)
                    elapsed = time.perf_counter() - start
                    assert crops is not None, report.skipped
                    if best is None or elapsed < best[0]:
                        best = (elapsed, report)
                elapsed, report = best
                frames = report.face + report.nearest + report.whole
                totals.append(elapsed / length)
                decode.append(report.decode_seconds / report.decoded_frames)
                detect.append(report.detect_seconds / frames)
                sampled, found = frames, found + report.face
            per_frame[length] = float(np.median(totals))
            print(f"{length:>7} {sampled:>8} {1000 * per_frame[length]:>9.2f} {1000 * np.median(decode):>24.2f} "
                  f"{1000 * np.median(detect):>24.2f} {found:>5}/{sampled * options.clips:<6}")
        ratio = per_frame[LENGTHS[-1]] / per_frame[LENGTHS[0]]
        print(f"ms per frame, {LENGTHS[-1]} frames / {LENGTHS[0]} frames: {ratio:.2f} (goal: about 1.0, flat)")


if __name__ == "__main__":
    main()
