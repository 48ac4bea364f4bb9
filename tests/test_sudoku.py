"""Sudoku data: generated puzzles have exactly one solution (checked by an independent search),
augmentations keep puzzles valid and solvable, and the checker rejects wrong answers."""
from __future__ import annotations

import numpy as np
import pytest

from trm_edge.data import sudoku as S


def count_solutions(grid: np.ndarray, limit: int = 2) -> int:
    """Plain backtracking, independent of the SAT solver: how many solutions (stops at `limit`)."""
    n = grid.shape[0]
    br, bc = S.BOXES[n]
    g = grid.copy()

    def ok(r, c, d):
        r0, c0 = r // br * br, c // bc * bc
        return d not in g[r] and d not in g[:, c] and d not in g[r0:r0 + br, c0:c0 + bc]

    def go() -> int:
        blanks = np.argwhere(g == 0)
        if not len(blanks):
            return 1
        r, c = blanks[0]
        total = 0
        for d in range(1, n + 1):
            if ok(r, c, d):
                g[r, c] = d
                total += go()
                g[r, c] = 0
                if total >= limit:
                    break
        return total

    return go()


@pytest.mark.parametrize("size, givens", [(4, (4, 8)), (6, (12, 18)), (9, (30, 36))])
def test_generated_puzzles_are_unique_and_consistent(size, givens):
    d = S.generate(12, size, givens, seed=7)
    for puzzle, solution in zip(d["puzzles"], d["solutions"]):
        assert count_solutions(puzzle) == 1
        assert np.all((puzzle == 0) | (puzzle == solution))
    assert S.check(S.to_tokens(d["puzzles"]), S.to_tokens(d["solutions"])).all()
    assert np.all((d["givens"] >= givens[0]) | (d["givens"] == (d["puzzles"] > 0).sum((1, 2))))
    again = S.generate(12, size, givens, seed=7)
    assert np.array_equal(again["puzzles"], d["puzzles"])            # deterministic per seed


def test_uniqueness_checker_finds_a_second_solution():
    sol = S.random_solution(9, np.random.default_rng(0))
    puzzle = sol.copy()
    # blank a rectangle of four cells holding a, b / b, a in one band across two boxes: a deadly pattern
    for r1, r2 in [(r1, r2) for r1 in range(9) for r2 in range(r1 + 1, 9) if r1 // 3 == r2 // 3]:
        for c1 in range(9):
            for c2 in range(c1 + 1, 9):
                if c1 // 3 != c2 // 3 and sol[r1, c1] == sol[r2, c2] and sol[r1, c2] == sol[r2, c1]:
                    for r, c in ((r1, c1), (r1, c2), (r2, c1), (r2, c2)):
                        puzzle[r, c] = 0
                    checker = S.UniquenessChecker(9)
                    other = checker.other_solution(puzzle, sol)
                    assert other is not None and not np.array_equal(other, sol)
                    assert count_solutions(puzzle) == 2
                    assert checker.is_unique(sol, sol)           # a full grid is unique
                    return
    pytest.skip("no deadly rectangle in this grid")


def test_augmentations_keep_puzzles_valid():
    d = S.generate(20, 9, (31, 40), seed=3)
    tok, lab = S.to_tokens(d["puzzles"]), S.to_tokens(d["solutions"])
    a, b = S.augment(tok, lab, np.random.default_rng(0))
    assert S.check(a, b).all()
    assert not np.array_equal(a, tok)
    assert np.array_equal(np.sort((a == 1).sum(1)), np.sort((tok == 1).sum(1)))   # blanks move, not vanish
    for i in range(3):
        grid = (a[i] - 1).reshape(9, 9)
        assert count_solutions(grid) == 1
    six = S.generate(5, 6, (14, 20), seed=1)                       # 2x3 boxes: no transpose
    a6, b6 = S.augment(S.to_tokens(six["puzzles"]), S.to_tokens(six["solutions"]), np.random.default_rng(1))
    assert S.check(a6, b6).all()


def test_checker_rejects_wrong_answers():
    d = S.generate(1, 9, (35, 35), seed=11)
    tok, lab = S.to_tokens(d["puzzles"])[0], S.to_tokens(d["solutions"])[0]
    assert S.check(tok, lab)[0]
    swapped = lab.copy()
    blanks = np.flatnonzero(tok == 1)
    swapped[blanks[0]], swapped[blanks[1]] = lab[blanks[1]], lab[blanks[0]]
    gi = np.flatnonzero(tok >= 2)[0]
    # a whole valid grid that breaks one given: relabel two digits everywhere
    a, b = lab[gi], 2 + (lab[gi] - 2 + 1) % 9
    relabeled = np.where(lab == a, b, np.where(lab == b, a, lab))
    for wrong in (swapped if lab[blanks[0]] != lab[blanks[1]] else None, relabeled,
                  np.where(np.arange(81) == blanks[0], 1, lab), np.zeros(81, dtype=np.int64), lab - 1):
        if wrong is not None:
            assert not S.check(tok, wrong)[0]
    assert S.check(np.stack([tok, tok]), np.stack([lab, relabeled])).tolist() == [True, False]


def test_rating_orders_difficulty():
    easy = S.generate(5, 9, (45, 45), seed=2)
    assert all(S.rating(p) == 0 for p in easy["puzzles"])           # singles suffice with 45 clues
    assert S.rating(np.zeros((9, 9), dtype=np.int64)) == 81         # nothing to start from
