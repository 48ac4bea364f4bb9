"""Decision policies over the views of a puzzle (numpy only): which answer a puzzle gets, and when
its views may stop. One class here plus one row of DECISIONS.

`solve(..., views=K)` (runtime/loop.py) runs K views of every puzzle (view 0 the identity, the
others a task's augmentations), each halting on its own (runtime/halting.py: fixed, q_halt). After
every step the puzzle's decision policy is asked whether the puzzle is done (`done`), and when it
is, which finished view's answer it takes (`choose`). Answers are compared after mapping them back
(View.invert), as the reference's ARC evaluator compares inverse-augmented grids.

    vote       every view runs to its own halt; the answer with most views wins, ties broken by the
               higher mean sigmoid(q_halt) (float64), then by the lower view index: the ranking of
               the reference's evaluators/arc.py (count, mean q; a stable sort in view order).
    best_q     every view runs to its own halt; the view with the highest q_halt wins (lowest index
               on ties): the Q head as a selector across trajectories.
    consensus  vote, but a puzzle stops as soon as the views still to come cannot change the vote
               (the leader has more votes than the runner-up plus every running and unlaunched
               view): EXACT, the full run's vote always. With `agree=m` it also stops once m
               finished views agree (cheaper, not exact); with `wave=w` it launches w views at a
               time, more only when those have finished undecided (easy puzzles cost one wave).
    best       the answer the task's objective scores best wins (runtime/same.py `score`: a maze path's
               length, read off the answer alone; ties by the vote's ranking); answers without a score
               (none valid, or a task without an objective) decide as consensus does. With `agree=m` a
               puzzle stops once m finished views share the best score so far (not exact: a later view
               might score better); without, every view runs. As the 8 dihedral augmentations with the
               best objective in neural combinatorial optimisation (POMO, Kwon et al. 2020).

Answers are compared by their key (runtime/same.py: equal cells by default, or a task's rule such as
any S->G path of the same length through a maze).

Any policy takes `budget=N` (view-steps per puzzle: at N its running views are cut and vote with
their current answers) and `verify=True` (a task's rule checker, no label: a finished answer that
keeps the rules ends the puzzle and wins). Either makes a policy inexact (`exact` False), and a
verified result is reported as the verifier's, never as the model's own.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from trm_edge.errors import TRMEdgeError

MAX_VIEWS = 1024     # views per puzzle at most (also the bundle schema's bound)


def _count(value, what: str, low: int = 1, high: int = 1 << 30) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise TRMEdgeError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def _sigmoid(x: float) -> float:
    """sigmoid in double with the C library's exp (math.exp), as the native runner computes it."""
    try:
        return 1.0 / (1.0 + math.exp(-x))
    except OverflowError:       # exp(-x) beyond double: the C library gives inf, so 0
        return 0.0


def tally(keys: list, q) -> list[tuple[object, int, float, int]]:
    """The reference's ranking of answers: (key, count, mean sigmoid(q_halt), first view position),
    sorted by (count, mean q) descending; equal ones keep the order in which they first appear.
    sigmoid(q) in float64, summed in view order, as the reference's evaluator and the runner do."""
    stats: dict[bytes, list] = {}
    for i, (k, p) in enumerate(zip(keys, (_sigmoid(float(x)) for x in np.asarray(q, dtype=np.float32)))):
        s = stats.setdefault(k, [0, 0.0, i])
        s[0] += 1
        s[1] += p
    ranked = [(k, c, total / c, first) for k, (c, total, first) in stats.items()]
    return sorted(ranked, key=lambda r: (r[1], r[2]), reverse=True)     # stable: ties keep first-seen order


class Decision:
    name = ""

    def __init__(self, agree=None, wave=None, budget=None, verify=False):
        self.agree = _count(agree, "agree (finished views that must agree)")
        self.wave = _count(wave, "wave (views launched at a time)", high=MAX_VIEWS)
        self.budget = _count(budget, "budget (view-steps per puzzle)")
        if not isinstance(verify, bool):
            raise TRMEdgeError(f"verify is true or false, got {verify!r}")
        self.verify = verify

    @property
    def exact(self) -> bool:
        """True when stopping early never changes the answer a full run of the same views would choose."""
        return self.budget is None and not self.verify

    def first(self, views: int) -> int:
        """Views launched at the start (and at each later wave)."""
        return views if self.wave is None else min(self.wave, views)

    def done(self, keys: list[bytes], q: np.ndarray, running: int, unlaunched: int, verified=None) -> bool:
        """Whether a puzzle stops now, given its finished views' answer keys and q_halt logits (in
        view order), its running views and the views not launched yet. `verified` [n] bool: the
        verifier's verdict per finished view (None without one)."""
        if self.verify and verified is not None and np.any(verified):
            return True
        return running == 0 and unlaunched == 0

    def choose(self, keys: list[bytes], q: np.ndarray, verified=None) -> int:
        """The position (into keys) of the answer the puzzle takes."""
        raise NotImplementedError

    def pick(self, keys, q, verified=None) -> int:
        """choose(), but with a verifier a rule-keeping answer goes first (then this policy's choice among them)."""
        if self.verify and verified is not None and np.any(verified):
            ok = np.flatnonzero(verified)
            return int(ok[self.choose([keys[i] for i in ok], np.asarray(q)[ok])])
        return self.choose(keys, q)

    def to_manifest(self) -> dict:
        d = {"policy": self.name}
        for k in ("agree", "wave", "budget"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.verify:
            d["verify"] = True
        return d

    def describe(self) -> str:
        """A short label for tables: 'consensus, 2 agree, waves of 2, budget 24, verifier'."""
        parts = [self.name, self.agree and f"{self.agree} agree", self.wave and f"waves of {self.wave}",
                 self.budget and f"budget {self.budget}", self.verify and "verifier"]
        return ", ".join(p for p in parts if p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_manifest().items() if k != 'policy')})"


class WithoutAgree(Decision):
    """A policy that waits for every view: `agree` is consensus's."""

    def __init__(self, agree=None, wave=None, budget=None, verify=False):
        if agree is not None:
            raise TRMEdgeError("agree belongs to the consensus and best policies; use --policy consensus --agree M")
        super().__init__(None, wave, budget, verify)


class Vote(WithoutAgree):
    name = "vote"

    def choose(self, keys, q, verified=None):
        return tally(keys, q)[0][3]


class BestQ(WithoutAgree):
    name = "best_q"

    def choose(self, keys, q, verified=None):
        return int(np.argmax(np.asarray(q, dtype=np.float64)))     # first of the highest


class Consensus(Vote):
    name = "consensus"

    def __init__(self, agree=None, wave=None, budget=None, verify=False):
        Decision.__init__(self, agree, wave, budget, verify)

    @property
    def exact(self) -> bool:
        return super().exact and self.agree is None

    def done(self, keys, q, running, unlaunched, verified=None):
        if super().done(keys, q, running, unlaunched, verified):
            return True
        if not keys:
            return False
        counts = sorted((r[1] for r in tally(keys, q)), reverse=True)
        if self.agree is not None and counts[0] >= self.agree:
            return True
        runner_up = counts[1] if len(counts) > 1 else 0
        return counts[0] > runner_up + running + unlaunched     # no vote still to come can change the winner


class Best(Consensus):
    name = "best"

    @staticmethod
    def _best(keys) -> tuple[int | None, list]:
        from trm_edge.runtime.same import score
        s = [score(k) for k in keys]
        scored = [v for v in s if v is not None]
        return (min(scored) if scored else None), s

    def done(self, keys, q, running, unlaunched, verified=None):
        if Decision.done(self, keys, q, running, unlaunched, verified):
            return True
        if self.agree is None:
            return False                  # exact: every view runs, since a later one may score better
        top, s = self._best(keys)
        if top is None:
            return super().done(keys, q, running, unlaunched, verified)
        return s.count(top) >= self.agree

    def choose(self, keys, q, verified=None):
        top, s = self._best(keys)
        if top is None:
            return super().choose(keys, q)
        return next(r[3] for r in tally(keys, q) if s[r[3]] == top)


DECISIONS: dict[str, type[Decision]] = {d.name: d for d in (Vote, BestQ, Consensus, Best)}


def decision(policy: str | Decision = "vote", **options) -> Decision:
    """A Decision from its name and options (agree, wave, budget, verify), or the one given."""
    if isinstance(policy, Decision):
        return policy
    if not isinstance(policy, str) or policy not in DECISIONS:
        shown = repr(policy) if len(repr(policy)) <= 40 else repr(policy)[:37] + "..."
        raise TRMEdgeError(f"policy must be one of {', '.join(DECISIONS)}, got {shown}")
    return DECISIONS[policy](**{k: v for k, v in options.items() if v is not None and v is not False})


# What `--views K` runs when no policy option is given (CLI, Bundle, checkpoints, the C++ runner and JNI
# through the manifest, which export copies this into as `views.recommended`): the policy of the row
# with the largest from_views at most K. Chosen from the measured front (benchmarks/RESULTS.md, "Views
# by default"; benchmarks/views_default.py): consensus stopping at the first 2 agreeing views, launched
# 2 at a time, solved as many of 100 hard minimal Sudoku as the full vote at 2, 4 and 8 views (82%, 96%,
# 100%) for 0.70x of the vote's view-steps at 4 and 0.40x at 8
# (benchmarks/results/views-hard-tflite-int8/views.md); measured again live on 60 other hard puzzles:
# 8 views 100% in 0.47x the time of the reference's one fixed-16 view (71.7%), and 100% of 200 moderate
# puzzles at 2.56 view-steps (benchmarks/results/views-default*/views.md).
RECOMMENDED: tuple[dict, ...] = (
    {"from_views": 2, "policy": {"policy": "consensus", "agree": 2, "wave": 2}},
)


def recommended(k: int, rows=RECOMMENDED, fallback: dict | None = None) -> Decision | None:
    """The decision policy for K views with no policy given: the row of the largest from_views <= K,
    else `fallback` (a manifest's own policy), else None (the caller's default, the vote)."""
    row = next((r for r in sorted(rows or (), key=lambda r: -r["from_views"]) if r["from_views"] <= k), None)
    chosen = row["policy"] if row else fallback
    return None if chosen is None else from_manifest(chosen)


def from_manifest(d: dict) -> Decision:
    """The decision policy a manifest's `views` names (schema-checked before this is called)."""
    return decision(d["policy"], **{k: d.get(k) for k in ("agree", "wave", "budget", "verify")})
