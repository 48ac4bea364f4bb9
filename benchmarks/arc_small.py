"""The small ARC model (models/arc10_cpu.yaml) scored as the reference scores it and as a phone would
run it (issue 15): pass@1 / pass@2 on the held-out test inputs of its evaluation tasks (the
reference's score: per task, the share of its test inputs whose truth is among the top 1 / 2
voted answers, averaged over tasks).

- the reference's evaluation: PyTorch eager fp32, every augmentation of the test split (the identity
  + 30 here, the reference's 1000 + 1 at its size), fixed 16 steps, voted (`trm-edge eval`);
- on the device: a bundle exported with the test tasks' rows (`--identifiers --tasks all-test --views
  16`), `Bundle.solve_arc` per task at K = 1, 4, 8, 16 views, q_halt halting, the full vote and the
  recommended consensus (2 agree, waves of 2): pass@1, pass@2, view-steps and ms per test input.

    python benchmarks/arc_small.py --model runs/arc10_cpu/model.safetensors [--data data/arc10] \\
        [--target onnx --quantize int8] [--threads 2] [--out benchmarks/results/arc10]

Writes arc10.json and arc10.md; run it on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="data/arc10")
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--quantize", default="int8")
    ap.add_argument("--views", default="1,4,8,16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-reference", dest="reference", action="store_false")
    ap.add_argument("--out", default="benchmarks/results/arc10")
    a = ap.parse_args()

    from trm_edge.checkpoint import load_checkpoint
    from trm_edge.evaluate import evaluate
    from trm_edge.export import task_rows
    from trm_edge.export.bundle import export_bundle
    from trm_edge.quiet import quiet
    from trm_edge.runtime.bundle import Bundle
    data, out = Path(a.data), Path(a.out)
    ks = [int(k) for k in a.views.split(",")]
    res = {"model": a.model, "data": str(data), "threads": a.threads, "rows": []}
    tests = json.loads((data / "test_puzzles.json").read_text())

    if a.reference:
        t0 = time.perf_counter()
        ev = evaluate(a.model, data, puzzles=10**9, thresholds=(0.5,), threads=a.threads, progress=True)
        v = ev["arc_vote"]
        res["reference"] = {"pass@1": v["pass@1"], "pass@2": v["pass@2"], "tasks": v["tasks"], "steps": ev["max_steps"],
                            "rows": ev["puzzles"], "seconds": time.perf_counter() - t0}
        print(f"reference (eager fp32, every augmentation, fixed {ev['max_steps']} steps): "
              f"pass@1 {v['pass@1']:.1%}, pass@2 {v['pass@2']:.1%} over {v['tasks']} tasks")

    m = load_checkpoint(a.model)
    bdir = Path("runs") / "arc10_bundles" / f"{Path(a.model).parent.name}-{a.target}-{a.quantize}"
    if not (bdir / "manifest.json").exists():
        plan = task_rows.plan(data / "identifiers.json", "all-test", max(ks), m.config.num_puzzle_identifiers,
                              m.config.puzzle_emb_ndim)
        with quiet() as say:
            export_bundle(m, a.target, bdir, a.quantize, log=say, task_rows=plan, accuracy_puzzles=0)
    b = Bundle(bdir, threads=a.threads)
    for k in ks:
        for policy in (("vote", None),) + ((("consensus, 2 agree, waves of 2", "recommended"),) if k >= 4 else ()):
            from trm_edge.runtime.decide import recommended
            decide = recommended(k) if policy[1] == "recommended" else "vote"
            p1, p2, steps, n_inputs = [], [], 0, 0
            t0 = time.perf_counter()
            for task_id, task in tests.items():
                r = b.solve_arc(task, task_id, views=k, decide=decide)
                p1.append(r["pass@1"])
                p2.append(r["pass@2"])
                steps += sum(t["total_view_steps"] for t in r["tests"])
                n_inputs += len(r["tests"])
            sec = time.perf_counter() - t0
            row = {"views": k, "policy": policy[0], "pass@1": float(np.mean(p1)), "pass@2": float(np.mean(p2)),
                   "view_steps_per_input": steps / n_inputs, "ms_per_input": 1e3 * sec / n_inputs,
                   "tasks": len(tests), "inputs": n_inputs}
            res["rows"].append(row)
            print(row, flush=True)
    res["backend"] = b.backend
    md = [f"{len(tests)} evaluation tasks of ARC-AGI-1 whose grids fit 10x10 ({res['rows'][0]['inputs']} test inputs), "
          f"model `{a.model}`, {a.threads} threads.", "",
          "| how | views | policy | pass@1 | pass@2 | view-steps / test input | ms / test input |", "|---|---|---|---|---|---|---|"]
    if "reference" in res:
        r = res["reference"]
        md.append(f"| the reference's evaluation: eager fp32, fixed {r['steps']} steps | every augmentation | vote | "
                  f"{r['pass@1']:.1%} | {r['pass@2']:.1%} | | |")
    for r in res["rows"]:
        md.append(f"| {b.backend} bundle, q_halt | {r['views']} | {r['policy']} | {r['pass@1']:.1%} | {r['pass@2']:.1%} | "
                  f"{r['view_steps_per_input']:.1f} | {r['ms_per_input']:.0f} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "arc10.json").write_text(json.dumps(res, indent=1))
    (out / "arc10.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
