"""LiteRT backend: `ai_edge_litert` where installed, else `tflite_runtime` (what boards such as a
Raspberry Pi have; it needs numpy<2, so it lives in its own environment). numpy in, numpy out."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trm_edge.runtime.manifest import BundleError


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter   # noqa: F401  (ImportError propagates: no runtime)
        return Interpreter


class LiteRTStep:
    name = "litert"

    def __init__(self, model_file, manifest: dict, threads: int | None = None):
        Interpreter = _interpreter_class()
        try:
            self.interpreter = Interpreter(model_path=str(Path(model_file)), num_threads=threads)
            self.runner = self.interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as e:
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise BundleError(f"LiteRT cannot load {model_file}: {msg}") from None
        self.io = manifest["io_names"]
        self.inputs = [(i["name"], np.dtype(i["dtype"])) for i in manifest["inputs"]]
        self.outputs = [o["name"] for o in manifest["outputs"]]
        self.batch = manifest.get("batch")
        c = manifest["trm_config"]
        self.positions = c["seq_len"] + (c["puzzle_emb_len"] if c.get("puzzle_emb_ndim") else 0)

    def __call__(self, tokens, puzzle_emb, y, z):
        given = {"tokens": tokens, "puzzle_emb": puzzle_emb, "y": y, "z": z}
        out = self.runner(**{self.io[n]: np.ascontiguousarray(given[n], dtype=d) for n, d in self.inputs})
        return tuple(np.asarray(out[self.io[n]]) for n in self.outputs)
