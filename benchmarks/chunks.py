"""How big a chunk a streaming solve should use (runtime/solver.py CHUNK_ROWS): `trm-edge solve/run
--puzzle-file` over many puzzles, one view, q_halt, solved chunk by chunk (Solver.solve_stream) at
each chunk size, each size in a fresh process (so its peak RSS is its own): ms per puzzle and peak
RSS, for PyTorch eager fp32 (the shipped checkpoint) and the shipped ONNX int8 bundle.

    python benchmarks/chunks.py [--puzzles 1000] [--chunks 1,16,64,256,1000] [--threads 2] \\
        [--out benchmarks/results/chunks]

Writes chunks.json and chunks.md; run it on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def one(solver_path: str, puzzles: int, chunk: int, threads: int) -> dict:
    """In this (fresh) process: solve `puzzles` moderate 9x9 Sudoku in chunks of `chunk`."""
    import resource
    import time

    import numpy as np

    import trm_edge
    from trm_edge.data import sample_puzzles, sudoku
    tokens = sample_puzzles({"name": "sudoku", "size": 9}, 81, 11, puzzles, seed=99)
    s = trm_edge.open(solver_path, threads=threads)
    t0 = time.perf_counter()
    solved = 0
    for a, sol in s.solve_stream(tokens, views=1, chunk=chunk):
        solved += int(sudoku.TASK.check(tokens[a:a + len(sol.steps)], sol.predictions).sum())
    sec = time.perf_counter() - t0
    return {"backend": s.backend, "chunk": chunk, "ms_per_puzzle": 1e3 * sec / puzzles, "solved": solved / puzzles,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--puzzles", type=int, default=1000)
    ap.add_argument("--chunks", default="1,16,64,256,1000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/chunks")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)     # internal: SOLVER CHUNK, in a child process
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one[0], a.puzzles, int(a.one[1]), a.threads)))
        return
    from trm_edge.extras import SHIPPED_BUNDLE, SHIPPED_MODEL
    rows = []
    for path in (SHIPPED_MODEL, SHIPPED_BUNDLE):
        for c in (int(x) for x in a.chunks.split(",")):
            r = subprocess.run([sys.executable, __file__, "--one", str(path), str(c), "--puzzles", str(a.puzzles),
                                "--threads", str(a.threads)], capture_output=True, text=True, check=True)
            rows.append(json.loads(r.stdout.splitlines()[-1]))
            print(rows[-1], flush=True)
    md = [f"{a.puzzles} moderate 9x9 Sudoku (sample_puzzles seed 99), one view, q_halt, {a.threads} threads, "
          "each chunk size in a fresh process, one run each.", "",
          "| backend | chunk (puzzles) | ms / puzzle | peak RSS MB | solved |", "|---|---|---|---|---|"]
    md += [f"| {r['backend']} | {r['chunk']} | {r['ms_per_puzzle']:.1f} | {r['peak_rss_mb']:.0f} | {r['solved']:.1%} |"
           for r in rows]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from trm_edge.atomic import write_json
    write_json(out / "chunks.json", {"puzzles": a.puzzles, "threads": a.threads, "rows": rows})
    (out / "chunks.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
