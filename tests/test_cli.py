"""The command line: info and solve work; bad input gives one line and exit code 2. Sudoku solves
run the trained 4x4 model (tests/trained.py), so a wrong answer fails."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from trained import MAX_STEPS, trained_model_path

from trm_edge.cli import main

SUDOKU_4 = "1.3..4.1..1.4.2."     # 4x4, blanks as dots


SOLVABLE_4 = ".2..3..24..1.13."     # 7 givens, one solution (checked by brute force):
SOLVABLE_4_ANSWER = "1243341243212134"


@pytest.fixture
def sudoku_ckpt():
    return str(trained_model_path())


def _cells(answer: str) -> str:
    """An answer as printed (compact "1243..." or a grid with separators) as its 16 digits."""
    return "".join(ch for ch in answer if ch.isdigit())


def _solves(puzzle: str, answer: str) -> bool:
    import numpy as np

    from trm_edge.data.sudoku import check
    tokens = np.array([[1 if c == "." else int(c) + 1 for c in puzzle]])
    return bool(check(tokens, np.array([[int(c) + 1 for c in _cells(answer)]]))[0])


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_info(golden, capsys):
    code, out, _ = _run(["info", str(golden.state_dict_path), "--json"], capsys)   # config.json beside it
    assert code == 0
    facts = json.loads(out)
    assert facts["parameters"] == json.loads((golden.dir / "state_dict_keys.json").read_text())["num_parameters"]
    assert facts["config"]["H_cycles"] == golden.config["H_cycles"]
    assert facts["flops_per_step"] > 0
    assert facts["flops_per_4_steps"] == 4 * facts["flops_per_step"]
    code, out, _ = _run(["info", str(golden.state_dict_path)], capsys)
    assert code == 0 and "parameters" in out and "FLOPs per step" in out


def test_solve_sudoku(sudoku_ckpt, capsys):
    code, out, _ = _run(["solve", "--model", sudoku_ckpt, "--puzzle", SOLVABLE_4, "--json"], capsys)
    assert code == 0
    row = json.loads(out)
    assert len(_cells(row["answer"])) == 16      # every cell answered (whatever the notation)
    assert _solves(SOLVABLE_4, row["answer"]) and _cells(row["answer"]) == SOLVABLE_4_ANSWER
    assert 1 <= row["steps"] < MAX_STEPS        # q_halt stops the solved puzzle early
    code, out, _ = _run(["solve", "--model", sudoku_ckpt, "--puzzle", SOLVABLE_4, "--halting", "fixed"], capsys)
    assert code == 0 and f"steps {MAX_STEPS}," in out


def test_solve_puzzle_file_batch(sudoku_ckpt, tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text(f"# two puzzles\n{SOLVABLE_4}\n{SUDOKU_4.replace('1', '.')}\n")
    code, out, _ = _run(["solve", "--model", sudoku_ckpt, "--puzzle-file", str(f), "--json"], capsys)
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and len(rows) == 2
    assert _solves(SOLVABLE_4, rows[0]["answer"])


def test_solve_raw_tokens(golden, capsys):
    tokens = ",".join(str(t) for t in golden["inputs"][0])
    code, out, _ = _run(["solve", "--model", str(golden.state_dict_path), "--puzzle", tokens,
                         "--halting", "fixed", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["steps"] == golden.config["halt_max_steps"]


@pytest.mark.parametrize("args, message", [
    (["--puzzle", SUDOKU_4[:-1]], "has 15 cells, a 4x4 Sudoku has 16"),
    (["--puzzle", SUDOKU_4[:-1] + "7"], "cell 16 is '7'"),
    (["--task", "tokens", "--puzzle", ",".join(["9"] * 16)], "token 9 is outside the vocabulary 0..5"),
    (["--puzzle", SUDOKU_4, "--puzzle-id", "5"], "--puzzle-id 5 is outside"),
    (["--puzzle", SUDOKU_4, "--threshold", "2"], "threshold"),
    ([], "exactly one of --puzzle"),
    (["--puzzle", SUDOKU_4, "--halting", "never"], "'never' is not one of"),
])
def test_bad_puzzles(sudoku_ckpt, capsys, args, message):
    code, out, err = _run(["solve", "--model", sudoku_ckpt, *args], capsys)
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1


def test_bad_checkpoints(golden, tmp_path, capsys):
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not a checkpoint")
    lone = tmp_path / "step_7"
    lone.write_bytes(golden.state_dict_path.read_bytes())
    other = "trm_mlpt_sudoku_tiny" if golden.name == "trm_att_tiny" else "trm_att_tiny"
    cases = [
        (["info", str(tmp_path / "missing.pt")], "no checkpoint at"),
        (["info", str(wrong)], "neither .safetensors nor a torch checkpoint"),
        (["info", str(lone)], "does not say H_cycles"),                                # no config
        (["info", str(golden.state_dict_path), "--config", str(golden.dir.parent / other / "config.json")],
         "does not fit the config"),                                                   # wrong checkpoint
        (["info", str(lone), "--config", str(tmp_path / "nope.yaml")], "no config file at"),
    ]
    for argv, message in cases:
        code, out, err = _run(argv, capsys)
        assert code == 2, argv
        assert message in err and err.count("\n") == 1, err


def test_console_script_exit_code(tmp_path):
    """The installed entry point: a real process, one line, exit code 2."""
    r = subprocess.run([sys.executable, "-m", "trm_edge.cli", "info", str(tmp_path / "none.pt")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: no checkpoint at") and r.stderr.count("\n") == 1
    r = subprocess.run([sys.executable, "-m", "trm_edge.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "solve" in r.stdout
