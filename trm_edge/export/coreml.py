"""Core ML (mlprogram, iOS 17+/macOS 14+): the step traced with torch.jit and converted by coremltools.

Written in the `coreml` spelling (split projections, bmm attention, flat RoPE, RMSNorm as a mean:
coremltools' fuse_linear_bias pass crashes on the matmul form). Tokens are int32 (Core ML has no
int64 inputs). fp32 and fp16 are compute precisions; int8 = int8 per-channel weights
(coremltools.optimize) on the fp16 program. Core ML predicts on macOS only: on Linux the bundle is
verified (the spec reloads, the I/O names, shapes and dtypes are the manifest's, the op list is
recorded) and running is reported as unavailable, never faked.
"""
from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from trm_edge.export.protocol import Exported
from trm_edge.step import example_inputs

SPELLING = "coreml"
TOKEN_DTYPE = "int32"
MODEL_FILE = "step.mlpackage"
MAX_BATCH = 64


def export(step, stage: Path, precision: str = "fp32", batch: int | None = None, calibration=None) -> Exported:
    import coremltools as ct
    args = example_inputs(step, batch or 1, torch.int32)
    B = ct.RangeDim(1, MAX_BATCH, default=1) if batch is None else batch
    dtypes = {"tokens": np.int32}
    inputs = [ct.TensorType(name=n, shape=(B, *a.shape[1:]), dtype=dtypes.get(n, np.float32))
              for n, a in zip(step.input_names, args)]
    module, quantization = step, None
    if precision == "int8-static":
        module, quantization = _w8a8(step, args, calibration)
    with torch.no_grad():
        traced = torch.jit.trace(module, args, check_trace=False)
    ml = ct.convert(traced, inputs=inputs, outputs=[ct.TensorType(name=n) for n in step.output_names],
                    convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                    compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16)
    if precision == "int8":
        from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights
        ml = linear_quantize_weights(ml, OptimizationConfig(global_config=OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel")))
    path = Path(stage) / MODEL_FILE
    ml.save(str(path))
    return Exported(MODEL_FILE, batch=batch, max_batch=None if batch else MAX_BATCH,
                    finish=lambda manifest: embed_manifest(path, manifest), quantization=quantization)


def _w8a8(step, args, calibration):
    """The step with int8 weights and activations (fake-quantized in torch, converted to Core ML's quantize /
    dequantize ops), activation ranges observed over the calibration feeds."""
    from coremltools.optimize.torch.quantization import LinearQuantizer, LinearQuantizerConfig
    if calibration.keep_fp32:
        from trm_edge.export.calibration import CalibrationError
        raise CalibrationError("--keep-fp32 is not offered for coreml yet (onnx has it); drop it")
    config = LinearQuantizerConfig.from_dict({"global_config": {
        "quantization_scheme": "symmetric", "activation_dtype": "quint8", "weight_dtype": "qint8",
        "weight_per_channel": True, "milestones": [0, 10**9, 10**9, 0]}})   # observe from the start, never freeze
    quantizer = LinearQuantizer(step.eval(), config)
    prepared = quantizer.prepare(example_inputs=args, inplace=False)
    quantizer.step()
    with torch.no_grad():
        for feed in calibration.feeds:
            prepared(*(torch.as_tensor(feed[n]).to(torch.int32 if n == "tokens" else torch.float32)
                       for n in step.input_names))
    return quantizer.finalize(prepared, inplace=False), {
        "scheme": "static", "format": "Core ML quantize/dequantize (mlprogram, fp16 compute)",
        "weights": "int8 per channel, symmetric", "activations": "uint8 per tensor, scales from calibration",
        "method": "observers (coremltools.optimize.torch LinearQuantizer)", "tool": "coremltools.optimize.torch",
        "calibration": calibration.provenance, "keep_fp32": []}


def offline_check(model_file, manifest) -> dict | None:
    """Core ML predicts on macOS only: there parity decides; elsewhere the spec is verified."""
    return None if sys.platform == "darwin" else verify(model_file, manifest)


def verify(model_file: Path, manifest: dict) -> dict:
    """What can be checked without macOS: the spec reloads and its I/O are the manifest's."""
    import coremltools as ct
    spec = ct.models.MLModel(str(model_file), skip_model_load=True).get_spec()
    kinds = {"int32": "int32", "float32": "float32"}
    names_in = [i.name for i in spec.description.input]
    names_out = [o.name for o in spec.description.output]
    problems = []
    if names_in != [i["name"] for i in manifest["inputs"]]:
        problems.append(f"inputs {names_in}")
    if names_out != [o["name"] for o in manifest["outputs"]]:
        problems.append(f"outputs {names_out}")
    for i, want in zip(spec.description.input, manifest["inputs"]):
        arr = i.type.multiArrayType
        dtype = {65568: "float32", 131104: "int32", 65552: "float16"}.get(arr.dataType, str(arr.dataType))
        if dtype != kinds.get(want["dtype"], want["dtype"]):
            problems.append(f"{i.name} dtype {dtype}")
        if [int(d) for d in arr.shape][1:] != want["shape"][1:]:
            problems.append(f"{i.name} shape {list(arr.shape)}")
    ops = Counter(op.type for f in spec.mlProgram.functions.values() for blk in f.block_specializations.values()
                  for op in blk.operations)
    if manifest.get("precision") == "int8-static" and not (ops.get("quantize") and ops.get("dequantize")):
        problems.append("no activation quantize/dequantize ops in an int8-static program")
    return {"ran": False, "reason": "Core ML predicts on macOS only; verified the spec here instead",
            "spec_reloads": True, "io_match": not problems, "problems": problems,
            "op_counts": dict(ops.most_common()), "passed": not problems}


def embed_manifest(model_file: Path, manifest: dict) -> None:
    import coremltools as ct
    ml = ct.models.MLModel(str(model_file), skip_model_load=True)
    ml.user_defined_metadata["trm_edge.manifest"] = json.dumps({k: v for k, v in manifest.items() if k not in ("files", "parity")})
    model_file = Path(model_file)
    tmp = model_file.with_name("with-manifest.mlpackage")
    ml.save(str(tmp))                      # coremltools cannot save over the package it reads from
    shutil.rmtree(model_file)
    tmp.rename(model_file)


def versions() -> dict:
    import coremltools
    return {"coremltools": coremltools.__version__}
