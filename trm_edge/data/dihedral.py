"""The 8 symmetries of a square (dihedral group D4), with the reference's ids:
0 identity, 1 rot90 (counter-clockwise, as np.rot90), 2 rot180, 3 rot270, 4 flip left-right,
5 flip up-down, 6 transpose, 7 anti-transpose. Maze and ARC augmentations use them."""
from __future__ import annotations

import numpy as np

from trm_edge.errors import PuzzleError

DIHEDRAL_NAMES = ("identity", "rot90", "rot180", "rot270", "flip lr", "flip ud", "transpose", "anti-transpose")
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


def _check(k) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < 8:
        raise PuzzleError(f"dihedral transform {k!r} is not one of 0..7 ({', '.join(DIHEDRAL_NAMES)})")
    return int(k)


def dihedral(a, k: int) -> np.ndarray:
    """Transform k of the last two axes (a grid [H, W], or a batch of them)."""
    a = np.asarray(a)
    rows, cols, k = a.ndim - 2, a.ndim - 1, _check(k)
    if k in (1, 2, 3):
        a = np.rot90(a, k=k, axes=(rows, cols))
    elif k == 4:
        a = np.flip(a, axis=cols)
    elif k == 5:
        a = np.flip(a, axis=rows)
    elif k == 6:
        a = np.swapaxes(a, rows, cols)                                  # (i, j) -> (j, i)
    elif k == 7:
        a = np.flip(np.rot90(a, k=1, axes=(rows, cols)), axis=cols)     # (i, j) -> (n-1-j, n-1-i)
    return np.ascontiguousarray(a)


def inverse_dihedral(a, k: int) -> np.ndarray:
    """Undo `dihedral(a, k)`."""
    return dihedral(a, DIHEDRAL_INVERSE[_check(k)])
