"""`trm_edge.open(path)`: a checkpoint or an exported bundle behind one Solver (trm_edge/runtime/solver.py).

    import trm_edge
    s = trm_edge.open("models/sudoku.safetensors")      # or a bundle folder: bundles/sudoku-onnx-int8
    sol = s.solve(s.codec().parse(text))                # q_halt halting over the model's max steps

A bundle runs on its target's runtime (numpy + that runtime, no torch); a checkpoint runs its step
in PyTorch eager, the reference every bundle is compared with.
"""
from __future__ import annotations

import os
from pathlib import Path

from trm_edge.errors import TRMEdgeError
from trm_edge.runtime.solver import Solver, check_threads


class Checkpoint(Solver):
    """A loaded model (trm_edge.model.TRM) run by PyTorch eager, with the same solve() as a Bundle."""

    def __init__(self, model, threads: int | None = None, threshold: float = 0.5, verbose: bool = False):
        from trm_edge.quiet import quiet
        from trm_edge.runtime.torch_eager import TorchEagerStep
        from trm_edge.step import make_step
        check_threads(threads)
        self.model = model
        c = model.config
        from trm_edge.data import with_encoding
        self.config, self.task = c.to_dict(), with_encoding(model.metadata.get("task"), c.seq_len)
        self.halting = {"policy": "q_halt", "threshold": threshold, "max_steps": c.halt_max_steps}
        self.backend = "pytorch-eager fp32"
        with quiet(verbose):    # as a Bundle opens its runtime (runtime/bundle.py): start-up chatter stays off
            self.step = TorchEagerStep(make_step(model), threads=threads)
        self.y_init, self.z_init = self.step.module.y_init, self.step.module.z_init

    def table_size(self):
        return self.model.config.num_puzzle_identifiers

    def table_rows(self, ids):
        import torch
        with torch.no_grad():
            return self.model.puzzle_rows(torch.as_tensor(ids)).numpy()


def open(path, threads: int | None = None, config=None,   # noqa: A001 (trm_edge.open, by design)
         verbose: bool = False) -> Solver:
    """A Solver for `path`: a bundle folder (holding manifest.json) or a checkpoint file (any layout
    trm_edge.checkpoint reads; `config` where the checkpoint carries none). The runtime starts quietly
    (its own start-up output kept off the terminal) unless `verbose` or TRM_EDGE_DEBUG=1."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TRMEdgeError(f"give a checkpoint file or a bundle folder, got {path!r}")
    p = Path(path)
    if p.is_dir() and (p / "manifest.json").exists():
        from trm_edge.runtime.bundle import Bundle
        return Bundle(p, threads=threads, verbose=verbose)
    from trm_edge.checkpoint import load_checkpoint
    return Checkpoint(load_checkpoint(p, config), threads=threads, verbose=verbose)


__all__ = ["Checkpoint", "Solver", "open"]
