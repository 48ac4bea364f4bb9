"""ExecuTorch + XNNPACK: torch.export -> edge dialect -> XNNPACK delegate -> step.pte.

The step is written in the `xnnpack` spelling (split projections, bmm attention, RoPE and the
RMSNorm mean as matmuls), which keeps the graph in ~2 delegated partitions instead of ~250.
int8: torchao pt2e with the XNNPACK quantizer, dynamic per-channel int8 weights and activations.
A dynamic batch is exported from an example batch of 2 (batch 1 would specialise the dimension).
The manifest is embedded as a constant method, `trm_edge_manifest` (a string), once parity is known.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from trm_edge.step import example_inputs

SPELLING = "xnnpack"
PRECISIONS = ("fp32", "int8")
TOKEN_DTYPE = "int64"
MODEL_FILE = "step.pte"
MAX_BATCH = 64
MANIFEST_METHOD = "trm_edge_manifest"
_lowered = {}    # model file -> its lowered edge program, kept until the manifest is embedded


def _lower(ep):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    return to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])


def export(step, stage: Path, precision: str = "fp32", batch: int | None = None) -> str:
    args = example_inputs(step, batch or 2, torch.int64)
    dynamic = None
    if batch is None:
        B = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        dynamic = {name: {0: B} for name in step.input_names}
    with torch.no_grad():
        ep = torch.export.export(step, args, dynamic_shapes=dynamic)
        if precision == "int8":
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                                get_symmetric_quantization_config)
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            quantizer = XNNPACKQuantizer().set_global(
                get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
            gm = prepare_pt2e(ep.module(), quantizer)
            gm(*args)
            gm = convert_pt2e(gm)
            ep = torch.export.export(gm, args, dynamic_shapes=dynamic)
    edge = _lower(ep)
    path = Path(stage) / MODEL_FILE
    _lowered[path] = copy.deepcopy(edge)     # to_executorch() rewrites the program it is given
    path.write_bytes(edge.to_executorch().buffer)
    return MODEL_FILE


def embed_manifest(model_file: Path, manifest: dict) -> None:
    """Re-emit the lowered program with the manifest (without file hashes) as a constant method.
    Emitting is cheap; the delegate blobs are the ones parity ran on."""
    edge = _lowered.pop(Path(model_file))
    # constant methods are given to to_edge(); the lowered manager keeps them here for to_executorch()
    edge._config_methods = {MANIFEST_METHOD: json.dumps({k: v for k, v in manifest.items() if k != "files"})}
    Path(model_file).write_bytes(edge.to_executorch().buffer)


def versions() -> dict:
    import executorch
    import torchao
    return {"executorch": getattr(executorch, "__version__", _dist_version("executorch")), "torchao": torchao.__version__}


def _dist_version(name: str) -> str:
    from importlib.metadata import version
    return version(name)
