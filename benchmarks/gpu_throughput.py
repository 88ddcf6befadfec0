"""Training throughput on one GPU: samples/s of two workloads, plain fp32 against the accelerated set-up.

The workloads, each a plain PyTorch training loop (AdamW; no Lightning, so what is timed is the model and the
loader):

- AU training: ``AUModel`` (``configs/model/au.yaml``: resnet10t, stage 2, occurrence and ordinal intensity heads
  over the 12 DISFA AUs, weak augmentation on the device) on face frames held in memory as uint8 and converted
  to float in the loader's workers, as decoded frames are;
- ConCluGen pretraining on precomputed features: one pooled vector per clip and modality (video 4096, audio 1024,
  text 768), the three losses with k-means on the queue at every step (as ``benchmarks/pretrain_step.py``).

The settings, each built afresh (same seed, so the same initial weights):

- baseline: fp32, contiguous (NCHW) weights, eager;
- accelerated: bf16-mixed autocast, channels-last convolution weights for the image backbone (``runs/accelerate.py``,
  the ``Accelerate`` callback's code) and, with ``--compile``, ``torch.compile`` of the network's modules.

Both read the same loader (``pin_memory=True``, ``--workers N`` worker processes, host-to-device copies
non-blocking). After a warm-up (compilation, cuDNN's autotuning, the k-means queue filling) the timed steps give
samples/s and the data-wait share: the time blocked in ``next(iterator)`` over the total step time. A share near 1
means the GPU starves: raise ``--workers``. Runs alternate (baseline, accelerated, baseline, ...) and the median of
each is compared, so other load on the machine hits both alike. Prints the device name and, per workload, the ratio
accelerated/baseline. Without a CUDA GPU it says so in one line and exits 0.

    .venv/bin/python benchmarks/gpu_throughput.py [--workers 8] [--compile] [--steps 50] [--repeats 2]

Under two minutes on one H100 with the defaults (``--compile`` adds its compilation, tens of seconds per model).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from affectlab.data.contract import ACTION_UNITS
from affectlab.methods import AUModel, ConCluGen
from affectlab.nn.au_heads import IntensityHead, OccurrenceHead
from affectlab.nn.encoders import PrecomputedFeatures
from affectlab.runs.accelerate import compile_forward, to_channels_last

FEATURE_DIMS = {"video": 4096, "audio": 1024, "text": 768}  # ConCluGen's frozen backbones' feature sizes
NEEDS_GPU = "gpu_throughput.py needs a CUDA GPU and none is visible here; nothing measured"


@dataclass(frozen=True)
class Size:
    """How big each workload is: the defaults fill an H100 for a few seconds per setting; the tests shrink them."""

    au_batch_size: int = 256
    image_size: int = 112  # FaceFlow's face crops are 112-256 px; configs/data/synth_au.yaml's 64 is for CPUs
    au_backbone: str = "resnet10t"
    feature_batch_size: int = 256
    feature_dims: dict[str, int] = field(default_factory=lambda: dict(FEATURE_DIMS))
    representation_dim: int = 1024  # benchmarks/pretrain_step.py's model: R, Q, K and the reconstruction width
    projection_dim: int = 256
    reconstruction_dim: int = 512
    num_clusters: int = 64
    batches_in_memory: int = 16  # the data set's size in batches: enough that an epoch is not a few steps


# the tests' size: seconds on two CPU cores
TINY = Size(au_batch_size=8, image_size=32, feature_batch_size=16, feature_dims={"video": 64, "audio": 32, "text": 32},
            representation_dim=32, projection_dim=16, reconstruction_dim=32, num_clusters=4, batches_in_memory=2)


@dataclass(frozen=True)
class Setting:
    name: str
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False


@dataclass(frozen=True)
class Measurement:
    workload: str
    setting: str
    samples_per_s: float
    data_wait_share: float  # time blocked in next(iterator) / total time of the timed steps
    step_ms: float


# -- the two workloads ------------------------------------------------------------------------------------------
class FaceFrames(Dataset):
    """Random face frames with AU occurrence and intensity labels. Frames are held as uint8 and become float in
    ``__getitem__`` (in the loader's workers), the conversion a real frame loader makes after decoding."""

    def __init__(self, size: int, image_size: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.frames = torch.randint(0, 256, (size, 1, 3, image_size, image_size), dtype=torch.uint8, generator=generator)
        self.intensity = torch.randint(0, 6, (size, len(ACTION_UNITS)), generator=generator).float()  # 0-5

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        intensity = self.intensity[index]
        return {
            "video": self.frames[index].float().div_(255),  # (T=1, 3, H, W): an image is a clip of one frame
            "targets": {"au": (intensity > 0).float(), "au_intensity": intensity},
            "target_mask": {"au": torch.tensor(True), "au_intensity": torch.tensor(True)},
        }


class FeatureClips(Dataset):
    """Random stand-ins for precomputed, pooled features per clip and modality, held in memory."""

    def __init__(self, size: int, dims: dict[str, int]) -> None:
        generator = torch.Generator().manual_seed(0)
        self.features = {m: torch.randn(size, d, generator=generator) for m, d in dims.items()}

    def __len__(self) -> int:
        return len(self.features["video"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"id": index, **{m: f[index] for m, f in self.features.items()}}


@dataclass(frozen=True)
class Workload:
    """What the timing loop needs of a workload: its model, data, loss, and which modules ``--compile`` compiles:
    those the loss calls (``nn.Module.compile`` compiles ``__call__``), the network and not the k-means or loss code
    around it, whose data-dependent shapes would only recompile."""

    name: str
    batch_size: int
    build: Callable[[], nn.Module]
    dataset: Callable[[], Dataset]
    loss: Callable[[nn.Module, dict[str, Any]], torch.Tensor]
    compiled: Callable[[nn.Module], list[nn.Module]]


def au_workload(size: Size) -> Workload:
    def build() -> nn.Module:
        # the heads of configs/model/au.yaml (emotion left out: the frames here carry no emotion label)
        return AUModel(backbone=size.au_backbone, feature_stage=2, heads=[OccurrenceHead, IntensityHead])

    def loss(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        # AUModel.training_loss without its logging (no trainer here): augment on the device, heads, losses
        outputs = model({**batch, "video": model.training_frames(batch)})
        return model.head_losses(outputs, batch)["loss"]

    return Workload(
        name=f"AU training ({size.au_backbone}, {size.image_size} px, batch {size.au_batch_size})",
        batch_size=size.au_batch_size, build=build,
        dataset=lambda: FaceFrames(size.au_batch_size * size.batches_in_memory, size.image_size),
        loss=loss, compiled=lambda model: [model],  # its forward: the backbone's stages and the heads
    )


def conclugen_workload(size: Size) -> Workload:
    def build() -> nn.Module:
        encoders = {m: PrecomputedFeatures(d, modality=m) for m, d in size.feature_dims.items()}
        return ConCluGen(encoders, freeze_encoders=True, representation_dim=size.representation_dim,
                         projection_dim=size.projection_dim, num_clusters=size.num_clusters,
                         reconstruction_dim=size.reconstruction_dim, kmeans_queue_size=16)

    return Workload(
        name=f"ConCluGen pretraining on features (batch {size.feature_batch_size}, {size.num_clusters} clusters)",
        batch_size=size.feature_batch_size, build=build,
        dataset=lambda: FeatureClips(size.feature_batch_size * size.batches_in_memory, size.feature_dims),
        loss=lambda model, batch: model._losses(batch, "train")["loss"],
        compiled=lambda model: [*model.representation.values(), model.projection, *model.reconstruction.values()],
    )


# -- the timing loop --------------------------------------------------------------------------------------------
def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)  # asynchronous from pinned memory
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def endless(loader: DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(workload: Workload, setting: Setting, device: torch.device, steps: int, warmup: int,
            workers: int) -> Measurement:
    """Trains ``workload`` for ``warmup + steps`` steps under ``setting``; times the last ``steps``."""
    torch.manual_seed(0)
    model = workload.build().to(device).train()
    if setting.channels_last:
        to_channels_last(model)  # a no-op for a model without convolutions (ConCluGen on features)
    if setting.compile:
        for module in workload.compiled(model):
            compile_forward(module)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-2)
    loader = DataLoader(workload.dataset(), batch_size=workload.batch_size, shuffle=True, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    batches = endless(loader)
    waited, start = 0.0, time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:  # the clock starts on an idle device
            synchronize(device)
            waited, start = 0.0, time.perf_counter()
        before = time.perf_counter()
        batch = next(batches)
        waited += time.perf_counter() - before
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=setting.bf16):
            loss = workload.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    elapsed = time.perf_counter() - start
    if not torch.isfinite(loss):
        raise RuntimeError(f"{workload.name}, {setting.name}: the loss is {loss.item()}; the timings mean nothing")
    del batches  # ends the loader's workers
    return Measurement(workload.name, setting.name, samples_per_s=steps * workload.batch_size / elapsed,
                       data_wait_share=waited / elapsed, step_ms=elapsed / steps * 1e3)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=8, help="loader worker processes (default 8)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile the networks in the accelerated setting")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (the k-means queue fills in 16)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting, alternating; the median counts")
    parser.add_argument("--workload", choices=("au", "conclugen", "both"), default="both")
    # for the tests: a run on the CPU at a tiny size (not a benchmark: bf16 autocast on a CPU is no speed-up)
    parser.add_argument("--device", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.device is None and not torch.cuda.is_available():
        print(NEEDS_GPU)
        return 0
    device = torch.device(options.device or "cuda")
    size = TINY if options.tiny else Size()
    workloads = {"au": [au_workload(size)], "conclugen": [conclugen_workload(size)],
                 "both": [au_workload(size), conclugen_workload(size)]}[options.workload]
    baseline = Setting("baseline (fp32, NCHW, eager)")
    # On the CPU (the tests) autocast stays off: CPU autocast runs ConCluGen's k-means member sums, a sparse CSR
    # product, in bfloat16, which has no CPU kernel (on CUDA those sums are an index_add_ outside autocast's list).
    bf16 = device.type == "cuda"
    accelerated = Setting(f"accelerated ({'bf16-mixed, ' if bf16 else ''}channels last{', compiled' if options.compile else ''})",
                          bf16=bf16, channels_last=True, compile=options.compile)
    print(f"device: {device_name(device)}; torch {torch.__version__}; {options.workers} loader workers, "
          f"{options.steps} timed steps after {options.warmup}", flush=True)
    for workload in workloads:
        runs: dict[str, list[Measurement]] = {baseline.name: [], accelerated.name: []}
        for repeat in range(options.repeats):
            for setting in (baseline, accelerated):
                result = measure(workload, setting, device, options.steps, options.warmup, options.workers)
                runs[setting.name].append(result)
                print(f"  {workload.name}, {setting.name}, run {repeat + 1}: {result.samples_per_s:,.0f} samples/s, "
                      f"{result.step_ms:.1f} ms/step, data wait {result.data_wait_share:.0%}", flush=True)
        base, fast = (statistics.median(r.samples_per_s for r in runs[s.name]) for s in (baseline, accelerated))
        waits = {s.name: statistics.median(r.data_wait_share for r in runs[s.name]) for s in (baseline, accelerated)}
        print(f"{workload.name} on {device_name(device)}: baseline {base:,.0f} samples/s (data wait "
              f"{waits[baseline.name]:.0%}), accelerated {fast:,.0f} samples/s (data wait {waits[accelerated.name]:.0%}), "
              f"ratio accelerated/baseline {fast / base:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
