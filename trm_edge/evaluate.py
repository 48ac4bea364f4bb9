"""`trm-edge eval`: exact-solve accuracy by the task's own checker, accuracy after every ACT step, and
halting calibration (fixed vs q_halt at several thresholds: accuracy and mean steps), as JSON + PNG.

One `fixed` run records every step's predictions and q_halt; what `q_halt` halting at threshold t
would answer is read off that record (a row halts at its first step with sigmoid(q) > t), and one
real `q_halt` run at 0.5 checks it and measures the time saved.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


def checker_for(task: dict | None, labels: np.ndarray):
    """A function (inputs, predictions) -> bool[B]: the task's independent checker, else exact match."""
    name = (task or {}).get("name")
    if name == "sudoku":
        from trm_edge.data.sudoku import check
        return check
    if name == "maze":
        from trm_edge.data.maze import check
        return check
    mask = labels >= 0
    return lambda inputs, preds: ((preds == labels) | ~mask).all(-1)


def _source(path, threads):
    """(step, y_init, z_init, puzzle rows for ids, task, max steps) for a checkpoint or an exported bundle."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        from trm_edge.runtime.bundle import Bundle
        b = Bundle(path, threads=threads)
        rows = b.puzzle_emb if b.config.get("puzzle_emb_ndim") else (lambda ids: None)
        return b.step, b.y_init, b.z_init, rows, b.task, b.config["halt_max_steps"]
    import torch

    from trm_edge.checkpoint import load_checkpoint
    from trm_edge.runtime.torch_eager import TorchEagerStep
    from trm_edge.step import make_step
    model = load_checkpoint(path)
    step = TorchEagerStep(make_step(model), threads=threads)
    rows = ((lambda ids: model.puzzle_rows(torch.as_tensor(ids)).numpy()) if model.config.puzzle_emb_ndim
            else (lambda ids: None))
    return step, step.module.y_init, step.module.z_init, rows, model.metadata.get("task"), model.config.halt_max_steps


def evaluate(model_path, data, puzzles: int = 1000, max_steps: int | None = None, thresholds=THRESHOLDS,
             batch: int = 250, threads: int | None = None, progress: bool = True, out: str | None = None,
             fixed: bool = True) -> dict:
    """Evaluate a checkpoint (PyTorch eager) or an exported bundle (its own runtime) on a test split.
    fixed=False skips the recorded fixed-steps run: only the real q_halt run at 0.5 is made."""
    from trm_edge.data.dataset import read_split
    from trm_edge.runtime import solve

    backend, y_init, z_init, rows, task, model_steps = _source(model_path, threads)
    sets, meta = read_split(data, "test")
    s = sets[meta["sets"][0]]
    n = min(puzzles, len(s.inputs))
    inputs, labels = np.asarray(s.inputs[:n]).astype(np.int64), np.asarray(s.labels[:n]).astype(np.int64)
    if meta.get("ignore_label_id") is not None:
        labels = np.where(labels == meta["ignore_label_id"], -100, labels)
    pid = np.searchsorted(s.puzzle_indices, np.arange(n), side="right") - 1
    task = task or meta.get("task")
    check = checker_for(task, labels)
    S = max_steps or model_steps
    pe = rows(s.puzzle_identifiers[pid].astype(np.int64))
    res = {"model": str(model_path), "data": str(data), "puzzles": n, "max_steps": S, "task": task}
    if fixed:
        recorded, last_preds, last_q = _fixed(backend, inputs, pe, y_init, z_init, S, check, thresholds, batch, progress)
        res.update(recorded)

    # one real early-halting run at 0.5: the same answers, less time
    t0 = time.perf_counter()
    real = [solve(backend, inputs[a:a + batch], None if pe is None else pe[a:a + batch], y_init,
                  z_init, max_steps=S, halting="q_halt", threshold=0.5) for a in range(0, n, batch)]
    q_seconds = time.perf_counter() - t0
    steps = np.concatenate([r.steps for r in real])
    answers = np.concatenate([r.predictions for r in real])
    res["q_halt_run"] = {"threshold": 0.5, "accuracy": float(check(inputs, answers).mean()),
                         "mean_steps": float(steps.mean()), "seconds": q_seconds}
    if fixed:
        res["q_halt_run"]["speedup_vs_fixed"] = res["fixed"]["seconds"] / max(q_seconds, 1e-9)
        if (task or {}).get("name") == "arc":
            res["arc_vote"] = arc_vote(data, s, n, last_preds, last_q)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(res, indent=1))
        if fixed:
            plot(res, out / "eval.png")
    return res


def _fixed(backend, inputs, pe, y_init, z_init, S, check, thresholds, batch, progress):
    """One fixed-steps run recording every step; q_halt halting at each threshold is read off it.
    Returns the results and the last step's predictions and q_halt (for ARC voting)."""
    from trm_edge.runtime import solve
    n = len(inputs)
    preds = np.zeros((S, n, inputs.shape[1]), np.int64)
    q = np.zeros((S, n), np.float32)
    chunks = range(0, n, batch)
    if progress:
        from tqdm import tqdm
        chunks = tqdm(chunks, desc="eval fixed", unit="batch")
    t0 = time.perf_counter()
    for a in chunks:
        b = min(a + batch, n)
        sol = solve(backend, inputs[a:b], None if pe is None else pe[a:b], y_init, z_init,
                    max_steps=S, halting="fixed", record=True)
        for r in sol.trace:
            preds[r.step - 1, a:b] = r.logits.argmax(-1)
            q[r.step - 1, a:b] = r.q_halt
    fixed_seconds = time.perf_counter() - t0
    solved = np.stack([check(inputs, preds[t]) for t in range(S)])          # [S, n]

    res = {"fixed": {"accuracy": float(solved[-1].mean()), "mean_steps": float(S), "seconds": fixed_seconds},
           "accuracy_per_step": [float(v) for v in solved.mean(1)],
           "halted_per_step": {}, "q_halt": {}}
    rows = np.arange(n)
    for t in thresholds:
        conf = q > math.log(t / (1 - t))
        halt = np.where(conf.any(0), conf.argmax(0), S - 1)
        res["q_halt"][str(t)] = {"accuracy": float(solved[halt, rows].mean()), "mean_steps": float((halt + 1).mean())}
        res["halted_per_step"][str(t)] = [float((halt <= k).mean()) for k in range(S)]
    return res, preds[-1], q[-1]


def arc_vote(data, s, n: int, predictions: np.ndarray, q_halt: np.ndarray) -> dict:
    """ARC: map every augmented prediction back, vote, pass@1 / pass@2 over the tasks covered."""
    from trm_edge.data import arc
    root = Path(data)
    names = json.loads((root / "identifiers.json").read_text())
    raw = json.loads((root / "test_puzzles.json").read_text())
    pid = np.repeat(s.puzzle_identifiers, np.diff(s.puzzle_indices))[:n]
    test_index = s.extra["test_index"][:n]
    meta = []
    for i, t in zip(pid, test_index):
        task_id, aug = arc.Augmentation.from_reference_name(names[i])
        meta.append((task_id, int(t), aug))
    covered = {m[0] for m in meta}
    tasks = {tid: arc.ArcTask(tid, [], [(np.array(p["input"]), np.array(p["output"])) for p in raw[tid]["test"]])
             for tid in covered}
    res = arc.vote(predictions, q_halt, meta, tasks)
    return {k: v for k, v in res.items() if k != "answers"}


def plot(res: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    S = res["max_steps"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(1, S + 1)
    a.plot(x, res["accuracy_per_step"], "o-", label="solved after step k (fixed)")
    for t, frac in res["halted_per_step"].items():
        a.plot(x, frac, "--", alpha=0.7, label=f"halted by step k (q_halt > {t})")
    a.set_xlabel("supervision step k")
    a.set_ylim(0, 1.02)
    a.legend(fontsize=8)
    a.set_title("accuracy and halting by step")
    ts = list(res["q_halt"])
    b.plot([res["q_halt"][t]["mean_steps"] for t in ts], [res["q_halt"][t]["accuracy"] for t in ts], "s-", label="q_halt")
    for t in ts:
        b.annotate(t, (res["q_halt"][t]["mean_steps"], res["q_halt"][t]["accuracy"]), fontsize=8)
    b.plot([S], [res["fixed"]["accuracy"]], "r*", markersize=12, label=f"fixed {S}")
    b.set_xlabel("mean supervision steps")
    b.set_ylabel("solved")
    b.legend()
    b.set_title(f"halting calibration ({res['puzzles']} puzzles)")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
