"""When two views' answers are the same answer (numpy only): the key the views' decision counts.

Views compare answers after mapping them back (runtime/decide.py). By default two answers are the
same when every cell is (rule `cells`). Some tasks grade answers by what they are, not cell by cell:
a maze is solved by ANY shortest path, and views trained in their own frames draw different paths
of the same length through the same maze, so an exact vote splits them and the puzzle loses answers
that are equally good. Rule `path` counts them together. A bundle's manifest names its rule in
`views.same`; the native runner (export/executorch/runner/views.cpp) and the web runtime
(export/web/trm.js) implement the same rules. One function here plus one row of RULES.

    cells  the answers' tokens, all of them (absent `views.same` means this)
    path   {"rule": "path", "open": o, "path": p, "ends": [s, g]} on a square grid: an answer that keeps
           the puzzle (cells not `open` unchanged, `open` cells `open` or `path`) and whose `path` cells
           form ONE simple 4-connected path from the `s` cell to the `g` cell (with them: a path from s
           to g exactly as long as its marked cells + 1) keys as ("path", its length); any other answer by
           its cells. Only the answer's own cells are read: no search of the puzzle for the shortest path.

A key may carry a score (`score`: lower is better; None: none), the task's own objective read off the
answer: a path's length. The `best` decision (runtime/decide.py) takes the best-scored answer.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from trm_edge.errors import TRMEdgeError


def cells(puzzle, answer) -> bytes:
    return np.ascontiguousarray(answer, dtype=np.int64).tobytes()


def path(puzzle, answer, open: int, path: int, ends) -> bytes | tuple:
    p, a = np.asarray(puzzle, dtype=np.int64), np.asarray(answer, dtype=np.int64)
    raw = cells(p, a)
    side = math.isqrt(p.size)
    free = p == open
    if side * side != p.size or not np.where(free, (a == open) | (a == path), a == p).all():
        return raw
    where = [np.flatnonzero(p == e) for e in ends]
    if any(len(w) != 1 for w in where):
        return raw
    start, goal = int(where[0][0]), int(where[1][0])
    marked = int((free & (a == path)).sum())
    route = (free & (a == path)) | (p == ends[0]) | (p == ends[1])
    dist = {start: 0}
    todo = deque([start])
    while todo:                          # BFS from s over the answer's route: its distance to g
        c = todo.popleft()
        r, k = divmod(c, side)
        for n, ok in ((c - side, r > 0), (c + side, r < side - 1), (c - 1, k > 0), (c + 1, k < side - 1)):
            if ok and route[n] and n not in dist:
                dist[n] = dist[c] + 1
                todo.append(n)
    if dist.get(goal) != marked + 1:
        return raw
    return ("path", marked)


def score(k) -> int | None:
    """A key's score, lower is better (a path's length), or None: an answer the rule cannot rank."""
    return k[1] if isinstance(k, tuple) else None


RULES = {"cells": (cells, ()), "path": (path, ("open", "path", "ends"))}


def rule_errors(same: dict | None, vocab_size: int) -> list[str]:
    """What is wrong with a `views.same` object (a manifest's, or a task's), in one line each."""
    if same is None:
        return []
    if not isinstance(same, dict) or same.get("rule") not in RULES:
        return [f"views.same.rule must be one of {', '.join(RULES)}, got {same.get('rule') if isinstance(same, dict) else same!r}"]
    fields = RULES[same["rule"]][1]
    errs = [f"views.same has an unknown key {k!r}" for k in same if k not in ("rule", *fields)]
    for k in fields:
        v = same.get(k)
        values = v if k == "ends" else [v]
        if (k == "ends" and (not isinstance(v, list) or len(v) != 2)) or not all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab_size for t in values):
            errs.append(f"views.same.{k} must be {'two tokens' if k == 'ends' else 'a token'} of 0..{vocab_size - 1}, "
                        f"got {v!r}")
    return errs


def key(same: dict | None):
    """The key function (puzzle [L], answer [L]) -> a hashable key of a `views.same` object (None: cells)."""
    if same is None:
        return cells
    errs = rule_errors(same, 1 << 30)
    if errs:
        raise TRMEdgeError(errs[0])
    fn, fields = RULES[same["rule"]]
    options = {k: same[k] for k in fields}
    return (lambda puzzle, answer: fn(puzzle, answer, **options)) if options else fn
