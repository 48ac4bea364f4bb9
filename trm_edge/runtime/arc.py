"""Solve one ARC task on the device: its views from the bundle's task rows, voted (numpy only).

    from trm_edge.runtime.bundle import Bundle
    b = Bundle("bundles/arc-onnx-int8")                 # exported with --identifiers --tasks --views K
    result = b.solve_arc(json.load(open("00576224.json")), task_id="00576224")
    result["tests"][0]["attempts"]                       # pass@2: two grids, best first

A bundle exported with task rows (export/task_rows.py) lists, per task, K views: each a row of the
shipped puzzle table and the reference's descriptor `task|||t<dihedral>|||<colours>` (the identity
first). For every test input of the task, view v runs the input under its augmentation (colours
first, then the dihedral transform) with its own row as `puzzle_emb`, halts on its own (q_halt),
and its answer is cropped at the EOS as the reference's evaluator crops, mapped back, and voted with
the reference's ranking (evaluators/arc.py: most views, then the higher mean sigmoid(q_halt), ties in
view order): attempt 1 and 2 are pass@1 and pass@2. A decision policy (runtime/decide.py) may stop
a test input's views early (consensus); the default is the reference's full vote.
"""
from __future__ import annotations

import numpy as np

from trm_edge.data.arc import Augmentation, ArcView, canvas_side, check_grid, decode_grid, encode_grid
from trm_edge.errors import PuzzleError
from trm_edge.runtime.decide import tally


def read_task(task) -> dict:
    """An ARC task as JSON data ({"train": [...], "test": [{"input": grid, "output"?: grid}, ...]}), checked:
    grids of 1..30 x 1..30 cells, colours 0-9; a one-line PuzzleError naming what is wrong otherwise."""
    if not isinstance(task, dict) or not isinstance(task.get("test"), list) or not task["test"]:
        raise PuzzleError("an ARC task is a JSON object with a non-empty \"test\" list of {\"input\": grid}; "
                          "give the task's JSON as ARC ships it")
    tests = []
    for i, pair in enumerate(task["test"]):
        if not isinstance(pair, dict) or "input" not in pair:
            raise PuzzleError(f"test {i} of the ARC task has no \"input\" grid; give {{\"input\": [[...], ...]}}")
        try:
            inp = check_grid(pair["input"])
            out = None if pair.get("output") is None else check_grid(pair["output"])
        except PuzzleError as e:
            raise PuzzleError(f"test {i} of the ARC task: {e}") from None
        tests.append((inp, out))
    return {"tests": tests}


def task_views(bundle, task_id: str, views: int | None = None) -> tuple[list[ArcView], np.ndarray]:
    """The first `views` (default all) of a task's views as listed in the bundle, and their table rows."""
    tr = bundle.manifest.get("task_rows")
    if tr is None:
        raise PuzzleError("this bundle ships no task rows (a blank puzzle row solves nothing on ARC); export it "
                          "with --identifiers identifiers.json --tasks all-test|ID,... --views K")
    entry = next((t for t in tr["tasks"] if t["id"] == task_id), None)
    if entry is None:
        shown = ", ".join(t["id"] for t in tr["tasks"][:4])
        raise PuzzleError(f"task {task_id!r} is not in this bundle ({len(tr['tasks'])} tasks: {shown}"
                          f"{', ...' if len(tr['tasks']) > 4 else ''}); re-export with --tasks {task_id}")
    listed = entry["views"]
    k = len(listed) if views is None else views
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(listed):
        raise PuzzleError(f"task {task_id!r} has {len(listed)} views in this bundle, not {views!r}; ask for 1 to "
                          f"{len(listed)} or re-export with --views {views}")
    out = []
    for v in listed[:k]:
        _, aug = Augmentation.from_reference_name(v["name"])
        out.append(ArcView(augmentation=aug, describe={"name": v["name"], "row": v["row"]}))
    return out, np.array([v["row"] for v in listed[:k]], dtype=np.int64)


def solve_arc(bundle, task, task_id: str, views: int | None = None, decide=None, halting=None,
              threshold: float | None = None, max_steps: int | None = None, attempts: int = 2) -> dict:
    """Every test input of `task` through the bundle's views of `task_id`, voted. Returns {"task":
    task_id, "views": K, "tests": [{"attempts": [grid, ...] (best first, up to `attempts`), "votes":
    [[count, mean sigmoid(q_halt)], ...], "view_steps": [...], "correct@1"/"correct@2" where the test
    gives its output}], "pass@1"/"pass@2" (the share of test inputs solved, where outputs are given)}."""
    tests = read_task(task)["tests"]
    vs, rows = task_views(bundle, task_id, views)
    side = canvas_side(bundle.seq_len)                                  # 30, or a --canvas model's N
    try:
        tokens = np.stack([encode_grid(inp, canvas=side) for inp, _ in tests])
    except PuzzleError as e:
        raise PuzzleError(f"task {task_id}: {e}") from None
    pe = bundle.puzzle_emb(rows)                                        # [K, ndim]
    pe = np.broadcast_to(pe, (len(tests), *pe.shape))                   # [tests, K, ndim]: a row per view
    sol = bundle.solve(tokens, puzzle_emb=pe, views=vs, decide=decide or "vote", halting=halting,
                       threshold=threshold, max_steps=max_steps)
    out = {"task": task_id, "views": len(vs), "decision": sol.decision.to_manifest(), "tests": []}
    for i, (_, truth) in enumerate(tests):
        done = np.flatnonzero(sol.finished[i])
        ranked = tally([sol.view_answers[i, v].tobytes() for v in done], sol.view_q[i, done])
        grids = [decode_grid(sol.view_answers[i, done[first]]) for _, _, _, first in ranked[:attempts]]
        t = {"attempts": [None if g is None else g.tolist() for g in grids],
             "votes": [[int(c), round(float(q), 6)] for _, c, q, _ in ranked[:attempts]],
             "view_steps": [int(s) for s in sol.view_steps[i]], "total_view_steps": int(sol.steps[i])}
        if truth is not None:
            hits = [g is not None and g.shape == truth.shape and np.array_equal(g, truth) for g in grids]
            t.update({f"correct@{k}": bool(any(hits[:k])) for k in (1, 2) if k <= attempts})
        out["tests"].append(t)
    for k in (1, 2):
        scored = [t[f"correct@{k}"] for t in out["tests"] if f"correct@{k}" in t]
        if scored:
            out[f"pass@{k}"] = sum(scored) / len(scored)
    return out
