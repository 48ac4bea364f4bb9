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
        """'53..7....6..195...' (or 0 for blanks; whitespace and | - + ignored) -> tokens [N*N]."""
        cells = [ch for ch in text if not ch.isspace() and ch not in "|-+"]
        n = self.seq_len
        if len(cells) != n:
            raise PuzzleError(f"puzzle has {len(cells)} cells, a {self.size}x{self.size} Sudoku has {n}: "
                              f"give {n} digits 1-{self.size} with 0 or . for blanks")
        tokens = np.empty(n, dtype=np.int64)
        for i, ch in enumerate(cells):
            if ch in ".0":
                tokens[i] = BLANK
            elif ch.isdigit() and 1 <= int(ch) <= self.size:
                tokens[i] = int(ch) + 1
            else:
                raise PuzzleError(f"cell {i + 1} is {ch!r}: use digits 1-{self.size}, and 0 or . for blanks")
        return tokens

    def render(self, tokens) -> str:
        """tokens -> a grid with box lines; '.' blank, '?' for tokens that are no digit."""
        t = np.asarray(tokens).reshape(self.size, self.size)
        br, bc = self.box
        sym = lambda v: str(v - 1) if 2 <= v <= self.size + 1 else ("." if v == BLANK else "?")
        rows = []
        for r in range(self.size):
            if r and r % br == 0:
                rows.append("-+-".join(["-" * (2 * bc - 1)] * (self.size // bc)))
            groups = [" ".join(sym(int(v)) for v in t[r, c:c + bc]) for c in range(0, self.size, bc)]
            rows.append(" | ".join(groups))
        return "\n".join(rows)
