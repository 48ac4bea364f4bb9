"""Parity of an exported bundle against PyTorch float32, run with the bundle's real runtime.

One fixed-halting run of each, every step recorded: max |diff| of logits, q_halt, y and z per step;
answer agreement; halting-step agreement of the bundle's policy, replayed on both traces (the same
code that halts live); and, where the task has a checker, the share of puzzles solved by each
(the measure that decides whether a quantized bundle is usable).
"""
from __future__ import annotations

import numpy as np

from trm_edge.data import checker
from trm_edge.runtime.bundle import Bundle
from trm_edge.runtime.halting import from_manifest
from trm_edge.solver import Checkpoint

FP32_LOGITS_TOL = 1e-2   # after up to 16 recursive steps; trained models contract, so this is loose


def _q_trace(sol, n: int) -> np.ndarray:
    """q_halt [S, n] from a fixed run's trace (every row runs every step)."""
    return np.stack([r.q_halt for r in sol.trace]).reshape(len(sol.trace), n)


def check_parity(bundle_dir, model, puzzles: np.ndarray, accuracy_puzzles: np.ndarray | None = None,
                 threads: int | None = None, steps: int | None = None) -> dict:
    """steps: supervision steps compared (default all). Random weights amplify float32 rounding several
    times per step, so an untrained model is compared over 1 step; a trained one contracts."""
    bundle, ref = Bundle(bundle_dir, threads=threads), Checkpoint(model)
    halt = from_manifest(bundle.halting)
    S = steps or model.config.halt_max_steps
    args = dict(max_steps=S, halting="fixed", record=True, record_states=True)
    want, got = ref.solve(puzzles, views=1, **args), bundle.solve(puzzles, views=1, **args)
    per_step = [{k: float(np.abs(getattr(a, k) - getattr(b, k)).max()) for k in ("logits", "q_halt", "y", "z")}
                for a, b in zip(want.trace, got.trace)]
    n = len(puzzles)
    report = {
        "puzzles": int(n), "steps": S,
        "max_abs_diff": {k: max(s[k] for s in per_step) for k in ("logits", "q_halt", "y", "z")},
        "max_abs_diff_per_step": per_step,
        "answer_agreement": float((want.predictions == got.predictions).all(-1).mean()),
        "cell_agreement": float((want.predictions == got.predictions).mean()),
        "halting_step_agreement": float((halt.replay(_q_trace(want, n)) == halt.replay(_q_trace(got, n))).mean()),
    }
    check = checker(model.metadata.get("task"))
    if check is not None and accuracy_puzzles is not None:
        fa = ref.solve(accuracy_puzzles, max_steps=S, halting=halt, views=1)
        fb = bundle.solve(accuracy_puzzles, max_steps=S, halting=halt, views=1)
        report["task_accuracy"] = {"puzzles": int(len(accuracy_puzzles)), "halting": halt.name,
                                   "pytorch_fp32": float(check(accuracy_puzzles, fa.predictions).mean()),
                                   "bundle": float(check(accuracy_puzzles, fb.predictions).mean()),
                                   "mean_steps_pytorch_fp32": float(fa.steps.mean()),
                                   "mean_steps_bundle": float(fb.steps.mean())}
    return report
