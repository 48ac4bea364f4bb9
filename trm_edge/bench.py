"""`trm-edge bench`: one row per target and precision, measured in one run, PyTorch eager fp32 first.

For each row: export the bundle (or reuse one made from the same checkpoint), then measure it in a
fresh process (so peak RSS is that row's alone, and only that backend's runtime is loaded):

- ms per supervision step at batch 1 (p50, p90) and the GFLOP/s that is, also as a share of the
  machine's GEMM peak measured in the same run (large fp32 matmul; int8 where torch offers it);
- task accuracy (the task's checker) and mean steps with `q_halt` halting, puzzles/s at batch B
  with compaction (halted rows leave the batch);
- ms per puzzle at batch 1 with `q_halt` halting and with fixed `max_steps` steps;
- the baseline row also records solved share and halting rate after every step (the curves plot);
- with views K (a decision policy over K views of every puzzle, runtime/decide.py): every row's solved
  share, view-steps and ms per puzzle at batch B with the views, and on the baseline row the
  reference's own evaluation (one view, fixed max_steps steps, batch B) on the same puzzles.

Results: a rich table, `bench.json` (schema `trm-edge-bench/1`: rows any runner can append to),
`bench.md` and `bench.png`.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from trm_edge.targets import TARGETS

SCHEMA = "trm-edge-bench/1"
PRECISIONS = {t.name: t.precisions for t in TARGETS.values()}     # read off the targets table


@dataclass
class Row:
    target: str                  # "pytorch" for the eager baseline
    precision: str
    status: str                  # "ok" | "not run here" | "check failed" | "failed"
    reason: str = ""
    runner: str = "python"       # the native runner and device runs append rows with their own
    device: str = ""
    threads: int | None = None
    batch: int = 1               # the throughput batch
    bundle: str = ""
    artifact_mb: float | None = None
    export_s: float | None = None
    parity_max_abs_logits: float | None = None
    accuracy: float | None = None
    mean_steps: float | None = None
    ms_step_p50: float | None = None
    ms_step_p90: float | None = None
    ms_step_batch_p50: float | None = None     # one step over `batch` rows
    gflops_batch: float | None = None
    ms_puzzle_q_halt: float | None = None
    ms_puzzle_fixed: float | None = None
    puzzles_per_s: float | None = None
    peak_rss_mb: float | None = None
    gflops: float | None = None
    peak_fraction: float | None = None
    ms_puzzle_q_halt_batch: float | None = None   # 1 view, q_halt, batch B with compaction (1000 / puzzles_per_s)
    views: int | None = None                      # with views: K views of every puzzle decided by `policy`
    policy: str = ""
    views_accuracy: float | None = None
    view_steps: float | None = None               # view-steps per puzzle (the compute bought)
    ms_puzzle_views: float | None = None          # at batch B (B // K puzzles at a time)
    fixed_accuracy: float | None = None           # the reference's evaluation: 1 view, fixed S steps, batch B
    ms_puzzle_fixed_batch: float | None = None
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- the machine's limit

def gemm_peak(threads: int, n: int = 2048, seconds: float = 1.5) -> dict:
    """Best-of GFLOP/s of an n x n x n fp32 matmul (and int8 -> int32, GOP/s) with `threads` threads.

    Each kernel's size starts small and doubles up to n while one call takes under an eighth of
    `seconds`: where a kernel is slow (torch's int8 matmul without VNNI runs at ~1 GOP/s, 26 s for one
    2048^3 call) the peak is measured on a smaller matrix in about `seconds`, not in minutes."""
    import torch
    torch.set_num_threads(threads)

    def best(fn, make) -> tuple[float, int]:
        """(best rate, size) of fn(a, b) on size x size matrices from make(size)."""
        size = 256
        while True:
            a, b = make(size), make(size)
            t0 = time.perf_counter()
            fn(a, b)                                   # also the warm-up
            if size >= n or time.perf_counter() - t0 >= seconds / 8:
                break
            size *= 2
        rates, t_end = [], time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(rates) < 3:
            t0 = time.perf_counter()
            fn(a, b)
            rates.append(2 * size ** 3 / (time.perf_counter() - t0) / 1e9)
        return max(rates), size

    res = {"threads": threads}
    res["fp32_gflops"], res["n"] = best(torch.matmul, lambda k: torch.randn(k, k))
    try:
        res["int8_gops"], res["int8_n"] = best(torch._int_mm, lambda k: torch.randint(-128, 127, (k, k), dtype=torch.int8))
    except (RuntimeError, AttributeError):
        res["int8_gops"] = None
    return res


# --------------------------------------------------------------------------- one row, in a child

def measure(path: str, puzzles: np.ndarray, batch: int, threads: int, flops: int,
            step_seconds: float = 2.0, latency_puzzles: int = 20, fixed_puzzles: int = 3,
            curves: bool = False, threshold: float = 0.5, min_reps: int = 10,
            latency_only: bool = False, curve_puzzles: int = 200, labels: np.ndarray | None = None,
            views: int | None = None, decide=None, reference: bool = False) -> dict:
    """Everything measured for one row. Runs in its own process: peak RSS is this row's.
    views/decide: also solve every puzzle with K views and that decision policy at batch B; reference:
    also time the reference's evaluation (one view, fixed S steps) at batch B."""
    import trm_edge
    from trm_edge.data import checker
    from trm_edge.runtime import QHalt, broadcast_state, run_step

    solver = trm_edge.open(path, threads=threads)     # a checkpoint (PyTorch) or a bundle
    step, y0, z0, S = solver.step, solver.y_init, solver.z_init, solver.max_steps
    halt = QHalt(threshold)
    n = len(puzzles)
    pe = solver.puzzle_emb(np.zeros(n, np.int64))
    emb = lambda a, b: None if pe is None else pe[a:b]      # puzzle-embedding rows of puzzles a..b
    solve = lambda a, b, **kw: solver.solve(puzzles[a:b], puzzle_emb=emb(a, b), max_steps=S, **{"views": 1, **kw})
    res = {}

    def time_step(rows: int) -> np.ndarray:
        idx = np.arange(rows) % n
        tok, emb_rows = puzzles[idx], None if pe is None else pe[idx]
        y, z = broadcast_state(y0, rows, step.positions), broadcast_state(z0, rows, step.positions)
        for _ in range(2):
            run_step(step, tok, emb_rows, y, z)
        times, t_end = [], time.perf_counter() + step_seconds
        while (time.perf_counter() < t_end or len(times) < min_reps) and len(times) < 1000:
            t0 = time.perf_counter()
            run_step(step, tok, emb_rows, y, z)          # a fixed-batch model takes `rows` in chunks
            times.append(time.perf_counter() - t0)
        return np.array(times) * 1e3

    ms = time_step(1)
    res.update(ms_step_p50=float(np.percentile(ms, 50)), ms_step_p90=float(np.percentile(ms, 90)), step_reps=len(ms))
    res["gflops"] = flops / (res["ms_step_p50"] * 1e-3) / 1e9
    if not latency_only:   # ms per puzzle at batch 1: q_halt halting, and fixed S steps
        for name, k in (("q_halt", min(latency_puzzles, n)), ("fixed", min(fixed_puzzles, n))):
            t0 = time.perf_counter()
            for i in range(k):
                solve(i, i + 1, halting=halt if name == "q_halt" else "fixed")
            res[f"ms_puzzle_{name}"] = (time.perf_counter() - t0) / k * 1e3

    if batch > 1:
        ms = time_step(batch)
        res["ms_step_batch_p50"] = float(np.percentile(ms, 50))
        res["gflops_batch"] = flops * batch / (res["ms_step_batch_p50"] * 1e-3) / 1e9
    if latency_only:
        res["peak_rss_mb"] = peak_rss_mb()
        return res

    # accuracy and throughput at batch B with compaction
    check = checker(solver.task, labels)

    def batched(chunk: int, **kw) -> tuple[float, float | None, float]:
        """(ms per puzzle, solved share, mean steps per puzzle) solving all puzzles `chunk` at a time."""
        preds, steps = np.zeros(puzzles.shape, np.int64), np.zeros(n, np.int64)
        t0 = time.perf_counter()
        for a in range(0, n, chunk):
            sol = solve(a, a + chunk, **kw)
            preds[a:a + chunk], steps[a:a + chunk] = sol.predictions, sol.steps
        ms = (time.perf_counter() - t0) * 1e3 / n
        return ms, None if check is None else float(check(puzzles, preds).mean()), float(steps.mean())

    ms, res["accuracy"], res["mean_steps"] = batched(batch, halting=halt)
    res["puzzles_per_s"], res["ms_puzzle_q_halt_batch"] = 1e3 / ms, ms
    if reference:
        res["ms_puzzle_fixed_batch"], res["fixed_accuracy"], _ = batched(batch, halting="fixed")
    if views is not None and views > 1:
        res["ms_puzzle_views"], res["views_accuracy"], res["view_steps"] = batched(
            max(1, batch // views), halting=halt, views=views, decide=decide)
    if curves and check is not None:   # solved share and halting rate after every step, from one recorded fixed run
        n = min(n, curve_puzzles)
        solved, q = np.zeros((S, n), bool), np.zeros((S, n), np.float32)
        for a in range(0, n, batch):
            b = min(a + batch, n)
            for r in solve(a, b, halting="fixed", record=True).trace:
                solved[r.step - 1, a:b] = check(puzzles[a:b], r.logits.argmax(-1))
                q[r.step - 1, a:b] = r.q_halt
        # [S, n]: the policy stopped the row by step k (a step S+1 that never stops keeps step S's own decision)
        stops = halt.replay(np.concatenate([q, np.full((1, n), -np.inf, np.float32)]))
        halted = stops[None, :] <= np.arange(1, S + 1)[:, None]
        res["curves"] = {"solved_after_step": solved.mean(1).tolist(), "halted_by_step": halted.mean(1).tolist(),
                         "threshold": threshold, "puzzles": n}
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM restarts at exec; ru_maxrss on Linux keeps the
    forking parent's (so a spawned child would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if platform.system() == "Darwin" else rss / 1024


def _in_child(fn, *args, **kw) -> dict:
    """fn(*args, **kw) in a fresh spawned process (its own memory peak, only its own imports)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kw).result()


# --------------------------------------------------------------------------- the run

def machine() -> dict:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform(), "python": platform.python_version()}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ("trm-edge", "torch", "onnxruntime", "executorch", "coremltools", "ai-edge-litert", "litert-torch",
                 "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def reusable(bundle: Path, model, target: str, precision: str) -> bool:
    """A bundle made from the same checkpoint for the same target and precision, in the spelling the target's
    exporter writes now (a bundle of an older spelling is another graph)."""
    from trm_edge.export.bundle import source_sha
    from trm_edge.runtime.manifest import BundleError, read_manifest
    try:
        m = read_manifest(bundle)
    except BundleError:
        return False
    sha = source_sha(model.metadata.get("source"))
    return (sha is not None and m.get("source_sha256") == sha and m["target"] == target
            and m["precision"] == precision and m["trm_config"] == model.config.to_dict()
            and m.get("spelling") == _spelling(target))


def _spelling(target: str) -> str | None:
    from trm_edge.export.bundle import ExportError, exporter
    try:
        return exporter(target).SPELLING
    except ExportError:             # its exporter is not installed: nothing is its current spelling
        return None


def export_row(model, name: str, target: str, precision: str, bundles: Path, log,
               parity_puzzles: int = 8, parity_steps: int | None = None, accuracy_puzzles: int = 100,
               calibration: dict | None = None) -> tuple[Row, Path | None]:
    """calibration: for a STATIC precision, export_bundle's calibration (calibration_set's count, seed, file,
    steps); ignored for the others. accuracy_puzzles: the export's accuracy check (0: none)."""
    from trm_edge.errors import TRMEdgeError
    from trm_edge.export.bundle import export_bundle
    from trm_edge.runtime.manifest import read_manifest, size_of
    from trm_edge.targets import STATIC
    row = Row(target, precision, "ok")
    path = bundles / f"{name}-{target}-{precision}"
    t0 = time.perf_counter()
    if reusable(path, model, target, precision):
        manifest = read_manifest(path)
        row.extra["reused"] = True
    else:
        try:
            _, manifest = export_bundle(model, target, path, precision, log=log, parity_puzzles=parity_puzzles,
                                        parity_steps=parity_steps, accuracy_puzzles=accuracy_puzzles,
                                        calibration=calibration if precision in STATIC else None)
        except TRMEdgeError as e:
            row.status = "check failed" if "parity failed" in str(e) or "verification" in str(e) else "failed"
            row.reason = str(e)
            return row, None
        row.export_s = time.perf_counter() - t0
    row.bundle = str(path)
    row.artifact_mb = size_of(path / manifest["model_file"]) / 2**20
    if (manifest.get("quantization") or {}).get("calibration"):   # what a static bundle was calibrated on
        row.extra["calibration"] = manifest["quantization"]["calibration"]
    parity = manifest.get("parity") or {}
    if not parity.get("ran", False):
        row.status, row.reason = "not run here", parity.get("reason", "the runtime is not available here")
        return row, None
    row.parity_max_abs_logits = parity["max_abs_diff"]["logits"]
    return row, path


def bench(model_path, targets=tuple(TARGETS), precisions=None, puzzles: int = 200, batch: int = 64,
          threads=(2,), out="bench", bundles="bundles", curves: bool = True, accuracy: bool = True,
          step_seconds: float = 2.0, min_reps: int = 10, threshold: float = 0.5, progress: bool = True,
          log=print, data=None, views: int | None = None, decide=None, calibration: dict | None = None,
          skip: dict | None = None) -> dict:
    """accuracy=False: latency only (steps at batch 1 and B; for random-weight models of published sizes;
    the exports' parity runs 2 puzzles over 1 step and no accuracy check).
    calibration: how static (int8-static) rows are calibrated, export_bundle's `calibration` (count, seed,
    file, steps; default: the task's sampler, calibration.DEFAULT_COUNT puzzles, every supervision step).
    skip: {(target, precision): reason} rows neither exported nor measured, recorded "not run here" with the
    reason (an export needing more memory than the machine has).
    data: a built dataset folder whose test split is benched (default: `puzzles` generated by the task).
    views K (2 or more) with `decide` (a Decision; default: the recommended one for K): every row also solves every puzzle with
    K views, and the baseline row runs the reference's evaluation (1 view, fixed steps) at batch B."""
    import math

    from trm_edge.errors import TRMEdgeError
    from trm_edge.outdir import claim
    from trm_edge.quiet import quiet
    from trm_edge.runtime.loop import check_options
    unknown = [t for t in targets if t not in PRECISIONS]
    if unknown or not targets:
        raise TRMEdgeError(f"targets {list(targets)}: choose from {', '.join(PRECISIONS)}")
    for p in precisions or ():
        if not any(p in PRECISIONS[t] for t in targets):
            offered = [t for t in PRECISIONS if p in PRECISIONS[t]]
            raise TRMEdgeError(f"no target asked for offers precision {p!r} ({', '.join(targets)} offer "
                               f"{', '.join(sorted({q for t in targets for q in PRECISIONS[t]}))}); "
                               + (f"add --targets {','.join(offered)}" if offered else "drop it"))
    for t in targets:
        if precisions is not None and not any(p in PRECISIONS[t] for p in precisions):
            raise TRMEdgeError(f"target {t} offers {', '.join(PRECISIONS[t])}, none of the precisions asked for "
                               f"({', '.join(precisions)}); drop it from --targets or add one of its precisions")
    check_options(16, "q_halt", threshold)
    if views is not None and (isinstance(views, bool) or not isinstance(views, int) or views < 1):
        raise TRMEdgeError(f"views must be a whole number 1 or more, got {views!r}")
    if decide is not None and not (views and views > 1):
        raise TRMEdgeError("a decision policy decides between views: give --views K (2 or more) as well")
    if views and views > 1 and not accuracy:
        raise TRMEdgeError("views are measured by accuracy: drop --no-accuracy or --views")
    if not (isinstance(step_seconds, (int, float)) and math.isfinite(step_seconds) and step_seconds > 0):
        raise TRMEdgeError(f"step seconds must be a positive number, got {step_seconds!r}")
    for name, v in (("puzzles", puzzles), ("batch", batch), ("min_reps", min_reps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise TRMEdgeError(f"{name} must be a positive integer, got {v!r}")
    if not threads or any(isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 1024 for t in threads):
        raise TRMEdgeError(f"threads must be positive integers, got {list(threads)!r}")
    out = claim(out, "benchmark", lambda d: (d / "bench.json").is_file())
    claim(bundles, "bundles folder", lambda d: True, option="--bundles")   # bundles inside are checked one by one

    import torch

    from trm_edge.checkpoint import load_checkpoint
    from trm_edge.data import sample_puzzles
    from trm_edge.model import flops_per_step

    model = load_checkpoint(model_path)
    c = model.config
    name = Path(model_path).stem
    task = model.metadata.get("task")
    labels = None
    if data is not None:
        from trm_edge.evaluate import test_split
        _, meta, tokens, labels, _ = test_split(data, puzzles, c.to_dict(), task)
        puzzles = len(tokens)
    else:
        tokens = sample_puzzles(task, c.seq_len, c.vocab_size, puzzles, seed=3).astype(np.int64)
    if views and views > 1:
        from trm_edge.data import lookup
        from trm_edge.runtime.decide import Vote, recommended
        lookup(task).views(views, c.seq_len, 0)     # a task with fewer views says so now, before any export
        decide = decide or recommended(views) or Vote()     # as `run --views K`: the recommended policy
    flops = flops_per_step(c, 1)
    out, bundles = Path(out), Path(bundles)
    wanted = [(t, p) for t in targets for p in PRECISIONS[t] if precisions is None or p in precisions]

    from rich.progress import Progress
    res = {"schema": SCHEMA, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "versions": versions(),
           "model": {"path": str(model_path), "parameters": sum(p.numel() for p in model.parameters()),
                     "gflop_per_step": flops / 1e9, "task": task, "trm_config": c.to_dict()},
           "settings": {"puzzles": puzzles, "batch": batch, "threads": list(threads), "latency_only": not accuracy,
                        "threshold": threshold, "data": None if data is None else str(data),
                        "views": views or 1, "decision": None if not decide else decide.to_manifest()},
           "peak": {}, "rows": []}
    with Progress(disable=not progress, transient=True) as bar:
        job = bar.add_task("bench", total=len(threads) * (1 + len(wanted)) + len(wanted) + len(threads))
        for th in threads:
            bar.update(job, description=f"GEMM peak, {th} threads")
            res["peak"][str(th)] = peak = _in_child(gemm_peak, th)
            bar.advance(job)
        exported = []
        for t, p in wanted:
            bar.update(job, description=f"export {t} {p}")
            if (t, p) in (skip or {}):
                exported.append((Row(t, p, "not run here", skip[t, p]), None))
                bar.advance(job)
                continue
            with quiet():      # the toolchains' chatter stays out of the terminal (trm_edge/quiet.py)
                # latency-only runs are for random weights of big sizes: 2 puzzles, 1 step (chaotic beyond)
                exported.append(export_row(model, name, t, p, bundles, log=lambda *a: None,
                                           parity_puzzles=8 if accuracy else 2, parity_steps=None if accuracy else 1,
                                           accuracy_puzzles=100 if accuracy else 0, calibration=calibration))
            bar.advance(job)
        torch.set_num_threads(max(threads))
        for th in threads:
            peak = res["peak"][str(th)]
            runs = [(Row("pytorch", "fp32", "ok", extra={"baseline": True}), str(model_path), "pytorch")]
            runs += [(Row(**{**asdict(r), "extra": dict(r.extra)}), str(path), "bundle") for r, path in exported]
            for row, path, kind in runs:
                row.threads, row.batch = th, batch
                bar.update(job, description=f"measure {row.target} {row.precision}, {th} threads")
                if row.status == "ok":
                    try:
                        m = _in_child(measure, path, tokens, batch, th, flops, step_seconds=step_seconds,
                                      min_reps=min_reps, latency_only=not accuracy, threshold=threshold,
                                      curves=curves and accuracy and kind == "pytorch" and th == threads[0],
                                      labels=labels, views=views, decide=decide,
                                      reference=bool(views and views > 1) and kind == "pytorch")
                        if views and views > 1:
                            row.views, row.policy = views, decide.describe()
                    except Exception as e:   # a runtime that crashes or refuses: the row says so
                        row.status, row.reason = "failed", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    else:
                        if "curves" in m:
                            row.extra["curves"] = m.pop("curves")
                        row.extra["step_reps"] = m.pop("step_reps")
                        for k, v in m.items():
                            setattr(row, k, v)
                        ref = peak["int8_gops"] if "int8" in row.precision and peak.get("int8_gops") else peak["fp32_gflops"]
                        row.peak_fraction = row.gflops / ref
                        if kind == "pytorch":
                            row.artifact_mb = Path(model_path).stat().st_size / 2**20
                res["rows"].append(asdict(row))
                bar.advance(job)
    write(res, out)
    return res


# --------------------------------------------------------------------------- reports

COLUMNS = [  # (header, key, format); "where": the runner, and the device for rows run elsewhere
    ("target", "target", "{}"), ("precision", "precision", "{}"), ("where", "where", "{}"), ("threads", "threads", "{}"),
    ("status", "status", "{}"), ("MB", "artifact_mb", "{:.2f}"), ("parity", "parity_max_abs_logits", "{:.1e}"),
    ("solved", "accuracy", "{:.1%}"), ("steps", "mean_steps", "{:.2f}"), ("ms/step p50", "ms_step_p50", "{:.2f}"),
    ("p90", "ms_step_p90", "{:.2f}"), ("ms/step @B", "ms_step_batch_p50", "{:.1f}"), ("ms/puzzle q_halt", "ms_puzzle_q_halt", "{:.1f}"),
    ("ms/puzzle fixed", "ms_puzzle_fixed", "{:.1f}"), ("puzzles/s", "puzzles_per_s", "{:.1f}"),
    ("RSS MB", "peak_rss_mb", "{:.0f}"), ("GFLOP/s", "gflops", "{:.1f}"), ("of peak", "peak_fraction", "{:.0%}"),
    ("GFLOP/s @B", "gflops_batch", "{:.1f}"),
]


def cells(row: dict) -> list[str]:
    out = []
    for _, key, fmt in COLUMNS:
        v = row.get(key)
        if key == "where":
            v = row.get("runner", "python") + (f" @ {row['device']}" if row.get("device") else "")
        out.append("" if v is None else fmt.format(v))
    return out


def markdown(res: dict) -> str:
    m, pk = res.get("model") or {}, res.get("peak") or {}
    lines = [f"# trm-edge bench, {res['date']}", ""]
    if m:
        lines.append(f"Model `{m['path']}`: {m['parameters']:,} parameters, {m['gflop_per_step']:.2f} GFLOP per "
                     f"supervision step (batch 1). {res['settings']['puzzles']} puzzles, throughput batch "
                     f"{res['settings']['batch']}.")
    if pk:
        lines.append(f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores. GEMM peak: " + "; ".join(
            f"{t} threads fp32 {p['fp32_gflops']:.0f} GFLOP/s" + (f", int8 {p['int8_gops']:.0f} GOP/s"
                                                                 if p.get("int8_gops") else "")
            for t, p in pk.items()))
    lines += ["", "| " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in res["rows"]:
        lines.append("| " + " | ".join(cells(r)) + " |")
    lines += views_table(res)
    notes = [f"- {r['target']} {r['precision']}: {r['reason']}" for r in res["rows"] if r["reason"]]
    if notes:
        lines += ["", *sorted(set(notes))]
    if res.get("versions"):
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items())]
    return "\n".join(lines) + "\n"


def views_table(res: dict) -> list[str]:
    """Markdown lines comparing, per row, one view with K views (and the reference's evaluation), all
    measured at batch B on the same puzzles; nothing when the run had no views."""
    rows = [r for r in res["rows"] if r.get("views_accuracy") is not None]
    if not rows:
        return []
    st = res["settings"]
    fmt = lambda v, f: "" if v is None else f.format(v)
    lines = ["", f"Views: {st['views']} views of each of the {st['puzzles']} puzzles"
             + (f" from `{st['data']}`" if st.get("data") else "") + f", batch {st['batch']} rows "
             f"({max(1, st['batch'] // st['views'])} puzzles at a time), q_halt > {st['threshold']:g} per view, "
             "measured in this run (ms per puzzle: the batch's wall time over its puzzles).", "",
             "| target | precision | threads | how | solved | view-steps / puzzle | ms / puzzle |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        head = f"| {r['target']} | {r['precision']} | {r['threads']} "
        if r.get("fixed_accuracy") is not None:
            lines.append(head + f"| 1 view, fixed {res['model']['trm_config'].get('halt_max_steps', 16)} "
                         f"(the reference's evaluation) | {fmt(r['fixed_accuracy'], '{:.1%}')} | "
                         f"{res['model']['trm_config'].get('halt_max_steps', 16)} | {fmt(r['ms_puzzle_fixed_batch'], '{:.1f}')} |")
        lines.append(head + f"| 1 view, q_halt | {fmt(r['accuracy'], '{:.1%}')} | {fmt(r['mean_steps'], '{:.2f}')} | "
                     f"{fmt(r.get('ms_puzzle_q_halt_batch'), '{:.1f}')} |")
        lines.append(head + f"| {r['views']} views, {r['policy']} | **{fmt(r['views_accuracy'], '{:.1%}')}** | "
                     f"{fmt(r['view_steps'], '{:.2f}')} | {fmt(r['ms_puzzle_views'], '{:.1f}')} |")
    return lines


def plot(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    viewed = [r for r in res["rows"] if r.get("views_accuracy") is not None]
    fig, axes = plt.subplots(1, 3 if viewed else 2, figsize=(18 if viewed else 12, 4.5))
    a, b = axes[:2]
    colours = {}
    for r in res["rows"]:
        if r["ms_puzzle_q_halt"] is None or r["accuracy"] is None:
            continue
        key = f"{r['target']} {r['precision']}"
        first = key not in colours
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        marker = "o" if r["threads"] == min(int(t) for t in res["peak"]) else "s"
        a.scatter(r["ms_puzzle_q_halt"], 100 * r["accuracy"], s=45, c=colour, marker=marker,
                  label=key if first else None)
    a.legend(fontsize=7, title="circle: fewest threads, square: most", title_fontsize=7)
    a.set(xlabel="ms per puzzle, batch 1, q_halt halting", ylabel="solved %", title="latency vs accuracy")
    base = next((r for r in res["rows"] if r["extra"].get("curves")), None)
    if base:
        cv = base["extra"]["curves"]
        x = np.arange(1, len(cv["solved_after_step"]) + 1)
        b.plot(x, cv["solved_after_step"], "o-", label="solved after step k (fixed)")
        b.plot(x, cv["halted_by_step"], "s--", label=f"halted by step k (q_halt > {cv['threshold']})")
        b.set(xlabel="supervision step", ylabel="share of puzzles", title="PyTorch fp32: accuracy and halting",
              ylim=(0, 1.02))
        b.legend()
    if viewed:   # per row at batch B: 1 view (circle) -> K views (star); the reference's evaluation (x)
        c, st = axes[2], res["settings"]
        for r in viewed:
            colour = colours.get(f"{r['target']} {r['precision']}", "C0")
            c.plot([r["ms_puzzle_q_halt_batch"], r["ms_puzzle_views"]], [100 * r["accuracy"], 100 * r["views_accuracy"]],
                   ":", c=colour, lw=1)
            c.scatter(r["ms_puzzle_q_halt_batch"], 100 * r["accuracy"], s=40, c=colour)
            c.scatter(r["ms_puzzle_views"], 100 * r["views_accuracy"], s=140, c=colour, marker="*",
                      label=f"{r['target']} {r['precision']}, {r['threads']} threads")
            if r.get("fixed_accuracy") is not None:
                c.scatter(r["ms_puzzle_fixed_batch"], 100 * r["fixed_accuracy"], s=70, c=colour, marker="x",
                          label=f"{r['target']} {r['precision']}: 1 view, fixed steps (the reference)")
        c.set_xscale("log")
        c.set(xlabel=f"ms per puzzle, batch {st['batch']} rows", ylabel="solved %",
              title=f"1 view, q_halt (circle) -> {st['views']} views, {viewed[0]['policy']} (star)")
        c.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def write(res: dict, out: Path) -> None:
    """bench.json, bench.md, bench.png, each written atomically."""
    from trm_edge.atomic import atomic_write, write_json, write_text
    write_json(out / "bench.json", res)
    write_text(out / "bench.md", markdown(res))
    if any(r["accuracy"] is not None or r["extra"].get("curves") for r in res["rows"]):
        atomic_write(out / "bench.png", lambda p: plot(res, Path(p)))


class RowError(ValueError):
    """A row that is not in the trm-edge-bench/1 schema, or results that are not."""


def append_rows(out: Path, rows: list[dict]) -> dict:
    """Append rows measured elsewhere (`trm-runner --bench` on this machine, a phone, a board) to
    out/bench.json, creating it if there is none, and rewrite bench.md (and bench.png)."""
    from dataclasses import fields
    names = {f.name for f in fields(Row)}
    for r in rows:
        unknown, missing = sorted(set(r) - names), [n for n in ("target", "precision", "status") if n not in r]
        problems = ([f"unknown fields {', '.join(unknown)}"] if unknown else []) + \
                   ([f"no {', '.join(missing)}"] if missing else [])
        if problems:
            raise RowError(f"a row with {'; '.join(problems)} is not a {SCHEMA} row: "
                           "append what `trm-runner --bench` prints")
    out = Path(out)
    path = out / "bench.json"
    if path.exists():
        try:
            res = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise RowError(f"{path} is not valid JSON ({e.msg}, line {e.lineno}): fix or move it") from None
        if res.get("schema") != SCHEMA:
            raise RowError(f"{path} has schema {res.get('schema')!r}, not {SCHEMA}: append to another folder")
    else:
        res = {"schema": SCHEMA, "date": time.strftime("%Y-%m-%d %H:%M"), "rows": []}
    res["rows"] += [asdict(Row(**r)) for r in rows]
    write(res, out)
    return res
