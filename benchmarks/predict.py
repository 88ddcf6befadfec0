"""Times ``affectlab predict``'s pipeline end to end on a video, PyTorch eager against onnxruntime.

The case: a video of ``--frames`` frames of ``--width`` x ``--height`` pixels (640 x 360 by default) in which
one rendered face (about a third of the frame's height) drifts and changes expression, encoded with x264. The
model is the shipped AU model's architecture (configs/model/au.yaml: resnet10t to stage 2, occurrence,
intensity and emotion heads, 64 x 64 crops) with random weights: speed does not depend on the weights, and no
run is needed. Per backend the script runs ``FacePredictor.predict_file`` (decode, MTCNN, crop, model, CSV)
and prints frames/s; then the parts alone: decoding, MTCNN detection, and the model on the crops, in ms per
frame. ``--threads 1`` pins PyTorch and onnxruntime to one thread, the set-up of py-feat's published 9-13
frames/s for its detector on one CPU thread. Run ``python benchmarks/predict.py [--threads 1]``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch



def make_video(path: Path, frames: int, width: int, height: int) -> Path:
    """A face drifting right and smiling over the clip (AffectSynth's renderer) in a flat scene."""
    from PIL import Image

    from affectlab.data.synth.faces import render_clip, sample_face, sample_pose
    from affectlab.data.media.video import write_video

    rng = np.random.default_rng(0)
    side = height // 3
    au = np.zeros((frames, 12), np.float32)
    au[:, 6] = 4.0 * np.sin(np.linspace(0, np.pi, frames))  # AU12 rises and falls
    faces = render_clip(sample_face(rng), au, sample_pose(rng, frames, amount=0.3), "shaded", side, rng)
    images = []
    for t, face in enumerate(faces):
        scene = Image.new("RGB", (width, height), (90, 120, 90))
        scene.paste(Image.fromarray(face), (int(width * 0.2 + t * width * 0.4 / frames), height // 3))
        images.append(np.asarray(scene))
    return write_video(path, images, fps=25)


def build_model():
    from affectlab.methods import AUModel
    from affectlab.nn.au_heads import EmotionHead, IntensityHead, OccurrenceHead

    model = AUModel("resnet10t", feature_stage=2,
                    heads=[OccurrenceHead, functools.partial(IntensityHead, mode="ordinal"), EmotionHead]).eval()
    model.image_size = 64
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch and onnxruntime")
    parser.add_argument("--min-face-size", type=int, default=40, help="MTCNN's smallest face (pixels)")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)

    from affectlab.cli.export import export_onnx
    from affectlab.data.media.face_detection import FaceDetector, align_crop
    from affectlab.data.media.video import VideoReader
    from affectlab.inference import FacePredictor, ModelBackend, head_specs

    work = Path(tempfile.mkdtemp(prefix="affectlab-bench-predict-"))
    video = make_video(work / "face.mp4", options.frames, options.width, options.height)
    model = build_model()
    onnx_path = work / "au.onnx"
    export_onnx(model, onnx_path)
    detector = FaceDetector(min_face_size=options.min_face_size)
    print(f"video: {options.frames} frames of {options.width}x{options.height}; threads: "
          f"{options.threads or torch.get_num_threads()}; MTCNN min face {options.min_face_size} px")

    rates = {}
    for name, backend in (("pytorch", ModelBackend(model, threads=options.threads)),
                          ("onnxruntime", ModelBackend(model, onnx_path, threads=options.threads))):
        predictor = FacePredictor(backend, detector, head_specs(model))
        predictor.predict_file(video, work / "warm-up", timeline=False)  # first call: allocations, lazy imports
        report = predictor.predict_file(video, work / name, timeline=False)
        rates[name] = report.frames / report.seconds
        print(f"{name:12s} end to end: {rates[name]:6.1f} frames/s ({report.faces} faces in {report.frames} frames)")
    print(f"ratio onnxruntime / pytorch (frames/s): {rates['onnxruntime'] / rates['pytorch']:.2f}")

    # The parts alone, in ms per frame.
    start = time.perf_counter()
    frames = [f.image for f in VideoReader(video)]
    decode = (time.perf_counter() - start) / len(frames)
    start = time.perf_counter()
    found = [faces for i in range(0, len(frames), 32) for faces in detector.detect(frames[i:i + 32])]
    detect = (time.perf_counter() - start) / len(frames)
    crops = np.stack([align_crop(image, faces[0], 64) for image, faces in zip(frames, found) if faces])
    batch = np.ascontiguousarray(crops.astype(np.float32).transpose(0, 3, 1, 2)[:, None] / 255.0)
    parts = [f"decode {decode * 1e3:.1f}", f"MTCNN {detect * 1e3:.1f}"]
    for name, backend in (("pytorch", ModelBackend(model, threads=options.threads)),
                          ("onnxruntime", ModelBackend(model, onnx_path, threads=options.threads))):
        backend(batch[:8])
        start = time.perf_counter()
        for i in range(0, len(batch), 32):
            backend(batch[i:i + 32])
        parts.append(f"model {name} {(time.perf_counter() - start) / len(frames) * 1e3:.2f}")
    print("ms per frame: " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
