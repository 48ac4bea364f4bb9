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
from trm_edge.runtime.decide import MAX_VIEWS, Decision, decision
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
    # with views (K of them; K = 1 is one view): `predictions` is each puzzle's chosen answer (mapped
    # back), `steps` its view-steps (all views' steps together), `q_halt` the chosen view's
    views: int = 1
    view_steps: np.ndarray | None = None      # [B, K] steps each view ran (0: never launched)
    view_q: np.ndarray | None = None          # [B, K] each view's last q_halt logit (NaN: never launched)
    view_answers: np.ndarray | None = None    # [B, K, L] each finished view's answer, mapped back
    finished: np.ndarray | None = None        # [B, K] the views that finished (halted, or cut by a budget)
    chosen: np.ndarray | None = None          # [B] the view whose answer each puzzle took
    verified: np.ndarray | None = None        # [B, K] the verifier's verdict per view (policies with verify)
    decision: object = None                   # the Decision that chose

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
          record_states: bool = False, progress=None, views=None, decide: str | Decision | None = None,
          verifier=None, same=None) -> Solution:
    """Solve a batch of puzzles by repeating `step` with the halting policy (a name or a Halting).

    tokens: [B, L] integers (checked against the vocabulary by the callers that know it: check_tokens).
    puzzle_emb: [B, ndim] rows of the puzzle table (one per puzzle), or [B, K, ndim] (one per view: ARC's
        augmentations each have their own row), or None for a model without one.
    y_init, z_init: [D] vectors (broadcast over positions and rows), [P+L, D] or [B, P+L, D].
    views: a list of K Views (trm_edge.data.task.View; the first must be the identity), or None for
        one view: each puzzle runs as K rows of one batch, each halting on its own; the decision
        policy `decide` (runtime/decide.py; default vote) picks each puzzle's answer and may stop
        its views early. verifier(inputs [n, L], answers [n, L]) -> bool [n]: a rule checker for
        policies with verify=True. same(puzzle [L], answer [L]) -> bytes: when two views' answers are
        the same answer (runtime/same.py; default: equal cells).
    record: keep every step's logits and q_halt (and y, z with record_states) in `trace` (rows are
        puzzle * K + view).
    progress: called as progress(step, rows_still_running) after every step (e.g. a progress bar).
    """
    halt = check_options(max_steps, halting, threshold)
    views, decide = check_views(views, decide, verifier)
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer) or tokens.shape[0] == 0:
        raise PuzzleError(f"tokens must be a non-empty integer array [batch, L], got {tokens.dtype} {list(tokens.shape)}")
    B = tokens.shape[0]
    positions = positions or getattr(step, "positions", None)
    y0 = broadcast_state(y_init, B, positions, "y_init")
    z0 = broadcast_state(z_init, B, positions, "z_init")
    if y0.shape != z0.shape:
        raise PuzzleError(f"y_init and z_init give states of different shapes {list(y0.shape)} and {list(z0.shape)}")
    pe = None
    if puzzle_emb is not None:
        try:
            pe = np.ascontiguousarray(puzzle_emb, dtype=np.float32)
        except (ValueError, TypeError):
            raise PuzzleError("puzzle_emb must be a float array [batch, ndim]") from None
        per_view = pe.ndim == 3 and pe.shape[:2] == (B, len(views))     # [B, K, ndim]: a row per view (ARC)
        if not (pe.ndim == 2 and pe.shape[0] == B or per_view) or not np.isfinite(pe).all():
            raise PuzzleError(f"puzzle_emb has shape {list(pe.shape)}; give [{B}, ndim] finite floats, one row per "
                              f"puzzle, or [{B}, {len(views)}, ndim], one per view")
    seen = np.stack([tokens if v.is_identity else v.apply(tokens).astype(tokens.dtype) for v in views])  # [K, B, L]

    rows = {"tok": tokens[:0], "pe": None if pe is None else pe.reshape(-1, pe.shape[-1])[:0], "y": y0[:0], "z": z0[:0]}
    trace = []

    def advance(s, keep, new_p, new_v, rp, rv):
        """One step for the running rows: the kept ones (state carried) then the new ones (fresh state)."""
        r = rows if keep is None else {k: None if a is None else a[keep] for k, a in rows.items()}
        if len(new_p):
            r = {"tok": np.concatenate([r["tok"], seen[new_v, new_p]]),
                 "pe": None if pe is None else np.concatenate([r["pe"], pe[new_p, new_v] if pe.ndim == 3 else pe[new_p]]),
                 "y": np.concatenate([r["y"], y0[new_p]]), "z": np.concatenate([r["z"], z0[new_p]])}
        y, z, logits, q = _checked(step, s, r["tok"], r["pe"], r["y"], r["z"])
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        rows.update(tok=r["tok"], pe=r["pe"], y=y, z=z)
        if record:
            trace.append(StepRecord(s, rp * len(views) + rv, logits, q,
                                    y.copy() if record_states else None, z.copy() if record_states else None))
        return logits.argmax(-1), q

    sol = drive(advance, tokens, views, max_steps, halt, decide, verifier, progress, same)
    sol.trace = trace
    return sol


def check_views(views, decide, verifier=None):
    """(views, decision policy) for the loop, or a TRMEdgeError naming what is wrong."""
    from trm_edge.data.task import IDENTITY, View
    views = [IDENTITY] if views is None else list(views)
    if not 1 <= len(views) <= MAX_VIEWS or not all(isinstance(v, View) for v in views):
        raise TRMEdgeError(f"views must be a list of 1 to {MAX_VIEWS} Views (a task's views(K))")
    if not views[0].is_identity:
        raise TRMEdgeError("view 0 must be the identity (a task's views(K) puts it first)")
    decide = decision("vote" if decide is None else decide)
    if decide.verify and verifier is None:
        raise TRMEdgeError("this policy verifies answers, but the task has no rule checker; drop --verify")
    return views, decide


def drive(advance, tokens, views, max_steps: int, halt: Halting, decide: Decision, verifier=None,
          progress=None, same=None) -> Solution:
    """The views loop, shared by the live run (advance runs the backend) and replay (advance reads a
    recorded trace): launch views, step the running rows, halt rows, ask the decision policy per
    puzzle, compact. advance(s, keep, new_p, new_v, rp, rv) -> (predictions [n, L], q_halt [n]) for
    the running rows after this step: the kept rows of the last step, then the new rows. same: the
    answers' key (runtime/same.py; None: their cells)."""
    from trm_edge.runtime.same import cells
    same = same or cells
    B, L = tokens.shape
    K = len(views)
    steps = np.zeros((B, K), dtype=np.int64)
    q = np.full((B, K), np.nan, dtype=np.float32)
    answers = np.zeros((B, K, L), dtype=np.int64)           # each finished view's answer, mapped back
    state = np.zeros((B, K), dtype=np.int8)                 # 0 not launched, 1 running, 2 finished, 3 stopped
    verified = np.zeros((B, K), dtype=bool)
    keys_of = {}                                            # (p, v) -> a finished view's key, computed once
    closed = np.zeros(B, dtype=bool)
    w = decide.first(K)
    new_p, new_v = np.repeat(np.arange(B), w), np.tile(np.arange(w), B)
    state[new_p, new_v] = 1
    rp, rv = new_p[:0], new_v[:0]
    keep, s = None, 0
    while len(new_p) or len(rp):
        s += 1
        rp, rv = np.concatenate([rp, new_p]), np.concatenate([rv, new_v])
        preds, qs = advance(s, keep, new_p, new_v, rp, rv)
        steps[rp, rv] += 1
        q[rp, rv] = qs
        rs = steps[rp, rv]
        fin = rs >= max_steps
        if not fin.all():
            fin |= halt.stop(rs, qs)
        if decide.budget is not None:
            fin |= steps.sum(1)[rp] >= decide.budget        # a puzzle at its budget: its running views are cut
        for i in np.flatnonzero(fin):
            p, v = rp[i], rv[i]
            answers[p, v] = views[v].answer(preds[i])
            keys_of[p, v] = same(tokens[p], answers[p, v])
            state[p, v] = 2
        if verifier is not None and decide.verify and fin.any():
            f = np.flatnonzero(fin)
            verified[rp[f], rv[f]] = np.asarray(verifier(tokens[rp[f]], answers[rp[f], rv[f]]), dtype=bool)
        if progress is not None:
            progress(s, len(rp))
        launch = []
        for p in np.unique(rp[fin]):
            done_v = np.flatnonzero(state[p] == 2)
            running, unlaunched = int((state[p] == 1).sum()), int((state[p] == 0).sum())
            keys = [keys_of[p, v] for v in done_v]
            if decide.budget is not None and steps[p].sum() >= decide.budget:
                unlaunched = 0
            if decide.done(keys, q[p, done_v], running, unlaunched, verified[p, done_v] if decide.verify else None):
                closed[p] = True
                state[p][state[p] == 1] = 3
            elif running == 0 and unlaunched:
                nxt = np.flatnonzero(state[p] == 0)[:w]
                state[p, nxt] = 1
                launch += [(p, v) for v in nxt]
            elif running == 0:
                closed[p] = True
        keep = state[rp, rv] == 1
        rp, rv = rp[keep], rv[keep]
        new_p = np.array([p for p, _ in launch], dtype=np.int64)
        new_v = np.array([v for _, v in launch], dtype=np.int64)

    chosen = np.zeros(B, dtype=np.int64)
    for p in range(B):
        done_v = np.flatnonzero(state[p] == 2)
        keys = [keys_of[p, v] for v in done_v]
        chosen[p] = done_v[decide.pick(keys, q[p, done_v], verified[p, done_v] if decide.verify else None)]
    idx = np.arange(B)
    finished = state == 2
    return Solution(answers[idx, chosen], steps.sum(1), q[idx, chosen], [],
                    views=K, view_steps=steps, view_q=q, view_answers=answers, finished=finished, chosen=chosen,
                    verified=verified if decide.verify else None, decision=decide)


def replay(predictions, q_halt, tokens, views=None, max_steps: int | None = None, halting: str | Halting = "q_halt",
           threshold: float = 0.5, decide: str | Decision | None = None, verifier=None, same=None) -> Solution:
    """What `solve` would give, read off a recorded run of S fixed steps of every view: predictions
    [S, B, K, L] (each view's argmax in its own frame, as the step saw it) and q_halt [S, B, K]. The
    same `drive` makes the decisions, so a policy's answers on a trace are its answers live."""
    pr, qh = np.asarray(predictions), np.asarray(q_halt, dtype=np.float32)
    S, B = pr.shape[:2]
    if max_steps is not None and (not isinstance(max_steps, numbers.Integral) or max_steps > S):
        raise TRMEdgeError(f"a trace of {S} steps replays at most max_steps={S}, got {max_steps!r}")
    halt = check_options(max_steps or S, halting, threshold)
    views, decide = check_views(views, decide, verifier)
    if pr.shape[2] != len(views) or qh.shape != pr.shape[:3]:
        raise TRMEdgeError(f"the trace holds {pr.shape[2]} views with q_halt {list(qh.shape)}; give [S, B, K] for K views")
    ran = np.zeros((B, len(views)), dtype=np.int64)

    def advance(s, keep, new_p, new_v, rp, rv):
        at = ran[rp, rv]
        ran[rp, rv] += 1
        return pr[at, rp, rv], qh[at, rp, rv]
    return drive(advance, np.asarray(tokens), views, max_steps or S, halt, decide, verifier, same=same)
