"""LiteRT (TFLite): litert-torch converts the step; ai-edge-quantizer makes the int8 variants.

LiteRT signatures rename tensors (inputs args_0.., outputs output_0..) and take int32 tokens: the
manifest's `io_names` maps our names to theirs. The batch is fixed at conversion (default 1): the
host loop pads and chunks to it. int8 = dynamic-range quantization (int8 weights, activations
quantized on the fly; the fastest variant measured on this CPU); int8-weights = weight-only int8;
int8-static = full-integer W8A8 (ai-edge-quantizer's static_wi8_ai8 recipe: int8 weights and
activations, each activation's min/max over the calibration feeds, every supervision step's real inputs; the
ops computing the tensors named by --keep-fp32 stay float, and the manifest lists the worst-reproduced
activations by SQNR against the float graph);
fp16 = float16 weights (LiteRT's float16 model, for its GPU delegate).
(litert-torch's own pt2e int8 path converts but fails at run time in EMBEDDING_LOOKUP.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trm_edge.export.protocol import Exported
from trm_edge.step import example_inputs

SPELLING = "litert"
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
        result = None
        if precision == "int8-static":
            keep = _check_keep(path, calibration.keep_fp32)
            qt.load_quantization_recipe(_static_recipe(keep))
            samples = _samples(step, calibration.feeds, batch)
            result = _calibrate(path, _signature(qt), samples)
            method = "minmax over every feed"
            if calibration.method == "percentile":
                fold = _percentile_ranges(path, step, calibration.feeds, batch, calibration.percentile)
                result.update({k: {"min": np.array([lo], np.float32), "max": np.array([hi], np.float32)}
                               for k, (lo, hi) in fold.ranges().items() if k in result})
                method = fold.method()
            quantization = {"scheme": "static", "format": "full-integer TFLite",
                            "weights": "int8 per channel, symmetric", "activations": "int8 per tensor, scales from "
                            "calibration", "method": f"ai-edge-quantizer static_wi8_ai8, {method}",
                            "tool": "ai-edge-quantizer", "calibration": calibration.provenance, "keep_fp32": keep}
        else:
            qt.load_quantization_recipe({"int8": recipe.dynamic_wi8_afp32, "int8-weights": recipe.weight_only_wi8_afp32,
                                         "fp16": _fp16_weights}[precision]())
        tmp = path.with_name("quantized.tflite")
        with _quiet_progress():
            qt.quantize(result).export_model(str(tmp))
            if quantization is not None:
                held = _every_tensor_bytes(path)
                if held <= WORST_BUDGET:
                    quantization["worst_activations"] = _worst_activations(qt, path, [samples[0], samples[-1]])
                else:
                    quantization["worst_activations"] = []
                    quantization["worst_activations_skipped"] = (
                        f"comparing every tensor of the float and static graphs holds {held / 2**30:.1f} GB here "
                        f"(over {WORST_BUDGET / 2**30:.0f} GB): ai-edge-quantizer's validator keeps all of both")
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


def _signature(qt) -> str:
    """The model's one signature, as ai-edge-quantizer names it (older versions have no lookup)."""
    return qt.get_signature_keys()[0] if hasattr(qt, "get_signature_keys") else "serving_default"


def _op_outputs(path: Path) -> list[str]:
    """The float graph's activations: every op's output tensor, by its name (what --keep-fp32 takes)."""
    from trm_edge.runtime.tflite_backend import interpreter_class
    it = interpreter_class()(model_path=str(path))
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    return [names[i] for op in it._get_ops_details() for i in op["outputs"] if i in names]


def _check_keep(path: Path, keep) -> list[str]:
    if not keep:
        return []
    outputs = _op_outputs(path)
    unknown = [k for k in keep if k not in outputs]
    if unknown:
        from trm_edge.export.calibration import CalibrationError
        raise CalibrationError(f"--keep-fp32 {unknown[0]!r} names no layer of this LiteRT graph; name layers from the "
                               f"export's worst-activations table (e.g. {outputs[len(outputs) // 2]!r})")
    return list(keep)


def _static_recipe(keep: list[str]):
    """static_wi8_ai8 (int8 weights per channel, int8 activations per tensor, min/max from calibration) on
    every op, except the ops computing the `keep` tensors: those stay float (mixed precision). An op is
    matched by its scope, its output tensors' names each followed by ";" (ai-edge-quantizer's rule)."""
    import re

    from ai_edge_quantizer import recipe_manager
    from ai_edge_quantizer.recipe import AlgorithmName, TFLOperationName
    rm = recipe_manager.RecipeManager()
    rm.add_static_config(regex=".*", operation_name=TFLOperationName.ALL_SUPPORTED, activation_num_bits=8,
                         weight_num_bits=8)
    for name in keep:
        rm.add_quantization_config(regex=f"^{re.escape(name)};$", operation_name=TFLOperationName.ALL_SUPPORTED,
                                   algorithm_key=AlgorithmName.NO_QUANTIZE)
    return rm.get_quantization_recipe()


WORST_BUDGET = 8 << 30    # bytes the worst-activations comparison may hold (the validator keeps every tensor)


def _every_tensor_bytes(path: Path) -> int:
    """What one sample's comparison holds: an interpreter keeping every tensor of the float graph, plus a
    quarter of that for the int8 one."""
    from trm_edge.runtime.tflite_backend import interpreter_class
    held = sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize
               for t in interpreter_class()(model_path=str(path)).get_tensor_details())
    return held + held // 4


def _worst_activations(qt, path: Path, samples: list[dict], top: int = 8) -> list[dict]:
    """The activations the static graph reproduces worst: SQNR in dB of every op's output against the float
    graph (ai-edge-quantizer's validator), averaged over the samples (the first and last calibration ones),
    lowest first. One validation per sample: given several, the validator builds the next sample's pair of
    interpreters (each keeping every tensor) while the last pair is still held, twice the memory (16.2 GB at
    the Maze size's 916 positions); the mean of its per-sample SNRs is what it would have returned."""
    import math

    from ai_edge_quantizer.utils.validation_utils import ValidationErrorMetric
    snrs: dict[str, list[float]] = {}
    for sample in samples:
        res = qt.validate(test_data={_signature(qt): [sample]}, error_metrics=[ValidationErrorMetric.SNR],
                          num_threads=1).get_all_tensor_results()
        for name, metrics in res.items():
            if (metrics or {}).get("snr") is not None:
                snrs.setdefault(name, []).append(metrics["snr"])
    rows = []
    for name in dict.fromkeys(_op_outputs(path)):
        snr = float(np.mean(snrs.get(name, [0.0])))
        if math.isfinite(snr) and snr > 0:    # 0: a tensor with no signal (all zeros), or one not compared
            rows.append({"layer": name, "tensor": name, "sqnr_db": round(10 * math.log10(snr), 2)})
    return sorted(rows, key=lambda r: r["sqnr_db"])[:top]


def _calibrate(path: Path, signature: str, samples: list[dict]) -> dict:
    """Every activation's range over the samples (minmax: the least and greatest value seen), as
    ai-edge-quantizer's QSVs. Its profiler-based calibrator tracks min/max inside the interpreter (its
    default keeps a copy of every tensor per sample: 14 GB at the published Maze size's 916 positions),
    and its default update is a moving average (weight 0.95 on the ranges so far), which would leave the
    ranges of the last samples (the late supervision steps of the last puzzles), not every feed's."""
    from ai_edge_quantizer import calibrator
    calib = calibrator.Calibrator(path.read_bytes(), num_threads=torch.get_num_threads(),
                                  mode=calibrator.CalibrationMode.CALIBRATION_PROFILER_BASED,
                                  qsv_update_func=_widest)
    with _quiet_progress():
        calib.calibrate({signature: samples}, None)      # the profiler-based calibrator takes no recipe
    return calib.get_model_qsvs()


def _percentile_ranges(path: Path, step, feeds, batch: int, pct: float):
    """Every activation's percentile range (calibration.PercentileRanges: folded feed by feed, as ONNX's), from
    an interpreter that keeps every tensor: each op output's and float input's values over a feed's rows (at most
    PERCENTILE_SAMPLE of them per feed, an even share of each row's, sampled with a fixed seed)."""
    from trm_edge.export.calibration import PERCENTILE_SAMPLE, PercentileRanges
    from trm_edge.runtime.tflite_backend import interpreter_class
    it = interpreter_class()(model_path=str(path), experimental_preserve_all_tensors=True)
    runner = it.get_signature_runner()
    wanted = set(_op_outputs(path)) | {d["name"] for d in runner.get_input_details().values()}
    tensors = [(t["name"], t["index"]) for t in it.get_tensor_details()
               if t["name"] in wanted and np.dtype(t["dtype"]) == np.float32]
    fold, rng = PercentileRanges(pct), np.random.default_rng(0)
    for f in feeds:
        rows = len(f["tokens"]) // batch
        share = -(-PERCENTILE_SAMPLE // max(rows, 1))
        seen = {}
        for r in range(0, rows * batch, batch):
            runner(**_sample(step, f, r, batch))
            for name, i in tensors:
                v = it.get_tensor(i).ravel()
                seen.setdefault(name, []).append(rng.choice(v, share, replace=False) if v.size > share else v.copy())
        for name, parts in seen.items():
            if sum(p.size for p in parts) >= 2:
                fold.add(name, np.concatenate(parts))
    return fold


def _widest(seen: dict, new: dict) -> dict:
    return {"min": np.minimum(seen["min"], new["min"]), "max": np.maximum(seen["max"], new["max"])}


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
    rows = [(i, r) for i, f in enumerate(feeds) for r in range(0, len(f["tokens"]) - batch + 1, batch)]
    stride = max(1, len(rows) // MAX_SAMPLES)
    return [_sample(step, feeds[i], r, batch) for i, r in rows[::stride]]


def _sample(step, feed: dict, r: int, batch: int) -> dict:
    """Rows r..r+batch of a feed under the signature's names (int32 tokens)."""
    names = io_names(step)
    return {names[n]: (feed[n][r:r + batch].astype(np.int32) if n == "tokens" else feed[n][r:r + batch])
            for n in step.input_names}


def _quiet_progress():
    import contextlib
    import io
    return contextlib.redirect_stderr(io.StringIO())


def offline_check(model_file, manifest) -> None:
    return None      # ai-edge-litert runs here: parity decides


def versions() -> dict:
    from importlib.metadata import version
    return {p: version(p) for p in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer")}
