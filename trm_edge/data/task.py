"""What every task supplies (numpy only). A task is one module in trm_edge/data/ holding one `Task`
subclass instance named TASK, and one row of the table in trm_edge/data/__init__.py.

    codec(seq_len, vocab_size)   puzzle text <-> tokens, the rules a puzzle's givens must keep
    encoding(task, seq_len)      how text becomes tokens, as DATA: the manifest's task.encoding
    sample(n, seq_len, vocab, seed)  real puzzles of the task (generated), tokens [n, L]
    examples(n, seq_len, seed)   real puzzles with their answers, (puzzles, answers) [n, L] each
    example_size                 (seq_len, vocab_size) of a typical model, for tests that walk the table
    check(inputs, predictions)   bool [n] by the task's own rule checker (no label; has_checker)
    random_view(rng, seq_len)    a random augmentation (View) with its exact inverse
    view_count(seq_len)          how many distinct views the task's symmetry group holds
    views(k, seq_len, seed)      k distinct views, the identity first (deterministic; a prefix of k+1)
    augment(inputs, labels, rng) training augmentation of a batch (None: the data is pre-augmented)
    fits(task, seq_len)          why a model or dataset of seq_len tokens is not this task's, or None
    build(out, options)          write a dataset; `build_options` names the CLI options it takes
    comment                      puzzle files: lines starting with it are comments (None: none are)
"""
from __future__ import annotations

import math
import numbers
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

    def answer(self, tokens) -> np.ndarray:
        """An answer of this view in the puzzle's own frame, in the form answers are compared in (votes
        pool equal ones): invert; the identity's as it is."""
        return tokens if self.is_identity else self.invert(tokens)

    @property
    def key(self) -> tuple:
        """Equal for views that transform every puzzle alike (an identity permutation counts as none)."""
        def part(a):
            return None if a is None or np.array_equal(a, np.arange(len(a))) else np.asarray(a, np.int64).tobytes()
        return part(self.cells), part(self.tokens)

    def to_manifest(self) -> dict:
        """The view as data (what a bundle's manifest lists and an app applies): output position i takes
        input position cells[i], then token t becomes tokens[t]; null: unchanged."""
        return {"cells": None if self.cells is None else [int(c) for c in self.cells],
                "tokens": None if self.tokens is None else [int(t) for t in self.tokens],
                "describe": self.describe}

    @classmethod
    def from_manifest(cls, d: dict) -> "View":
        return cls(cells=None if d.get("cells") is None else np.asarray(d["cells"], dtype=np.int64),
                   tokens=None if d.get("tokens") is None else np.asarray(d["tokens"], dtype=np.int64),
                   describe=d.get("describe") or {})


IDENTITY = View(describe={"name": "identity"})


class Task:
    name: str = ""
    has_checker: bool = False     # check() is a rule checker needing no label
    comment: str | None = "#"
    build_options: tuple[str, ...] = ()
    example_size: tuple[int, int] = (12, 7)
    recommended_views: int = 1    # views `export` records by default (measured for the task; 1: none measured)
    recommended_policy: tuple | None = None   # rows as runtime/decide.py RECOMMENDED for this task; None: those

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

    def view_count(self, seq_len: int) -> int:
        return 1

    def recommended_rows(self) -> tuple:
        """What `views=K` without a policy runs for this task: its own rows, else runtime/decide.py RECOMMENDED."""
        from trm_edge.runtime.decide import RECOMMENDED
        return self.recommended_policy or RECOMMENDED

    def same_answer(self, seq_len: int) -> dict | None:
        """When two views' answers count as one answer (a rule of runtime/same.py, as a manifest's
        `views.same` writes it); None: when all their cells are equal."""
        return None

    def views(self, k: int, seq_len: int, seed: int = 0) -> list[View]:
        """k distinct views of the task, the identity first, the rest drawn by random_view from
        `seed` (so views(k) is a prefix of views(k + 1)); a TRMEdgeError when k is no count of views
        or more than the task's symmetry group holds."""
        from trm_edge.errors import TRMEdgeError
        from trm_edge.runtime.decide import MAX_VIEWS
        group = self.view_count(seq_len)
        top = min(group, MAX_VIEWS)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise TRMEdgeError(f"views must be a whole number from 1 to {top}, got {k!r}")
        if k > top:
            why = (f"the {self.name or 'raw tokens'} task has {group} distinct view{'s' * (group != 1)} (its symmetry group)"
                   if group <= MAX_VIEWS else f"at most {MAX_VIEWS} views per puzzle are run")
            raise TRMEdgeError(f"views={k} is more than {why}; ask for at most {top}")
        rng = np.random.default_rng(seed)
        out, seen = [IDENTITY], {IDENTITY.key}
        while len(out) < k:
            v = self.random_view(rng, seq_len)
            if v.key not in seen:
                seen.add(v.key)
                out.append(v)
        return out

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
