"""Parity of an exported bundle against PyTorch float32, run with the bundle's real runtime.

Per step (fixed halting, every step recorded): max |diff| of logits, q_halt, y and z; answer
agreement; halting-step agreement under q_halt halting; and, where the task has a checker, the
share of puzzles solved by each (the measure that decides whether a quantized bundle is usable).
"""
from __future__ import annotations

import numpy as np
import torch

from trm_edge.runtime import solve
from trm_edge.runtime.bundle import Bundle
from trm_edge.runtime.torch_eager import TorchEagerStep
from trm_edge.step import make_step

FP32_LOGITS_TOL = 1e-2   # after up to 16 recursive steps; trained models contract, so this is loose


def sample_puzzles(task: dict | None, seq_len: int, vocab: int, n: int, seed: int = 0) -> np.ndarray:
    """Real puzzles of the task (generated), or uniformly random tokens for a model without a task."""
    name = (task or {}).get("name")
    if name == "sudoku":
        from trm_edge.data import sudoku
        size = int(round(seq_len ** 0.5))
        return sudoku.to_tokens(sudoku.generate(n, size, seed=seed + 777)["puzzles"])
    if name == "maze":
        from trm_edge.data import maze
        return maze.generate(n, int(round(seq_len ** 0.5)), seed=seed + 777)[0]
    return np.random.default_rng(seed).integers(0, vocab, (n, seq_len))


def checker(task: dict | None):
    name = (task or {}).get("name")
    if name == "sudoku":
        from trm_edge.data.sudoku import check
        return check
    if name == "maze":
        from trm_edge.data.maze import check
        return check
    return None


def check_parity(bundle_dir, model, puzzles: np.ndarray, accuracy_puzzles: np.ndarray | None = None,
                 threads: int | None = None, steps: int | None = None) -> dict:
    """steps: supervision steps compared (default all). Random weights amplify float32 rounding several
    times per step, so an untrained model is compared over 1 step; a trained one contracts."""
    bundle = Bundle(bundle_dir, threads=threads)
    ref = TorchEagerStep(make_step(model, "reference"))
    c = model.config
    pe = model.puzzle_rows(torch.zeros(len(puzzles), dtype=torch.long)).numpy() if c.puzzle_emb_ndim else None
    S = steps or c.halt_max_steps
    args = dict(max_steps=S, halting="fixed", record=True, record_states=True)
    want = solve(ref, puzzles, pe, ref.module.y_init, ref.module.z_init, **args)
    got = solve(bundle.step, puzzles, pe, bundle.y_init, bundle.z_init, **args)
    per_step = []
    for a, b in zip(want.trace, got.trace):
        per_step.append({k: float(np.abs(getattr(a, k) - getattr(b, k)).max()) for k in ("logits", "q_halt", "y", "z")})
    qa = solve(ref, puzzles, pe, ref.module.y_init, ref.module.z_init, max_steps=S)
    qb = solve(bundle.step, puzzles, pe, bundle.y_init, bundle.z_init, max_steps=S)
    report = {
        "puzzles": int(len(puzzles)), "steps": S,
        "max_abs_diff": {k: max(s[k] for s in per_step) for k in ("logits", "q_halt", "y", "z")},
        "max_abs_diff_per_step": per_step,
        "answer_agreement": float((want.predictions == got.predictions).all(-1).mean()),
        "cell_agreement": float((want.predictions == got.predictions).mean()),
        "halting_step_agreement": float((qa.steps == qb.steps).mean()),
    }
    check = checker(model.metadata.get("task"))
    if check is not None and accuracy_puzzles is not None:
        pa = model.puzzle_rows(torch.zeros(len(accuracy_puzzles), dtype=torch.long)).numpy() if c.puzzle_emb_ndim else None
        fa = solve(ref, accuracy_puzzles, pa, ref.module.y_init, ref.module.z_init, max_steps=S)
        fb = solve(bundle.step, accuracy_puzzles, pa, bundle.y_init, bundle.z_init, max_steps=S)
        report["task_accuracy"] = {"puzzles": int(len(accuracy_puzzles)), "halting": "q_halt",
                                   "pytorch_fp32": float(check(accuracy_puzzles, fa.predictions).mean()),
                                   "bundle": float(check(accuracy_puzzles, fb.predictions).mean()),
                                   "mean_steps_pytorch_fp32": float(fa.steps.mean()),
                                   "mean_steps_bundle": float(fb.steps.mean())}
    return report
