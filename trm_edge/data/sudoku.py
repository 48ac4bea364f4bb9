"""Sudoku encoding (as the reference): N*N cells row-major, PAD 0, blank 1, digit d -> d+1.

Sizes 4x4 (2x2 boxes), 6x6 (2x3 boxes), 9x9 (3x3 boxes); vocabulary N + 2.
"""
from __future__ import annotations

import math

import numpy as np

from trm_edge.errors import PuzzleError

BOXES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}   # size -> (box rows, box columns)
BLANK = 1


class SudokuCodec:
    name = "sudoku"

    def __init__(self, size: int = 9):
        if size not in BOXES:
            raise PuzzleError(f"Sudoku size {size} is not supported; sizes are {sorted(BOXES)}")
        self.size = size
        self.box = BOXES[size]
        self.seq_len = size * size
        self.vocab_size = size + 2

    @classmethod
    def for_cells(cls, cells: int) -> "SudokuCodec":
        size = math.isqrt(cells)
        if size * size != cells or size not in BOXES:
            raise PuzzleError(f"a model with {cells} tokens is not a Sudoku of size {sorted(BOXES)}")
        return cls(size)

    def parse(self, text: str) -> np.ndarray:
        """'53..7....6..195...' (or 0 for blanks; whitespace and | - + ignored) -> tokens [N*N].

        Only ASCII digits count: '²', fullwidth '５' or Arabic-Indic '٥' are refused, not read as digits."""
        from trm_edge.data import check_text
        cells = [ch for ch in check_text(text) if not ch.isspace() and ch not in "|-+"]
        n = self.seq_len
        digits = "123456789"[:self.size]
        if len(cells) != n:
            raise PuzzleError(f"puzzle has {len(cells)} cells, a {self.size}x{self.size} Sudoku has {n}: "
                              f"give {n} digits 1-{self.size} with 0 or . for blanks")
        tokens = np.empty(n, dtype=np.int64)
        for i, ch in enumerate(cells):
            if ch in ".0":
                tokens[i] = BLANK
            elif ch in digits:
                tokens[i] = int(ch) + 1
            else:
                kind = " (not an ASCII digit)" if ch.isdigit() or ch.isnumeric() else ""
                raise PuzzleError(f"cell {i + 1} is {ch!r}{kind}: use the ASCII digits 1-{self.size}, "
                                  f"and 0 or . for blanks")
        return tokens

    def _grid(self, tokens, what: str) -> np.ndarray:
        from trm_edge.data import as_tokens
        return as_tokens(tokens, self.seq_len, what)

    def contradiction(self, tokens) -> str | None:
        """Why the givens of a parsed puzzle break Sudoku's rules (a digit twice in a row, column or box,
        naming the cells; a token that is no blank or digit; no givens at all), in one line; None when
        they do not."""
        t = self._grid(tokens, "puzzle")
        n = self.size
        bad = np.flatnonzero((t < BLANK) | (t > n + 1))
        if bad.size:
            i = int(bad[0])
            return (f"cell {i + 1} holds token {int(t[i])}, which is neither a blank ({BLANK}) nor a digit "
                    f"token (2..{n + 1})")
        g = (t - 1).reshape(n, n)                       # 0 blank, 1..n digits
        if not (g > 0).any():
            return (f"the puzzle has no givens: an empty {n}x{n} Sudoku has a great many solutions; "
                    f"give the puzzle's digits")
        box = _boxes_of(n).reshape(n, n)
        br, bc = self.box
        where = lambda rc: f"row {rc[0] + 1}, column {rc[1] + 1}"
        units = ([(f"row {r + 1}", [(r, c) for c in range(n)]) for r in range(n)]
                 + [(f"column {c + 1}", [(r, c) for r in range(n)]) for c in range(n)]
                 + [(f"box {b + 1} (rows {b // (n // bc) * br + 1}-{b // (n // bc) * br + br}, columns "
                     f"{b % (n // bc) * bc + 1}-{b % (n // bc) * bc + bc})",
                     [tuple(int(v) for v in rc) for rc in np.argwhere(box == b)]) for b in range(n)])
        for name, cells in units:
            seen = {}
            for rc in cells:
                d = int(g[rc])
                if d and d in seen:
                    return (f"the digit {d} is given twice in {name}, at ({where(seen[d])}) and ({where(rc)}): "
                            f"a Sudoku holds each digit once per row, column and box")
                seen.setdefault(d, rc)
        return None    # givens that repeat nothing may still admit no solution: satisfies() tells on the answer

    def satisfies(self, puzzle_tokens, answer_tokens) -> bool:
        """True iff the answer is a complete grid whose every row, column and box holds each digit once
        and which keeps every given of the puzzle (no label needed)."""
        p = self._grid(puzzle_tokens, "puzzle")
        a = np.asarray(answer_tokens)
        if a.shape != p.shape or not np.issubdtype(a.dtype, np.integer):
            return False
        return bool(check(p[None], a[None].astype(np.int64))[0])

    def compact(self, tokens) -> str:
        """tokens -> the one-line notation parse reads: N*N digits, '.' blank, '?' for tokens that are no digit."""
        return "".join(self._symbol(int(v)) for v in np.asarray(tokens).reshape(-1))

    def _symbol(self, v: int) -> str:
        return str(v - 1) if 2 <= v <= self.size + 1 else ("." if v == BLANK else "?")

    def render(self, tokens) -> str:
        """tokens -> a grid with box lines; '.' blank, '?' for tokens that are no digit."""
        t = np.asarray(tokens).reshape(self.size, self.size)
        br, bc = self.box
        sym = self._symbol
        rows = []
        for r in range(self.size):
            if r and r % br == 0:
                rows.append("-+-".join(["-" * (2 * bc - 1)] * (self.size // bc)))
            groups = [" ".join(sym(int(v)) for v in t[r, c:c + bc]) for c in range(0, self.size, bc)]
            rows.append(" | ".join(groups))
        return "\n".join(rows)


# -----------------------------------------------------------------------------
# Grids: generation with a proof of uniqueness, a difficulty rating, augmentation, a checker.
# Grids here are [N, N] int arrays of digits 1..N with 0 for blanks; tokens are digits + 1.

def _boxes_of(size: int) -> np.ndarray:
    br, bc = BOXES[size]
    r, c = np.divmod(np.arange(size * size), size)
    return (r // br) * (size // bc) + c // bc          # box index of every cell


def random_solution(size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly shuffled complete grid by randomised depth-first search (bitmasks, most-constrained cell first)."""
    n, box = size, _boxes_of(size)
    full = (1 << n) - 1
    grid = np.zeros(n * n, dtype=np.int64)
    rows, cols, boxes = [0] * n, [0] * n, [0] * n

    def fill() -> bool:
        best, best_free = -1, None
        for i in range(n * n):
            if grid[i] == 0:
                free = full & ~(rows[i // n] | cols[i % n] | boxes[box[i]])
                if best_free is None or bin(free).count("1") < bin(best_free).count("1"):
                    best, best_free = i, free
                    if free == 0:
                        return False
        if best < 0:
            return True
        digits = [d for d in range(n) if best_free >> d & 1]
        for d in rng.permutation(digits):
            bit = 1 << int(d)
            r, c, b = best // n, best % n, box[best]
            grid[best] = d + 1
            rows[r] |= bit; cols[c] |= bit; boxes[b] |= bit
            if fill():
                return True
            grid[best] = 0
            rows[r] &= ~bit; cols[c] &= ~bit; boxes[b] &= ~bit
        return False

    fill()
    return grid.reshape(n, n)


class UniquenessChecker:
    """Proves that a puzzle has exactly one solution with a SAT solver (python-sat, CaDiCaL), reused across calls."""

    def __init__(self, size: int):
        from pysat.card import CardEnc, EncType
        from pysat.solvers import Solver
        self.n = n = size
        var = lambda r, c, d: int((r * n + c) * n + d + 1)
        self.var = var
        self.solver = Solver(name="cadical195")
        box = _boxes_of(n)
        groups = [[(r, c) for c in range(n)] for r in range(n)] + [[(r, c) for r in range(n)] for c in range(n)]
        groups += [[(i // n, i % n) for i in np.flatnonzero(box == b)] for b in range(n)]
        top = n ** 3
        for r in range(n):
            for c in range(n):
                enc = CardEnc.equals([var(r, c, d) for d in range(n)], 1, top_id=top, encoding=EncType.pairwise)
                self.solver.append_formula(enc.clauses)
        for cells in groups:
            for d in range(n):
                enc = CardEnc.equals([var(r, c, d) for r, c in cells], 1, top_id=top, encoding=EncType.pairwise)
                self.solver.append_formula(enc.clauses)
        self.next_var = top + 1

    def other_solution(self, puzzle: np.ndarray, solution: np.ndarray) -> np.ndarray | None:
        """A second solution of `puzzle` (0 = blank) different from `solution`, or None if it is unique."""
        n, var = self.n, self.var
        act = self.next_var
        self.next_var += 1
        blanks = np.argwhere(puzzle == 0)
        # act -> the answer differs from `solution` in some blank cell
        self.solver.add_clause([-act] + [-var(r, c, solution[r, c] - 1) for r, c in blanks])
        clues = [var(r, c, puzzle[r, c] - 1) for r, c in np.argwhere(puzzle > 0)]
        found = self.solver.solve(assumptions=clues + [act])
        other = None
        if found:
            model = np.array(self.solver.get_model()[: n ** 3]) > 0
            other = model.reshape(n, n, n).argmax(-1) + 1
        self.solver.add_clause([-act])      # retire this puzzle's clause
        return other

    def is_unique(self, puzzle, solution) -> bool:
        return self.other_solution(puzzle, solution) is None


def rating(puzzle: np.ndarray) -> int:
    """Difficulty: blanks left after naked and hidden singles (0 = solvable by singles alone)."""
    n = puzzle.shape[0]
    box = _boxes_of(n).reshape(n, n)
    g = puzzle.copy()
    units = [[(r, c) for c in range(n)] for r in range(n)] + [[(r, c) for r in range(n)] for c in range(n)]
    units += [list(map(tuple, np.argwhere(box == b))) for b in range(n)]
    while True:
        progress = False
        cand = {}
        for r, c in np.argwhere(g == 0):
            used = set(g[r]) | set(g[:, c]) | set(g[box == box[r, c]])
            cand[(r, c)] = set(range(1, n + 1)) - used
            if len(cand[(r, c)]) == 1:
                g[r, c] = cand[(r, c)].pop()
                progress = True
        if not progress:
            for unit in units:
                for d in range(1, n + 1):
                    spots = [cell for cell in unit if g[cell] == 0 and d in cand.get(cell, ())]
                    if len(spots) == 1 and d not in g[tuple(zip(*unit))]:
                        g[spots[0]] = d
                        progress = True
        if not progress:
            return int((g == 0).sum())


def backtracks(puzzle: np.ndarray) -> int:
    """Difficulty by search: the dead ends a plain DPLL meets before it finds the solution (unit
    propagation, which on Sudoku is naked and hidden singles; then the first cell with fewest
    candidates, digits in increasing order). 0: singles alone solve it."""
    n = puzzle.shape[0]
    box = _boxes_of(n)
    peers = [np.flatnonzero((np.arange(n * n) // n == i // n) | (np.arange(n * n) % n == i % n) | (box == box[i]))
             for i in range(n * n)]
    units = ([np.arange(r * n, r * n + n) for r in range(n)] + [np.arange(c, n * n, n) for c in range(n)]
             + [np.flatnonzero(box == b) for b in range(n)])
    full = (1 << n) - 1
    count = [0]

    def propagate(g):
        """Singles until none is left; False on a contradiction."""
        while True:
            changed = False
            cand = {}
            for i in np.flatnonzero(g == 0):
                used = 0
                for j in peers[i]:
                    if g[j]:
                        used |= 1 << (int(g[j]) - 1)
                free = full & ~used
                if not free:
                    return False, cand
                if free & (free - 1) == 0:
                    g[i] = free.bit_length()
                    changed = True
                cand[int(i)] = free
            if changed:
                continue
            for unit in units:
                for d in range(n):
                    if any(g[j] == d + 1 for j in unit):
                        continue
                    spots = [int(j) for j in unit if g[j] == 0 and cand.get(int(j), 0) >> d & 1]
                    if not spots:
                        return False, cand
                    if len(spots) == 1:
                        g[spots[0]] = d + 1
                        changed = True
            if not changed:
                return True, cand

    def search(g) -> bool:
        ok, cand = propagate(g)
        if not ok:
            count[0] += 1
            return False
        if not cand or (g > 0).all():
            return True
        i = min(cand, key=lambda c: (bin(cand[c]).count("1"), c))
        for d in range(n):
            if cand[i] >> d & 1:
                h = g.copy()
                h[i] = d + 1
                if search(h):
                    g[:] = h
                    return True
        return False

    search(puzzle.reshape(-1).astype(np.int64).copy())
    return count[0]


def make_puzzle(solution: np.ndarray, givens: int, rng: np.random.Generator, checker: UniquenessChecker) -> np.ndarray:
    """Blank cells of `solution` in random order while the puzzle stays unique, down to `givens` clues (or as
    far as uniqueness allows)."""
    puzzle = solution.copy()
    n = solution.shape[0]
    left = n * n
    for i in rng.permutation(n * n):
        if left <= givens:
            break
        r, c = divmod(int(i), n)
        keep = puzzle[r, c]
        puzzle[r, c] = 0
        if checker.is_unique(puzzle, solution):
            left -= 1
        else:
            puzzle[r, c] = keep
    return puzzle


DIFFICULTIES = {   # name -> what a puzzle of it is
    "moderate": "clues drawn uniformly from a range (default 31-45), blanked at random while the solution stays unique",
    "minimal": "no given can be removed (blanked while unique, down to as few as uniqueness allows)",
    "hard": "minimal, and singles alone do not solve it (a plain DPLL must backtrack or branch)",
}


def generate(count: int, size: int = 9, givens: tuple[int, int] = (31, 45), seed: int = 0,
             progress: bool = False, difficulty: str = "moderate") -> dict[str, np.ndarray]:
    """`count` puzzles with a unique solution (proved by SAT) of a difficulty (DIFFICULTIES): moderate
    draws clue counts uniformly from `givens`; minimal and hard ignore it.

    Returns grids: puzzles and solutions [count, N, N] (0 = blank), givens, rating (blanks left after
    singles) and backtracks (DPLL dead ends) [count].
    """
    rng = np.random.default_rng(seed)
    checker = UniquenessChecker(size)
    if difficulty not in DIFFICULTIES:
        raise PuzzleError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    out = {k: [] for k in ("puzzles", "solutions", "givens", "rating", "backtracks")}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=count, desc=f"sudoku {size}x{size} {difficulty}", unit="puzzle")
    tries = 0
    while len(out["puzzles"]) < count:
        tries += 1
        if tries % 200 == 0:    # retired clauses pile up in the solver and slow it down: start afresh
            checker = UniquenessChecker(size)
        sol = random_solution(size, rng)
        clues = int(rng.integers(givens[0], givens[1] + 1)) if difficulty == "moderate" else 0
        puz = make_puzzle(sol, clues, rng, checker)
        r = rating(puz)
        if difficulty == "hard" and r == 0:
            continue
        out["puzzles"].append(puz)
        out["solutions"].append(sol)
        out["givens"].append(int((puz > 0).sum()))
        out["rating"].append(r)
        out["backtracks"].append(backtracks(puz))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    shapes = {"puzzles": (0, size, size), "solutions": (0, size, size), "givens": (0,), "rating": (0,),
              "backtracks": (0,)}
    return {k: np.array(v, dtype=np.int64) if v else np.zeros(shapes[k], np.int64) for k, v in out.items()}


def to_tokens(grids: np.ndarray) -> np.ndarray:
    """[.., N, N] grids (0 blank) -> [.., N*N] tokens (blank 1, digit d -> d + 1)."""
    g = np.asarray(grids)
    return (g.reshape(*g.shape[:-2], g.shape[-2] * g.shape[-1]) + 1).astype(np.int64)


def random_augmentation(size: int, rng: np.random.Generator):
    """The reference's Sudoku symmetries: digit permutation, bands and rows within bands, stacks and
    columns within stacks, transpose with p 0.5 (square boxes only). Returns (cell_map [N*N], token_map [N+2])."""
    br, bc = BOXES[size]
    rows = np.concatenate([b * br + rng.permutation(br) for b in rng.permutation(size // br)])
    cols = np.concatenate([s * bc + rng.permutation(bc) for s in rng.permutation(size // bc)])
    cells = (rows[:, None] * size + cols[None, :])
    if br == bc and rng.random() < 0.5:
        cells = cells.T
    token_map = np.concatenate([[0, BLANK], rng.permutation(size) + 2])     # PAD, blank fixed
    return cells.reshape(-1), token_map


def augment(tokens: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """One fresh random symmetry per row of [B, N*N] token arrays (puzzle and answer alike)."""
    tokens, labels = np.array(tokens), np.array(labels)
    size = math.isqrt(tokens.shape[-1])
    for i in range(tokens.shape[0]):
        cells, tmap = random_augmentation(size, rng)
        tokens[i] = tmap[tokens[i][cells]]
        labels[i] = tmap[labels[i][cells]]
    return tokens, labels


def check(tokens: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Rule checker, independent of any label: every row, column and box holds each digit once and every
    given is kept. tokens, predictions: [B, N*N] (or [N*N]) -> bool [B]."""
    tokens, predictions = np.atleast_2d(tokens), np.atleast_2d(predictions)
    B, cells = predictions.shape
    n = math.isqrt(cells)
    digits = predictions.reshape(B, n, n) - 1                          # 1..N if valid
    valid = ((digits >= 1) & (digits <= n)).all((1, 2))
    want = np.arange(1, n + 1)
    box = _boxes_of(n)
    by_box = np.stack([digits.reshape(B, -1)[:, box == b] for b in range(n)], 1)   # [B, n, n]
    ok = valid.copy()
    for units in (digits, digits.transpose(0, 2, 1), by_box):
        ok &= (np.sort(units, axis=-1) == want).all((1, 2))
    given = tokens >= 2
    ok &= ((predictions == tokens) | ~given).all(-1)
    return ok


# ---------------------------------------------------------------------------------------------
# The task's row (trm_edge/data/task.py)

from trm_edge.data.task import Task, View  # noqa: E402


class SudokuTask(Task):
    name = "sudoku"
    # 8 views with the recommended policy (runtime/decide.py RECOMMENDED), shipped model's LiteRT int8 bundle:
    # 100% of 60 hard minimal puzzles (one view 75%, the reference's fixed 16 71.7%) in 0.47x the reference's
    # time, 100% of 200 moderate ones at 2.56 view-steps (one view 96.5% at 1.21) (benchmarks/RESULTS.md,
    # "Views by default"; benchmarks/views_default.py)
    recommended_views = 8
    has_checker = True
    build_options = ("size", "n_train", "n_test", "givens", "difficulty", "seed")
    example_size = (81, 11)

    def codec(self, seq_len, vocab_size=None):
        return SudokuCodec.for_cells(seq_len)

    def encoding(self, task, seq_len):
        size = math.isqrt(seq_len)
        return {"layout": "row-major cells", "cells": [None, ".", *"123456789"[:size]], "aliases": {"0": "."},
                "skip": " \t|-+"}

    def sample(self, n, seq_len, vocab_size, seed=0):
        return self.examples(n, seq_len, seed + 777)[0]

    def examples(self, n, seq_len, seed=0):
        from trm_edge.data.build import SUDOKU_DEFAULT_GIVENS
        size = math.isqrt(seq_len)
        d = generate(n, size, SUDOKU_DEFAULT_GIVENS.get(size, (31, 45)), seed=seed)
        return to_tokens(d["puzzles"]), to_tokens(d["solutions"])

    def check(self, inputs, predictions):
        return check(inputs, predictions)

    def random_view(self, rng, seq_len):
        """The reference's symmetries (digit relabelling, bands, stacks, rows, columns, transpose)."""
        cells, token_map = random_augmentation(math.isqrt(seq_len), rng)
        return View(cells=cells, tokens=token_map, describe={"name": "sudoku symmetry"})

    def view_count(self, seq_len):
        """digits! x bands! x (rows per band!)^bands x stacks! x (columns per stack!)^stacks, x2 for the
        transpose where boxes are square: every one a different map of the grid."""
        size = math.isqrt(seq_len)
        if size not in BOXES:
            return 1
        br, bc = BOXES[size]
        f = math.factorial
        n = f(size) * f(size // br) * f(br) ** (size // br) * f(size // bc) * f(bc) ** (size // bc)
        return n * 2 if br == bc else n

    def augment(self, inputs, labels, rng):
        return augment(inputs, labels, rng)

    def fits(self, task, seq_len):
        return self.square_fits(task, seq_len, lambda side: side in BOXES, "a sudoku grid (4x4, 6x6 or 9x9)")

    def build(self, out, options):
        from trm_edge.data import build
        return build.build_sudoku(out, 9 if options.get("size") is None else options["size"], options["n_train"],
                                  options["n_test"], options.get("givens"), options.get("seed") or 0,
                                  difficulty=options.get("difficulty") or "moderate")


TASK = SudokuTask()
