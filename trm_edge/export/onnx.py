"""ONNX: torch.export (dynamo) -> opset 18, checked with onnx.checker.

int8 = onnxruntime's dynamic quantization (int8 weights, activations quantized on the fly: the fast
int8 path on CPUs). int8-static = W8A8 in QDQ form (what NPU/DSP execution providers take): int8
per-channel weights, per-tensor activations with scales fixed from the calibration set's real step
inputs (onnxruntime's static quantizer, MinMax). Activations are uint8: x86's int8 kernels take
u8 x s8 (s8 activations ran 5-10x slower than fp32 here; earlier notes' "static QDQ 3-4x slower" was
that choice)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from trm_edge.export.protocol import Exported
from trm_edge.step import dynamic_batch, example_inputs

SPELLING = "reference"
TOKEN_DTYPE = "int64"
MODEL_FILE = "step.onnx"
TRACE_MAX_BATCH = 1024     # torch.export's bound while tracing; the ONNX graph itself takes any batch


ACTIVATIONS, WEIGHTS = "uint8", "int8"


def export(step, stage: Path, precision: str = "fp32", batch: int | None = None, calibration=None) -> Exported:
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
    quantization = None
    if precision in ("int8", "int8-static"):
        from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
        pre = path.with_name("pre.onnx")
        quant_pre_process(str(path), str(pre))
        if precision == "int8":
            quantize_dynamic(str(pre), str(path), weight_type=QuantType.QInt8, per_channel=True)
        else:
            quantization = _quantize_static(pre, path, calibration)
        pre.unlink()
    return Exported(MODEL_FILE, batch=batch, finish=lambda manifest: embed_manifest(path, manifest),
                    quantization=quantization)


def _quantize_static(pre: Path, path: Path, calibration) -> dict:
    """W8A8 QDQ with activation ranges from the calibration feeds (every supervision step's real inputs);
    the layers named in calibration.keep_fp32 (ONNX node names) stay float; the worst activations (lowest
    signal-to-quantization-noise ratio against the float graph, on the first and last steps' feeds) are
    recorded, named by the node that computes each: what --keep-fp32 takes."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from trm_edge.export.calibration import PercentileRanges
    graph = onnx.load(str(pre)).graph
    nodes = {n.output[0]: n.name for n in graph.node if n.output}
    unknown = [k for k in calibration.keep_fp32 if k not in nodes.values()]
    if unknown:
        from trm_edge.export.calibration import CalibrationError
        raise CalibrationError(f"--keep-fp32 {unknown[0]!r} names no layer of this ONNX graph; name layers from the "
                               f"export's worst-activations table (e.g. {', '.join(list(nodes.values())[:3])})")
    float_nodes = _keeping_float(graph, calibration.keep_fp32)
    extra = {"CalibStridedMinMax": 1}   # each feed's min/max folded in at once, not held
    method = "MinMax"
    if calibration.method == "percentile":   # onnxruntime's own Percentile calibrator holds every tensor of every feed
        extra["TensorQuantOverrides"] = _percentile_ranges(pre, calibration.feeds, calibration.percentile,
                                                           {i.name for i in graph.initializer})
        method = f"{PercentileRanges(calibration.percentile).method()} (TensorQuantOverrides)"
    quantize_static(str(pre), str(path), _Feeds(calibration.feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=float_nodes, extra_options=extra)
    return {"scheme": "static", "format": "QDQ", "weights": f"{WEIGHTS} per channel, symmetric",
            "activations": f"{ACTIVATIONS} per tensor, scales from calibration", "method": method,
            "tool": "onnxruntime.quantization.quantize_static", "calibration": calibration.provenance,
            "keep_fp32": list(calibration.keep_fp32), "float_nodes": float_nodes,
            "worst_activations": _worst_activations(pre, path, calibration.feeds, nodes)}


def _percentile_ranges(pre: Path, feeds, pct: float, weights: set[str]) -> dict:
    """Every float activation's percentile range (calibration.PercentileRanges), as onnxruntime's
    TensorQuantOverrides. One feed's activations are held at a time."""
    import tempfile

    import onnxruntime as ort
    from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors

    from trm_edge.export.calibration import PercentileRanges
    fold = PercentileRanges(pct)
    with tempfile.TemporaryDirectory(dir=pre.parent) as tmp:
        every = Path(tmp) / "every_activation.onnx"
        modify_model_output_intermediate_tensors(str(pre), str(every))
        session = ort.InferenceSession(str(every), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        for feed in feeds:
            for name, v in zip(names, session.run(None, feed)):
                if name not in weights and v.dtype == np.float32 and v.size >= 2:
                    fold.add(name, v)
        del session
    return {k: [{"rmin": np.array(lo, np.float32), "rmax": np.array(hi, np.float32)}]
            for k, (lo, hi) in fold.ranges().items()}


def _keeping_float(graph, keep) -> list[str]:
    """The nodes to leave unquantized so that the activations the `keep` nodes compute stay float: each named
    node and every node reading its output (a QDQ graph quantizes a tensor where its consumer reads it, so
    excluding the producer alone leaves its output rounded)."""
    outputs = {o for n in graph.node if n.name in keep for o in n.output}
    readers = [n.name for n in graph.node if outputs & set(n.input)]
    return list(dict.fromkeys([*keep, *readers]))


def _Feeds(feeds):
    """The calibration feeds as onnxruntime's CalibrationDataReader (get_next until None)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.rest = iter(feeds)

        def get_next(self):
            return next(self.rest, None)

        def __len__(self):
            return len(feeds)

        def set_range(self, start_index: int, end_index: int):     # the strided calibration's window
            self.rest = iter(feeds[start_index:end_index])

    return Feeds()


WORST_ROWS = 2     # rows of the first and last feeds the float and static graphs are compared on
WORST_BUDGET = 1 << 30   # bytes of compared activations one run of each graph returns (a group of tensors)


def _worst_activations(pre: Path, path: Path, feeds, nodes: dict, top: int = 8,
                       budget: int = WORST_BUDGET) -> list[dict]:
    """The activations the static graph reproduces worst (SQNR in dB against the float graph, lowest
    first), each with the node computing it, on the first and last recorded feeds. The tensors are
    compared a group at a time (each group's float and dequantized tensors under `budget` bytes, by
    their shapes): every tensor of both graphs at once is 15 GB at the published Maze size's 916
    positions. SQNR as onnxruntime's qdq_loss_debug computes it."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio as sqnr
    from onnxruntime.quantization.quant_utils import DEQUANT_OUTPUT_SUFFIX, QUANT_INPUT_SUFFIX
    few = [{k: v[:WORST_ROWS] for k, v in f.items()} for f in (feeds[0], feeds[-1])]
    rows = max(len(next(iter(f.values()))) for f in few)
    fm, qm = onnx.load(str(pre)), onnx.load(str(path))
    made = {o for n in qm.graph.node for o in n.output}
    pairs = []          # (float graph's tensor, the static graph's dequantized tensor for it, bytes)
    tensors = {v.name: v for v in [*fm.graph.input, *fm.graph.value_info, *fm.graph.output]}
    for t, v in tensors.items():
        if v.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            continue
        post = next((p for p in (t + DEQUANT_OUTPUT_SUFFIX, t + DEQUANT_OUTPUT_SUFFIX + "_1") if p in made),
                    t if t + QUANT_INPUT_SUFFIX in made else None)
        if post is not None:
            dims = v.type.tensor_type.shape.dim
            size = 4 * rows * int(np.prod([d.dim_value for d in dims if d.HasField("dim_value")]))
            pairs.append((t, post, 2 * len(few) * size))
    groups, group, held = [], [], 0
    for pair in pairs:
        if group and held + pair[2] > budget:
            groups.append(group)
            group, held = [], 0
        group.append(pair)
        held += pair[2]
    groups += [group] if group else []
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL   # every tensor as the graph has it
    out = []
    for group in groups:
        got = [_run_with_outputs(m, names, few, options)
               for m, names in ((fm, [t for t, _, _ in group]), (qm, [p for _, p, _ in group]))]
        for (t, p, _), a, b in zip(group, *got):
            with np.errstate(divide="ignore", invalid="ignore"):   # a tensor reproduced exactly: infinite SQNR
                db = sqnr(a, b)
            if np.isfinite(db):
                out.append({"layer": nodes.get(t, t), "tensor": t, "sqnr_db": round(float(db), 2)})
    return sorted(out, key=lambda r: r["sqnr_db"])[:top]


def _run_with_outputs(model, names: list[str], feeds, options) -> list[list[np.ndarray]]:
    """The named tensors of `model` (made graph outputs of a copy; a graph input is its feed), each as its
    list over the feeds."""
    import onnx
    import onnxruntime as ort
    m = onnx.ModelProto()
    m.CopyFrom(model)
    present = {o.name for o in m.graph.output}
    inputs = {i.name for i in m.graph.input}
    computed = [n for n in dict.fromkeys(names) if n not in inputs]
    m.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                          for n in computed if n not in present)
    session = ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
    per_feed = [dict(f, **dict(zip(computed, session.run(computed, f)))) for f in feeds]
    return [[r[n] for r in per_feed] for n in names]


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
