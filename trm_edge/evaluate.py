"""`trm-edge eval`: exact-solve accuracy by the task's own checker, accuracy after every ACT step, and
halting calibration (fixed vs q_halt at several thresholds: accuracy and mean steps), as JSON + PNG.

One `fixed` run records every step's predictions and q_halt; what `q_halt` halting at threshold t
would answer is read off that record (a row halts at its first step with sigmoid(q) > t), and one
real `q_halt` run at 0.5 checks it and measures the time saved.
"""
from __future__ import annotations

import json
import numbers
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from trm_edge.errors import TRMEdgeError

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


def _whole(name: str, v, lo: int, hi: int | None = None, none_ok: bool = False):
    if v is None and none_ok:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo or (hi is not None and v > hi):
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
        span = f"from {lo} to {hi}" if hi is not None else f"of {lo} or more"
        raise TRMEdgeError(f"{name} must be a whole number {span}, got {shown}")
    return int(v)


def _check_thresholds(thresholds) -> tuple:
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Iterable):
        raise TRMEdgeError(f"thresholds must be a list of probabilities, e.g. (0.3, 0.5, 0.9); got {thresholds!r}")
    ts = tuple(thresholds)
    if not ts:
        raise TRMEdgeError("thresholds is empty; give at least one probability, e.g. (0.5,)")
    for t in ts:
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0.0 < float(t) < 1.0:
            raise TRMEdgeError(f"threshold {t!r} is no probability strictly between 0 and 1; give e.g. 0.5")
    return tuple(float(t) for t in ts)


def _fits(data, meta: dict, s, n: int, cfg: dict, task) -> np.ndarray:
    """The first n inputs as int64 [n, L], checked against the model (length, vocabulary, task), or an error."""
    from trm_edge.errors import PuzzleError
    from trm_edge.runtime import check_tokens
    L, V = cfg["seq_len"], cfg["vocab_size"]
    data_task = meta.get("task")
    names = [(t or {}).get("name") if isinstance(t, dict) else None for t in (task, data_task)]
    if all(names) and names[0] != names[1]:
        raise TRMEdgeError(f"the model solves {names[0]} but the dataset {data} holds {names[1]}; "
                           f"evaluate on a dataset built for this model's task")
    if s.inputs.shape[1] != L:
        raise TRMEdgeError(f"the dataset {data} has {s.inputs.shape[1]} tokens per puzzle, the model takes {L} "
                           f"(built for another size?); evaluate on a dataset built for this model")
    inputs = np.asarray(s.inputs[:n]).astype(np.int64)
    bad = np.argwhere((inputs < 0) | (inputs >= V))
    if len(bad):
        r, c = (int(v) for v in bad[0])
        raise TRMEdgeError(f"the dataset {data} does not fit the model: test example {r} holds token {inputs[r, c]} "
                           f"at position {c}, outside the model's vocabulary 0..{V - 1}; evaluate on a dataset "
                           f"built for this model")
    try:
        return check_tokens(inputs, L, V)
    except PuzzleError as e:
        raise TRMEdgeError(f"the dataset {data} does not fit the model: {e}; evaluate on a dataset built for "
                           f"this model") from None


def test_split(data, puzzles: int, cfg: dict, task):
    """The first `puzzles` test examples of a built dataset, checked against the model's config:
    (the set, the split's metadata, inputs [n, L], labels [n, L] (ignored ids -100), puzzle ids [n])."""
    from trm_edge.data.dataset import read_split
    sets, meta = read_split(data, "test")
    s = sets[meta["sets"][0]]
    if len(s.inputs) == 0:
        raise TRMEdgeError(f"the test split of {data} holds no puzzles; build it with --test 1 or more")
    n = min(puzzles, len(s.inputs))
    inputs = _fits(data, meta, s, n, cfg, task or meta.get("task"))
    labels = np.asarray(s.labels[:n]).astype(np.int64)
    if meta.get("ignore_label_id") is not None:
        labels = np.where(labels == meta["ignore_label_id"], -100, labels)
    pid = np.searchsorted(s.puzzle_indices, np.arange(n), side="right") - 1
    ids = s.puzzle_identifiers[pid].astype(np.int64)
    if cfg.get("puzzle_emb_ndim") and (ids.min() < 0 or ids.max() >= cfg["num_puzzle_identifiers"]):
        raise TRMEdgeError(f"the dataset {data} uses puzzle identifiers up to {int(ids.max())}, the model's table "
                           f"has {cfg['num_puzzle_identifiers']} rows; evaluate on the dataset the model was trained for")
    return s, meta, inputs, labels, ids


def evaluate(model_path, data, puzzles: int = 1000, max_steps: int | None = None, thresholds=THRESHOLDS,
             batch: int = 250, threads: int | None = None, progress: bool = True, out: str | None = None,
             fixed: bool = True, views: int | None = None, decide=None) -> dict:
    """Evaluate a checkpoint (PyTorch eager) or an exported bundle (its own runtime) on a test split.
    fixed=False skips the recorded fixed-steps run: only the real q_halt run at 0.5 is made.
    views=K also records K views of every puzzle and prices every views x policy x threshold
    configuration on it (trm_edge/pareto.py: res["views"], views.md and views.png in out); `decide`
    (a decision policy) runs that one configuration live at threshold 0.5 (res["views_run"]).

    Every bad input raises a one-line TRMEdgeError before anything is run or written; `out` must be a
    new or empty folder or one holding an earlier eval.json (nothing else there is touched)."""
    import trm_edge
    from trm_edge.data import checker
    from trm_edge.runtime.loop import MAX_STEPS
    from trm_edge.outdir import claim
    from trm_edge.runtime import QHalt

    if not isinstance(model_path, (str, os.PathLike)) or not str(model_path):
        raise TRMEdgeError(f"model_path must be a checkpoint or bundle path, got {model_path!r}")
    puzzles = _whole("puzzles", puzzles, 1)
    max_steps = _whole("max_steps", max_steps, 1, MAX_STEPS, none_ok=True)
    batch = _whole("batch", batch, 1)
    threads = _whole("threads", threads, 1, 1024, none_ok=True)
    thresholds = _check_thresholds(thresholds)
    if out is not None:
        out = claim(out, "evaluation", ours=lambda p: (p / "eval.json").is_file())
    solver = trm_edge.open(model_path, threads=threads)
    cfg = solver.config
    s, meta, inputs, labels, ids = test_split(data, puzzles, cfg, solver.task)
    n = len(inputs)
    task = solver.task or meta.get("task")
    is_arc = isinstance(task, dict) and task.get("name") == "arc"
    if fixed and is_arc:
        arc_files = _arc_files(data, s)
    check = checker(task if isinstance(task, dict) else None, labels)
    S = max_steps or cfg["halt_max_steps"]
    pe = solver.puzzle_emb(ids)
    res = {"model": str(model_path), "data": str(data), "puzzles": n, "max_steps": S, "task": task}
    if fixed:
        recorded, last_preds, last_q = _fixed(solver, inputs, pe, S, check, thresholds, batch, progress)
        res.update(recorded)

    # one real early-halting run at 0.5: the same answers, less time
    t0 = time.perf_counter()
    real = [solver.solve(inputs[a:a + batch], puzzle_emb=None if pe is None else pe[a:a + batch], max_steps=S,
                         halting=QHalt(0.5), views=1) for a in range(0, n, batch)]
    q_seconds = time.perf_counter() - t0
    steps = np.concatenate([r.steps for r in real])
    answers = np.concatenate([r.predictions for r in real])
    res["q_halt_run"] = {"threshold": 0.5, "accuracy": float(check(inputs, answers).mean()),
                         "mean_steps": float(steps.mean()), "seconds": q_seconds}
    if fixed:
        res["q_halt_run"]["speedup_vs_fixed"] = res["fixed"]["seconds"] / max(q_seconds, 1e-9)
        if is_arc:
            res["arc_vote"] = arc_vote(data, s, n, last_preds, last_q, files=arc_files)
    if views is not None and views > 1:
        from trm_edge import pareto
        verifier = solver.verifier()
        rec = pareto.record(solver, inputs, pe, views, S, batch, progress)
        rows = pareto.grid(rec, inputs, check, thresholds, verifier)
        res["views"] = {"views": views, "seconds": rec["seconds"], "ms_per_row_step": rec["ms_per_row_step"],
                        "backend": solver.backend, "rows": rows, "front": pareto.pareto_front(rows)}
        if decide is not None:
            t0 = time.perf_counter()
            live = solver.solve(inputs, puzzle_emb=pe, max_steps=S, halting=QHalt(0.5), views=views, decide=decide)
            seconds = time.perf_counter() - t0
            res["views_run"] = {"views": views, "decision": decide.to_manifest(), "exact": decide.exact,
                                "accuracy": float(check(inputs, live.predictions).mean()),
                                "view_steps": float(live.steps.mean()), "seconds": seconds,
                                "ms_per_puzzle": seconds * 1e3 / n}
    if out is not None:
        _write(out, res, fixed)
    return res


def _write(out: Path, res: dict, fixed: bool) -> None:
    """eval.json (and eval.png) into out, each written to a temporary name and moved into place."""
    from trm_edge.atomic import atomic_write, write_json
    try:
        write_json(out / "eval.json", res)
        if fixed:
            atomic_write(out / "eval.png", lambda tmp: plot(res, tmp))
        if "views" in res:
            from trm_edge import pareto
            v = res["views"]
            title = f"{res['puzzles']} puzzles, {v['views']} views, {v['backend']}"
            atomic_write(out / "views.png", lambda tmp: pareto.plot(v["rows"], title, tmp))
            atomic_write(out / "views.md", lambda tmp: Path(tmp).write_text(
                f"{title}: {v['ms_per_row_step']:.2f} ms per row-step measured\n\n"
                + "\n".join(pareto.table(v["rows"])) + "\n"))
    except OSError as e:
        raise TRMEdgeError(f"cannot write the evaluation into {out} ({e.strerror or type(e).__name__}); "
                           f"choose another --out") from None


def _fixed(solver, inputs, pe, S, check, thresholds, batch, progress):
    """One fixed-steps run recording every step; q_halt halting at each threshold is replayed on it
    (the same policy code as a live run). Returns the results and the last step's predictions and
    q_halt (for ARC voting)."""
    from trm_edge.runtime import QHalt
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
        sol = solver.solve(inputs[a:b], puzzle_emb=None if pe is None else pe[a:b], max_steps=S,
                           halting="fixed", record=True, views=1)
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
        halt = QHalt(t).replay(q) - 1                     # the step index each row stops at
        res["q_halt"][str(t)] = {"accuracy": float(solved[halt, rows].mean()), "mean_steps": float((halt + 1).mean())}
        res["halted_per_step"][str(t)] = [float((halt <= k).mean()) for k in range(S)]
    return res, preds[-1], q[-1]


def _arc_files(data, s) -> tuple[list, dict]:
    """identifiers.json and test_puzzles.json of an ARC dataset, read and checked."""
    root = Path(data)
    fix = "rebuild the dataset with `trm-edge data build arc`"
    got = []
    for name, kind in (("identifiers.json", list), ("test_puzzles.json", dict)):
        f = root / name
        try:
            v = json.loads(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TRMEdgeError(f"the ARC dataset {data} lacks {name}, which voting needs; {fix}") from None
        except (OSError, ValueError, RecursionError) as e:
            raise TRMEdgeError(f"cannot read {f} ({(str(e).splitlines() or [type(e).__name__])[0][:80]}); {fix}") from None
        if not isinstance(v, kind):
            raise TRMEdgeError(f"{f} holds a JSON {type(v).__name__}, not a {kind.__name__}; {fix}")
        got.append(v)
    return got[0], got[1]


def arc_vote(data, s, n: int, predictions: np.ndarray, q_halt: np.ndarray, files=None) -> dict:
    """ARC: map every augmented prediction back, vote, pass@1 / pass@2 over the tasks covered."""
    from trm_edge.data import arc
    names, raw = files if files is not None else _arc_files(data, s)
    pid = np.repeat(s.puzzle_identifiers, np.diff(s.puzzle_indices))[:n]
    test_index = s.extra.get("test_index")
    if test_index is None:   # the official layout: a test puzzle's examples are its task's test pairs, in order
        test_index = np.arange(len(s.inputs)) - np.repeat(s.puzzle_indices[:-1], np.diff(s.puzzle_indices))
    test_index = test_index[:n]
    try:
        meta = []
        for i, t in zip(pid, test_index):
            task_id, aug = arc.Augmentation.from_reference_name(names[i])
            meta.append((task_id, int(t), aug))
        covered = {m[0] for m in meta}
        tasks = {tid: arc.ArcTask(tid, [], [(np.array(p["input"]), np.array(p["output"])) for p in raw[tid]["test"]])
                 for tid in covered}
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise TRMEdgeError(f"the ARC files of {data} do not match its test split ({type(e).__name__}: "
                           f"{(str(e).splitlines() or [''])[0][:60]}); rebuild the dataset with "
                           f"`trm-edge data build arc`") from None
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
    try:
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
