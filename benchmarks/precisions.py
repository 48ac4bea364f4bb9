"""Precisions side by side: from `trm-edge bench` results (bench.json, schema trm-edge-bench/1), per model
a table of target x precision x threads (ms/step p50, speed-up over PyTorch eager fp32 at the same
threads, share of the GEMM peak, file MB, accuracy and mean steps where measured) and a plot: accuracy vs
ms per step where the run measured accuracy, else ms per step per target and precision.

    python benchmarks/precisions.py benchmarks/results/shipped/bench.json [more bench.json ...]
        [--out benchmarks/results/precisions_report]

Writes precisions.md and one PNG per bench.json (named after its folder). The share of the peak is of the
int8 GEMM peak for rows computing in int8 (int8 dynamic, int8-static), of the fp32 peak for the others
(fp32, fp16, weight-only int8); rows measured on another device (no peak of theirs in the file) have none.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from trm_edge.targets import PRECISIONS     # the targets table's order: fp32, int8, int8-static, fp16, ...

INT8_MATH = ("int8", "int8-static")         # precisions whose GEMMs run in int8 (int8-weights computes in float)
MARKERS = {"fp32": "o", "fp16": "D", "int8": "s", "int8-static": "^", "int8-weights": "v"}


def where(r: dict) -> str:
    """The device a row ran on ("" for the machine of the run itself)."""
    return r.get("device") or ""


def summarize(res: dict) -> list[dict]:
    """One entry per measured row: the row's own numbers with the speed-up and share of the peak."""
    rows = [r for r in res["rows"] if r.get("status") == "ok" and r.get("ms_step_p50")]
    eager = {(r["threads"], where(r)): r["ms_step_p50"] for r in rows
             if r["target"] == "pytorch" and r["precision"] == "fp32"}
    out = []
    for r in rows:
        peak = (res.get("peak") or {}).get(str(r["threads"])) if not where(r) else None
        ref = None
        if peak:
            ref = peak.get("int8_gops") if r["precision"] in INT8_MATH else None
            ref = ref or peak.get("fp32_gflops")
        base = eager.get((r["threads"], where(r)))
        out.append({"target": r["target"] + ("" if r.get("runner", "python") == "python" else f" ({r['runner']})"),
                    "precision": r["precision"], "threads": r["threads"], "device": where(r),
                    "ms": r["ms_step_p50"], "speedup": base / r["ms_step_p50"] if base else None,
                    "of_peak": r["gflops"] / ref if ref and r.get("gflops") else None,
                    "mb": r.get("artifact_mb"), "accuracy": r.get("accuracy"), "steps": r.get("mean_steps")})
    return out


def fmt(v, f: str) -> str:
    return "" if v is None else f.format(v)


def table(res: dict, name: str) -> list[str]:
    m = res.get("model") or {}
    head = f"## {m.get('path', name)}"
    if m:
        head += f" ({m['parameters']:,} parameters, {m['gflop_per_step']:.2f} GFLOP per step)"
    lines = [head, "", f"`{name}`, {res.get('date', '')}; speed-up: PyTorch eager fp32's ms/step at the same threads "
             "(and device) over the row's.", "",
             "| target | precision | threads | device | ms/step p50 | speed-up | of peak | MB | solved | steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summarize(res):
        lines.append(f"| {s['target']} | {s['precision']} | {s['threads']} | {s['device']} | {s['ms']:.2f} | "
                     f"{fmt(s['speedup'], '{:.2f}x')} | {fmt(s['of_peak'], '{:.0%}')} | {fmt(s['mb'], '{:.2f}')} | "
                     f"{fmt(s['accuracy'], '{:.1%}')} | {fmt(s['steps'], '{:.2f}')} |")
    lines += [f"- {r['target']} {r['precision']}, threads {r['threads']}: {r['status']} ({r.get('reason', '')})"
              for r in res["rows"] if r.get("status") != "ok"]
    return lines + [""]


def plot(res: dict, name: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    rows = [s for s in summarize(res) if not s["device"]]
    targets = list(dict.fromkeys(s["target"] for s in rows))
    known = [p for p in PRECISIONS if any(s["precision"] == p for s in rows)]
    precisions = known + sorted({s["precision"] for s in rows} - set(known))
    colour = {t: f"C{i % 10}" for i, t in enumerate(targets)}
    measured = [s for s in rows if s["accuracy"] is not None]
    if measured:   # accuracy vs ms per step: colour = target, marker = precision, one point per thread count
        fig, ax = plt.subplots(figsize=(8, 5))
        for s in measured:
            ax.scatter(s["ms"], 100 * s["accuracy"], c=colour[s["target"]], marker=MARKERS.get(s["precision"], "x"), s=55)
        ax.set_xscale("log")
        ax.set(xlabel="ms per supervision step, batch 1 (p50; one point per thread count)", ylabel="solved %",
               title=f"{name}: accuracy vs ms per step")
        handles = [Line2D([], [], ls="", marker="o", c=colour[t], label=t) for t in targets]
        handles += [Line2D([], [], ls="", marker=MARKERS.get(p, "x"), c="grey", label=p) for p in precisions]
        ax.legend(handles=handles, fontsize=8)
    else:          # latency only: ms per step per target, one bar per precision, one panel per thread count
        threads = sorted({s["threads"] for s in rows})
        fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4.5), squeeze=False, sharey=True)
        width = 0.8 / max(1, len(precisions))
        for ax, th in zip(axes[0], threads):
            for j, p in enumerate(precisions):
                xs = [(i, s["ms"]) for i, t in enumerate(targets) for s in rows
                      if s["target"] == t and s["precision"] == p and s["threads"] == th]
                if xs:
                    ax.bar([i + (j - (len(precisions) - 1) / 2) * width for i, _ in xs], [v for _, v in xs], width,
                           label=p, color=f"C{j % 10}")
            ax.set_xticks(range(len(targets)), targets)
            ax.set(title=f"{name}: {th} thread{'s' if th > 1 else ''}", ylabel="ms per supervision step, batch 1 (p50)")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", nargs="+", help="bench.json files")
    ap.add_argument("--out", default="benchmarks/results/precisions_report")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Precisions side by side", ""]
    for f in map(Path, a.bench):
        res = json.loads(f.read_text())
        if res.get("schema") != "trm-edge-bench/1":
            raise SystemExit(f"{f}: schema {res.get('schema')!r}, not trm-edge-bench/1")
        name = f.parent.name or f.stem
        lines += table(res, name)
        plot(res, name, out / f"{name}.png")
        lines += [f"![{name}]({name}.png)", ""]
    (out / "precisions.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
