"""ExecuTorch + XNNPACK: torch.export -> edge dialect -> XNNPACK delegate -> step.pte.

The step is written in the `xnnpack` spelling (split projections, attention per head on 3-D
tensors, RoPE and the RMSNorm mean as linear layers), which keeps the graph in 2 delegated
partitions (MLP-t and attention models, dynamic batch) instead of dozens to hundreds.
int8: torchao pt2e with the XNNPACK quantizer, dynamic per-channel int8 weights and activations.
fp16: the step computed in half precision inside (float32 at its boundary, trm_edge.step.half_step),
XNNPACK's fp16 kernels.
int8-static: the same quantizer's static config (W8A8: per-channel int8 weights, per-tensor int8
activations whose scales the calibration feeds fix: every supervision step's real inputs).
A dynamic batch is exported from an example batch of 2 (batch 1 would specialise the dimension).
The manifest is embedded as a constant method, `trm_edge_manifest` (a string), at lowering.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from trm_edge.export.protocol import Exported
from trm_edge.step import dynamic_batch, example_inputs, export_step, half_step

SPELLING = "xnnpack"
TOKEN_DTYPE = "int64"
MODEL_FILE = "step.pte"
MAX_BATCH = 64
MANIFEST_METHOD = "trm_edge_manifest"


def _lower(ep, constant_methods: dict | None = None):
    """Edge dialect + XNNPACK. The edge IR's verifier, which re-checks the whole graph after every pass,
    is off: it took over half of an int8 export (the unrolled step is a long graph), and what it
    guards is checked better by running the file: parity against PyTorch, every export."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower
    return to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()], constant_methods=constant_methods,
                                       compile_config=EdgeCompileConfig(_check_ir_validity=False))


def export(step, stage: Path, precision: str = "fp32", batch: int | None = None, calibration=None) -> Exported:
    """torch.export (and quantize) now; lowering and emitting happen in `finish`, once the manifest is
    known, so the manifest rides in the program as a constant method and parity runs on that very file."""
    if precision == "fp16":
        step = half_step(step)
    args = example_inputs(step, batch or 2, torch.int64)
    with torch.no_grad():
        ep = export_step(step, batch, torch.int64, max_batch=MAX_BATCH)
        quantization = None
        if precision in ("int8", "int8-static"):
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                                get_symmetric_quantization_config)
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            static = precision == "int8-static"
            quantizer = XNNPACKQuantizer().set_global(
                get_symmetric_quantization_config(is_per_channel=True, is_dynamic=not static))
            gm = prepare_pt2e(ep.module(), quantizer)
            if static:    # the observers see every supervision step's real inputs
                if calibration.keep_fp32:
                    from trm_edge.export.calibration import CalibrationError
                    raise CalibrationError("--keep-fp32 is not offered for executorch yet (onnx has it); drop it")
                for feed in calibration.feeds:
                    gm(*(torch.as_tensor(feed[n]) for n in step.input_names))
                quantization = {"scheme": "static", "format": "pt2e QDQ, XNNPACK-delegated",
                                "weights": "int8 per channel, symmetric", "activations": "int8 per tensor, symmetric, "
                                "scales from calibration", "method": "MinMax observers",
                                "tool": "torchao pt2e + XNNPACKQuantizer", "calibration": calibration.provenance,
                                "keep_fp32": []}
            else:
                gm(*args)
            gm = convert_pt2e(gm)
            ep = torch.export.export(gm, args, dynamic_shapes=None if batch else dynamic_batch(step, MAX_BATCH))
    path = Path(stage) / MODEL_FILE
    return Exported(MODEL_FILE, batch=batch, max_batch=None if batch else MAX_BATCH,
                    finish=lambda manifest: emit(ep, path, manifest), quantization=quantization)


def emit(ep, model_file: Path, manifest: dict) -> None:
    """Lower to XNNPACK and write step.pte, with the manifest (without file hashes and parity, which
    come after) as the constant method MANIFEST_METHOD."""
    embedded = json.dumps({k: v for k, v in manifest.items() if k not in ("files", "parity")})
    Path(model_file).write_bytes(_lower(ep, {MANIFEST_METHOD: embedded}).to_executorch().buffer)


def offline_check(model_file, manifest) -> None:
    return None      # the pip wheel's runtime runs here: parity decides


def versions() -> dict:
    import executorch
    import torchao
    return {"executorch": getattr(executorch, "__version__", _dist_version("executorch")), "torchao": torchao.__version__}


def _dist_version(name: str) -> str:
    from importlib.metadata import version
    return version(name)
