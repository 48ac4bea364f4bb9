"""The host loop: repeat one exported supervision step, with halting, over any backend.

A backend is a callable on numpy arrays:

    step(tokens [B,L] int, puzzle_emb [B,ndim] float32 | None, y [B,P+L,D], z [B,P+L,D])
        -> (y_next, z_next, logits [B,L,V], q_halt [B])

Optional attributes: `batch` (a fixed batch size the artifact was exported with: the loop pads
and chunks to it) and `positions` (P+L, so [D] initial vectors can be broadcast).

Halting policies are objects (trm_edge/runtime/halting.py: fixed, q_halt); after every step the
policy says which rows stop, and stopped rows leave the batch (compaction), so later steps cost less.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from trm_edge.errors import PuzzleError, TRMEdgeError
from trm_edge.runtime.halting import POLICIES, Halting, policy

HALTING = tuple(POLICIES)
MAX_STEPS = 1024      # supervision steps at most (the reference uses 16; the bundle schema's bound)


class StepError(TRMEdgeError):
    """The backend failed on a step, or returned what the contract does not allow (wrong shapes, NaN)."""


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
    try:
        t = np.asarray(tokens)
    except (ValueError, TypeError, OverflowError):
        raise PuzzleError(f"tokens must be integers shaped [batch, {seq_len}]; got a ragged or mixed list") from None
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or not np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_:
        raise PuzzleError(f"tokens must be integers shaped [batch, {seq_len}], got {t.dtype} {list(t.shape)}")
    if t.shape[0] == 0:
        raise PuzzleError("no puzzles given: tokens hold an empty batch")
    if t.shape[1] != seq_len:
        raise PuzzleError(f"a puzzle has {t.shape[1]} tokens, the model takes {seq_len}")
    bad = np.argwhere((t < 0) | (t >= vocab_size))
    if len(bad):
        r, c = bad[0]
        raise PuzzleError(f"token {t[r, c]} at position {c} is outside the vocabulary 0..{vocab_size - 1}")
    return t


def check_options(max_steps, halting, threshold=0.5) -> Halting:
    """The loop's options, or a TRMEdgeError naming the bad one (bools, strings and NaN are no numbers).
    Returns the halting policy they name."""
    if not isinstance(halting, Halting):
        policy("q_halt", threshold)          # a threshold is checked whichever policy is named
    chosen = policy(halting, threshold)
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or not 1 <= max_steps <= MAX_STEPS:
        raise TRMEdgeError(f"max_steps must be an integer from 1 to {MAX_STEPS}, got {max_steps!r}")
    return chosen


def broadcast_state(v, batch: int, positions: int | None, name: str = "state") -> np.ndarray:
    try:
        v = np.asarray(v, dtype=np.float32)
    except (ValueError, TypeError):
        raise PuzzleError(f"{name} must be a float array shaped [D], [P+L, D] or [batch, P+L, D]") from None
    if v.ndim == 1:
        if positions is None:
            raise TRMEdgeError(f"a [D] {name} needs the number of positions: pass positions= "
                               "or give the backend a `positions` attribute")
        v = np.broadcast_to(v, (positions, v.shape[0]))
    if v.ndim not in (2, 3) or (positions and v.shape[-2] != positions) or (v.ndim == 3 and v.shape[0] not in (1, batch)):
        raise PuzzleError(f"{name} has shape {list(v.shape)}; give [D], [{positions or 'P+L'}, D] or "
                          f"[{batch}, {positions or 'P+L'}, D]")
    if not np.isfinite(v).all():
        raise PuzzleError(f"{name} holds NaN or infinite values")
    return np.ascontiguousarray(np.broadcast_to(v, (batch, *v.shape[-2:])))


def _checked(step, s: int, tokens, puzzle_emb, y, z):
    """One step through `run_step`, with the backend's failures and contract breaches as one-line StepErrors."""
    try:
        out = run_step(step, tokens, puzzle_emb, y, z)
    except TRMEdgeError:
        raise
    except Exception as e:   # each runtime raises its own types, often with pages of text
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise StepError(f"the {getattr(step, 'name', 'backend')} step failed at step {s}: {type(e).__name__}: "
                        f"{first}") from None
    if not isinstance(out, (tuple, list)) or len(out) != 4:
        raise StepError(f"the step returned {type(out).__name__}, not (y_next, z_next, logits, q_halt)")
    y2, z2, logits, q = (np.asarray(o) for o in out)
    n, L = tokens.shape
    if y2.shape != y.shape or z2.shape != z.shape or logits.ndim != 3 or logits.shape[:2] != (n, L) or q.size != n:
        raise StepError(f"the step returned shapes y {list(y2.shape)}, z {list(z2.shape)}, logits {list(logits.shape)}, "
                        f"q_halt {list(q.shape)} for {n} rows of {L} tokens: the model file does not fit the manifest")
    if not (np.isfinite(logits).all() and np.isfinite(q).all()):
        raise StepError(f"the step produced NaN or infinite values at step {s}: the model's weights or state are "
                        f"broken; re-export from a good checkpoint")
    return y2, z2, logits, q


def run_step(step, tokens, puzzle_emb, y, z):
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


def solve(step, tokens, puzzle_emb, y_init, z_init, max_steps: int = 16, halting: str | Halting = "q_halt",
          threshold: float = 0.5, positions: int | None = None, record: bool = False,
          record_states: bool = False, progress=None) -> Solution:
    """Solve a batch of puzzles by repeating `step` with the halting policy (a name or a Halting).

    tokens: [B, L] integers (checked against the vocabulary by the callers that know it: check_tokens).
    y_init, z_init: [D] vectors (broadcast over positions and rows), [P+L, D] or [B, P+L, D].
    record: keep every step's logits and q_halt (and y, z with record_states) in `trace`.
    progress: called as progress(step, rows_still_running) after every step (e.g. a progress bar).
    """
    halt = check_options(max_steps, halting, threshold)
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer) or tokens.shape[0] == 0:
        raise PuzzleError(f"tokens must be a non-empty integer array [batch, L], got {tokens.dtype} {list(tokens.shape)}")
    B = tokens.shape[0]
    positions = positions or getattr(step, "positions", None)
    y = broadcast_state(y_init, B, positions, "y_init")
    z = broadcast_state(z_init, B, positions, "z_init")
    if y.shape != z.shape:
        raise PuzzleError(f"y_init and z_init give states of different shapes {list(y.shape)} and {list(z.shape)}")
    pe = None
    if puzzle_emb is not None:
        try:
            pe = np.ascontiguousarray(puzzle_emb, dtype=np.float32)
        except (ValueError, TypeError):
            raise PuzzleError("puzzle_emb must be a float array [batch, ndim]") from None
        if pe.ndim != 2 or pe.shape[0] != B or not np.isfinite(pe).all():
            raise PuzzleError(f"puzzle_emb has shape {list(pe.shape)}; give [{B}, ndim] finite floats, one row per puzzle")

    active = np.arange(B)
    predictions = np.zeros(tokens.shape, dtype=np.int64)
    steps = np.zeros(B, dtype=np.int64)
    q_final = np.full(B, np.nan, dtype=np.float32)
    trace = []
    for s in range(1, max_steps + 1):
        y, z, logits, q = _checked(step, s, tokens[active], None if pe is None else pe[active], y, z)
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        predictions[active] = logits.argmax(-1)
        q_final[active] = q
        steps[active] = s
        if record:
            trace.append(StepRecord(s, active.copy(), logits, q,
                                    y.copy() if record_states else None, z.copy() if record_states else None))
        if progress is not None:
            progress(s, len(active))
        if s == max_steps:
            break
        keep = ~halt.stop(s, q)
        if not keep.all():
            active, y, z = active[keep], y[keep], z[keep]
            if not len(active):
                break
    return Solution(predictions, steps, q_final, trace)
