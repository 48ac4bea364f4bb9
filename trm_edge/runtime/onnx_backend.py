"""ONNX Runtime backend (CPU): a bundle's step.onnx on numpy arrays. Needs onnxruntime and numpy only."""
from __future__ import annotations

from pathlib import Path

import numpy as np

OPTIMIZATION = ("disable", "basic", "extended", "all")


class OnnxRuntimeStep:
    name = "onnxruntime"

    def __init__(self, model_file, manifest: dict, threads: int | None = None, optimization: str = "all"):
        import onnxruntime as ort
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        try:
            self.session = ort.InferenceSession(str(Path(model_file)), so, providers=["CPUExecutionProvider"])
        except Exception as e:   # onnxruntime raises its own exception types for bad files
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            from trm_edge.runtime.manifest import BundleError
            raise BundleError(f"onnxruntime cannot load {model_file}: {msg}") from None
        self.inputs = [(i["name"], np.dtype(i["dtype"])) for i in manifest["inputs"]]
        self.outputs = [o["name"] for o in manifest["outputs"]]
        self.batch = manifest.get("batch")
        c = manifest["trm_config"]
        self.positions = c["seq_len"] + (c["puzzle_emb_len"] if c.get("puzzle_emb_ndim") else 0)

    def __call__(self, tokens, puzzle_emb, y, z):
        given = {"tokens": tokens, "puzzle_emb": puzzle_emb, "y": y, "z": z}
        feed = {name: np.ascontiguousarray(given[name], dtype=dtype) for name, dtype in self.inputs}
        return tuple(self.session.run(self.outputs, feed))
