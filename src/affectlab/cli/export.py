"""``affectlab export onnx --run_id ID``: the run's best model as ONNX, checked against PyTorch in onnxruntime.

The model is rebuilt from the run's logged ``config.yaml`` and its ``best.ckpt`` (``weights_only=True``; seed
001 exported an unloaded, freshly initialised model: a defect). A method says what its exported graph is
by ``onnx_inputs()`` (example tensors, first dimension the batch) and ``onnx_forward(*inputs)`` (the outputs,
with activations applied); the batch dimension stays dynamic. After export the ONNX model runs in
onnxruntime on a fresh random batch of another size and its outputs are compared with PyTorch's: the command
fails if any differs by more than ``--tolerance`` (1e-4). The file goes to ``--out`` and into the run's
artifacts (``export/<file name>``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from affectlab.errors import ConfigError
from affectlab.runs.models import load_deployed_model


class _OnnxGraph(nn.Module):
    """What is exported: the method's ``onnx_forward`` of one input tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> Any:
        return self.model.onnx_forward(inputs)


def export_onnx(model: nn.Module, out: Path, tolerance: float = 1e-4) -> float:
    """Export ``model`` to ``out``; returns the largest difference from PyTorch measured in onnxruntime."""
    import onnxruntime

    if not hasattr(model, "onnx_forward"):
        raise ConfigError(f"{type(model).__name__} does not define onnx_forward/onnx_inputs: it cannot be exported yet")
    graph = _OnnxGraph(model).eval()
    inputs = model.onnx_inputs(batch_size=2)
    names = model.onnx_input_names()
    out.parent.mkdir(parents=True, exist_ok=True)
    dynamic = tuple({0: torch.export.Dim.DYNAMIC} for _ in inputs)
    torch.onnx.export(graph, tuple(inputs), str(out), dynamo=True, input_names=names,
                      output_names=model.onnx_output_names(), dynamic_shapes=dynamic, verbose=False)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    check = model.onnx_inputs(batch_size=5, seed=1)  # another batch size: the batch dimension must be free
    with torch.no_grad():
        expected = graph(*check)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    got = session.run(None, {n: x.numpy() for n, x in zip(names, check)})
    difference = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
    if difference > tolerance:
        raise ConfigError(f"{out}: onnxruntime's outputs differ from PyTorch's by {difference:.2e} > {tolerance:.0e}")
    return difference


def export_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectlab export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=["onnx"])
    parser.add_argument("--run_id", "--run-id", dest="run_id", required=True)
    parser.add_argument("--store", default=None, help="run store folder (default: ./runs)")
    parser.add_argument("--out", default=None, help="where to write the file (default: runs/exports/<run_id>.onnx)")
    parser.add_argument("--checkpoint", default="best.ckpt", help="best.ckpt or last.ckpt")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    options = parser.parse_args(args)
    from affectlab.runs.store import RunStore

    model = load_deployed_model(options.run_id, options.store, options.checkpoint)
    data = (model.run_config.get("data") or {}).get("init_args") or {}
    if "image_size" in data:  # the frame size the model was trained on fixes the graph's input size
        model.image_size = int(data["image_size"])
    out = Path(options.out or Path(options.store or "runs") / "exports" / f"{options.run_id}.onnx")
    difference = export_onnx(model, out, options.tolerance)
    RunStore.resolve(options.store).client.log_artifact(options.run_id, str(out), "export")
    print(f"exported {type(model).__name__} of run {options.run_id} to {out}; onnxruntime matches PyTorch within "
          f"{difference:.1e} (tolerance {options.tolerance:.0e})")
    return 0
