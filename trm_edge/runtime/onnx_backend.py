"""ONNX Runtime backend (CPU): a bundle's step.onnx on numpy arrays. Needs onnxruntime and numpy only."""
from __future__ import annotations

from pathlib import Path

from trm_edge.runtime.backend import ManifestStep, load_error



class OnnxRuntimeStep(ManifestStep):
    name = "onnxruntime"

    def __init__(self, model_file, manifest: dict, threads: int | None = None):
        import onnxruntime as ort
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(Path(model_file)), so, providers=["CPUExecutionProvider"])
        except Exception as e:   # onnxruntime raises its own exception types for bad files
            raise load_error("onnxruntime", model_file, e) from None
        self.read_manifest(manifest)
        ours = {v: k for k, v in manifest["io_names"].items()}
        types = {"tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(float)": "float32"}
        self.check_io(model_file, {ours.get(t.name, t.name): (list(t.shape), types.get(t.type, t.type))
                                   for t in self.session.get_inputs() + self.session.get_outputs()})

    def __call__(self, tokens, puzzle_emb, y, z):
        return tuple(self.session.run(self.outputs, self.feed(tokens, puzzle_emb, y, z)))
