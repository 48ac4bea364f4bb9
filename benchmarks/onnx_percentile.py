"""Experiment (issue 28): ONNX int8-static with percentile activation ranges instead of MinMax.

Every float activation's range is the mean over the calibration feeds of each feed's [100-P, P] percentiles
(50,000 sampled values per tensor and feed), handed to onnxruntime's static quantizer as TensorQuantOverrides
(rmin/rmax); everything else is `trm-edge export --target onnx --quantize int8-static` (same calibration set,
QDQ, per-channel weights). onnxruntime's own Percentile calibrator holds every tensor of every feed and ran out
of memory here; this folds feed by feed.

    python benchmarks/onnx_percentile.py 99.99 trm_edge/models/sudoku.safetensors OUT
    trm-edge eval --model OUT --data runs/card-data/sudoku-moderate-1000 --puzzles 1000 --no-fixed --views 1
"""
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import onnxruntime.quantization as oq
from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors

SAMPLE = 50_000


def percentile_ranges(pre, feeds, pct: float) -> dict:
    rng = np.random.default_rng(0)
    lo, hi = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        aug = f"{tmp}/aug.onnx"
        modify_model_output_intermediate_tensors(str(pre), aug)
        sess = ort.InferenceSession(aug, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        for feed in feeds:
            for k, v in zip(names, sess.run(None, feed)):
                if v.dtype != np.float32 or v.size < 2:
                    continue
                f = v.ravel()
                f = rng.choice(f, SAMPLE, replace=False) if f.size > SAMPLE else f
                a, b = np.percentile(f, [100 - pct, pct])
                lo[k] = lo.get(k, 0.0) + min(a, 0.0)
                hi[k] = hi.get(k, 0.0) + max(b, 0.0)
    weights = {i.name for i in onnx.load(str(pre)).graph.initializer}
    n = len(feeds)
    return {k: [{"rmin": np.array(lo[k] / n, np.float32), "rmax": np.array(hi[k] / n, np.float32)}]
            for k in lo if k not in weights}


def main(pct: float, model: str, out: str) -> None:
    quantize_static = oq.quantize_static

    def with_percentiles(model_input, model_output, reader, **kw):
        from trm_edge.export.onnx import _Feeds     # the exporter's own reader, over the feeds read here
        feeds = list(iter(reader.get_next, None))
        extra = {**kw.get("extra_options", {}), "TensorQuantOverrides": percentile_ranges(model_input, feeds, pct)}
        return quantize_static(model_input, model_output, _Feeds(feeds), **{**kw, "extra_options": extra})

    oq.quantize_static = with_percentiles     # trm_edge.export.onnx imports it at call time
    from trm_edge.cli import main as cli
    sys.argv = ["trm-edge", "export", "--target", "onnx", "--quantize", "int8-static", "--model", model, "--out", out]
    cli()


if __name__ == "__main__":
    main(float(sys.argv[1]), sys.argv[2], sys.argv[3])
