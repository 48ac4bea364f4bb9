"""ExecuTorch backend: a bundle's step.pte through the pip wheel's runtime (XNNPACK delegate).

Note: the pip wheel's Python runtime (`executorch.runtime`) itself links and imports libtorch.
On a device, the native runner (export/executorch/) runs the same .pte with no Python and no torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class ExecuTorchStep:
    name = "executorch"

    def __init__(self, model_file, manifest: dict, threads: int | None = None):
        from executorch.runtime import Runtime, Verification
        try:
            program = Runtime.get().load_program(Path(model_file), verification=Verification.InternalConsistency)
            self.method = program.load_method("forward")
        except Exception as e:   # the runtime raises RuntimeError/ValueError with multi-line texts
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            from trm_edge.runtime.manifest import BundleError
            raise BundleError(f"ExecuTorch cannot load {model_file}: {msg}") from None
        import torch   # the runtime already loaded it; tensors cross the boundary as torch tensors
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.inputs = [(i["name"], np.dtype(i["dtype"])) for i in manifest["inputs"]]
        self.batch = manifest.get("batch")
        c = manifest["trm_config"]
        self.positions = c["seq_len"] + (c["puzzle_emb_len"] if c.get("puzzle_emb_ndim") else 0)

    def __call__(self, tokens, puzzle_emb, y, z):
        given = {"tokens": tokens, "puzzle_emb": puzzle_emb, "y": y, "z": z}
        args = [self._torch.from_numpy(np.ascontiguousarray(given[n], dtype=d)) for n, d in self.inputs]
        return tuple(o.numpy() for o in self.method.execute(args))
