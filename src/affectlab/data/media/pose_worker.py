"""The pose estimation worker: one process that runs one estimator over videos, each into a ``.pose`` file.

Run by ``affectlab pose estimate`` (``data/media/pose_estimation.py``) with the Python of the estimator's own
virtual environment (``.venv-pose/<name>``, made by ``affectlab pose setup NAME``), or the main one for an
estimator whose dependencies do not clash with it. It imports nothing from AffectLab, only what that
environment holds (numpy, PyAV, pose-format and the estimator's packages), so it runs where AffectLab is not
installed.

Protocol (version 1): JSON, one object per line, UTF-8.

    python pose_worker.py --estimator NAME [--options JSON]
    worker -> {"event": "ready", "protocol": 1, "estimator": NAME, "versions": {package: version}}
              or {"event": "fatal", "error": "..."} and exit status 2 (the estimator could not start)
    main   -> {"video": "/abs/clip.mp4", "out": "/abs/clip.pose", "max_frames": null}      one line per video
    worker -> {"event": "start", "video": ..., "frames": N or null, "fps": F, "width": W, "height": H}
              {"event": "progress", "video": ..., "frame": i}                             every few frames
              {"event": "done", "video": ..., "pose": "/abs/clip.pose", "frames": n}
              or {"event": "error", "video": ..., "error": "..."}        (unreadable video: nothing written)
    main closes the worker's stdin when it has no more videos; the worker exits with status 0.

The ``.pose`` file is written to ``<out>.partial`` and renamed when complete, so an output that exists is
whole (``estimate`` keeps it and sends no request for it: runs resume). Standard output carries the protocol
only: anything the estimator's libraries print (MediaPipe's and TensorFlow Lite's logs) goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

PROTOCOL = 1
PROGRESS_EVERY = 10  # frames between progress events


def video_frames(path: str) -> tuple[dict[str, Any], Iterator[Any]]:
    """The video's ``{frames, fps, width, height}`` and an iterator over its RGB frames ``[H, W, 3]`` uint8
    (PyAV; raises on a file it cannot open)."""
    import av

    container = av.open(path)
    if not container.streams.video:
        container.close()
        raise ValueError("no video stream")
    stream = container.streams.video[0]
    info = {"frames": int(stream.frames) or None, "fps": float(stream.average_rate or stream.guessed_rate or 25.0),
            "width": int(stream.codec_context.width), "height": int(stream.codec_context.height)}

    def frames() -> Iterator[Any]:
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        finally:
            container.close()

    return info, frames()


class MediapipeHolistic:
    """MediaPipe Holistic 0.10.21 (the last release whose wheel bundles its models; model complexity 1, the
    bundled one): body (33), face mesh (468), both hands (21 each) and world landmarks, as pose-format's own
    ``video_to_pose`` writes them (``pose_format.utils.holistic``: the same header and per-frame extraction)."""

    def __init__(self, model_complexity: int = 1, refine_face_landmarks: bool = False,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        if model_complexity != 1:
            raise ValueError(f"model_complexity {model_complexity}: only 1 ships inside mediapipe 0.10.21's wheel "
                             "(0 and 2 would be downloaded at run time, which cannot be done here)")
        import mediapipe as mp

        self.mp = mp
        self.config = {"static_image_mode": False, "model_complexity": 1,
                       "refine_face_landmarks": bool(refine_face_landmarks),
                       "min_detection_confidence": min_detection_confidence,
                       "min_tracking_confidence": min_tracking_confidence}

    def versions(self) -> dict[str, str]:
        return {"mediapipe": self.mp.__version__}

    def estimate(self, frames: Iterator[Any], info: dict[str, Any], progress: Callable[[int], None]) -> Any:
        import numpy as np
        from pose_format import Pose
        from pose_format.numpy import NumPyPoseBody
        from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
        from pose_format.utils.holistic import _extract_frame_data, holistic_components

        extra = 10 if self.config["refine_face_landmarks"] else 0  # the irises
        width, height = info["width"], info["height"]
        header = PoseHeader(0.2, PoseHeaderDimensions(width, height, 0), holistic_components("XYZC", extra))
        data, confidence = [], []
        with self.mp.solutions.holistic.Holistic(**self.config) as holistic:
            for index, frame in enumerate(frames):
                results = holistic.process(frame)
                points, conf = _extract_frame_data(results, width, height, extra)
                data.append(points)
                confidence.append(conf)
                progress(index + 1)
        if not data:
            raise ValueError("no frame could be decoded")
        body = NumPyPoseBody(fps=info["fps"], data=np.stack(data)[:, None].astype(np.float32),
                             confidence=np.stack(confidence)[:, None].astype(np.float32))
        return Pose(header, body)


# COCO's 17 keypoints, named as MediaPipe names the same body points, so the file is holistic's body component
# with only these points (pose-format's hide legs, reduce holistic and shoulder normalisation then apply).
COCO_AS_HOLISTIC = ("NOSE", "LEFT_EYE", "RIGHT_EYE", "LEFT_EAR", "RIGHT_EAR", "LEFT_SHOULDER", "RIGHT_SHOULDER",
                    "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE",
                    "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE")
COCO_LIMBS = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12),
              (11, 13), (13, 15), (12, 14), (14, 16))


class KeypointRCNN:
    """torchvision's Keypoint R-CNN (ResNet-50 FPN), COCO's 17 body keypoints in 2-D, the most confident
    person per frame; a body without face or hands. Its weights come from a local file the user gives
    (``weights``: torchvision's ``keypointrcnn_resnet50_fpn`` COCO state dict), never downloaded;
    ``random_init`` runs untrained, seeded weights instead (tests of the protocol only: it finds no one).
    Its dependencies are the main environment's, so it runs there."""

    def __init__(self, weights: str | None = None, random_init: bool = False, min_size: int = 512,
                 score_threshold: float = 0.5, proposals: int = 1000, threads: int = 1) -> None:
        if weights is None and not random_init:
            raise ValueError("keypointrcnn needs --option weights=PATH (torchvision's keypointrcnn_resnet50_fpn COCO "
                             "state dict, a local file: nothing is downloaded)")
        import torch
        import torchvision
        from torchvision.models.detection import keypointrcnn_resnet50_fpn

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch, self.torchvision = torch, torchvision
        # one detection per frame: the keypoint head runs on the most confident person only
        self.model = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min_size,
                                               max_size=max(min_size, int(min_size * 4 / 3)), box_detections_per_img=1,
                                               rpn_pre_nms_top_n_test=proposals,
                                               rpn_post_nms_top_n_test=proposals)
        if weights is not None:
            self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.model.eval()
        self.score_threshold = score_threshold

    def versions(self) -> dict[str, str]:
        return {"torch": self.torch.__version__, "torchvision": self.torchvision.__version__}

    def estimate(self, frames: Iterator[Any], info: dict[str, Any], progress: Callable[[int], None]) -> Any:
        import numpy as np
        from pose_format import Pose
        from pose_format.numpy import NumPyPoseBody
        from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

        component = PoseHeaderComponent("POSE_LANDMARKS", list(COCO_AS_HOLISTIC), list(COCO_LIMBS), [(255, 0, 0)],
                                        "XYC")
        header = PoseHeader(0.2, PoseHeaderDimensions(info["width"], info["height"], 0), [component])
        data, confidence = [], []
        with self.torch.inference_mode():
            for index, frame in enumerate(frames):
                image = self.torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255.0
                found = self.model([image])[0]
                points, conf = np.zeros((17, 2), np.float32), np.zeros(17, np.float32)
                if len(found["scores"]) and float(found["scores"][0]) >= self.score_threshold:
                    points = found["keypoints"][0, :, :2].numpy()
                    conf = self.torch.sigmoid(found["keypoints_scores"][0]).numpy()
                data.append(points)
                confidence.append(conf)
                progress(index + 1)
        if not data:
            raise ValueError("no frame could be decoded")
        body = NumPyPoseBody(fps=info["fps"], data=np.stack(data)[:, None].astype(np.float32),
                             confidence=np.stack(confidence)[:, None].astype(np.float32))
        return Pose(header, body)


ESTIMATORS = {"mediapipe_holistic": MediapipeHolistic, "keypointrcnn": KeypointRCNN}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AffectLab's pose estimation worker (protocol in the docstring)")
    parser.add_argument("--estimator", required=True, choices=sorted(ESTIMATORS))
    parser.add_argument("--options", default="{}", help="the estimator's keyword arguments, as a JSON object")
    args = parser.parse_args(argv)
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")  # the protocol's own handle on stdout
    os.dup2(2, 1)  # whatever else writes to stdout (C libraries included) lands on stderr
    sys.stdout = sys.stderr

    def send(**message: Any) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        estimator = ESTIMATORS[args.estimator](**json.loads(args.options))
    except Exception as error:  # noqa: BLE001  (whatever stops the estimator from starting is reported)
        send(event="fatal", error=f"{type(error).__name__}: {error}")
        return 2
    send(event="ready", protocol=PROTOCOL, estimator=args.estimator, versions=estimator.versions())
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        video, out, limit = request["video"], request["out"], request.get("max_frames")
        partial = out + ".partial"
        try:
            info, frames = video_frames(video)
            send(event="start", video=video, **info)

            def limited() -> Iterator[Any]:
                for index, frame in enumerate(frames):
                    if limit is not None and index >= limit:
                        break
                    yield frame

            def progress(done: int) -> None:
                if done % PROGRESS_EVERY == 0:
                    send(event="progress", video=video, frame=done)

            pose = estimator.estimate(limited(), info, progress)
            os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
            with open(partial, "wb") as handle:
                pose.write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, out)
            send(event="done", video=video, pose=out, frames=int(pose.body.data.shape[0]))
        except Exception as error:  # noqa: BLE001  (an unreadable video is reported, the next one goes on)
            if os.path.exists(partial):
                os.remove(partial)
            send(event="error", video=video, error=f"{type(error).__name__}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
