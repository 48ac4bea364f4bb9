"""Big inputs stream (issue 27): `Solver.solve_stream` solves chunk by chunk, each puzzle exactly as one
big batch would (halting and views are per puzzle), and `run`/`solve --puzzle-file` print every chunk's
answers as it finishes, in input order, with memory bounded by one chunk."""
from __future__ import annotations

import json

import numpy as np
import pytest

from trm_edge.cli import main
from trm_edge.data import codec, sample_puzzles
from trm_edge.errors import TRMEdgeError
from trm_edge.extras import SHIPPED_BUNDLE
from trm_edge.runtime.bundle import Bundle
from trm_edge.runtime.solver import CHUNK_ROWS

SUDOKU = {"name": "sudoku", "size": 9}


@pytest.fixture(scope="module")
def bundle():
    return Bundle(SHIPPED_BUNDLE, threads=2)


@pytest.fixture(scope="module")
def eager():
    import trm_edge
    from trm_edge.extras import SHIPPED_MODEL
    return trm_edge.open(SHIPPED_MODEL, threads=2)


@pytest.fixture(scope="module")
def puzzles():
    return sample_puzzles(SUDOKU, 81, 11, 40, seed=21)


@pytest.mark.parametrize("views, chunk", [(1, 16), (4, 7)])
def test_chunks_solve_each_puzzle_as_one_batch_does(eager, puzzles, views, chunk):
    """fp32 (eager): a row's answer and steps do not depend on its batch-mates (its q_halt may move in the
    last bit with the GEMM's blocking). A dynamic-int8 bundle quantizes activations with one scale per
    batch, so there a puzzle's halting step can move with its batch (seen: 2 of 40 on the shipped bundle)."""
    whole = eager.solve(puzzles, views=views)
    parts = list(eager.solve_stream(puzzles, views=views, chunk=chunk))
    assert [a for a, _ in parts] == list(range(0, len(puzzles), chunk))
    for name in ("predictions", "steps"):
        got = np.concatenate([getattr(s, name) for _, s in parts])
        np.testing.assert_array_equal(got, getattr(whole, name), err_msg=name)
    got = np.concatenate([s.halt_probability for _, s in parts])     # GEMM blocking moves the last bit
    np.testing.assert_allclose(got, whole.halt_probability, rtol=0, atol=1e-6)
    assert whole.views == views and all(s.views == views for _, s in parts)


def test_default_chunk_is_chunk_rows_of_puzzles_times_views(bundle, puzzles):
    sizes = [len(s.steps) for _, s in bundle.solve_stream(puzzles[:12], views=8)]
    assert sizes == [CHUNK_ROWS // 8] * (12 // (CHUNK_ROWS // 8))
    with pytest.raises(TRMEdgeError, match="chunk must be a whole number"):
        next(bundle.solve_stream(puzzles, chunk=0))


def test_the_cli_prints_every_chunk_in_input_order(eager, puzzles, tmp_path, capsys):
    cod = codec(SUDOKU, 81)
    f = tmp_path / "puzzles.txt"
    f.write_text("\n".join(cod.compact(p) for p in puzzles) + "\n")
    assert main(["solve", "--puzzle-file", str(f), "--threads", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    whole = eager.solve(puzzles, views=1)
    assert [r["puzzle"] for r in rows] == [cod.compact(p) for p in puzzles]
    assert [r["answer"] for r in rows] == [cod.compact(p) for p in whole.predictions]
    assert [r["steps"] for r in rows] == whole.steps.tolist()
    assert main(["run", str(SHIPPED_BUNDLE), "--puzzle-file", str(f), "--views", "4"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("40 puzzle(s) in ") and f"chunks of {CHUNK_ROWS // 4}, 4 views each (consensus)" in last
