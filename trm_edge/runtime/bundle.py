"""Run an exported bundle from its manifest: numpy + the target's runtime, never torch.

    from trm_edge.runtime.bundle import Bundle
    b = Bundle("bundles/sudoku-onnx-fp32")
    sol = b.solve(tokens)                       # q_halt halting as the manifest says

Opening a bundle applies the contract's rules (trm_edge/runtime/manifest.py): the manifest against
the schema, every file it names plain, inside the folder, regular, listed, of its size and sha256;
init.npz's arrays of the shapes trm_config gives. Nothing outside the bundle folder is opened.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from trm_edge.errors import PuzzleError, TRMEdgeError
from trm_edge.runtime.loop import Solution, check_options, check_tokens, solve
from trm_edge.runtime.manifest import INIT, BundleError, bundle_file, init_shape_ok, read_manifest

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


def _read_init(path: Path, config: dict) -> dict:
    """init.npz's arrays, checked: float32, finite, the shapes trm_config gives; no pickles."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as init:
            arrays = {k: init[k] for k in init.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise BundleError(f"{path} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}); "
                          f"re-export the bundle") from None
    for name in ("y_init", "z_init"):
        if name not in arrays:
            raise BundleError(f"{path} lacks {name}; re-export the bundle")
    for name, a in arrays.items():
        if name not in ("y_init", "z_init", "puzzle_emb_table"):
            continue
        if a.dtype != np.float32 or not init_shape_ok(name, a.shape, config):
            raise BundleError(f"{path}: {name} is {a.dtype} {list(a.shape)}, not float32 of the shape trm_config gives; "
                              f"re-export the bundle")
        if not np.isfinite(a).all():
            raise BundleError(f"{path}: {name} holds NaN or infinite values; re-export from a good checkpoint")
    return arrays


class Bundle:
    def __init__(self, path, threads: int | None = None, verify: bool = True, **backend_options):
        if not isinstance(path, (str, os.PathLike)) or str(path) == "":
            raise BundleError(f"a bundle is a folder path, got {path!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024):
            raise TRMEdgeError(f"threads must be a positive integer, got {threads!r}")
        self.path = Path(path)
        self.manifest = m = read_manifest(self.path, verify=verify)
        self.config, self.task = m["trm_config"], m.get("task")
        init = _read_init(bundle_file(self.path, m, INIT, "init file", verify), self.config)
        self.y_init, self.z_init = init["y_init"], init["z_init"]
        self.puzzle_table = init.get("puzzle_emb_table")
        model_file = bundle_file(self.path, m, m["model_file"], "model_file", verify)
        self.step = backend_for(m["target"])(model_file, m, threads=threads, **backend_options)

    @property
    def seq_len(self) -> int:
        return self.config["seq_len"]

    def puzzle_emb(self, puzzle_ids) -> np.ndarray | None:
        """The puzzle-embedding rows for these ids (from the bundle's table), or None without an embedding."""
        if not self.config.get("puzzle_emb_ndim"):
            return None
        try:
            ids = np.asarray(puzzle_ids)
        except (ValueError, TypeError):
            ids = np.asarray([], dtype=object)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or ids.dtype == np.bool_:
            raise PuzzleError("puzzle ids must be a list of integers, one per puzzle")
        if self.puzzle_table is None:
            raise PuzzleError("this bundle ships no puzzle table (too large); pass the rows as puzzle_emb=")
        bad = ids[(ids < 0) | (ids >= len(self.puzzle_table))]
        if len(bad):
            raise PuzzleError(f"puzzle id {int(bad[0])} is outside the bundle's table (0..{len(self.puzzle_table) - 1})")
        return self.puzzle_table[ids.astype(np.int64)]

    def solve(self, tokens, puzzle_ids=None, puzzle_emb=None, halting: str | None = None,
              threshold: float | None = None, max_steps: int | None = None, **kw) -> Solution:
        h = self.manifest["halting"]
        halting = h["policy"] if halting is None else halting
        threshold = h["threshold"] if threshold is None else threshold
        max_steps = h["max_steps"] if max_steps is None else max_steps
        check_options(max_steps, halting, threshold)
        tokens = check_tokens(tokens, self.seq_len, self.config["vocab_size"])
        if puzzle_emb is None and self.config.get("puzzle_emb_ndim"):
            ids = np.zeros(len(tokens), np.int64) if puzzle_ids is None else puzzle_ids
            puzzle_emb = self.puzzle_emb(ids)
            if len(puzzle_emb) != len(tokens):
                raise PuzzleError(f"{len(puzzle_emb)} puzzle ids for {len(tokens)} puzzles; give one id per puzzle")
        if puzzle_emb is not None and not self.config.get("puzzle_emb_ndim"):
            raise PuzzleError("this bundle's model has no puzzle embedding; do not pass puzzle_emb")
        if puzzle_emb is not None and np.shape(puzzle_emb) != (len(tokens), self.config["puzzle_emb_ndim"]):
            raise PuzzleError(f"puzzle_emb has shape {list(np.shape(puzzle_emb))}; the bundle takes "
                              f"[{len(tokens)}, {self.config['puzzle_emb_ndim']}]")
        return solve(self.step, tokens, puzzle_emb, self.y_init, self.z_init,
                     max_steps=max_steps, halting=halting, threshold=threshold, **kw)
