"""LiteRT backend: `ai_edge_litert` where installed, else `tflite_runtime` (what boards such as a
Raspberry Pi have; it needs numpy<2, so it lives in its own environment). numpy in, numpy out."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trm_edge.runtime.backend import ManifestStep, load_error
from trm_edge.targets import STATIC


def interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter   # noqa: F401  (ImportError propagates: no runtime)
        return Interpreter


# tflite-runtime 2.14 (the last of its wheels) computes dynamic-range int8 bundles wrongly: the shipped
# model's int8 bundle gives no valid digit, and q_halt never passes 0.5, where ai-edge-litert solves it
# and fp32 / int8-weights bundles agree on both runtimes (seen here; tests/test_install.py).
BROKEN_ON_TFLITE_RUNTIME = ("int8",)


def _allocate(runner) -> None:
    """Allocate the signature's tensors now, as the runner's first call would: that is where LiteRT
    applies its default XNNPACK delegate and prints `INFO: Created TensorFlow Lite XNNPACK delegate for
    CPU.` to fd 2. Done while loading (inside Bundle's quiet()), the steps print nothing and run
    unwrapped; a model that cannot be prepared fails here, as a load error. Both runtimes' runners keep
    the wrapper and subgraph index they call on every step; without them the first step does it."""
    wrapper, index = getattr(runner, "_interpreter_wrapper", None), getattr(runner, "_subgraph_index", None)
    if wrapper is not None and index is not None:
        wrapper.AllocateTensors(index)


class LiteRTStep(ManifestStep):
    name = "litert"

    def __init__(self, model_file, manifest: dict, threads: int | None = None):
        Interpreter = interpreter_class()
        if Interpreter.__module__.startswith("tflite_runtime") and manifest.get("precision") in BROKEN_ON_TFLITE_RUNTIME:
            from trm_edge.runtime.manifest import BundleError
            raise BundleError(f"tflite-runtime computes {manifest['precision']} (dynamic-range) LiteRT bundles wrongly; "
                              f"install ai-edge-litert (pip install 'trm-edge[litert]') or export --quantize fp32 or "
                              f"int8-weights for this board")
        try:
            self.interpreter = Interpreter(model_path=str(Path(model_file)), num_threads=threads)
            self.runner = self.interpreter.get_signature_runner()
            _allocate(self.runner)
        except Exception as e:   # ValueError/RuntimeError, and others from a hostile file
            raise load_error("LiteRT", model_file, e) from None
        self.io = manifest["io_names"]
        self.read_manifest(manifest)
        self.scales = {}     # full-integer (int8-static) models: our name -> (scale, zero point) of its int8 tensor
        if hasattr(self.runner, "get_input_details"):
            ours = {v: k for k, v in self.io.items()}
            details = {**self.runner.get_input_details(), **self.runner.get_output_details()}
            found = {}
            for k, v in details.items():
                dtype = str(np.dtype(v["dtype"]))
                scale, zero = v.get("quantization", (0.0, 0))
                if dtype == "int8" and scale and manifest.get("precision") in STATIC:
                    self.scales[ours.get(k, k)] = (float(scale), int(zero))
                    dtype = "float32"     # the host loop's float tensor, quantized at this boundary
                found[ours.get(k, k)] = ([int(d) for d in v["shape"]], dtype)
            self.check_io(model_file, found)

    def __call__(self, tokens, puzzle_emb, y, z):
        feed = self.feed(tokens, puzzle_emb, y, z)
        for n, (scale, zero) in self.scales.items():
            if n in feed:
                feed[n] = np.clip(np.rint(feed[n] / scale) + zero, -128, 127).astype(np.int8)
        out = self.runner(**{self.io[n]: a for n, a in feed.items()})
        res = []
        for n in self.outputs:
            a = np.asarray(out[self.io[n]])
            if n in self.scales:
                scale, zero = self.scales[n]
                a = (a.astype(np.float32) - zero) * np.float32(scale)
            res.append(a)
        return tuple(res)
