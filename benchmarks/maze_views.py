"""The Maze model's views policies, priced on one recorded run (issue 16): every view of every maze for
all 16 steps (PyTorch eager fp32, trm_edge/pareto.py `record`), then each policy replayed on it at
q_halt 0.5, with answers compared as identical cells (the Sudoku default's way) or by the Maze task's
rule (runtime/same.py `path`: equal-length paths are one answer; `best`: the shortest drawn path wins).
Writes the trace (`--trace`, reused when it exists), views.md and views.json into --out, and with
`--fixture N` the first N mazes' trace as tests/fixtures/maze_views_trace.npz (tests/test_same.py).

    python benchmarks/maze_views.py --mazes 200 --trace runs/maze-views/trace.npz --out runs/maze-views \\
        --fixture 64

The mazes are the first --mazes of the model card's held-out set (benchmarks/model_card.py, maze-15:
15x15, shortest path longer than 28 steps, seed 7). Recording 200 mazes took 24 min on the 2-core VM.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

POLICIES = (   # (label, decision name, options, answers compared by the task's rule)
    ("consensus, 2 agree, waves of 2 (identical answers)", "consensus", {"agree": 2, "wave": 2}, False),
    ("vote (identical answers)", "vote", {}, False),
    ("consensus, 2 agree, waves of 2 (equal-length paths agree)", "consensus", {"agree": 2, "wave": 2}, True),
    ("vote (equal-length paths agree)", "vote", {}, True),
    ("best, 2 agree, waves of 2", "best", {"agree": 2, "wave": 2}, True),
    ("best, 3 agree, waves of 2", "best", {"agree": 3, "wave": 2}, True),
    ("best (every view)", "best", {}, True),
)


def _save(path, arrays: dict) -> None:
    with open(path, "wb") as f:                 # a file object: numpy adds no .npz to the temporary name
        np.savez_compressed(f, **arrays)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/maze.safetensors")
    ap.add_argument("--mazes", type=int, default=200)
    ap.add_argument("--trace", required=True, help="the recorded run (.npz): read if it exists, else recorded here")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fixture", type=int, help="also write the first N mazes' trace as the test fixture")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import trm_edge
    from trm_edge import pareto
    from trm_edge.atomic import atomic_write, write_json, write_text
    from trm_edge.data import lookup, maze
    from trm_edge.evaluate import test_split
    from trm_edge.runtime.decide import decision
    from trm_edge.runtime.loop import replay
    from trm_edge.runtime.same import key

    from model_card import build
    trace = Path(a.trace)
    solver = trm_edge.open(a.model, threads=a.threads)
    t = lookup("maze")
    if trace.exists():
        rec = dict(np.load(trace))
    else:
        data = build("maze-15", max(a.mazes, 1000), Path("runs/card-data"))
        _, _, inputs, _, _ = test_split(data, a.mazes, solver.config, solver.task)
        r = pareto.record(solver, inputs, None, 8, solver.max_steps, 256)
        rec = {"predictions": r["predictions"], "q_halt": r["q_halt"], "inputs": inputs}
        atomic_write(trace, lambda tmp: _save(tmp, rec))
    pr, q, x = rec["predictions"][:, :a.mazes].astype(np.int64), rec["q_halt"][:, :a.mazes], rec["inputs"][:a.mazes]
    seq_len = x.shape[1]
    views, path_key = t.views(8, seq_len), key(t.same_answer(seq_len))
    rows = []
    for label, name, opts, by_rule in POLICIES:
        d = decision(name, **opts)
        sol = replay(pr, q, x, views, halting="q_halt", threshold=0.5, decide=d, same=path_key if by_rule else None)
        rows.append({"policy": label, "decision": d.to_manifest(), "by_rule": by_rule, "exact": d.exact,
                     "solved": float(maze.check(x, sol.predictions).mean()), "view_steps": float(sol.steps.mean())})
    one = maze.check(x, views[0].answer(pr[-1, :, 0])).mean()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"{len(x)} held-out 15x15 mazes (model card set, seed 7), `{a.model}`, 8 views, q_halt 0.5; "
             f"one view at fixed 16 steps: {100 * one:.1f}%", "",
             "| policy | solved | view-steps | exact |", "|---|---|---|---|"]
    lines += [f"| {r['policy']} | {100 * r['solved']:.1f}% | {r['view_steps']:.2f} | {'yes' if r['exact'] else 'no'} |"
              for r in rows]
    write_text(out / "views.md", "\n".join(lines) + "\n")
    write_json(out / "views.json", {"model": a.model, "mazes": len(x), "rows": rows})
    print("\n".join(lines))
    if a.fixture:
        fixture = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "maze_views_trace.npz"
        atomic_write(fixture, lambda tmp: _save(tmp, {"predictions": rec["predictions"][:, :a.fixture],
                                                      "q_halt": rec["q_halt"][:, :a.fixture],
                                                      "inputs": rec["inputs"][:a.fixture]}))


if __name__ == "__main__":
    main()
