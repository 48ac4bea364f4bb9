"""When two views' answers are the same answer (runtime/same.py, a manifest's views.same): equal cells
by default; for mazes, any two answers that mark one simple S->G path of the same length, so views
that draw different shortest paths vote together. Checked on real mazes and their other shortest
paths, on a recorded trace of the shipped Maze model, and through the manifest's contract."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trm_edge.data import lookup, maze
from trm_edge.errors import TRMEdgeError
from trm_edge.runtime.decide import decision, from_manifest
from trm_edge.runtime.loop import replay
from trm_edge.runtime.same import RULES, cells, key, rule_errors, score

SIDE = 15
TRACE = Path(__file__).parent / "fixtures" / "maze_views_trace.npz"
PATH_RULE = lookup("maze").same_answer(SIDE * SIDE)


def _mazes(n=6, seed=11):
    x, y = maze.generate(n, SIDE, seed=seed)
    return x, y


def _other_path(x, k):
    """The shortest path dihedral view k draws by its own tie-break (maze.label), mapped back."""
    xt, _ = maze.augment(x, x, k)
    return maze.inverse_dihedral(maze.label(xt).reshape(SIDE, SIDE), k).reshape(-1)


def test_the_maze_task_names_the_path_rule_and_sudoku_none():
    assert PATH_RULE == {"rule": "path", "open": maze.OPEN, "path": maze.PATH, "ends": [maze.START, maze.GOAL]}
    assert lookup("sudoku").same_answer(81) is None and set(RULES) == {"cells", "path"}


def test_different_shortest_paths_are_one_answer_and_broken_ones_are_not():
    same = key(PATH_RULE)
    x, y = _mazes()
    differed = 0
    for i in range(len(x)):
        length = int((y[i] == maze.PATH).sum())
        assert same(x[i], y[i]) == ("path", length)
        for k in range(1, 8):
            other = _other_path(x[i], k)
            assert maze.check(x[i], other)
            differed += bool((other != y[i]).any())
            assert same(x[i], other) == same(x[i], y[i])
        on = np.flatnonzero(y[i] == maze.PATH)
        gap = y[i].copy()
        gap[on[len(on) // 2]] = maze.OPEN                         # a hole in the path
        extra = y[i].copy()
        extra[np.flatnonzero(y[i] == maze.OPEN)[0]] = maze.PATH   # one cell too many
        wall = y[i].copy()
        wall[np.flatnonzero(x[i] == maze.WALL)[0]] = maze.PATH   # through a wall
        for bad in (gap, extra, wall):
            assert same(x[i], bad) == cells(x[i], bad) != same(x[i], y[i])
    assert differed > 0, "the views drew no different path on these mazes: the test shows nothing"


def test_a_longer_path_is_another_answer():
    same = key(PATH_RULE)
    x = np.full((SIDE, SIDE), maze.WALL)
    x[1, 1:6] = maze.OPEN                      # a straight corridor S . . . G
    x[1, 1], x[1, 5] = maze.START, maze.GOAL
    x[2, 1:6] = maze.OPEN                      # and a parallel one below it
    x = x.reshape(-1)
    straight, detour = x.copy(), x.copy()
    straight[[17, 18, 19]] = maze.PATH
    detour[[31, 32, 33, 34, 35]] = maze.PATH   # down, along the lower corridor, up
    assert same(x, straight) == ("path", 3) and maze.check(x, straight)
    assert same(x, detour) == ("path", 5) and not maze.check(x, detour)
    assert [score(same(x, a)) for a in (straight, detour, x)] == [3, 5, None]


def test_best_takes_the_shortest_path_and_waits_for_every_view_unless_told():
    """Policy best over keys: the lowest score wins whatever the vote says; without agree it never stops
    early (exact); with agree m it stops once m views share the best score so far."""
    long_, short_, raw = ("path", 40), ("path", 30), b"\x01" * 8
    keys, q = [long_, long_, long_, short_], np.zeros(4, np.float32)
    assert decision("vote").choose(keys, q) == 0 and decision("best").choose(keys, q) == 3
    assert decision("best").choose([raw, raw, b"\x02" * 8], q[:3]) == 0          # nothing scored: the vote
    assert not decision("best").done(keys, q, running=1, unlaunched=0) and decision("best").exact
    two = decision("best", agree=2)
    assert not two.exact and two.done([long_, long_], q[:2], running=2, unlaunched=4)   # 2 agree on the best so far
    assert not two.done([long_, short_], q[:2], running=2, unlaunched=4)


def test_the_maze_default_beats_identical_answers_on_the_shipped_models_views():
    """A recorded run of the shipped Maze model (8 views, 16 fixed steps, the first 64 mazes of its card's set;
    tests/fixtures/README.md) replayed at q_halt 0.5: the Maze default (best, 3 agree, waves of 2, paths as
    keys) solves every maze the Sudoku default (consensus of 2 identical answers) solves, and more."""
    rec = np.load(TRACE)
    pr, q, x = rec["predictions"].astype(np.int64), rec["q_halt"], rec["inputs"]
    views = lookup("maze").views(8, SIDE * SIDE)
    default = from_manifest(lookup("maze").recommended_policy[0]["policy"])
    assert default.describe() == "best, 3 agree, waves of 2"
    solved = {}
    for name, d, same in (("sudoku default", decision("consensus", agree=2, wave=2), None),
                          ("maze default", default, key(PATH_RULE))):
        solved[name] = maze.check(x, replay(pr, q, x, views, decide=d, same=same).predictions)
    ours, theirs = solved["maze default"], solved["sudoku default"]
    assert (ours >= theirs).all() and ours.sum() > theirs.sum(), (ours.mean(), theirs.mean())


@pytest.mark.parametrize("same,words", [
    ({"rule": "colour"}, "views.same.rule must be one of cells, path"),
    ({"rule": "path", "open": 2, "path": 5}, "views.same.ends must be two tokens of 0..5"),
    ({"rule": "path", "open": 2, "path": 9, "ends": [3, 4]}, "views.same.path must be a token of 0..5"),
    ({"rule": "path", "open": 2, "path": 5, "ends": [3, 4], "walls": 1}, "views.same has an unknown key 'walls'"),
    ("path", "views.same.rule must be one of cells, path"),
])
def test_bad_rules_are_one_line(same, words):
    """What a manifest's views.same may hold (rule 7, trm_edge/runtime/manifest.py views_errors), one line each."""
    from trm_edge.export.bundle import views_block
    from trm_edge.runtime.manifest import views_errors
    v = views_block({"name": "maze", "size": SIDE}, SIDE * SIDE, 8)
    assert views_errors(v, {"seq_len": SIDE * SIDE, "vocab_size": 6}) == []
    errs = views_errors({**v, "same": same}, {"seq_len": SIDE * SIDE, "vocab_size": 6})
    assert errs and words in errs[0] and "\n" not in errs[0], errs
    with pytest.raises(TRMEdgeError, match="views.same.rule must be one of cells, path"):
        key({"rule": "colour"})


def test_a_maze_bundle_records_its_rule_and_default():
    """export writes the task's rule (views.same) and its recommended policy; Sudoku's stay as they were."""
    from trm_edge.export.bundle import views_block
    from trm_edge.runtime.decide import RECOMMENDED
    v = views_block({"name": "maze", "size": SIDE}, SIDE * SIDE, 8)
    assert v["same"] == PATH_RULE and v["count"] == 8 and len(v["list"]) == 8
    assert v["policy"] == {"policy": "best", "agree": 3, "wave": 2} == v["recommended"][0]["policy"]
    s = views_block({"name": "sudoku", "size": 9}, 81, 8)
    assert "same" not in s and s["recommended"] == list(RECOMMENDED)


# ---------------------------------------------------------------- the other runtimes decide alike

CASES = (("vote", 0), ("consensus", 2), ("best", 0), ("best", 2), ("best", 3))


def _cases():
    """Real answers: the 8 views of each fixture maze at its q_halt 0.5 halt, mapped back; every policy of
    CASES over the first k finished views (k = 1..8, the rest running) -> (line, Python's scores, done, choice)."""
    from trm_edge.runtime.halting import QHalt
    rec = np.load(TRACE)
    pr, q, x = rec["predictions"].astype(np.int64), rec["q_halt"], rec["inputs"]
    views = lookup("maze").views(8, SIDE * SIDE)
    stop = QHalt(0.5).replay(q.reshape(q.shape[0], -1)).reshape(q.shape[1:]) - 1     # [n, K] step index
    same = key(PATH_RULE)
    out = []
    for p in range(len(x)):
        answers = [views[v].answer(pr[stop[p, v], p, v]) for v in range(8)]
        qs = np.array([q[stop[p, v], p, v] for v in range(8)], np.float32)
        keys = [same(x[p], a) for a in answers]
        for name, agree in CASES:
            d = decision(name, agree=agree or None)
            for k in (1, 2, 3, 5, 8):
                line = " ".join(map(str, [maze.OPEN, maze.PATH, maze.START, maze.GOAL, name, agree, 0, 8 - k, 0,
                                          x.shape[1], k, *x[p], *np.concatenate(answers[:k]),
                                          *(format(float(v), ".9g") for v in qs[:k])]))
                want = ([-1 if score(kk) is None else score(kk) for kk in keys[:k]],
                        int(d.done(keys[:k], qs[:k], 8 - k, 0)), d.choose(keys[:k], qs[:k]))
                out.append((line, want))
    return out


def test_the_native_runner_keys_and_decides_as_python(tmp_path):
    """export/executorch/runner/views.cpp (compiled alone with tests/native/views_check.cpp) on the fixture's
    real answers: every key's score, every done and every choice as trm_edge.runtime."""
    import shutil
    import subprocess
    if not shutil.which("g++"):
        pytest.skip("needs g++ (apt-get install g++)")
    runner = Path(__file__).resolve().parents[1] / "export" / "executorch" / "runner"
    exe = tmp_path / "views_check"
    subprocess.run(["g++", "-std=c++17", "-O1", "-I", str(runner), str(Path(__file__).parent / "native" / "views_check.cpp"),
                    str(runner / "views.cpp"), "-o", str(exe)], check=True, capture_output=True)
    cases = _cases()
    r = subprocess.run([str(exe)], input="\n".join(c[0] for c in cases) + "\n", capture_output=True, text=True, check=True)
    got = [list(map(int, line.split())) for line in r.stdout.splitlines()]
    assert len(got) == len(cases)
    for (line, (scores, done, choice)), g in zip(cases, got):
        assert g == [*scores, done, choice], line[:60]
    assert any(s >= 0 for _, (scores, _, _) in cases for s in scores), "no answer was a path: the test shows nothing"
    assert len({c[1][2] for c in cases if c[0].split()[4] == "best"}) > 1


def test_the_web_runtime_keys_and_decides_as_python(tmp_path):
    """export/web/trm.js (answerKey, keyScore, Decision) under node on the same cases."""
    import shutil
    import subprocess
    if not shutil.which("node"):
        pytest.skip("needs node (apt-get install nodejs)")
    trm_js = Path(__file__).resolve().parents[1] / "export" / "web" / "trm.js"
    script = tmp_path / "check.mjs"
    script.write_text(f"""
import {{ answerKey, keyScore, Decision }} from {json.dumps(trm_js.as_uri())};
import {{ readFileSync }} from "node:fs";
const out = [];
for (const line of readFileSync(0, "utf8").trim().split("\\n")) {{
  const f = line.split(" ");
  const [open, path, s, g] = f.slice(0, 4).map(Number), name = f[4], agree = Number(f[5]);
  const running = Number(f[7]), L = Number(f[9]), K = Number(f[10]);
  const nums = f.slice(11).map(Number), puzzle = nums.slice(0, L), q = nums.slice(L + K * L);
  const same = {{ rule: "path", open, path, ends: [s, g] }};
  const keys = [...Array(K).keys()].map((k) => answerKey(same, puzzle, nums.slice(L + k * L, L + (k + 1) * L)));
  const d = new Decision({{ policy: name, agree: agree || null }});
  out.push([...keys.map((k) => keyScore(k) ?? -1), d.done(keys, q, running, 0, null) ? 1 : 0, d.choose(keys, q)].join(" "));
}}
console.log(out.join("\\n"));
""")
    cases = _cases()
    r = subprocess.run(["node", str(script)], input="\n".join(c[0] for c in cases) + "\n", capture_output=True,
                       text=True, check=True)
    got = [list(map(int, line.split())) for line in r.stdout.splitlines()]
    assert got == [[*scores, done, choice] for _, (scores, done, choice) in cases]
