"""The host loop: repeat one exported supervision step, with halting, over any backend.

A backend is a callable on numpy arrays:

    step(tokens [B,L] int, puzzle_emb [B,ndim] float32 | None, y [B,P+L,D], z [B,P+L,D])
        -> (y_next, z_next, logits [B,L,V], q_halt [B])

Optional attributes: `batch` (a fixed batch size the artifact was exported with: the loop pads
and chunks to it) and `positions` (P+L, so [D] initial vectors can be broadcast).

Halting policies
  fixed   every row runs max_steps: the reference's evaluation, reproduced exactly.
  q_halt  a row halts after the first step where sigmoid(q_halt) > threshold; halted rows leave
          the batch (compaction), so later steps cost less.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from trm_edge.errors import PuzzleError

HALTING = ("fixed", "q_halt")


@dataclass
class StepRecord:
    """What one supervision step computed for the rows still running (`rows` index the batch)."""
    step: int
    rows: np.ndarray
    logits: np.ndarray
    q_halt: np.ndarray
    y: np.ndarray | None = None
    z: np.ndarray | None = None


@dataclass
class Solution:
    predictions: np.ndarray      # [B, L] argmax tokens at each row's last step
    steps: np.ndarray            # [B] supervision steps used
    q_halt: np.ndarray           # [B] q_halt logit at each row's last step
    trace: list[StepRecord] = field(default_factory=list)

    @property
    def halt_probability(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.q_halt))


def check_tokens(tokens, seq_len: int, vocab_size: int) -> np.ndarray:
    """[B, L] integer tokens inside the vocabulary, or a PuzzleError saying what is wrong."""
    t = np.asarray(tokens)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or not np.issubdtype(t.dtype, np.integer):
        raise PuzzleError(f"tokens must be integers shaped [batch, {seq_len}], got {t.dtype} {list(t.shape)}")
    if t.shape[1] != seq_len:
        raise PuzzleError(f"a puzzle has {t.shape[1]} tokens, the model takes {seq_len}")
    bad = np.argwhere((t < 0) | (t >= vocab_size))
    if len(bad):
        r, c = bad[0]
        raise PuzzleError(f"token {t[r, c]} at position {c} is outside the vocabulary 0..{vocab_size - 1}")
    return t


def _broadcast_state(v, batch: int, positions: int | None) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    if v.ndim == 1:
        if positions is None:
            raise ValueError("a [D] initial state needs the number of positions: pass positions= "
                             "or give the backend a `positions` attribute")
        v = np.broadcast_to(v, (positions, v.shape[0]))
    return np.ascontiguousarray(np.broadcast_to(v, (batch, *v.shape[-2:])))


def _run(step, tokens, puzzle_emb, y, z):
    """One step over the rows given: in chunks padded to the backend's fixed batch if it has one, or in
    chunks of at most its largest batch (a dynamic batch with an upper bound, as ExecuTorch's)."""
    fixed, largest = getattr(step, "batch", None), getattr(step, "max_batch", None)
    n = tokens.shape[0]
    size = fixed or largest
    if not size or (n == size if fixed else n <= size):
        return step(tokens, puzzle_emb, y, z)
    outs = []
    for start in range(0, n, size):
        idx = np.arange(start, min(start + size, n))
        if fixed:
            idx = np.concatenate([idx, np.full(fixed - len(idx), idx[-1])])   # pad: repeat the last row
        part = step(tokens[idx], None if puzzle_emb is None else puzzle_emb[idx], y[idx], z[idx])
        outs.append([o[: min(size, n - start)] for o in part])
    return tuple(np.concatenate(parts) for parts in zip(*outs))


def solve(step, tokens, puzzle_emb, y_init, z_init, max_steps: int = 16, halting: str = "q_halt",
          threshold: float = 0.5, positions: int | None = None, record: bool = False,
          record_states: bool = False) -> Solution:
    """Solve a batch of puzzles by repeating `step` with the halting policy (see module doc).

    y_init, z_init: [D] vectors (broadcast over positions and rows), [P+L, D] or [B, P+L, D].
    record: keep every step's logits and q_halt (and y, z with record_states) in `trace`.
    """
    if halting not in HALTING:
        raise ValueError(f"halting must be one of {HALTING}, got {halting!r}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold is a probability strictly between 0 and 1, got {threshold}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    tokens = np.asarray(tokens)
    B = tokens.shape[0]
    positions = positions or getattr(step, "positions", None)
    y = _broadcast_state(y_init, B, positions)
    z = _broadcast_state(z_init, B, positions)
    pe = None if puzzle_emb is None else np.ascontiguousarray(puzzle_emb, dtype=np.float32)
    halt_logit = math.log(threshold / (1.0 - threshold))   # sigmoid(q) > t  <=>  q > logit(t)

    active = np.arange(B)
    predictions = np.zeros(tokens.shape, dtype=np.int64)
    steps = np.zeros(B, dtype=np.int64)
    q_final = np.full(B, np.nan, dtype=np.float32)
    trace = []
    for s in range(1, max_steps + 1):
        y, z, logits, q = _run(step, tokens[active], None if pe is None else pe[active], y, z)
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        predictions[active] = logits.argmax(-1)
        q_final[active] = q
        steps[active] = s
        if record:
            trace.append(StepRecord(s, active.copy(), logits, q,
                                    y.copy() if record_states else None, z.copy() if record_states else None))
        if s == max_steps:
            break
        if halting == "q_halt":
            keep = ~(q > halt_logit)
            if not keep.all():
                active, y, z = active[keep], y[keep], z[keep]
                if not len(active):
                    break
    return Solution(predictions, steps, q_final, trace)
