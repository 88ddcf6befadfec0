"""Times CluP's two steps before training on a target set of ExpW's size: the teacher pass and the clustering.

ExpW has about 91,000 faces; the original clusters the teacher's 512-d embeddings (plus the appended 1, so 513
columns, each row L2-normalised) into up to 5000 prototypes with scikit-learn's ``KMeans`` (1.1.2's defaults:
k-means++, n_init=10, max_iter=300). This script:

1. teacher pass: the source model (``configs/model/clup/source.yaml``'s architecture: a ResNet-18, standard
   stem, 512-d pooled vector -> weight-normed linear head) over ``--teacher-images`` random faces of
   ``--image-size`` pixels in batches of ``--batch-size``, no gradients; faces/s and the time for ``--faces``;
2. clustering: ``methods/clup_labels.kmeans``'s parts (k-means++ seeding, then Lloyd to convergence) against
   scikit-learn's ``KMeans`` on the same rows ``[N, 513]`` (weakly clustered synthetic embeddings), with the same
   settings (``--restarts`` initialisations, at most ``--iterations`` steps, ``--tol``; both stop when no label
   changes or the centres move less than the tolerance), paired round by round; the ratio ours/scikit-learn,
   both inertias and step counts; then the seeding's time, a Lloyd step's, and what the original's full fit
   (10 restarts x up to 300 steps) costs at that rate.

Lloyd's cost is one ``[N, 513] x [513, K]`` product per step (2 N K 513 flops: 0.48 TFLOP at N = 91,000,
K = 5000), so a step scales as N x K; the k-means++ seeding is K - 1 passes over the rows (also N x K). On a
2-core machine run it smaller (``--faces 20000 --prototypes 1000``) and scale by N x K.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

from affectlab.losses.clustering import kmeans_plusplus
from affectlab.methods.clup_labels import _lloyd, teacher_rows


def embeddings_like(n: int, d: int, k: int, noise: float = 3.0, seed: int = 0) -> torch.Tensor:
    """``[n, d]`` non-negative vectors (as pooled ReLU features) around k directions buried in noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g).abs()  # (k, d)
    labels = torch.randint(k, (n,), generator=g)
    return F.relu(centres[labels] + noise * torch.randn(n, d, generator=g))  # (n, d)


def inertia(x: torch.Tensor, assign: torch.Tensor, k: int) -> float:
    """Sum of squared distances to the assigned cluster's mean: comparable between both fits."""
    means = torch.zeros(k, x.shape[1], dtype=torch.float64).index_add_(0, assign, x.double())
    means /= torch.bincount(assign, minlength=k).clamp_min(1).unsqueeze(1)
    return float(((x.double() - means[assign]) ** 2).sum())


def teacher_pass(images: int, size: int, batch: int) -> float:
    """Faces per second of the source model's embedding + logits pass."""
    from affectlab.methods import SupervisedClassifier
    from affectlab.nn.encoders import FrameEncoder

    model = SupervisedClassifier({"video": FrameEncoder("resnet18", stem="standard")}, fusion="none", dropout=0.0,
                                 unimodal_weight=0.0, weight_norm=True).eval()
    frames = torch.rand(batch, 1, 3, size, size)  # (B, T=1, 3, S, S): one face per sample, as the readers serve it
    with torch.no_grad():
        model.head(model.fusion(model.represent({"video": frames})))  # warm-up
        start = time.perf_counter()
        done = 0
        while done < images:
            vectors = model.represent({"video": frames})  # {video: (B, 512)}
            model.head(model.fusion(vectors))  # (B, 7)
            done += batch
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=91_000, help="N, the target's train faces (ExpW: ~91,000)")
    parser.add_argument("--prototypes", type=int, default=5000, help="K")
    parser.add_argument("--dim", type=int, default=512, help="the teacher's embedding size (a 1 is appended)")
    parser.add_argument("--restarts", type=int, default=1, help="initialisations timed (the original: 10)")
    parser.add_argument("--iterations", type=int, default=10, help="at most this many Lloyd steps (original: 300)")
    parser.add_argument("--tol", type=float, default=0.0, help="relative centre-shift tolerance (original: 1e-4)")
    parser.add_argument("--rounds", type=int, default=2, help="paired rounds (ours, scikit-learn)")
    parser.add_argument("--teacher-images", type=int, default=256, help="faces timed through the teacher")
    parser.add_argument("--image-size", type=int, default=160, help="the seed resizes faces to 160")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="both sides' thread pools")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, k = args.faces, args.prototypes
    print(f"threads {args.threads}; N {n}, K {k}, D {args.dim} + 1; each side {args.restarts} restart(s) of at most "
          f"{args.iterations} Lloyd steps, tol {args.tol}")

    if args.teacher_images > 0:
        rate = teacher_pass(args.teacher_images, args.image_size, args.batch_size)
        print(f"teacher pass: {rate:.1f} faces/s at {args.image_size}px -> {n / rate:.0f} s for {n} faces")

    rows = teacher_rows(embeddings_like(n, args.dim, k // 10 or 1))  # (N, D + 1), unit rows
    try:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits
    except ImportError:
        KMeans = None
        print("scikit-learn is not installed: timing ours alone")
    ours_times, theirs_times, seed_times, steps = [], [], [], []
    tol_abs = args.tol * float(rows.var(dim=0, unbiased=False).mean())  # scikit-learn's relative tolerance
    for round_ in range(args.rounds):
        # ours: kmeans() is this loop (restarts x (seeding, Lloyd)) keeping the lowest inertia; run here by parts
        # so the seeding and the Lloyd steps are timed apart
        generator = torch.Generator().manual_seed(round_)
        total, seeding, best = 0.0, 0.0, (None, float("inf"), 0)
        for _ in range(args.restarts):
            start = time.perf_counter()
            centres = kmeans_plusplus(rows, k, generator)
            seeded = time.perf_counter()
            fit = _lloyd(rows, centres, args.iterations, tol_abs, 8192)
            total += time.perf_counter() - start
            seeding += seeded - start
            steps.append(fit[2])
            best = min(best, fit, key=lambda f: f[1])
        ours_times.append(total)
        seed_times.append(seeding / args.restarts)
        ours_inertia = inertia(rows, best[0], k)
        if KMeans is None:
            print(f"round {round_}: ours {total:.2f} s (inertia {ours_inertia:.2f}, {steps[-1]} steps)")
            continue
        with threadpool_limits(args.threads):
            start = time.perf_counter()
            reference = KMeans(k, init="k-means++", n_init=args.restarts, max_iter=args.iterations, tol=args.tol,
                               random_state=round_).fit(rows.numpy())
            theirs_times.append(time.perf_counter() - start)
        print(f"round {round_}: ours {total:.2f} s (inertia {ours_inertia:.2f}, {steps[-1]} steps), scikit-learn "
              f"{theirs_times[-1]:.2f} s (inertia {reference.inertia_:.2f}, {reference.n_iter_} steps)")
    ours = min(ours_times)
    print(f"ours: {ours:.2f} s in all (seeding included)")
    if theirs_times:
        theirs = min(theirs_times)
        print(f"scikit-learn: {theirs:.2f} s; ratio ours/scikit-learn {ours / theirs:.3f}")
    seeding = min(seed_times)
    step = max(ours / args.restarts - seeding, 0.0) / (sum(steps) / len(steps))
    observed = sum(steps) / len(steps)
    full, typical = 10 * (seeding + 300 * step), 10 * (seeding + observed * step)
    scale = 91_000 * 5000 / (n * k)
    print(f"ours: k-means++ seeding {seeding:.2f} s, a Lloyd step {step:.3f} s; the original's full fit (10 restarts) "
          f"at this rate: {typical:.0f} s at the {observed:.0f} steps seen here, {full:.0f} s at 300 (the bound); "
          f"at N = 91,000 and K = 5000 x {scale:.1f} (cost ~ N K): {typical * scale:.0f} s / {full * scale:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
