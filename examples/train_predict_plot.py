"""Train -> predict -> plot on AffectSynth with AffectLab's Python API (docs/api.md), in under a minute on a CPU.

1. train   ``affectlab.train`` runs the AU experiment (``configs/experiment/au_synth.yaml``: fit, then test) on a
           tiny AffectSynth generated on first use, and returns the run's id and test metrics;
2. videos  held-out AffectSynth clips, each placed in a larger scene and written as an MP4 (the scene is what
           MTCNN needs: AffectSynth's tight crops alone hold no face to find; in some render styles MTCNN finds
           none at 32x32 pixels either, which the rows say with ``success`` 0);
3. predict ``affectlab.load(run_id).predict(folder)``: a pandas DataFrame, one row per face per frame of every
           video, in the columns of ``affectlab predict``'s CSV, ``source`` naming the file;
4. plot    for the video with the most faces found, the AU intensities per face track over time and the
           emotion probabilities over time.

    python examples/train_predict_plot.py --out example_output

The sizes here are for a demonstration (one epoch of two batches on 48 clips of 32x32 pixels): the model barely
learns. ``--clips 1200 --epochs 25 --backbone resnet10t`` is the experiment's own size (minutes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import affectlab
from affectlab.api import plot_au_timeline, plot_emotions


def held_out_videos(data_root: Path, sizes: dict[str, int], out: Path, count: int = 4, frames: int = 16,
                    fps: float = 8.0) -> Path:
    """``out/clip<n>.mp4``: the first ``count`` test-split clips of the AffectSynth the run trained on, each in a
    160x128 scene, played back and forth to ``frames`` frames."""
    from affectlab.data import AffectSynthDataModule
    from affectlab.data.media.video import write_video
    from affectlab.data.synth.export import scene_video

    data = AffectSynthDataModule(root=str(data_root), **sizes, modalities=["video"])
    data.setup()
    rng = np.random.default_rng(0)
    for clip in data.splits["test"][:count]:
        video = scene_video(np.asarray(data.arrays.frames[int(clip)]), rng, num_frames=frames)
        write_video(out / f"clip{int(clip)}.mp4", video, fps=fps)
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("example_output"), help="data, run store and figures go here")
    parser.add_argument("--clips", type=int, default=48, help="AffectSynth clips (the experiment uses 1200)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--backbone", default="test_convnext", help="a timm name (the experiment uses resnet10t)")
    options = parser.parse_args(argv)
    out: Path = options.out
    sizes = {"num_clips": options.clips, "num_identities": max(6, options.clips // 20), "num_frames": 4,
             "image_size": 32}

    # 1. train: the experiment's fit-test chain, with smaller sizes given as command-line-style overrides
    overrides = {f"data.init_args.{key}": value for key, value in sizes.items()}
    overrides.update({"data.init_args.root": str(out / "data"), "data.init_args.batch_size": 16,
                      "model.init_args.backbone": options.backbone, "model.init_args.feature_stage": -1,
                      "trainer.max_epochs": options.epochs, "trainer.enable_progress_bar": False,
                      "trainer.enable_model_summary": False})
    if options.clips <= 48:
        overrides["trainer.limit_train_batches"] = 2
    result = affectlab.train("experiment/au_synth.yaml", overrides=overrides, store=out / "runs")
    test = result.metrics["test"]
    print(f"run {result.run_id}: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(test.items()) if k.count("/") == 1))

    # 2. videos the model has not seen
    videos = held_out_videos(out / "data", sizes, out / "held_out")

    # 3. predict: a DataFrame in the CSV's columns (source, frame, face_id, timestamp, ..., AU01_r, ...)
    model = affectlab.load(result.run_id, store=out / "runs")
    predictions = model.predict(videos)
    predictions.to_csv(out / "held_out.csv", index=False)
    faces = predictions.groupby("source")["success"].sum()
    print(f"{len(predictions)} rows -> {out / 'held_out.csv'}; frames with a face per video: {faces.to_dict()}")

    # 4. plot: figures from the DataFrame, for the video with the most faces found
    best = faces.idxmax()
    for name, plot in (("au_timeline", plot_au_timeline), ("emotions", plot_emotions)):
        plot(predictions, source=best).savefig(out / f"{name}.png", dpi=100)
        print(f"{name} of {Path(best).name} -> {out / f'{name}.png'}")
    return test


if __name__ == "__main__":
    main()
