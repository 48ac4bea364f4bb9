"""Halting policies: after each supervision step, which rows of the batch stop (numpy only).

A policy is one class here plus one row of POLICIES. The host loop (loop.solve) asks `stop` after
every step; `replay` runs the SAME `stop` over a recorded fixed-steps trace, so evaluate, bench and
parity read any policy off one recorded run instead of re-running it. A bundle's manifest names
its policy (`to_manifest`), and `from_manifest` reads it back.

    fixed   no row stops before max_steps: the reference's evaluation, reproduced exactly.
    q_halt  a row stops after the first step where sigmoid(q_halt) > threshold (the Q head's
            "I am done"); halted rows leave the batch (compaction), so later steps cost less.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from trm_edge.errors import TRMEdgeError


class Halting:
    name = ""

    def stop(self, step: int, q_halt: np.ndarray) -> np.ndarray:
        """bool [rows]: the rows (given their q_halt logits after supervision step `step`: an int, or each
        row's own steps as an array when views start at different times) that stop now."""
        raise NotImplementedError

    def to_manifest(self) -> dict:
        return {"policy": self.name}

    def replay(self, q_halt: np.ndarray) -> np.ndarray:
        """Steps each row would run (1..S) given q_halt [S, n] recorded over S fixed steps: the live loop's
        decisions, made by the same `stop`, on a trace."""
        q = np.asarray(q_halt, dtype=np.float32)
        S, n = q.shape
        steps = np.full(n, S, dtype=np.int64)
        active = np.arange(n)
        for s in range(1, S):
            if not len(active):
                break
            done = self.stop(s, q[s - 1, active])
            steps[active[done]] = s
            active = active[~done]
        return steps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_manifest().items() if k != 'policy')})"


class Fixed(Halting):
    name = "fixed"

    def __init__(self, threshold: float | None = None):    # takes (and ignores) a threshold, as every policy
        pass

    def stop(self, step, q_halt):
        return np.zeros(np.shape(q_halt), dtype=bool)


class QHalt(Halting):
    name = "q_halt"

    def __init__(self, threshold: float = 0.5):
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 < float(threshold) < 1.0:
            raise TRMEdgeError(f"threshold is a probability strictly between 0 and 1, got {threshold!r}")
        self.threshold = float(threshold)
        self.logit = math.log(self.threshold / (1.0 - self.threshold))   # sigmoid(q) > t  <=>  q > logit(t)

    def stop(self, step, q_halt):
        return np.asarray(q_halt) > self.logit

    def to_manifest(self):
        return {"policy": self.name, "threshold": self.threshold}


POLICIES: dict[str, type[Halting]] = {p.name: p for p in (Fixed, QHalt)}


def policy(halting: str | Halting = "q_halt", threshold: float = 0.5) -> Halting:
    """A Halting from its name (and threshold), or the policy given; a TRMEdgeError for anything else."""
    if isinstance(halting, Halting):
        return halting
    if not isinstance(halting, str) or halting not in POLICIES:
        shown = repr(halting) if len(repr(halting)) <= 40 else repr(halting)[:37] + "..."
        raise TRMEdgeError(f"halting must be one of {', '.join(POLICIES)}, got {shown}")
    return POLICIES[halting](threshold)


def from_manifest(h: dict) -> Halting:
    """The policy a manifest's `halting` names (schema-checked before this is called)."""
    return policy(h["policy"], h.get("threshold", 0.5))
