"""Times AffectLab's ``cosine_kmeans`` against scikit-learn's Lloyd k-means on a ConCluGen-sized queue.

The case: a k-means queue of 32 768 vectors of 512 floats (e.g. 128 batches of 256), 64 clusters, 20 Lloyd
iterations, float32, all cores. Both get the same L2-normalised data; on unit vectors Euclidean and cosine
k-means assign identically, so the work compares like for like; both seed with greedy k-means++ (2 + ln K
candidates per step), so the full fits do the same work too. Run ``python benchmarks/kmeans.py``; it prints
the best time of a few repetitions after a warm-up, the ratio ours/sklearn (goal: <= 0.2) and the GFLOP/s of
our matrix products, for the exact fit and for ``seeding_dtype=torch.bfloat16`` (the seeding's candidate products
on a bfloat16 copy: K - 1 passes over the queue at half the bytes, Lloyd unchanged). scikit-learn is optional:
without it the script times ours alone, says so and exits 0.

On the project's 2-core AVX512/AMX VM, quiet: exact fit 530 ms against scikit-learn's 2313 ms (0.229); the
seeding alone (K - 1 = 63 bandwidth-bound passes) is 1.8x faster in bfloat16 (412 -> 229 ms CPU time on one
core); with other jobs sharing the CPUs, interleaved rounds gave 0.251 exact and 0.186 with bfloat16 seeding.
On the 2-core AMD EPYC VM, heavily loaded, after the seeding's and Lloyd's CPU paths were reworked: paired
full-fit ratios 0.51 (one thread) and 0.27 (two threads); see docs/results.md, "k-means speed". The full fits
are paired round by round (ours, ours with bfloat16 seeding, scikit-learn) and ``--threads`` sets both sides'
thread pools, so a loaded machine can be measured on one thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from affectlab.losses.clustering import cosine_kmeans


def queue_like(n: int, d: int, k: int, noise: float = 5.0, seed: int = 0) -> torch.Tensor:
    """``[n, d]`` unit vectors around k random directions buried in noise (``noise`` times the centre's norm).

    Weakly clustered, like fused features early in training; strong enough noise that Lloyd has not converged
    after 20 steps, so scikit-learn (which stops as soon as no label changes) also runs all of them.
    """
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(k, d, generator=g), dim=1)  # (k, d)
    labels = torch.randint(k, (n,), generator=g)
    return F.normalize(centres[labels] + noise * torch.randn(n, d, generator=g) / d**0.5, dim=1)  # (n, d)


def cosine_objective(x: torch.Tensor, centroids: torch.Tensor, assign: torch.Tensor) -> float:
    """Mean cosine similarity of each point to its (normalised) centroid: comparable between both fits."""
    return (x * F.normalize(centroids, dim=1)[assign]).sum(dim=1).mean().item()


def best_time(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls after one warm-up call, and the last result.

    Each call starts after a pause: torch's and scikit-learn's thread pools (OpenMP, OpenBLAS) busy-wait for a
    while after their last job, and on few cores the other library's spinning threads would be timed too.
    """
    result = fn()
    times = []
    for _ in range(repeats):
        time.sleep(0.5)
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32768)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads of both sides (torch's and scikit-learn's OpenMP/BLAS pools); default all cores")
    args = parser.parse_args()
    try:
        from sklearn import __version__ as sklearn_version
        from sklearn.cluster import KMeans
    except ImportError:
        KMeans, sklearn_version = None, "not installed"

    cores = args.threads
    torch.set_num_threads(cores)
    if KMeans is not None:  # scikit-learn's own pools (OpenMP, BLAS) get the same number
        from threadpoolctl import threadpool_limits

        threadpool_limits(cores)
    x = queue_like(args.n, args.dim, args.clusters)
    k, it = args.clusters, args.iterations
    print(f"{args.n} x {args.dim} float32, {k} clusters, {it} iterations, {cores} threads; "
          f"torch {torch.__version__}, scikit-learn {sklearn_version}; best of {args.repeats} after a warm-up")

    g = torch.Generator()
    ours, (centroids, assign) = best_time(lambda: cosine_kmeans(x, k, it, generator=g.manual_seed(0)), args.repeats)
    ours_bf16, _ = best_time(lambda: cosine_kmeans(x, k, it, generator=g.manual_seed(0), seeding_dtype=torch.bfloat16),
                             args.repeats)
    init = cosine_kmeans(x, k, 0, generator=g.manual_seed(0))[0]  # k-means++ alone
    ours_lloyd, _ = best_time(lambda: cosine_kmeans(x, k, it, init=init), args.repeats)
    # Lloyd steps plus the final assignment: iterations + 1 products of [N, D] x [D, K], 2 N D K flops each.
    flops = 2 * args.n * args.dim * k * (it + 1)
    sims = x.new_empty(args.n, k)  # (N, K)
    one_mm, _ = best_time(lambda: torch.mm(x, centroids.T, out=sims), 10)
    print(f"ours: full fit {ours * 1e3:.1f} ms, Lloyd alone {ours_lloyd * 1e3:.1f} ms; {flops / 1e9:.1f} GFLOP of "
          f"matmuls at {flops / ours / 1e9:.0f} GFLOP/s over the full fit, {flops / ours_lloyd / 1e9:.0f} over Lloyd, "
          f"{2 * args.n * args.dim * k / one_mm / 1e9:.0f} in one matmul alone; full fit with bfloat16 seeding "
          f"{ours_bf16 * 1e3:.1f} ms")
    if KMeans is None:
        print("scikit-learn is not installed (`pip install scikit-learn`): no comparison.")
        return 0

    x_np = x.numpy()
    sk = KMeans(n_clusters=k, max_iter=it, n_init=1, tol=0, algorithm="lloyd", random_state=0)
    # Full fits paired round by round (ours, ours with bfloat16 seeding, scikit-learn, after a pause each), so a
    # machine whose speed drifts (other jobs on the cores) moves both sides of each ratio alike.
    ratios, ratios_bf16, theirs_times = [], [], []
    sk.fit(x_np)
    for _ in range(args.repeats):
        ours_t, _ = best_time(lambda: cosine_kmeans(x, k, it, generator=g.manual_seed(0)), 1)
        ours_bf16_t, _ = best_time(lambda: cosine_kmeans(x, k, it, generator=g.manual_seed(0),
                                                         seeding_dtype=torch.bfloat16), 1)
        theirs_t, _ = best_time(lambda: sk.fit(x_np), 1)
        ratios.append(ours_t / theirs_t)
        ratios_bf16.append(ours_bf16_t / theirs_t)
        theirs_times.append(theirs_t)
    theirs = min(theirs_times)
    sk_objective = cosine_objective(x, torch.from_numpy(sk.cluster_centers_), torch.from_numpy(sk.labels_).long())
    # Lloyd alone from the same initial centroids: where the two implementations do the same work.
    sk_lloyd = KMeans(n_clusters=k, max_iter=it, n_init=1, tol=0, algorithm="lloyd", init=init.numpy())
    theirs_lloyd, _ = best_time(lambda: sk_lloyd.fit(x_np), args.repeats)
    print(f"sklearn: full fit {theirs * 1e3:.1f} ms ({sk.n_iter_} iterations), Lloyd alone {theirs_lloyd * 1e3:.1f} ms "
          f"({sk_lloyd.n_iter_} iterations)")
    print(f"ratio ours/sklearn: full fit {ours / theirs:.3f} (goal <= 0.2), "
          f"Lloyd alone {ours_lloyd / theirs_lloyd:.3f}, full fit with bfloat16 seeding {ours_bf16 / theirs:.3f}")
    print(f"paired full-fit ratios over {args.repeats} rounds (median, min-max): exact "
          f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}), bfloat16 seeding "
          f"{statistics.median(ratios_bf16):.3f} ({min(ratios_bf16):.3f}-{max(ratios_bf16):.3f})")
    print(f"mean cosine to the centroid: ours {cosine_objective(x, centroids, assign):.4f}, sklearn {sk_objective:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
