"""The task encoding as data (issue 13): the C++ runner reads puzzle text and writes answers with the
manifest's task.encoding alone ("cells", "aliases", "skip"; export/README.md), with no code of its own
for any task, and refuses a broken encoding with one line naming the field.

The bundle is the tiny 4x4 model (tests/conftest.py's make_tiny_sudoku_model) exported once to
ExecuTorch without a task; each test writes the task it needs into a copy's manifest (the listed files
are untouched, so their hashes hold). The same manifests are checked against the schema, the Python
side's share of these rules.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from native_build import why_no_native

SUDOKU = {"layout": "row-major cells", "cells": [None, ".", "1", "2", "3", "4"], "aliases": {"0": "."},
          "skip": " \t|-+/"}
MAZE = {"layout": "row-major cells", "cells": [None, "#", " ", "S", "G", "o"], "aliases": {".": " "}, "skip": "/"}
ARC = {"layout": "30x30 canvas, row-major, EOS-framed", "pad": 0, "eos": 1, "colours": [2, 3, 4, 5]}

# 4x4 Sudokus in text (aliases '0' for '.', skip characters between cells) and as tokens (blank 1, d -> d + 1)
PUZZLES = [("12.. | 0034/ 4..1-2...", "2,3,1,1,1,1,4,5,5,1,1,2,3,1,1,1"),
           ("\t..3.\n.0.1|+2...|...4", "1,1,4,1,1,1,1,2,3,1,1,1,1,1,1,5")]
MAZE_TEXT = ("#S. /# G#/o   /####", "1,3,2,2,1,2,4,1,5,2,2,2,1,1,1,1")

TIMEOUT = 120
needs_runner = pytest.mark.skipif(why_no_native() is not None, reason=str(why_no_native()))


@pytest.fixture(scope="session")
def tiny_et_bundle(tmp_path_factory) -> Path:
    """The tiny model exported to an ExecuTorch fp32 bundle without a task (~2 min)."""
    if why_no_native():
        pytest.skip(why_no_native())
    from conftest import make_tiny_sudoku_model

    from trm_edge.checkpoint import load_checkpoint, save_checkpoint
    from trm_edge.export.bundle import export_bundle
    d = tmp_path_factory.mktemp("tiny-et")
    ckpt = load_checkpoint(save_checkpoint(make_tiny_sudoku_model(), d / "tiny.safetensors"))
    path, _ = export_bundle(ckpt, "executorch", d / "bundle", "fp32", log=lambda *a: None, accuracy_puzzles=0)
    return Path(path)


def _bundle(good: Path, where: Path, task=None, **top) -> Path:
    """A copy of the good bundle whose manifest has this task (and top-level keys changed)."""
    d = where / "bundle"
    shutil.copytree(good, d)
    m = json.loads((d / "manifest.json").read_text())
    m["task"] = task
    for k, v in top.items():
        if "." in k:
            outer, inner = k.split(".")
            m[outer][inner] = v
        else:
            m[k] = v
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def _run(runner: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(runner / "trm-runner"), str(bundle), *args], capture_output=True, text=True,
                          timeout=TIMEOUT)


def _answers(r: subprocess.CompletedProcess) -> list[dict]:
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def _refused(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    err = r.stderr
    assert err.startswith("trm-runner: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert not [c for c in err[:-1] if unicodedata.category(c) == "Cc"], err
    for w in words:
        assert w in err, err
    return err


def _render(tokens: list[int], cells: list) -> str:
    return "".join(cells[t] if 0 <= t < len(cells) and cells[t] is not None else "?" for t in tokens)


def _schema_errors(manifest: dict) -> list[str]:
    from trm_edge.runtime.manifest import schema_errors
    return schema_errors(manifest)


# ---------------------------------------------------------------- reading and writing text

@needs_runner
def test_sudoku_text_reads_as_its_tokens(native_runner, tiny_et_bundle, tmp_path):
    b = _bundle(tiny_et_bundle, tmp_path, {"name": "sudoku", "size": 4, "encoding": SUDOKU})
    texts = [a for p in PUZZLES for a in ("--puzzle", p[0])]
    lists = [a for p in PUZZLES for a in ("--tokens", p[1])]
    got, want = _answers(_run(native_runner, b, "--json", *texts)), _answers(_run(native_runner, b, "--json", *lists))
    assert [(g["answer"], g["steps"], g["q_halt"]) for g in got] == [(w["answer"], w["steps"], w["q_halt"]) for w in want]
    assert got[0]["q_halt"] != got[1]["q_halt"], "two puzzles solve alike: the comparison cannot tell inputs apart"

    # a puzzle file: comment line, a text line, a token list
    f = tmp_path / "puzzles.txt"
    f.write_text(f"# two 4x4 puzzles\n{PUZZLES[0][0]}\n{PUZZLES[1][1]}\n")
    from_file = _answers(_run(native_runner, b, "--json", "--puzzle-file", str(f)))
    assert [g["answer"] for g in from_file] == [g["answer"] for g in got]

    # the text answer is cells[token], '?' for the pad token (no character)
    r = _run(native_runner, b, "--puzzle", PUZZLES[0][0])
    assert r.returncode == 0, r.stderr
    assert f"answer  {_render(got[0]['answer'], SUDOKU['cells'])}\n" in r.stdout


@needs_runner
def test_maze_text_reads_as_its_tokens(native_runner, tiny_et_bundle, tmp_path):
    b = _bundle(tiny_et_bundle, tmp_path, {"name": "maze", "size": 4, "encoding": MAZE})
    got = _answers(_run(native_runner, b, "--json", "--puzzle", MAZE_TEXT[0]))
    assert got == [{**w, "ms": got[0]["ms"]} for w in _answers(_run(native_runner, b, "--json", "--tokens", MAZE_TEXT[1]))]
    # rows start with '#' walls: in a puzzle file they are puzzles, not comments
    f = tmp_path / "mazes.txt"
    f.write_text("\n".join(MAZE_TEXT[0].split("/")) + "\n")
    _refused(_run(native_runner, b, "--puzzle-file", str(f)), "line 1", "puzzle has 4 cells, the model takes 16")
    f.write_text(MAZE_TEXT[0].replace("/", "") + "\n")
    assert [g["answer"] for g in _answers(_run(native_runner, b, "--json", "--puzzle-file", str(f)))] == [got[0]["answer"]]
    r = _run(native_runner, b, "--puzzle", MAZE_TEXT[0])
    assert f"answer  {_render(got[0]['answer'], MAZE['cells'])}\n" in r.stdout, r.stdout


@needs_runner
@pytest.mark.parametrize("puzzle, words", [
    ("12x.0034.4..12...", ["cell 3 is 'x', not a cell of this sudoku: use '.', '1', '2', '3', '4' ('0' for '.')"]),
    ("12\u00e9.0034.4..12...", ["cell 3 is '\u00e9'"]),
    ("12.5" * 4, ["cell 4 is '5'"]),
    ("12..", ["puzzle has 4 cells, the model takes 16"]),
    ("12..|0034|4..1|2...|.", ["puzzle has 17 cells"]),
])
def test_bad_sudoku_text_fails_with_one_line(native_runner, tiny_et_bundle, tmp_path, puzzle, words):
    b = _bundle(tiny_et_bundle, tmp_path, {"name": "sudoku", "size": 4, "encoding": SUDOKU})
    _refused(_run(native_runner, b, "--puzzle", puzzle), *words)


@needs_runner
@pytest.mark.parametrize("task, message", [
    ({"name": "arc", "encoding": ARC}, "the arc task has no text form here: give --tokens"),
    ({"name": "tokens"}, "the tokens task has no text form here: give --tokens"),
    (None, "this bundle has no task, so puzzles have no text form: give --tokens"),
])
def test_no_text_form_says_give_tokens(native_runner, tiny_et_bundle, tmp_path, task, message):
    b = _bundle(tiny_et_bundle, tmp_path, task)
    _refused(_run(native_runner, b, "--puzzle", "." * 16), message)
    r = _run(native_runner, b, "--tokens", PUZZLES[0][1])     # token lists work, answers print as tokens
    assert r.returncode == 0, r.stderr
    answer = r.stdout.splitlines()[0].split()
    assert answer[0] == "answer" and len(answer[1].split(",")) == 16, r.stdout


# ---------------------------------------------------------------- broken encodings

def _enc(**change) -> dict:
    e = {**SUDOKU, **change}
    return {k: v for k, v in e.items() if v is not None}


BAD_TASKS = {   # id: (task, words of the runner's one line, refused by the schema alone)
    "duplicate-cell": ({"name": "sudoku", "size": 4, "encoding": _enc(cells=[None, ".", "1", "2", "1", "4"])},
                       ["task.encoding.cells gives '1' to tokens 2 and 4"], False),
    "two-character-cell": ({"name": "sudoku", "size": 4, "encoding": _enc(cells=[None, ".", "1", "22", "3", "4"])},
                           ["task.encoding.cells[3]", "not one printable ASCII character"], True),
    "empty-cell": ({"name": "sudoku", "encoding": _enc(cells=[None, "", "1"])}, ["task.encoding.cells[1]"], True),
    "newline-cell": ({"name": "sudoku", "encoding": _enc(cells=[None, "\n", "1"])}, ["task.encoding.cells[1]"], True),
    "non-ascii-cell": ({"name": "sudoku", "encoding": _enc(cells=[None, "\u00e9", "1"])}, ["task.encoding.cells[1]"], True),
    "int-cell": ({"name": "sudoku", "encoding": _enc(cells=[None, 1, "1"])}, ["task.encoding.cells[1]"], True),
    "cells-empty": ({"name": "sudoku", "encoding": _enc(cells=[])}, ["task.encoding.cells has 0 items"], True),
    "cells-string": ({"name": "sudoku", "encoding": _enc(cells=".1234")}, ["task.encoding.cells must be a list"], True),
    "too-many-cells": ({"name": "sudoku", "size": 4, "encoding": _enc(cells=[None, ".", "1", "2", "3", "4", "5"])},
                       ["task.encoding.cells lists 7 tokens, more than trm_config.vocab_size 6"], False),
    "cells-past-schema": ({"name": "sudoku", "encoding": _enc(cells=[None] * 4097)}, ["task.encoding.cells has 4097 items"],
                          True),
    "alias-to-unknown-cell": ({"name": "sudoku", "size": 4, "encoding": _enc(aliases={"0": "x"})},
                              ["task.encoding.aliases maps '0' to 'x', which is not a character of cells"], False),
    "alias-is-a-cell": ({"name": "sudoku", "size": 4, "encoding": _enc(aliases={"1": "."})},
                        ["task.encoding.aliases maps '1', which is a cell itself"], False),
    "alias-two-characters": ({"name": "sudoku", "encoding": _enc(aliases={"00": "."})}, ["task.encoding.aliases key"], True),
    "alias-to-null": ({"name": "sudoku", "encoding": _enc(aliases={"0": None})}, ["task.encoding.aliases.0"], True),
    "aliases-list": ({"name": "sudoku", "encoding": _enc(aliases=["0", "."])}, ["task.encoding.aliases must be an object"],
                     True),
    "skip-a-cell": ({"name": "sudoku", "size": 4, "encoding": _enc(skip=" .")},
                    ["task.encoding.skip holds '.', which is a cell or an alias"], False),
    "skip-an-alias": ({"name": "sudoku", "size": 4, "encoding": _enc(skip=" 0")},
                      ["task.encoding.skip holds '0', which is a cell or an alias"], False),
    "skip-newline": ({"name": "sudoku", "encoding": _enc(skip=" \n")}, ["task.encoding.skip holds a character other than"],
                     True),
    "skip-long": ({"name": "sudoku", "encoding": _enc(skip="|" * 33)}, ["task.encoding.skip has more than 32"], True),
    "skip-int": ({"name": "sudoku", "encoding": _enc(skip=7)}, ["task.encoding.skip must be a string"], True),
    "aliases-without-cells": ({"name": "sudoku", "encoding": {"layout": "x", "aliases": {"0": "."}}},
                              ['task.encoding has "aliases" but no "cells"'], True),
    "layout-missing": ({"name": "sudoku", "encoding": {"cells": [None, "."]}}, ['task.encoding lacks "layout"'], True),
    "layout-long": ({"name": "sudoku", "encoding": _enc(layout="x" * 129)}, ["task.encoding.layout must have 1..128"], True),
    "old-digit-rule": ({"name": "sudoku", "size": 4, "encoding": {"pad": 0, "blank": 1, "digit": "d + 1", "vocab_size": 6,
                                                                  "layout": "row-major cells"}},
                       ['task.encoding has an unknown key "blank"'], True),
    "old-char-map": ({"name": "maze", "encoding": {"pad": 0, "#": 1, " ": 2, "layout": "row-major cells"}},
                     ["task.encoding has an unknown key"], True),
    "encoding-list": ({"name": "sudoku", "encoding": [None, "."]}, ["task.encoding must be an object"], True),
    "encoding-null": ({"name": "sudoku", "encoding": None}, ["task.encoding must be an object"], True),
    "task-without-encoding": ({"name": "chess"}, ['task lacks "encoding"'], True),
    "tokens-with-encoding": ({"name": "tokens", "encoding": SUDOKU}, ['task "tokens" (token lists only) has an encoding'],
                             True),
    "task-name-not-a-name": ({"name": "Sudoku 9x9", "encoding": SUDOKU}, ["task.name", "is not a name"], True),
    "pad-outside-vocabulary": ({"name": "arc", "encoding": {**ARC, "pad": 6}},
                               ["task.encoding.pad is token 6, outside the vocabulary 0..5"], False),
    "colour-outside-vocabulary": ({"name": "arc", "encoding": {**ARC, "colours": [2, 3, 9]}},
                                  ["task.encoding.colours[] is token 9, outside the vocabulary 0..5"], False),
    "colour-twice": ({"name": "arc", "encoding": {**ARC, "colours": [2, 3, 2]}}, ["task.encoding.colours lists token 2 twice"],
                     True),
    "eos-negative": ({"name": "arc", "encoding": {**ARC, "eos": -1}}, ["task.encoding.eos is -1"], True),
}


@needs_runner
@pytest.mark.parametrize("case", list(BAD_TASKS))
def test_bad_encoding_refused_with_one_line(native_runner, tiny_et_bundle, tmp_path, case):
    task, words, _ = BAD_TASKS[case]
    b = _bundle(tiny_et_bundle, tmp_path, task)
    _refused(_run(native_runner, b, "--tokens", PUZZLES[0][1]), str(b / "manifest.json"), *words)


@needs_runner
@pytest.mark.parametrize("top, words", [
    ({"halting.policy": "greedy"}, ["halting.policy is \"greedy\", a policy this runner does not implement",
                                    "fixed and q_halt"]),
    ({"halting.policy": "Q-halt"}, ["halting.policy \"Q-halt\" is not a name"]),
    ({"target": "tflite"}, ["is a tflite bundle; this runner runs executorch bundles"]),
    ({"target": "tensor rt"}, ["target \"tensor rt\" is not a name"]),
    ({"target": "executorch\n"}, ["is not a name"]),
])
def test_names_the_runner_does_not_run_refused(native_runner, tiny_et_bundle, tmp_path, top, words):
    b = _bundle(tiny_et_bundle, tmp_path, None, **top)
    _refused(_run(native_runner, b, "--tokens", PUZZLES[0][1]), *words)


# ---------------------------------------------------------------- the schema (the Python side's share)

def _manifest(task, **top) -> dict:
    """A schema-valid manifest (no files behind it) with this task."""
    m = {"format_version": 1, "target": "executorch", "precision": "fp32", "model_file": "step.pte", "batch": None,
         "files": {"step.pte": {"sha256": "0" * 64, "bytes": 1}, "init.npz": {"sha256": "0" * 64, "bytes": 1}},
         "trm_config": {"seq_len": 16, "vocab_size": 6, "hidden_size": 32, "puzzle_emb_ndim": 0, "puzzle_emb_len": 0,
                        "halt_max_steps": 6},
         "inputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in
                    (("tokens", ["batch", 16]), ("y", ["batch", 16, 32]), ("z", ["batch", 16, 32]))],
         "outputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in
                     (("y_next", ["batch", 16, 32]), ("z_next", ["batch", 16, 32]), ("logits", ["batch", 16, 6]),
                      ("q_halt", ["batch"]))],
         "io_names": {"tokens": "tokens"}, "halting": {"policy": "q_halt", "max_steps": 6, "threshold": 0.5},
         "task": task}
    for k, v in top.items():
        outer, _, inner = k.partition(".")
        if inner:
            m[outer][inner] = v
        else:
            m[k] = v
    return m


@pytest.mark.parametrize("task", [
    {"name": "sudoku", "size": 4, "encoding": SUDOKU},
    {"name": "sudoku", "size": 9, "encoding": {"layout": "row-major cells", "cells": [None, ".", *"123456789"],
                                                "aliases": {"0": "."}, "skip": " \t|-+"}},
    {"name": "maze", "size": 30, "encoding": MAZE},
    {"name": "arc", "encoding": {**ARC, "colours": list(range(2, 12))}},
    {"name": "sudoku", "encoding": {"layout": "row-major cells", "cells": [None, None, "a"]}},   # nulls may repeat
    {"name": "tokens"},
    None,
])
def test_schema_takes_the_encodings(task):
    assert _schema_errors(_manifest(task)) == []


@pytest.mark.parametrize("case", [c for c, (_, _, by_schema) in BAD_TASKS.items() if by_schema])
def test_schema_refuses_bad_encodings(case):
    task, _, _ = BAD_TASKS[case]
    if case == "task-without-encoding":
        task = {"name": "sudoku"}      # "chess" is refused by the name list too; this one only by the missing encoding
    errors = _schema_errors(_manifest(task))
    assert errors and any("task" in e for e in errors), errors


@pytest.mark.parametrize("top, ok", [
    ({"target": "tensorrt"}, True),            # a name: Python checks its targets table, the runner its own target
    ({"target": "Tensor RT"}, False),
    ({"target": 3}, False),
    ({"halting.policy": "greedy"}, True),      # a name: each runtime checks the policies it implements
    ({"halting.policy": "q-halt"}, False),
    ({"halting.policy": ""}, False),
])
def test_schema_names_for_target_and_policy(top, ok):
    assert (_schema_errors(_manifest(None, **top)) == []) == ok
