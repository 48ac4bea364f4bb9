"""Run an exported bundle from its manifest: numpy + the target's runtime, never torch.

    from trm_edge.runtime.bundle import Bundle
    b = Bundle("bundles/sudoku-onnx-fp32")
    sol = b.solve(tokens)                       # q_halt halting as the manifest says
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from trm_edge.errors import PuzzleError
from trm_edge.runtime.loop import Solution, check_tokens, solve
from trm_edge.runtime.manifest import INIT, BundleError, read_manifest

BACKENDS = {   # target -> (module, class); imported only when a bundle of that target is opened
    "onnx": ("trm_edge.runtime.onnx_backend", "OnnxRuntimeStep"),
    "executorch": ("trm_edge.runtime.executorch_backend", "ExecuTorchStep"),
    "coreml": ("trm_edge.runtime.coreml_backend", "CoreMLStep"),
    "tflite": ("trm_edge.runtime.tflite_backend", "LiteRTStep"),
}


def backend_for(target: str):
    if target not in BACKENDS:
        raise BundleError(f"no runtime backend for target {target!r} here; known: {', '.join(BACKENDS)}")
    import importlib
    mod, cls = BACKENDS[target]
    try:
        return getattr(importlib.import_module(mod), cls)
    except ImportError as e:
        raise BundleError(f"running a {target} bundle needs {e.name}: pip install 'trm-edge[{target}]'") from None


class Bundle:
    def __init__(self, path, threads: int | None = None, verify: bool = True, **backend_options):
        self.path = Path(path)
        self.manifest = m = read_manifest(self.path, verify=verify)
        self.config, self.task = m["trm_config"], m.get("task")
        try:
            with np.load(self.path / INIT) as init:
                self.y_init, self.z_init = init["y_init"], init["z_init"]
                self.puzzle_table = init["puzzle_emb_table"] if "puzzle_emb_table" in init else None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise BundleError(f"{self.path / INIT} is unreadable or lacks y_init/z_init ({e}); re-export") from None
        self.step = backend_for(m["target"])(self.path / m["model_file"], m, threads=threads, **backend_options)

    @property
    def seq_len(self) -> int:
        return self.config["seq_len"]

    def puzzle_emb(self, puzzle_ids) -> np.ndarray | None:
        """The puzzle-embedding rows for these ids (from the bundle's table), or None without an embedding."""
        if not self.config.get("puzzle_emb_ndim"):
            return None
        ids = np.asarray(puzzle_ids, dtype=np.int64)
        if self.puzzle_table is None:
            raise PuzzleError("this bundle ships no puzzle table (too large); pass the rows as puzzle_emb=")
        if ids.min() < 0 or ids.max() >= len(self.puzzle_table):
            raise PuzzleError(f"puzzle id {int(ids.max())} is outside the bundle's table (0..{len(self.puzzle_table) - 1})")
        return self.puzzle_table[ids]

    def solve(self, tokens, puzzle_ids=None, puzzle_emb=None, halting: str | None = None,
              threshold: float | None = None, max_steps: int | None = None, **kw) -> Solution:
        tokens = check_tokens(tokens, self.seq_len, self.config["vocab_size"])
        if puzzle_emb is None and self.config.get("puzzle_emb_ndim"):
            puzzle_emb = self.puzzle_emb(np.zeros(len(tokens), np.int64) if puzzle_ids is None else puzzle_ids)
        h = self.manifest["halting"]
        return solve(self.step, tokens, puzzle_emb, self.y_init, self.z_init,
                     max_steps=max_steps or h["max_steps"], halting=halting or h.get("policy", "q_halt"),
                     threshold=threshold or h["threshold"], **kw)
