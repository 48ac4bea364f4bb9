"""LiteRT (TFLite): litert-torch converts the step; ai-edge-quantizer makes the int8 variants.

LiteRT signatures rename tensors (inputs args_0.., outputs output_0..) and take int32 tokens: the
manifest's `io_names` maps our names to theirs. The batch is fixed at conversion (default 1): the
host loop pads and chunks to it. int8 = dynamic-range quantization (int8 weights, activations
quantized on the fly; the fastest variant measured on this CPU); int8-weights = weight-only int8.
(litert-torch's own pt2e int8 path converts but fails at run time in EMBEDDING_LOOKUP.)
"""
from __future__ import annotations

from pathlib import Path

import torch

from trm_edge.export.protocol import Exported
from trm_edge.step import example_inputs

SPELLING = "xnnpack"
TOKEN_DTYPE = "int32"
MODEL_FILE = "step.tflite"
DEFAULT_BATCH = 1


def io_names(step) -> dict:
    names = {n: f"args_{i}" for i, n in enumerate(step.input_names)}
    names.update({n: f"output_{i}" for i, n in enumerate(step.output_names)})
    return names


def export(step, stage: Path, precision: str = "fp32", batch: int | None = None, calibration=None) -> Exported:
    """A fixed batch (LiteRT has no dynamic one): `batch`, or DEFAULT_BATCH."""
    import litert_torch
    batch = batch or DEFAULT_BATCH
    path = Path(stage) / MODEL_FILE
    args = example_inputs(step, batch, torch.int32)
    with torch.no_grad():
        litert_torch.convert(step.eval(), args).export(str(path))
    if precision != "fp32":
        from ai_edge_quantizer import quantizer, recipe
        qt = quantizer.Quantizer(str(path))
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32() if precision == "int8" else recipe.weight_only_wi8_afp32())
        tmp = path.with_name("quantized.tflite")
        qt.quantize().export_model(str(tmp))
        tmp.replace(path)
    return Exported(MODEL_FILE, batch=batch, io_names=io_names(step))


def offline_check(model_file, manifest) -> None:
    return None      # ai-edge-litert runs here: parity decides


def versions() -> dict:
    from importlib.metadata import version
    return {p: version(p) for p in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer")}
