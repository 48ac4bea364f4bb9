"""Views, voting and early consensus in the host loop (runtime/loop.py `solve(..., views=K)`,
runtime/decide.py): views=1 is the single-view loop bit for bit, every task's views invert exactly,
the decision policies rank as the reference's ARC evaluator does, and early consensus never changes
the full run's vote (on recorded traces) unless the policy says it is inexact."""
from __future__ import annotations

import numpy as np
import pytest

from trm_edge.data import TASKS, lookup
from trm_edge.errors import TRMEdgeError
from trm_edge.runtime import solve
from trm_edge.runtime.decide import DECISIONS, BestQ, Consensus, Vote, decision, tally
from trm_edge.runtime.halting import policy
from trm_edge.runtime.loop import replay


class ToyStep:
    """A deterministic numpy step whose answers and q_halt depend on the tokens and the state, so views
    of one puzzle disagree and rows halt at different steps. An optional fixed batch checks chunking."""
    positions = 6

    def __init__(self, vocab=5, batch=None, seed=0, sure=0.0):
        rng = np.random.default_rng(seed)
        self.V, self.batch, self.sure = vocab, batch, sure    # sure > 0: answers lean to the input (views agree)
        self.w = rng.normal(size=(4, 4)).astype(np.float32) * 0.9
        self.e = rng.normal(size=(vocab, 4)).astype(np.float32)
        self.o = rng.normal(size=(4, vocab)).astype(np.float32)

    def __call__(self, tokens, puzzle_emb, y, z):
        x = self.e[tokens]                                       # [n, L, 4]
        z = np.tanh(z[:, 2:] @ self.w + y[:, 2:] + x)
        y = np.tanh(y[:, 2:] @ self.w.T + z)
        y = np.concatenate([np.zeros_like(y[:, :2]), y], 1).astype(np.float32)
        z = np.concatenate([np.zeros_like(z[:, :2]), z], 1).astype(np.float32)
        logits = (self.sure * np.eye(self.V, dtype=np.float32)[tokens] + y[:, 2:] @ self.o).astype(np.float32)
        q = (4 * y[:, 2:].mean((1, 2)) + 2 * z[:, 2:, 0].mean(1)).astype(np.float32)
        return y, z, logits, q


def reference_solve(step, tokens, y_init, z_init, max_steps, halt, pe=None):
    """The single-view host loop as it was before views (the oracle for views=1)."""
    B = tokens.shape[0]
    from trm_edge.runtime.loop import broadcast_state
    P = getattr(step, "positions", None)
    y, z = broadcast_state(y_init, B, P), broadcast_state(z_init, B, P)
    active = np.arange(B)
    predictions, steps, q_final = np.zeros(tokens.shape, np.int64), np.zeros(B, np.int64), np.full(B, np.nan, np.float32)
    for s in range(1, max_steps + 1):
        from trm_edge.runtime.loop import run_step
        y, z, logits, q = run_step(step, tokens[active], None if pe is None else pe[active], y, z)
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        predictions[active], q_final[active], steps[active] = logits.argmax(-1), q, s
        if s == max_steps:
            break
        keep = ~halt.stop(s, q)
        if not keep.all():
            active, y, z = active[keep], y[keep], z[keep]
            if not len(active):
                break
    return predictions, steps, q_final


def toy_puzzles(n=40, seed=1):
    return np.random.default_rng(seed).integers(0, 5, (n, 4))


def toy_views(k, seed=0):
    """Cell permutations of the 4 toy tokens (with a token relabelling): views with exact inverses."""
    from trm_edge.data.task import IDENTITY, View
    rng = np.random.default_rng(seed)
    out = [IDENTITY]
    while len(out) < k:
        out.append(View(cells=rng.permutation(4), tokens=rng.permutation(5)))
    return out


@pytest.mark.parametrize("halting", ["q_halt", "fixed"])
@pytest.mark.parametrize("batch", [None, 7])
def test_one_view_is_the_single_view_loop_bit_for_bit(halting, batch):
    step = ToyStep(batch=batch)
    t = toy_puzzles()
    y0, z0 = np.zeros((6, 4), np.float32), np.full((6, 4), 0.1, np.float32)
    want = reference_solve(step, t, y0, z0, 12, policy(halting, 0.6))
    for views in (None, toy_views(1)):
        got = solve(step, t, None, y0, z0, max_steps=12, halting=halting, threshold=0.6, views=views)
        assert np.array_equal(got.predictions, want[0]) and np.array_equal(got.steps, want[1])
        assert np.array_equal(got.q_halt.view(np.int32), want[2].view(np.int32))     # bit for bit
    assert 1 < want[1].mean() < 12 or halting == "fixed"


def test_one_view_on_the_trained_model_is_todays_loop_bit_for_bit():
    import trm_edge
    from tests.trained import trained_model_path
    solver = trm_edge.open(trained_model_path())
    task = lookup(solver.task)
    x, _ = task.examples(64, 16, seed=11)
    pe = solver.puzzle_emb(np.zeros(len(x), np.int64))
    want = reference_solve(solver.step, x, solver.y_init, solver.z_init, 8, policy("q_halt", 0.5), pe)
    for views in (None, 1):
        got = solver.solve(x, max_steps=8, views=views)
        assert np.array_equal(got.predictions, want[0]) and np.array_equal(got.steps, want[1])
        assert np.array_equal(got.q_halt.view(np.int32), want[2].view(np.int32))


@pytest.mark.parametrize("name", [t for t in TASKS])
def test_every_tasks_views_invert_exactly_on_real_puzzles(name):
    task = lookup(name)
    seq_len, vocab = task.example_size
    if name == "sudoku":
        seq_len = 81
    puzzles, answers = task.examples(6, seq_len, seed=3)
    k = min(8, task.view_count(seq_len))
    views = task.views(k, seq_len, seed=5)
    assert len(views) == k and views[0].is_identity
    assert len({v.key for v in views}) == k                      # distinct
    assert [v.key for v in task.views(k - 1 or 1, seq_len, seed=5)] == [v.key for v in views[:max(k - 1, 1)]]
    for v in views:
        for a in (puzzles, answers):
            assert np.array_equal(v.invert(v.apply(a)), a)
        if not v.is_identity and name != "tokens":
            assert not np.array_equal(v.apply(puzzles), puzzles)
        if task.has_checker:                                     # a view of a solved puzzle is a solved puzzle
            assert task.check(v.apply(puzzles), v.apply(answers)).all()


def test_view_counts_are_the_symmetry_groups():
    assert lookup("maze").view_count(100) == 8
    assert lookup("tokens").view_count(12) == 1
    assert lookup("sudoku").view_count(16) == 24 * 8 * 8 * 2        # digits x rows x columns x transpose
    assert lookup("sudoku").view_count(36) == 720 * (2 * 2 ** 3) * (6 * 6 ** 2)   # 2x3 boxes: no transpose
    assert len(lookup("maze").views(8, 100)) == 8


@pytest.mark.parametrize("name,k,message", [("maze", 9, "maze task has 8 distinct views"),
                                            ("tokens", 2, "1 distinct view"),
                                            ("sudoku", 0, "from 1 to"),
                                            ("sudoku", 5000, "at most 1024 views")])
def test_too_many_views_is_one_line(name, k, message):
    with pytest.raises(TRMEdgeError) as e:
        lookup(name).views(k, 81 if name == "sudoku" else 100)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_tally_is_the_reference_ranking():
    # counts first; equal counts by mean sigmoid(q); equal both: first seen
    keys = [b"a", b"b", b"b", b"c", b"a", b"c"]
    q = np.array([0.0, 2.0, -2.0, 2.0, 0.5, -2.0], np.float32)
    ranked = tally(keys, q)
    sig = 1 / (1 + np.exp(-q.astype(np.float64)))
    assert [r[0] for r in ranked] == [b"a", b"b", b"c"]          # all count 2; mean q: a .56, b .5, c .5 (b seen first)
    assert ranked[0][2] == pytest.approx((sig[0] + sig[4]) / 2, rel=1e-15)
    assert Vote().choose(keys, q) == 0 and BestQ().choose(keys, q) == 1     # the first of the highest q
    assert Vote().choose([b"x", b"y", b"y"], np.array([5.0, -1, -1], np.float32)) == 1     # count beats q


def test_reference_evaluator_ranking_on_random_votes():
    """The official evaluators/arc.py ranks with a stable sort of [count, mean q] descending; the same
    rule written out here on random votes (ties included) gives tally's order."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        keys = [bytes([int(k)]) for k in rng.integers(0, 3, n)]
        q = rng.choice([-1.0, 0.0, 1.0], n).astype(np.float32)
        p_map = {}
        for h, p in zip(keys, (1 / (1 + np.exp(-q.astype(np.float64)))).tolist()):
            p_map.setdefault(h, [0, 0])
            p_map[h][0] += 1
            p_map[h][1] += p
        for stats in p_map.values():
            stats[1] /= stats[0]
        want = [h for h, _ in sorted(p_map.items(), key=lambda kv: kv[1], reverse=True)]
        assert [r[0] for r in tally(keys, q)] == want


def _record(step, t, views, S):
    """A fixed-S run of every view, recorded: predictions [S, B, K, L] (view frame) and q [S, B, K]."""
    sol = solve(step, t, None, np.zeros((6, 4), np.float32), np.full((6, 4), 0.1, np.float32), max_steps=S,
                halting="fixed", views=views, record=True)
    B, K, L = len(t), len(views), t.shape[1]
    pr, q = np.zeros((S, B * K, L), np.int64), np.zeros((S, B * K), np.float32)
    for r in sol.trace:
        pr[r.step - 1, r.rows], q[r.step - 1, r.rows] = r.logits.argmax(-1), r.q_halt
    return pr.reshape(S, B, K, L), q.reshape(S, B, K)


@pytest.mark.parametrize("name", list(DECISIONS))
@pytest.mark.parametrize("options", [{}, {"wave": 2}, {"budget": 20}])
def test_replay_of_a_recorded_trace_is_the_live_run(name, options):
    step, t, views = ToyStep(seed=2), toy_puzzles(30, seed=4), toy_views(6, seed=1)
    pr, q = _record(step, t, views, 10)
    d = decision(name, **options)
    live = solve(step, t, None, np.zeros((6, 4), np.float32), np.full((6, 4), 0.1, np.float32), max_steps=10,
                 halting="q_halt", threshold=0.6, views=views, decide=d)
    back = replay(pr, q, t, views, halting="q_halt", threshold=0.6, decide=d)
    for f in ("predictions", "steps", "view_steps", "chosen", "finished"):
        assert np.array_equal(getattr(live, f), getattr(back, f)), f


def test_consensus_never_changes_the_full_vote_on_recorded_traces():
    step, t = ToyStep(seed=3, sure=2.0), toy_puzzles(200, seed=6)
    for K, wave in ((8, None), (8, 1), (8, 3), (5, 2)):
        views = toy_views(K, seed=K)
        pr, q = _record(step, t, views, 12)
        full = replay(pr, q, t, views, halting="q_halt", threshold=0.6, decide="vote")
        fast = replay(pr, q, t, views, halting="q_halt", threshold=0.6, decide=Consensus(wave=wave))
        assert Consensus(wave=wave).exact
        assert np.array_equal(fast.predictions, full.predictions)
        assert fast.steps.sum() < full.steps.sum()              # it stopped early somewhere
        disagree = np.mean([len({a.tobytes() for a in full.view_answers[p]}) > 1 for p in range(len(t))])
        assert disagree > 0.3                                   # the views really disagree: the test can fail


def test_inexact_policies_say_so():
    assert not Consensus(agree=2).exact and not Vote(budget=10).exact and not BestQ(verify=True).exact
    assert Vote().exact and BestQ().exact and Consensus().exact and Consensus(wave=1).exact
    step, t, views = ToyStep(seed=3), toy_puzzles(200, seed=6), toy_views(8, seed=8)
    pr, q = _record(step, t, views, 12)
    full = replay(pr, q, t, views, decide="vote")
    first = replay(pr, q, t, views, decide=Consensus(agree=1, wave=1))
    budget = replay(pr, q, t, views, decide=Vote(budget=16))
    assert (first.steps == first.view_steps[:, 0]).all() or (first.steps <= full.steps).all()
    assert (budget.steps <= 16 + 7).all() and budget.steps.mean() < full.steps.mean()
    assert not np.array_equal(first.predictions, full.predictions)   # why m-agreement is not called exact


def test_verifier_picks_a_rule_keeping_answer_and_is_reported():
    task = lookup({"name": "sudoku", "size": 4})
    x, y = task.examples(20, 16, seed=2)
    views = task.views(4, 16)
    right = {v.apply(x[i]).tobytes(): v.apply(y[i]) for v in views[1:] for i in range(len(x))}

    def step(tokens, pe, yy, zz):     # the right answer on views 1..3, the unsolved puzzle (sure of it) on view 0
        ans = np.stack([right.get(t.tobytes(), t) for t in tokens])
        q = np.array([9.0 if t.tobytes() not in right else 1.0 for t in tokens], np.float32)
        return yy, zz, np.eye(6, dtype=np.float32)[ans], q
    s0 = np.zeros((16, 2), np.float32)
    run = lambda d, verifier=None: solve(step, x, None, s0, s0, max_steps=2, views=views, decide=d, verifier=verifier)
    best = run(BestQ())
    assert (best.chosen == 0).all() and not task.check(x, best.predictions).any()
    checked = run(BestQ(verify=True), task.check)
    assert task.check(x, checked.predictions).all() and (checked.predictions == y).all()
    assert checked.verified[np.arange(len(x)), checked.chosen].all() and not checked.verified[:, 0].any()
    assert (run(Vote()).predictions == y).all()                       # 3 views of 4 outvote the sure one
    with pytest.raises(TRMEdgeError, match="rule checker"):
        run(Vote(verify=True))


def test_bad_views_and_policies_are_one_line():
    step, t = ToyStep(), toy_puzzles(3)
    y0 = np.zeros((6, 4), np.float32)
    for bad, msg in ((lambda: decision("bogus"), "policy must be one of"),
                     (lambda: Vote(agree=2), "agree belongs to the consensus and best policies"),
                     (lambda: Consensus(agree=0), "agree"),
                     (lambda: Vote(budget=-1), "budget"),
                     (lambda: solve(step, t, None, y0, y0, views=toy_views(3)[1:]), "view 0 must be the identity"),
                     (lambda: solve(step, t, None, y0, y0, views=[]), "views must be a list")):
        with pytest.raises(TRMEdgeError) as e:
            bad()
        assert msg in str(e.value) and "\n" not in str(e.value)


def test_views_without_a_policy_run_the_recommended_one(tiny_sudoku_model, tmp_path, capsys):
    """`export` records the task's recommended views (Sudoku: 8) with decide.RECOMMENDED's policy and the
    table itself; `--views K` with no policy runs the row for K; `--views 1` is the single-view loop."""
    import json

    from trm_edge.checkpoint import save_checkpoint
    from trm_edge.cli import main
    from trm_edge.data import lookup
    from trm_edge.runtime.bundle import Bundle
    from trm_edge.runtime.decide import RECOMMENDED, recommended
    ckpt = save_checkpoint(tiny_sudoku_model, tmp_path / "tiny.safetensors", task={"name": "sudoku", "size": 4})
    assert main(["export", "--target", "onnx", "--model", str(ckpt), "--out", str(tmp_path / "b")]) == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())["views"]
    assert m["count"] == min(lookup("sudoku").recommended_views, lookup("sudoku").view_count(16)) == 8
    assert m["policy"] == {"policy": "consensus", "agree": 2, "wave": 2} and m["recommended"] == list(RECOMMENDED)
    assert recommended(1) is None and recommended(8).to_manifest() == m["policy"]
    b = Bundle(tmp_path / "b")
    tokens = np.array([[1, 3, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 4, 1]] * 3)
    assert b.recommended(4).to_manifest() == m["policy"] and b.recommended(1) is None
    four = b.solve(tokens, views=4)
    assert four.decision.to_manifest() == m["policy"] and four.views == 4
    assert b.solve(tokens, views=4, decide="vote").decision.name == "vote"
    one = b.solve(tokens, views=1)
    assert one.views == 1 and one.decision.name == "vote"
    assert main(["export", "--target", "onnx", "--model", str(ckpt), "--views", "1", "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["views"]["count"] == 1
