"""ONNX: torch.export (dynamo) -> opset 18, checked with onnx.checker; int8 = onnxruntime's dynamic
quantization (int8 weights, activations quantized on the fly: the fast int8 path on CPUs; static QDQ
ran 3-4x slower than fp32 here)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from trm_edge.export.protocol import Exported
from trm_edge.step import dynamic_batch, example_inputs

SPELLING = "reference"
TOKEN_DTYPE = "int64"
MODEL_FILE = "step.onnx"
TRACE_MAX_BATCH = 1024     # torch.export's bound while tracing; the ONNX graph itself takes any batch


def export(step, stage: Path, precision: str = "fp32", batch: int | None = None) -> Exported:
    import onnx
    path = Path(stage) / MODEL_FILE
    args = example_inputs(step, batch or 2, torch.int64)
    dynamic = None if batch else dynamic_batch(step, TRACE_MAX_BATCH)
    prog = torch.onnx.export(step, args, dynamo=True, input_names=list(step.input_names),
                             output_names=list(step.output_names), opset_version=18, dynamic_shapes=dynamic,
                             verbose=False)
    model = prog.model_proto
    for node in model.graph.node:      # the exporter's per-node debug notes (FX node, stack): ~22% of the file
        del node.metadata_props[:]
    onnx.save(model, str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
        pre = path.with_name("pre.onnx")
        quant_pre_process(str(path), str(pre))
        quantize_dynamic(str(pre), str(path), weight_type=QuantType.QInt8, per_channel=True)
        pre.unlink()
    return Exported(MODEL_FILE, batch=batch, finish=lambda manifest: embed_manifest(path, manifest))


def embed_manifest(model_file: Path, manifest: dict) -> None:
    """The manifest (without file hashes and parity) in the model's metadata_props, key "trm_edge.manifest"."""
    import onnx
    m = onnx.load(str(model_file))
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = "trm_edge.manifest", json.dumps({k: v for k, v in manifest.items() if k not in ("files", "parity")})
    onnx.save(m, str(model_file))


def offline_check(model_file, manifest) -> None:
    return None      # onnxruntime runs everywhere: parity decides


def versions() -> dict:
    import onnx
    import onnxruntime
    import onnxscript
    return {"onnx": onnx.__version__, "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__}
