"""The C++ runner makes the decisions Python makes, with views: hard 9x9 Sudoku (minimal, not
solvable by singles, a seed no model saw) or a built dataset's test split of any task (--data: the
Maze card's held-out mazes), K views each, every decision policy, through one ExecuTorch bundle in
trm_edge.runtime and in export/executorch/runner's trm-runner. Prints per policy how many puzzles
agree on the answer, the steps of every view, the finished views and the chosen view, and the solved
share (the task's checker: a Maze answer is solved by any shortest path); writes the JSON to --out.

    python benchmarks/views_native.py --bundle bundles/sudoku-executorch-fp32 --runner build/runner-x86_64 \\
        [--puzzles 100] [--views 8] [--seed 404]
    python benchmarks/views_native.py --bundle bundles/maze-executorch-fp32 --runner build/runner-x86_64 \\
        --data runs/card-data/maze-15-200 --out benchmarks/results/views_native_maze.json

(`trm-edge export --target executorch` makes the bundle; `bash export/executorch/runner/build.sh
x86_64 build/runner-x86_64` the runner.)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from trm_edge.atomic import write_json
from trm_edge.data import checker, sudoku
from trm_edge.evaluate import test_split
from trm_edge.runtime.bundle import Bundle
from trm_edge.runtime.decide import decision

POLICIES = {   # label -> (decision name, options, runner arguments)
    "vote": ("vote", {}, ["--policy", "vote"]),
    "best_q": ("best_q", {}, ["--policy", "best_q"]),
    "consensus": ("consensus", {}, ["--policy", "consensus"]),
    "consensus, 2 agree, waves of 2": ("consensus", {"agree": 2, "wave": 2}, ["--policy", "consensus", "--agree", "2", "--wave", "2"]),
    "vote, budget 24": ("vote", {"budget": 24}, ["--policy", "vote", "--budget", "24"]),
    "best, 3 agree, waves of 2": ("best", {"agree": 3, "wave": 2}, ["--policy", "best", "--agree", "3", "--wave", "2"]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--runner", required=True, help="folder holding trm-runner (build.sh's output)")
    ap.add_argument("--puzzles", type=int, default=100)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--seed", type=int, default=404)
    ap.add_argument("--data", help="a built dataset (test/ split) of the bundle's task instead of generated hard Sudoku")
    ap.add_argument("--out", default="benchmarks/results/views_native.json")
    a = ap.parse_args()

    b = Bundle(a.bundle)
    if a.data:
        _, _, puzzles, solutions, _ = test_split(a.data, a.puzzles, b.config, b.task)
    else:
        d = sudoku.generate(a.puzzles, 9, seed=a.seed, difficulty="hard", progress=True)
        puzzles, solutions = sudoku.to_tokens(d["puzzles"]), sudoku.to_tokens(d["solutions"])
    check = checker(b.task, solutions)
    results = {"bundle": a.bundle, "backend": b.backend, "puzzles": len(puzzles), "views": a.views,
               "data": a.data or f"hard 9x9 Sudoku, seed {a.seed}", "policies": {}}
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "puzzles.txt"
        f.write_text("\n".join(",".join(map(str, t)) for t in puzzles) + "\n")
        for label, (name, opts, args) in POLICIES.items():
            t0 = time.perf_counter()
            want = b.solve(puzzles, views=a.views, decide=decision(name, **opts))
            py_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = subprocess.run([str(Path(a.runner) / "trm-runner"), a.bundle, "--puzzle-file", str(f), "--json",
                                "--views", str(a.views), *args], capture_output=True, text=True, check=True)
            cc_s = time.perf_counter() - t0
            got = [json.loads(line) for line in r.stdout.splitlines()]
            agree = sum(g["answer"] == want.predictions[i].tolist() and g["view_steps"] == want.view_steps[i].tolist()
                        and g["finished"] == want.finished[i].tolist() and g["chosen_view"] == int(want.chosen[i])
                        for i, g in enumerate(got))
            solved = float(check(puzzles, want.predictions).mean())
            row = {"agree": agree, "of": len(got), "solved": solved, "view_steps": float(want.steps.mean()),
                   "python_s": py_s, "runner_s": cc_s}
            results["policies"][label] = row
            print(f"{label:32s} agree {agree}/{len(got)}  solved {solved:.1%}  {row['view_steps']:.1f} view-steps  "
                  f"python {py_s:.0f} s, runner {cc_s:.0f} s", flush=True)
    write_json(Path(a.out), results)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
