"""The views default (issue 27, section 3): what `trm-edge run BUNDLE --views K` costs and solves with
no policy given (the recommended row, runtime/decide.py RECOMMENDED) against the other policies and
the reference's evaluation (PyTorch eager fp32, one view, fixed 16 steps), on hard 9x9 Sudoku
(minimal, not solvable by singles; --difficulty moderate for the shipped model's own kind) from a
generator seed no model saw. One run per row, in this
process, through the same calls `trm-edge run` makes (Bundle.solve_stream, chunks of 64 rows).

    python benchmarks/views_default.py [--bundle bundles/sudoku-tflite-int8] [--puzzles 60] [--seed 2027] \\
        [--difficulty hard] [--threads 2] [--out benchmarks/results/views-default]

Without --bundle it exports the shipped model to LiteRT int8 (bundles/sudoku-tflite-int8) first.
Writes views.json and views.md (the table, the new default in its first row); run it on an idle
machine (nothing else running: check with `ps`).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from trm_edge.atomic import write_json
from trm_edge.data import sudoku

ROWS = [   # (the command a user types, its solve() options)
    ("--views 8 (the default: consensus, 2 agree, waves of 2)", {"views": 8}),
    ("--views 8 --policy vote", {"views": 8, "decide": "vote"}),
    ("--views 8 --policy consensus", {"views": 8, "decide": "consensus"}),
    ("--views 4 (the default)", {"views": 4}),
    ("--views 4 --policy consensus --agree 1 --wave 1", {"views": 4, "decide": ("consensus", {"agree": 1, "wave": 1})}),
    ("--views 1 (one view, q_halt)", {"views": 1}),
]


def timed(solver, puzzles, **kw) -> dict:
    """One run as `trm-edge run` makes it: chunks of solve_stream; solved by the Sudoku rules."""
    from trm_edge.runtime.decide import decision
    d = kw.pop("decide", None)
    if isinstance(d, tuple):
        d = decision(d[0], **d[1])
    t0 = time.perf_counter()
    preds, steps = [], []
    for _, sol in solver.solve_stream(puzzles, decide=d, **kw):
        preds.append(sol.predictions)
        steps.append(sol.steps)
    s = time.perf_counter() - t0
    preds, steps = np.concatenate(preds), np.concatenate(steps)
    solved = sudoku.TASK.check(puzzles, preds)
    return {"solved": float(np.mean(solved)), "view_steps": float(steps.mean()), "seconds": s,
            "ms_per_puzzle": 1e3 * s / len(puzzles)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="a Sudoku bundle (default: the shipped model's LiteRT int8, exported if absent)")
    ap.add_argument("--puzzles", type=int, default=60)
    ap.add_argument("--seed", type=int, default=2027, help="the puzzle generator's seed")
    ap.add_argument("--difficulty", default="hard", choices=["hard", "minimal", "moderate"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/views-default")
    a = ap.parse_args()

    import trm_edge
    from trm_edge.extras import SHIPPED_MODEL
    from trm_edge.runtime.bundle import Bundle
    bundle = Path(a.bundle or "bundles/sudoku-tflite-int8")
    if a.bundle is None and not (bundle / "manifest.json").exists():
        from trm_edge.checkpoint import load_checkpoint
        from trm_edge.export.bundle import export_bundle
        from trm_edge.quiet import quiet
        with quiet() as say:
            export_bundle(load_checkpoint(SHIPPED_MODEL), "tflite", bundle, "int8", log=say, views=8)
    d = sudoku.generate(a.puzzles, 9, seed=a.seed, difficulty=a.difficulty, progress=True)
    puzzles = sudoku.to_tokens(d["puzzles"])
    b = Bundle(bundle, threads=a.threads)
    eager = trm_edge.open(SHIPPED_MODEL, threads=a.threads)

    base = timed(eager, puzzles, views=1, halting="fixed")
    print(f"reference: eager fp32, 1 view, fixed 16: {base['solved']:.1%} solved, {base['ms_per_puzzle']:.0f} ms/puzzle")
    rows = []
    for command, kw in ROWS:
        r = timed(b, puzzles, **dict(kw))
        r |= {"command": f"trm-edge run {bundle} {command}", "time_vs_reference": r["seconds"] / base["seconds"]}
        rows.append(r)
        print(f"{r['command']}: {r['solved']:.1%} solved, {r['view_steps']:.2f} view-steps, "
              f"{r['time_vs_reference']:.2f}x the reference's time")
    backend = b.backend
    what = {"hard": "hard minimal", "minimal": "minimal", "moderate": "moderate (31-45 givens)"}[a.difficulty]
    md = [f"{a.puzzles} {what} 9x9 Sudoku (sudoku.generate, difficulty {a.difficulty}, seed {a.seed}), {backend} bundle "
          f"`{bundle}`, {a.threads} threads, one run each; reference: PyTorch eager fp32, one view, fixed 16 steps "
          f"({base['solved']:.1%} solved, {base['ms_per_puzzle']:.0f} ms per puzzle).", "",
          "| command | solved | view-steps / puzzle | ms / puzzle | time vs reference |", "|---|---|---|---|---|"]
    md += [f"| `{r['command'].split(' ', 3)[3]}` | {r['solved']:.1%} | {r['view_steps']:.2f} | {r['ms_per_puzzle']:.0f} | "
           f"{r['time_vs_reference']:.2f}x |" for r in rows]
    md += [f"| reference: `trm-edge solve --halting fixed` (eager fp32, 1 view) | {base['solved']:.1%} | 16 | "
           f"{base['ms_per_puzzle']:.0f} | 1.00x |"]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "views.json", {"puzzles": a.puzzles, "difficulty": a.difficulty, "seed": a.seed,
                                    "bundle": str(bundle), "backend": backend,
                                    "threads": a.threads, "reference": base, "rows": rows})
    (out / "views.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
