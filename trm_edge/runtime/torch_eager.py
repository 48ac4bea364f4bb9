"""PyTorch eager backend: a `trm_edge.step.Step` (or any module with that signature) on numpy arrays.

The reference point every other backend is compared with. Imports torch, so it is only
imported when asked for; the rest of `trm_edge.runtime` needs numpy alone.
"""
from __future__ import annotations

import numpy as np
import torch


class TorchEagerStep:
    name = "pytorch-eager"

    def __init__(self, module: torch.nn.Module, threads: int | None = None):
        self.module = module.eval()
        self.takes_puzzle_emb = "puzzle_emb" in getattr(module, "input_names", ("tokens", "puzzle_emb", "y", "z"))
        config = getattr(module, "config", None)
        self.positions = config.positions if config is not None else None
        self.batch = None                       # any batch size
        if threads:
            torch.set_num_threads(threads)

    def __call__(self, tokens, puzzle_emb, y, z):
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
        args = [t(tokens)] + ([t(puzzle_emb)] if self.takes_puzzle_emb else []) + [t(y), t(z)]
        with torch.inference_mode():
            out = self.module(*args)
        return tuple(o.numpy() for o in out)
