"""Accuracy against compute for views x policy x threshold (`trm-edge eval --views K`).

One recorded run of every view of every puzzle for all S steps (fixed halting: each view's
predictions and q_halt after every step) holds what any configuration would have done: the same
`drive` that runs a policy live replays it on the record (runtime/loop.py `replay`), so one run of
K views prices every (views k <= K, decision policy, threshold) configuration in view-steps and
accuracy. Milliseconds per puzzle are view-steps times the record's measured milliseconds per
row-step (an estimate, said so in the table); `--policy` runs one configuration live to check it.
"""
from __future__ import annotations

import time

import numpy as np

# (label, decision, its options): the configurations priced; views from 1 to K in powers of two
CONFIGS = (
    ("vote", "vote", {}),
    ("best_q", "best_q", {}),
    ("consensus", "consensus", {}),
    ("consensus waves of 2", "consensus", {"wave": 2}),
    ("first to halt", "consensus", {"agree": 1, "wave": 1}),
    ("2 agree, waves of 2", "consensus", {"agree": 2, "wave": 2}),
)
VERIFIED = (("verify, waves of 1", "vote", {"wave": 1, "verify": True}),)
# where the task's rule scores answers (runtime/same.py: a maze path's length): the best-scored answer wins
SCORED = (("best", "best", {}), ("best, 2 agree, waves of 2", "best", {"agree": 2, "wave": 2}),
          ("best, 3 agree, waves of 2", "best", {"agree": 3, "wave": 2}))


def record(solver, inputs, pe, views: int, max_steps: int, batch: int, progress: bool = True) -> dict:
    """Every view's predictions [S, n, K, L] (its own frame) and q_halt [S, n, K] over S fixed steps,
    and the measured milliseconds per row-step."""
    from trm_edge.runtime.decide import Vote
    n, L = inputs.shape
    vs = solver.task_views(views)
    preds = np.zeros((max_steps, n, views, L), np.int8 if solver.vocab_size < 128 else np.int64)
    q = np.zeros((max_steps, n, views), np.float32)
    chunk = max(1, batch // views)
    parts = range(0, n, chunk)
    if progress:
        from tqdm import tqdm
        parts = tqdm(parts, desc=f"eval {views} views, fixed {max_steps}", unit="batch")
    t0 = time.perf_counter()
    for a in parts:
        b = min(a + chunk, n)
        sol = solver.solve(inputs[a:b], puzzle_emb=None if pe is None else pe[a:b], max_steps=max_steps,
                           halting="fixed", views=vs, decide=Vote(), record=True)
        for r in sol.trace:
            p, v = np.divmod(r.rows, views)
            preds[r.step - 1, a + p, v] = r.logits.argmax(-1)
            q[r.step - 1, a + p, v] = r.q_halt
    seconds = time.perf_counter() - t0
    return {"predictions": preds, "q_halt": q, "views": vs, "same": solver.same_key(), "same_rule": solver.views_same(),
            "seconds": seconds,
            "ms_per_row_step": seconds * 1e3 / (max_steps * n * views)}


def grid(rec: dict, inputs, check, thresholds, verifier=None) -> list[dict]:
    """Every configuration replayed on the record: solved share, view-steps per puzzle, estimated ms."""
    from trm_edge.runtime.decide import decision
    from trm_edge.runtime.loop import replay
    K = len(rec["views"])
    ks = sorted({1, *(k for k in (2, 4, 8, 16, 32) if k <= K), K})
    S = rec["q_halt"].shape[0]
    rows = []
    configs = CONFIGS + (SCORED if rec.get("same_rule") else ()) + (VERIFIED if verifier is not None else ())
    for k in ks:
        pr, q = rec["predictions"][:, :, :k].astype(np.int64), rec["q_halt"][:, :, :k]
        runs = [(f"fixed {S}, vote", "fixed", 0.5, "vote", {})]
        runs += [(label, "q_halt", t, name, opts) for t in thresholds for label, name, opts in configs
                 if k > 1 or label == "vote"]
        for label, halting, t, name, opts in runs:
            d = decision(name, **opts)
            sol = replay(pr, q, inputs, rec["views"][:k], halting=halting, threshold=t, decide=d,
                         verifier=verifier if d.verify else None, same=rec.get("same"))
            steps = float(sol.steps.mean())
            rows.append({"views": k, "policy": label, "decision": d.to_manifest(), "halting": halting,
                         "threshold": t if halting == "q_halt" else None, "exact": d.exact,
                         "solved": float(check(inputs, sol.predictions).mean()), "view_steps": steps,
                         "ms_per_puzzle_est": steps * rec["ms_per_row_step"], "verified": bool(d.verify)})
    return rows


def pareto_front(rows: list[dict], cost: str = "view_steps") -> list[dict]:
    """The rows no other row beats on both solved share and cost (model-only rows)."""
    own = sorted((r for r in rows if not r["verified"]), key=lambda r: (r[cost], -r["solved"]))
    front, best = [], -1.0
    for r in own:
        if r["solved"] > best:
            front.append(r)
            best = r["solved"]
    return front


def plot(rows: list[dict], title: str, path) -> None:
    """Solved vs view-steps and vs estimated ms per puzzle, one colour per policy, the front joined."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = sorted({r["policy"] for r in rows})
    for ax, cost, name in ((axes[0], "view_steps", "view-steps per puzzle"),
                           (axes[1], "ms_per_puzzle_est", "ms per puzzle (estimated)")):
        for i, label in enumerate(labels):
            rs = [r for r in rows if r["policy"] == label]
            ax.scatter([r[cost] for r in rs], [100 * r["solved"] for r in rs], s=[12 + 6 * r["views"] for r in rs],
                       label=label, alpha=0.7, color=plt.cm.tab10(i % 10))
        front = pareto_front(rows, cost)
        ax.plot([r[cost] for r in front], [100 * r["solved"] for r in front], "k--", lw=1, label="front (model only)")
        ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("solved (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title + " (marker size: views)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def table(rows: list[dict], limit: int | None = None) -> list[str]:
    """Markdown lines: the front first, then every row."""
    head = ["| views | policy | halting | solved | view-steps | ms/puzzle (est.) | exact |", "|---|---|---|---|---|---|---|"]
    fmt = lambda r: (f"| {r['views']} | {r['policy']}{' (verifier)' if r['verified'] else ''} | "
                     f"{r['halting'] + (' > ' + format(r['threshold'], 'g') if r['threshold'] else '')} | "
                     f"{100 * r['solved']:.1f}% | {r['view_steps']:.2f} | {r['ms_per_puzzle_est']:.1f} | "
                     f"{'yes' if r['exact'] else 'no'} |")
    rs = sorted(rows, key=lambda r: (r["view_steps"], -r["solved"]))
    return head + [fmt(r) for r in (rs[:limit] if limit else rs)]
