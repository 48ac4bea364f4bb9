"""LiteRT (TFLite): litert-torch converts the step; ai-edge-quantizer makes the int8 variants.

LiteRT signatures rename tensors (inputs args_0.., outputs output_0..) and take int32 tokens: the
manifest's `io_names` maps our names to theirs. The batch is fixed at conversion (default 1): the
host loop pads and chunks to it. int8 = dynamic-range quantization (int8 weights, activations
quantized on the fly; the fastest variant measured on this CPU); int8-weights = weight-only int8;
int8-static = full-integer W8A8 (ai-edge-quantizer's static_wi8_ai8 recipe: int8 weights and
activations, activation scales from the calibration feeds, every supervision step's real inputs);
fp16 = float16 weights (LiteRT's float16 model, for its GPU delegate).
(litert-torch's own pt2e int8 path converts but fails at run time in EMBEDDING_LOOKUP.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
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
    quantization = None
    if precision != "fp32":
        from ai_edge_quantizer import quantizer, recipe
        qt = quantizer.Quantizer(str(path))
        qt.load_quantization_recipe({"int8": recipe.dynamic_wi8_afp32, "int8-weights": recipe.weight_only_wi8_afp32,
                                     "int8-static": recipe.static_wi8_ai8, "fp16": _fp16_weights}[precision]())
        result = None
        if precision == "int8-static":
            if calibration.keep_fp32:
                from trm_edge.export.calibration import CalibrationError
                raise CalibrationError("--keep-fp32 is not offered for tflite yet (onnx has it); drop it")
            with _quiet_progress():
                result = qt.calibrate({qt.get_signature_keys()[0] if hasattr(qt, "get_signature_keys") else
                                       "serving_default": _samples(step, calibration.feeds, batch)})
            quantization = {"scheme": "static", "format": "full-integer TFLite",
                            "weights": "int8 per channel, symmetric", "activations": "int8 per tensor, scales from "
                            "calibration", "method": "ai-edge-quantizer static_wi8_ai8",
                            "tool": "ai-edge-quantizer", "calibration": calibration.provenance, "keep_fp32": []}
        tmp = path.with_name("quantized.tflite")
        with _quiet_progress():
            qt.quantize(result).export_model(str(tmp))
        tmp.replace(path)
        if quantization is not None:
            quantization["int8_io"] = int8_io(path, step)
    return Exported(MODEL_FILE, batch=batch, io_names=io_names(step), quantization=quantization)


def int8_io(path: Path, step) -> dict:
    """The model's int8 inputs and outputs (a full-integer graph takes and gives int8 at its boundary):
    our name -> scale and zero point, so a client converts float <-> int8 as q = round(x / scale) + zero,
    x = (q - zero) * scale (the manifest's inputs and outputs stay the host loop's float32 tensors)."""
    from trm_edge.runtime.tflite_backend import interpreter_class
    runner = interpreter_class()(model_path=str(path)).get_signature_runner()
    ours = {v: k for k, v in io_names(step).items()}
    out = {}
    for k, v in {**runner.get_input_details(), **runner.get_output_details()}.items():
        scale, zero = v["quantization"]
        if np.dtype(v["dtype"]) == np.int8 and scale:
            out[ours.get(k, k)] = {"dtype": "int8", "scale": float(scale), "zero_point": int(zero)}
    return out


def _fp16_weights():
    """LiteRT's float16 model: weights stored as float16 (ai-edge-quantizer's FLOAT_CASTING), what its GPU
    delegate computes in half precision; the CPU widens them to float32 once at load."""
    from ai_edge_quantizer import recipe_manager
    from ai_edge_quantizer.recipe import AlgorithmName, TFLOperationName
    rm = recipe_manager.RecipeManager()
    rm.add_weight_only_config(regex=".*", operation_name=TFLOperationName.ALL_SUPPORTED, num_bits=16,
                              algorithm_key=AlgorithmName.FLOAT_CASTING)
    return rm.get_quantization_recipe()


MAX_SAMPLES = 512     # calibration samples (each a fixed-batch run of the interpreter); rows are strided to fit


def _samples(step, feeds, batch: int) -> list[dict]:
    """The calibration feeds cut into the model's fixed batch, under its signature's names (int32 tokens)."""
    names = io_names(step)
    rows = [(i, r) for i, f in enumerate(feeds) for r in range(0, len(f["tokens"]) - batch + 1, batch)]
    stride = max(1, len(rows) // MAX_SAMPLES)
    out = []
    for i, r in rows[::stride]:
        f = feeds[i]
        out.append({names[n]: (f[n][r:r + batch].astype(np.int32) if n == "tokens" else f[n][r:r + batch])
                    for n in step.input_names})
    return out


def _quiet_progress():
    import contextlib
    import io
    return contextlib.redirect_stderr(io.StringIO())


def offline_check(model_file, manifest) -> None:
    return None      # ai-edge-litert runs here: parity decides


def versions() -> dict:
    from importlib.metadata import version
    return {p: version(p) for p in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer")}
