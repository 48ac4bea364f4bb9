"""A Solver: one model behind one `solve(...)`, whether it is an exported bundle (runtime.bundle.Bundle)
or a checkpoint run by PyTorch eager (trm_edge.solver.Checkpoint). `trm_edge.open(path)` gives either.

What a Solver has: `task` (its metadata, or None for raw tokens), `config` (trm_config as a dict),
`step` (the backend callable of runtime/loop.py), `y_init`/`z_init`, `halting` (the default policy,
threshold and max steps), `backend` (what runs the step, e.g. "onnx int8"), and `puzzle_emb(ids)`
(the puzzle-embedding rows). Numpy only: subclasses bring their runtime.
"""
from __future__ import annotations

import numbers

import numpy as np

from trm_edge.errors import PuzzleError, TRMEdgeError
from trm_edge.runtime.decide import Decision, decision, recommended
from trm_edge.runtime.halting import Halting
from trm_edge.runtime.loop import Solution, check_options, check_tokens, solve


# Rows (puzzles x views) per chunk when a big solve streams (Solver.solve_stream, `solve`/`run
# --puzzle-file`). One eager batch of 2,000 puzzles took 97 ms per puzzle and 3.3 GB here; on 1,000
# moderate puzzles, one view, 2 threads (benchmarks/chunks.py, results/chunks/chunks.md) chunks of 16
# were the fastest for eager fp32 (21.5 ms/puzzle; 1: 24.9, 64: 31.4, 1000: 38.5) and the ONNX int8
# bundle (11.1; 1: 17.1, 64: 14.7, 1000: 21.4), at 380 and 189 MB peak against 1.8 and 3.2 GB.
CHUNK_ROWS = 16


def check_threads(threads) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024):
        raise TRMEdgeError(f"threads must be a positive integer, got {threads!r}")


class Solver:
    task: dict | None
    config: dict
    step: object
    y_init: np.ndarray
    z_init: np.ndarray
    halting: dict          # {"policy": name, "threshold": t, "max_steps": S}
    views_default: dict = {}   # a manifest's views: {"count": K, "policy_object": Decision, ...}
    views_recommended: tuple | None = None   # what `views=K` without `decide` runs (a bundle's manifest; None:
                                             # the task's rows, else runtime/decide.py RECOMMENDED)
    backend: str
    table_name = "the puzzle table"

    # -- what subclasses give
    def table_size(self) -> int | None:
        """Rows of the puzzle-embedding table available here (None: no table shipped)."""
        raise NotImplementedError

    def table_rows(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- shared
    @property
    def seq_len(self) -> int:
        return self.config["seq_len"]

    @property
    def vocab_size(self) -> int:
        return self.config["vocab_size"]

    @property
    def max_steps(self) -> int:
        return self.halting["max_steps"]

    def codec(self):
        """The task's codec (puzzle text <-> tokens) for this model."""
        from trm_edge.data import codec
        return codec(self.task, self.seq_len, self.vocab_size)

    def puzzle_emb(self, puzzle_ids) -> np.ndarray | None:
        """The puzzle-embedding rows for these ids, or None for a model without a puzzle embedding."""
        if not self.config.get("puzzle_emb_ndim"):
            return None
        try:
            ids = np.asarray(puzzle_ids)
        except (ValueError, TypeError):
            ids = np.asarray([], dtype=object)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or ids.dtype == np.bool_:
            raise PuzzleError("puzzle ids must be a list of integers, one per puzzle")
        size = self.table_size()
        if size is None:
            raise PuzzleError("this bundle ships no puzzle table (too large); pass the rows as puzzle_emb=")
        bad = ids[(ids < 0) | (ids >= size)]
        if len(bad):
            raise PuzzleError(f"puzzle id {int(bad[0])} is outside {self.table_name} (0..{size - 1})")
        return np.asarray(self.table_rows(ids.astype(np.int64)), dtype=np.float32)

    def task_views(self, k: int) -> list:
        """The first k views of this model's task (a bundle lists its own; see runtime/decide.py)."""
        from trm_edge.data import lookup
        return lookup(self.task).views(k, self.seq_len)

    def views_same(self) -> dict | None:
        """When two of this model's views' answers are the same answer (runtime/same.py): the task's rule
        (a bundle: its manifest's views.same); None: equal cells."""
        from trm_edge.data import lookup
        return lookup(self.task).same_answer(self.seq_len)

    def same_key(self):
        """views_same() as the key function the views' decision counts: (puzzle, answer) -> bytes."""
        from trm_edge.runtime.same import key
        return key(self.views_same())

    def recommended(self, views) -> Decision | None:
        """The policy `views` (a count or a list) runs when none is given: this model's recommended row
        for that many views, else its default policy (None: the vote)."""
        k = len(views) if isinstance(views, (list, tuple)) else views
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
            return None                       # one view needs no policy; a bad count: solve() refuses it
        fallback = self.views_default.get("policy_object")
        rows = self.views_recommended
        if rows is None:
            from trm_edge.data import lookup
            rows = lookup(self.task).recommended_rows()
        return recommended(int(k), rows, fallback.to_manifest() if fallback else None)

    def solve_stream(self, tokens, puzzle_ids=None, puzzle_emb=None, chunk: int | None = None, **kw):
        """solve() over `tokens` [B, L] in chunks of `chunk` puzzles (default: CHUNK_ROWS rows of puzzles
        x views), yielding (first puzzle's index, Solution) as each chunk finishes: memory bounded by one
        chunk whatever B is. Other keywords as solve(); each chunk is solved exactly as solve() would
        solve those puzzles alone (halting and views are per puzzle)."""
        tokens = check_tokens(tokens, self.seq_len, self.vocab_size)
        views = kw.get("views")
        k = (len(views) if isinstance(views, (list, tuple)) else views if isinstance(views, numbers.Integral)
             and not isinstance(views, bool) else self.views_default.get("count", 1)) or 1
        chunk = max(1, CHUNK_ROWS // max(1, int(k))) if chunk is None else chunk
        if isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk < 1:
            raise TRMEdgeError(f"chunk must be a whole number of puzzles, 1 or more, got {chunk!r}")
        for a in range(0, len(tokens), chunk):
            part = {"puzzle_ids": None if puzzle_ids is None else np.asarray(puzzle_ids)[a:a + chunk],
                    "puzzle_emb": None if puzzle_emb is None else np.asarray(puzzle_emb)[a:a + chunk]}
            yield a, self.solve(tokens[a:a + chunk], **part, **kw)

    def verifier(self):
        """The task's rule checker (inputs, answers) -> bool [n], or None where the task has none."""
        from trm_edge.data import lookup
        t = lookup(self.task)
        return t.check if t.has_checker else None

    def solve(self, tokens, puzzle_ids=None, puzzle_emb=None, halting: str | Halting | None = None,
              threshold: float | None = None, max_steps: int | None = None, views=None,
              decide: str | Decision | None = None, **kw) -> Solution:
        """Solve puzzles (tokens [B, L], or [L]) with the host loop; options default to this model's
        (a bundle's manifest; a checkpoint's q_halt at 0.5 over its halt_max_steps, one view). puzzle_ids
        pick rows of the puzzle table (default row 0, the blank puzzle); puzzle_emb gives the rows instead.
        views: K (the task's first K views) or a list of Views; decide: the decision policy over them
        (runtime/decide.py: a name or a Decision; views=K without one runs the policy recommended for K,
        decide.RECOMMENDED or a bundle's manifest). Other keywords go to runtime.loop.solve (record,
        record_states, progress)."""
        d = self.views_default
        if views is not None and decide is None:
            decide = self.recommended(views)
        views = d.get("count", 1) if views is None else views
        if isinstance(views, numbers.Integral) and not isinstance(views, bool):
            views = self.task_views(int(views))
        elif not isinstance(views, (list, tuple)):
            raise TRMEdgeError(f"views must be a whole number of views or a list of Views, got {views!r}")
        if len(views) == 1 and decide is None:
            decide = "vote"       # one view: the single-view loop, whatever the manifest's policy for many
        chosen = decision(decide or d.get("policy_object") or "vote")
        if chosen.verify:
            kw.setdefault("verifier", self.verifier())
        if len(views) > 1:
            kw.setdefault("same", self.same_key())
        h = self.halting
        halting = h["policy"] if halting is None else halting
        threshold = h.get("threshold", 0.5) if threshold is None else threshold
        max_steps = h["max_steps"] if max_steps is None else max_steps
        halt = check_options(max_steps, halting, threshold)
        tokens = check_tokens(tokens, self.seq_len, self.vocab_size)
        ndim = self.config.get("puzzle_emb_ndim")
        if puzzle_emb is None and ndim:
            ids = np.zeros(len(tokens), np.int64) if puzzle_ids is None else puzzle_ids
            puzzle_emb = self.puzzle_emb(ids)
            if len(puzzle_emb) != len(tokens):
                raise PuzzleError(f"{len(puzzle_emb)} puzzle ids for {len(tokens)} puzzles; give one id per puzzle")
        if puzzle_emb is not None and not ndim:
            raise PuzzleError("this model has no puzzle embedding; do not pass puzzle_emb")
        if puzzle_emb is not None and np.shape(puzzle_emb) not in ((len(tokens), ndim), (len(tokens), len(views), ndim)):
            raise PuzzleError(f"puzzle_emb has shape {list(np.shape(puzzle_emb))}; the model takes "
                              f"[{len(tokens)}, {ndim}] (or [{len(tokens)}, {len(views)}, {ndim}], a row per view)")
        return solve(self.step, tokens, puzzle_emb, self.y_init, self.z_init, max_steps=max_steps, halting=halt,
                     views=views, decide=chosen, **kw)
