"""Training curves of a run, from its metrics.jsonl: held-out solved share (the run's periodic
evaluations: fixed steps and q_halt at 0.5) against optimizer steps and against minutes, and the
training loss beside them. What the model cards show next to each shipped model.

    python benchmarks/training_curve.py runs/sudoku9_hard_cpu [--out models/sudoku.training.png] [--title T]

Training rows carry `minutes` (counted across resumes); evaluation rows (`eval`) take the minutes of
the training row before them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def read(run: Path) -> tuple[list[dict], list[dict]]:
    train, evals, minutes = [], [], 0.0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "eval" in row:
            evals.append({**row, "minutes": minutes})
        elif "loss" in row:
            minutes = row["minutes"]
            train.append(row)
    return train, evals


def smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v - (values[i - window] if i >= window else 0.0)
        out.append(acc / min(i + 1, window))
    return out


def plot(run: Path, out: Path, title: str | None = None) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train, evals = read(run)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for key, label, style in (("fixed", "fixed 16 steps", "o-"), ("q_halt", "q_halt > 0.5", "s--")):
        pts = [(e["step"], e["minutes"], (e["eval"][key]["0.5"] if key == "q_halt" else e["eval"][key])["accuracy"])
               for e in evals if key in e["eval"]]
        if pts:
            axes[0].plot([p[0] for p in pts], [p[2] for p in pts], style, label=label)
            axes[1].plot([p[1] for p in pts], [p[2] for p in pts], style, label=label)
    ylabel = "held-out solved"
    if not evals and train:   # a run without evaluations: its training rows' accuracy on the rows that halted
        rows = [r for r in train if r.get("steps", 0) > 0]   # steps with rows that halted (`halted` of them)
        for key, label in (("accuracy", "cells right (training rows at halting)"),
                           ("exact_accuracy", "answers right (training rows at halting)")):
            acc = [a / max(n, 1e-9) for a, n in zip(smooth([r[key] * r["halted"] for r in rows], 200),
                                                    smooth([r["halted"] for r in rows], 200))]
            axes[0].plot([r["step"] for r in rows], acc, lw=1, label=label)
            axes[1].plot([r["minutes"] for r in rows], acc, lw=1, label=label)
        ylabel = "training accuracy (mean of 200 steps)"
    for ax, xlabel in ((axes[0], "optimizer steps"), (axes[1], "minutes of training (this 2-core CPU)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    if train:
        axes[2].plot([r["step"] for r in train], smooth([r["loss"] for r in train], 50), lw=1)
        axes[2].set_xlabel("optimizer steps")
        axes[2].set_ylabel("training loss (mean of 50 steps)")
        axes[2].grid(alpha=0.3)
    fig.suptitle(title or str(run))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    last = evals[-1] if evals else None
    return {"steps": train[-1]["step"] if train else 0, "minutes": train[-1]["minutes"] if train else 0.0,
            "evaluations": len(evals), "last_eval": last}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--title")
    a = ap.parse_args()
    out = a.out or a.run / "training.png"
    print(json.dumps(plot(a.run, out, a.title), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
