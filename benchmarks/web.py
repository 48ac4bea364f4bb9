"""Benchmark an ONNX bundle in the browser: the demo page (export/web/) in headless Chromium, wasm backend.

    python benchmarks/web.py [--bundle BUNDLE] [--threads 1,2] [--puzzles 100] [--reps 50] [--views 8]
                             [--out benchmarks/results/web]

For each thread count, `trm-edge web BUNDLE` serves the page (cross-origin isolated, so wasm may run
threads) and one Chromium opens it with ?backend=wasm&threads=T. Through the page's own solve it times:
single steps at batch 1 (fixed halting, after warm-up steps: ms_step_p50/p90 and ms_puzzle_fixed, the
bundle's max steps of them), N puzzles with q_halt halting and one view (accuracy: answers that keep the
rules, mean_steps, ms_puzzle_q_halt) and, with --views K, the same puzzles with K views and the policy the
bundle recommends for K (views_accuracy, view_steps, ms_puzzle_views). One row per thread count, schema
trm-edge-bench/1 (runner "web", device: the browser and backend), appended to OUT/bench.json with
bench.md (trm_edge.bench.append_rows). Run it on an otherwise idle machine: it measures latency.
Needs chromium, node and `npm ci --prefix export/web`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "export" / "web" / "tools" / "drive.mjs"
SHIPPED = REPO / "trm_edge" / "models" / "sudoku-onnx-int8"


def fail(message: str) -> None:
    print(f"web bench: {message}", file=sys.stderr)
    raise SystemExit(2)


def serve(bundle: Path) -> tuple[subprocess.Popen, str]:
    """`trm-edge web BUNDLE --port 0`: the process and its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "trm_edge.cli", "web", str(bundle), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.terminate()
        fail(f"trm-edge web did not start: {(line + proc.stderr.read()).strip()}")
    return proc, "http://" + line.split("http://", 1)[1].split()[0]


def drive(chromium: str, url: str, actions: list[dict], timeout_s: int) -> list:
    job = {"chromium": chromium, "url": url, "timeout_s": timeout_s, "actions": actions}
    r = subprocess.run(["node", str(DRIVER)], input=json.dumps(job), capture_output=True, text=True,
                       timeout=timeout_s + 60)
    if r.returncode != 0:
        fail(f"the browser run failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    out = json.loads(r.stdout)["results"]
    for res in out:
        if isinstance(res, dict) and set(res) == {"error"}:
            fail(f"the page failed: {res['error']}")
    return out


def browser_version(chromium: str) -> str:
    r = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60)
    words = r.stdout.split()
    return next((w for w in words if w[:1].isdigit()), "?")


def append(out: Path, settings: dict, rows: list[dict]) -> None:
    """Append rows to OUT/bench.json (made if absent, with the run's settings, which bench.md's views table
    reads) and rewrite bench.md: trm_edge.bench's schema and table (its plot needs a GEMM peak, which a
    browser run does not measure)."""
    import time
    from dataclasses import asdict

    from trm_edge.atomic import write_json, write_text
    from trm_edge.bench import SCHEMA, Row, markdown
    path = out / "bench.json"
    if path.exists():
        try:
            res = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            fail(f"{path} is not valid JSON ({e.msg}, line {e.lineno}): fix or move it")
        if res.get("schema") != SCHEMA:
            fail(f"{path} has schema {res.get('schema')!r}, not {SCHEMA}: give another --out")
    else:
        res = {"schema": SCHEMA, "date": time.strftime("%Y-%m-%d %H:%M"), "rows": []}
    res.setdefault("settings", settings)
    res["rows"] += [asdict(Row(**r)) for r in rows]
    write_json(path, res)
    write_text(out / "bench.md", markdown(res))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=SHIPPED, help="an ONNX bundle [the shipped Sudoku int8 one]")
    ap.add_argument("--threads", default="1,2", help="wasm thread counts, comma-separated [1,2]")
    ap.add_argument("--puzzles", type=int, default=100, help="puzzles solved with q_halt halting [100]")
    ap.add_argument("--reps", type=int, default=50, help="single steps timed at batch 1 [50]")
    ap.add_argument("--warmup", type=int, default=5, help="steps run before timing [5]")
    ap.add_argument("--views", type=int, default=8, help="views for the views columns (0: none) [8]")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "web", help="bench.json to append to")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds one browser run may take [1800]")
    a = ap.parse_args(argv)

    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if chromium is None or shutil.which("node") is None:
        fail("needs chromium and node: apt-get install chromium nodejs, then npm ci --prefix export/web")
    try:
        threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        fail(f"--threads takes comma-separated integers, got {a.threads!r}")
    if any(t < 1 for t in threads) or a.puzzles < 1 or a.reps < 1 or a.warmup < 0 or a.views < 0:
        fail("--threads, --puzzles and --reps must be 1 or more; --warmup and --views 0 or more")

    from trm_edge.runtime.decide import from_manifest
    from trm_edge.data import codec as make_codec, sample_puzzles
    from trm_edge.runtime.manifest import BundleError, read_manifest
    try:
        m = read_manifest(a.bundle)
    except BundleError as e:
        fail(str(e))
    c = m["trm_config"]
    cod = make_codec(m.get("task"), c["seq_len"], c["vocab_size"])
    puzzles = np.asarray(sample_puzzles(m.get("task"), c["seq_len"], c["vocab_size"], a.puzzles, seed=3), dtype=np.int64)
    version = browser_version(chromium)
    max_steps = m["halting"]["max_steps"]

    rows = []
    for t in threads:
        proc, url = serve(a.bundle)
        try:
            actions = [{"do": "info"},
                       {"do": "step_ms", "puzzle": puzzles[0].tolist(), "reps": a.reps, "warmup": a.warmup},
                       {"do": "solve", "puzzles": puzzles.tolist(), "options": {"views": 1}}]
            if a.views > 1:
                actions.append({"do": "solve", "puzzles": puzzles.tolist(), "options": {"views": a.views}})
            res = drive(chromium, f"{url}?nosw&backend=wasm&threads={t}", actions, a.timeout)
        finally:
            proc.terminate()
            proc.wait(10)
        info, steps, one = res[0], res[1], res[2]
        if info["threads"] != t:
            fail(f"the page ran {info['threads']} wasm thread(s), not {t} (cross-origin isolated: {info['isolated']})")
        ms = np.asarray(steps["ms"])
        solved = [bool(cod.satisfies(p, np.asarray(r["answer"]))) for p, r in zip(puzzles, one)]
        row = {"target": m["target"], "precision": m["precision"], "status": "ok", "runner": "web",
               "device": f"chromium {version} {info['label']}", "threads": t, "batch": 1, "bundle": str(a.bundle),
               "artifact_mb": sum(f["bytes"] for f in m["files"].values()) / 2**20,
               "accuracy": float(np.mean(solved)), "mean_steps": float(np.mean([r["steps"] for r in one])),
               "ms_step_p50": float(np.percentile(ms, 50)), "ms_step_p90": float(np.percentile(ms, 90)),
               "ms_puzzle_q_halt": float(np.mean([sum(r["ms"]) for r in one])),
               "ms_puzzle_q_halt_batch": float(np.mean([sum(r["ms"]) for r in one])),   # one puzzle at a time
               "ms_puzzle_fixed": float(np.percentile(ms, 50) * max_steps),
               "extra": {"step_reps": len(ms), "warmup_steps": a.warmup, "puzzles": len(puzzles),
                         "user_agent": steps["ua"], "backend": info["backend"], "isolated": info["isolated"],
                         "ms_puzzle_fixed": f"ms_step_p50 x {max_steps} steps"}}
        if a.views > 1:
            many = res[3]
            row |= {"views": a.views, "policy": from_manifest(many[0]["policy"]).describe(),
                    "views_accuracy": float(np.mean([bool(cod.satisfies(p, np.asarray(r["answer"])))
                                                     for p, r in zip(puzzles, many)])),
                    "view_steps": float(np.mean([r["steps"] for r in many])),
                    "ms_puzzle_views": float(np.mean([sum(r["ms"]) for r in many]))}
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("threads", "device", "ms_step_p50", "ms_step_p90", "ms_puzzle_q_halt",
                                              "accuracy", "mean_steps")}))
    settings = {"puzzles": len(puzzles), "batch": max(a.views, 1), "views": max(a.views, 1),
                "threshold": m["halting"].get("threshold", 0.5), "where": "browser, one puzzle at a time"}
    append(a.out, settings, rows)
    print(f"appended {len(rows)} row(s) to {a.out / 'bench.json'} (and bench.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
