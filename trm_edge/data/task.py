"""What every task supplies (numpy only). A task is one module in trm_edge/data/ holding one `Task`
subclass instance named TASK, and one row of the table in trm_edge/data/__init__.py.

    codec(seq_len, vocab_size)   puzzle text <-> tokens, the rules a puzzle's givens must keep
    encoding(task, seq_len)      how text becomes tokens, as DATA: the manifest's task.encoding
    sample(n, seq_len, vocab, seed)  real puzzles of the task (generated), tokens [n, L]
    examples(n, seq_len, seed)   real puzzles with their answers, (puzzles, answers) [n, L] each
    example_size                 (seq_len, vocab_size) of a typical model, for tests that walk the table
    check(inputs, predictions)   bool [n] by the task's own rule checker (no label; has_checker)
    random_view(rng, seq_len)    a random augmentation (View) with its exact inverse
    augment(inputs, labels, rng) training augmentation of a batch (None: the data is pre-augmented)
    fits(task, seq_len)          why a model or dataset of seq_len tokens is not this task's, or None
    build(out, options)          write a dataset; `build_options` names the CLI options it takes
    comment                      puzzle files: lines starting with it are comments (None: none are)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class View:
    """One augmentation of a puzzle: `apply` to the puzzle's tokens, `invert` on the answer's.
    `invert(apply(t))` is t exactly for every puzzle of the task. `describe` says which one it is."""
    cells: np.ndarray | None = None        # [L] output position i takes input position cells[i]
    tokens: np.ndarray | None = None       # [V] token relabelling, applied after the cell permutation
    describe: dict = field(default_factory=dict)

    @property
    def is_identity(self) -> bool:
        return self.cells is None and self.tokens is None

    def apply(self, tokens) -> np.ndarray:
        t = np.asarray(tokens)
        if self.cells is not None:
            t = t[..., self.cells]
        if self.tokens is not None:
            t = self.tokens[t]
        return np.ascontiguousarray(t, dtype=np.int64)

    def invert(self, tokens) -> np.ndarray:
        t = np.asarray(tokens)
        if self.tokens is not None:
            t = np.argsort(self.tokens)[t]
        if self.cells is not None:
            t = t[..., np.argsort(self.cells)]
        return np.ascontiguousarray(t, dtype=np.int64)


IDENTITY = View(describe={"name": "identity"})


class Task:
    name: str = ""
    has_checker: bool = False     # check() is a rule checker needing no label
    comment: str | None = "#"
    build_options: tuple[str, ...] = ()
    example_size: tuple[int, int] = (12, 7)

    def codec(self, seq_len: int, vocab_size: int | None = None):
        raise NotImplementedError

    def encoding(self, task: dict, seq_len: int) -> dict | None:
        return None

    def sample(self, n: int, seq_len: int, vocab_size: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, vocab_size, (n, seq_len))

    def examples(self, n: int, seq_len: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Raw tokens: any tokens are their own answer."""
        t = self.sample(n, seq_len, self.example_size[1], seed)
        return t, t

    def check(self, inputs, predictions) -> np.ndarray | None:
        return None

    def random_view(self, rng: np.random.Generator, seq_len: int) -> View:
        return IDENTITY

    augment = None    # (inputs, labels, rng) -> (inputs, labels): on-the-fly training augmentation

    def fits(self, task: dict, seq_len: int) -> str | None:
        return None

    def square_fits(self, task: dict, seq_len: int, side_ok, grid: str) -> str | None:
        """`fits` for square grids: task.size (if given) squared is seq_len, and the side passes side_ok."""
        side, size = math.isqrt(seq_len), task.get("size")
        if size is not None and size * size != seq_len:
            return f"a {size}x{size} {self.name} has {size * size} cells, not {seq_len}"
        if side * side != seq_len or not side_ok(side):
            return f"{seq_len} cells are not {grid}"
        return None

    def build(self, out, options: dict):
        from trm_edge.errors import TRMEdgeError
        raise TRMEdgeError(f"the {self.name} task has no dataset builder")
