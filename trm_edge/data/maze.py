"""Maze encoding (as the reference): a square grid row-major, PAD 0, wall `#` 1, open ` ` 2,
start `S` 3, goal `G` 4, path `o` 5; vocabulary 6.

The input holds walls, open cells, S and G; the label is the same grid with the cells of one
shortest S->G path (S and G excluded) set to `o`. Maze-Hard is 30x30 with a shortest path longer
than 110 steps; smaller sizes (10, 15, 20, ...) work the same way.

Also here: a Maze-Hard-style generator (`generate`), a checker that accepts any shortest path
(`check`) and the reference's 8 dihedral augmentations (`dihedral`, `inverse_dihedral`, `augment`).

Breadth-first searches run bit-parallel: a grid is packed into one Python int, row-major with one
always-zero bit after each row (so shifting by 1 never wraps into the next row); one BFS step is
`(f << 1 | f >> 1 | f << w | f >> w) & passable & ~seen`, which expands the whole frontier at once.
The generator first screens a batch of wall patterns with the same idea in numpy (one uint64 per
grid row), ~60 30x30 mazes/s on one core.

Worth knowing:
- A generated maze usually has a great many shortest paths (30x30 with path > 110: typically
  millions). The label is one of them, chosen by walking back from G to the lowest-index cell of
  the previous BFS layer (up, then left, right, down). Score predictions with `check`, which
  accepts any shortest path; exact match against the label undercounts.
- That tie-break is not symmetric: a transformed label is a shortest path of the transformed
  maze, but not always the one `generate` would have marked for it.
- Anti-transpose (id 7) is the reference's np.fliplr(np.rot90(x)), mapping (i, j) to
  (n-1-j, n-1-i); np.rot90(np.fliplr(x)) would be the plain transpose.
"""
from __future__ import annotations

import math

import numpy as np

from trm_edge.data.dihedral import DIHEDRAL_INVERSE, DIHEDRAL_NAMES, dihedral, inverse_dihedral  # noqa: F401
from trm_edge.errors import PuzzleError

PAD, WALL, OPEN, START, GOAL, PATH = range(6)
VOCAB_SIZE = 6
CHARS = {"#": WALL, " ": OPEN, ".": OPEN, "S": START, "G": GOAL, "o": PATH}
SYMBOLS = {WALL: "#", OPEN: " ", START: "S", GOAL: "G", PATH: "o"}


BATCH = 4096                 # wall patterns drawn at once; fixed, so a seed gives the same mazes
                             # whatever n is
MAX_FRUITLESS = 1_000_000    # wall patterns in a row without a maze before generate() gives up


class MazeCodec:
    name = "maze"
    vocab_size = VOCAB_SIZE

    def __init__(self, size: int = 30):
        if not isinstance(size, (int, np.integer)) or size < 2:
            raise PuzzleError(f"maze size {size!r} is not supported; give a side of 2 or more (Maze-Hard is 30)")
        self.size = int(size)
        self.seq_len = self.size * self.size

    @classmethod
    def for_cells(cls, cells: int) -> "MazeCodec":
        size = math.isqrt(cells)
        if size * size != cells or size < 2:
            raise PuzzleError(f"a model with {cells} tokens is not a square maze (30x30 = 900 tokens)")
        return cls(size)

    def parse(self, text: str) -> np.ndarray:
        """Character grid -> tokens [size*size].

        Rows are separated by newlines or '/'; one unseparated line of size*size characters also
        works. Cells: '#' wall, ' ' or '.' open, 'S' start, 'G' goal, 'o' path. Use '.' for open
        cells where an editor could strip trailing spaces.
        """
        from trm_edge.data import check_text
        n = self.size
        rows = [r.rstrip("\r") for r in check_text(text).replace("/", "\n").split("\n")]
        rows = [r for r in rows if r]
        if len(rows) == 1 and len(rows[0]) == n * n:
            rows = [rows[0][i:i + n] for i in range(0, n * n, n)]
        if len(rows) != n:
            raise PuzzleError(f"maze has {len(rows)} rows, a {n}x{n} maze has {n}: "
                              f"give {n} rows of {n} cells separated by newlines or '/'")
        for r, row in enumerate(rows):
            if len(row) != n:
                raise PuzzleError(f"maze row {r + 1} has {len(row)} cells, a {n}x{n} maze has {n} per row "
                                  f"(use '.' for open cells so trailing spaces are not lost)")
            for c, ch in enumerate(row):
                if ch not in CHARS:
                    raise PuzzleError(f"maze cell (row {r + 1}, column {c + 1}) is {ch!r}: use '#' wall, "
                                      f"' ' or '.' open, 'S' start, 'G' goal, 'o' path")
        tokens = np.array([CHARS[ch] for row in rows for ch in row], dtype=np.int64)
        for token, letter, what in ((START, "S", "start"), (GOAL, "G", "goal")):
            count = int((tokens == token).sum())
            if count != 1:
                raise PuzzleError(f"maze has {count} '{letter}' cells: mark exactly one {what} with '{letter}'")
        return tokens

    def contradiction(self, tokens) -> str | None:
        """Why a parsed maze breaks the task's rules (not exactly one S and one G, path cells 'o' already
        marked, tokens that are no maze cell), in one line; None when it is a maze to solve. A maze
        whose G cannot be reached is no contradiction: its answer marks no path."""
        from trm_edge.data import as_tokens
        t = as_tokens(tokens, self.seq_len, "maze")
        bad = np.flatnonzero((t < WALL) | (t > PATH))
        if bad.size:
            r, c = divmod(int(bad[0]), self.size)
            return (f"maze cell (row {r + 1}, column {c + 1}) holds token {int(t[bad[0]])}, which is no cell "
                    f"('#' {WALL}, open {OPEN}, 'S' {START}, 'G' {GOAL}, 'o' {PATH})")
        for token, letter, what in ((START, "S", "start"), (GOAL, "G", "goal")):
            count = int((t == token).sum())
            if count != 1:
                return f"maze has {count} '{letter}' cells: mark exactly one {what} with '{letter}'"
        marked = int((t == PATH).sum())
        if marked:
            return (f"the maze already marks {marked} path cell(s) 'o': give the maze without its path "
                    f"(open cells as ' ' or '.')")
        return None

    def satisfies(self, puzzle_tokens, answer_tokens) -> bool:
        """True iff the answer keeps the maze (walls, S, G unchanged; open cells open or 'o') and its 'o'
        cells form with S and G one 4-connected path as short as the shortest S->G path (any shortest
        path counts; if G cannot be reached, no 'o' at all). The same rule as `check`."""
        from trm_edge.data import as_tokens
        p = as_tokens(puzzle_tokens, self.seq_len, "maze")
        a = np.asarray(answer_tokens)
        if a.shape != p.shape or not np.issubdtype(a.dtype, np.integer):
            return False
        return bool(check(p, a.astype(np.int64)))

    def compact(self, tokens) -> str:
        """tokens -> the rows joined by '/' (what parse reads back)."""
        return self.render(tokens).replace("\n", "/")

    def render(self, tokens) -> str:
        """tokens -> rows joined by newlines: '#', ' ', 'S', 'G', 'o', and '?' for any other token."""
        t = np.asarray(tokens).reshape(-1)
        if t.size != self.seq_len:
            raise PuzzleError(f"maze has {t.size} tokens, a {self.size}x{self.size} maze has {self.seq_len}")
        rows = t.reshape(self.size, self.size)
        return "\n".join("".join(SYMBOLS.get(int(v), "?") for v in row) for row in rows)


# ---------------------------------------------------------------------------------------------
# Bit-parallel BFS on grids packed into Python ints (see the module docstring).

def _pack(masks: np.ndarray) -> list[int]:
    """Boolean grids [B, H, W] -> one int per grid, bit r*(W+1)+c set for cell (r, c)."""
    b, h, w = masks.shape
    padded = np.zeros((b, h, w + 1), dtype=bool)
    padded[:, :, :w] = masks
    packed = np.packbits(padded.reshape(b, -1), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _unpack(bits: int, h: int, w: int) -> np.ndarray:
    """One packed int -> boolean grid [H, W]."""
    raw = np.frombuffer(bits.to_bytes((h * (w + 1) + 7) // 8, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:h * (w + 1)].reshape(h, w + 1)[:, :w].astype(bool)


def _spread(f: int, w: int) -> int:
    """The 4-neighbours of every cell in f (row stride w + 1); may include pad bits, mask them."""
    s = w + 1
    return (f << 1) | (f >> 1) | (f << s) | (f >> s)


def _bfs_layers(passable: int, start: int, w: int, until: int = 0) -> list[int]:
    """BFS from the `start` bits over `passable` cells: layer d holds the cells d steps away.

    Stops when the frontier is empty, or as soon as a layer touches `until` (if given).
    """
    layers, seen, frontier = [start], start, start
    while not (frontier & until):
        frontier = _spread(frontier, w) & passable & ~seen
        if not frontier:
            break
        seen |= frontier
        layers.append(frontier)
    return layers


def _walk_back(layers: list[int], goal: int, w: int) -> int:
    """The cells (S and G excluded) of one shortest path to `goal`, which lies in the last layer.

    Steps back one layer at a time to the lowest-index neighbour (up, then left, right, down).
    """
    path, cell = 0, goal
    for layer in reversed(layers[1:-1]):
        options = _spread(cell, w) & layer
        cell = options & -options
        path |= cell
    return path


# ---------------------------------------------------------------------------------------------
# Generator

def default_min_path(size: int) -> int:
    """Maze-Hard's 110 for 30x30, scaled with the area for other sizes: round(110 * (size/30)**2)."""
    return max(1, round(110 * (size / 30) ** 2))


def _reaches(walls: np.ndarray, starts: np.ndarray, steps: int) -> np.ndarray:
    """Indices b whose BFS from starts[b] over the open cells of walls[b] reaches `steps` steps.

    A vectorised pre-filter over a whole batch of wall patterns: each grid row is one uint64
    (bit c = column c), so a BFS step is two bit shifts and two row shifts for every pattern at
    once. Patterns whose frontier has died are dropped from the batch as it goes.
    """
    b, h, _ = walls.shape
    rows = np.zeros((b, h, 8), dtype=np.uint8)
    packed = np.packbits(~walls, axis=2, bitorder="little")
    rows[:, :, :packed.shape[2]] = packed
    passable = rows.view("<u8")[..., 0]                       # [B, H] uint64
    frontier = np.zeros((b, h), dtype=np.uint64)
    frontier[np.arange(b), starts // h] = np.uint64(1) << (starts % h).astype(np.uint64)
    seen, ids, one = frontier.copy(), np.arange(b), np.uint64(1)
    for step in range(steps):
        grow = (frontier << one) | (frontier >> one)
        grow[:, 1:] |= frontier[:, :-1]
        grow[:, :-1] |= frontier[:, 1:]
        frontier = grow & passable & ~seen
        seen |= frontier
        if step % 4 == 3:                                       # compact now and then
            alive = frontier.any(axis=1)
            if alive.sum() < 0.9 * alive.size:
                ids, frontier, seen, passable = ids[alive], frontier[alive], seen[alive], passable[alive]
            if not ids.size:
                break
    return ids[frontier.any(axis=1)]


def generate(n: int, size: int = 30, min_path: int | None = None, wall_prob: float = 0.4,
             seed: int = 0, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n Maze-Hard-style mazes -> (inputs [n, size*size] int64, labels [n, size*size] int64).

    Per maze: every cell is a wall with probability `wall_prob`; S is a uniformly random open
    cell; G is uniformly random among the open cells whose shortest path from S is longer than
    `min_path` steps (default `default_min_path(size)`, 110 for 30x30); when there is none the
    wall pattern is drawn again. The label marks one shortest path (its min_path or more cells
    between S and G). Sizes 2..64. The same seed gives the same mazes, and a longer run starts
    with the mazes of a shorter one. progress=True shows a tqdm bar.
    """
    if min_path is None:
        min_path = default_min_path(size)
    if int(n) < 0:
        raise PuzzleError(f"number of mazes must be 0 or more, got {n}")
    MazeCodec(size)   # validates size
    if size > 64:
        raise PuzzleError(f"the generator makes mazes up to 64x64, not {size}x{size}")
    if not 0.0 <= wall_prob < 1.0:
        raise PuzzleError(f"wall_prob {wall_prob} is outside [0, 1): give the share of cells that are walls")
    if not 0 <= min_path < size * size - 1:
        raise PuzzleError(f"min_path {min_path} is impossible in a {size}x{size} maze; "
                          f"the default for this size is {default_min_path(size)}")
    n, h = int(n), int(size)
    batch = BATCH
    rng = np.random.default_rng(seed)
    inputs = np.empty((n, h * h), dtype=np.int64)
    labels = np.empty((n, h * h), dtype=np.int64)
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=n, desc=f"mazes {h}x{h}", unit="maze")
        except ImportError:
            pass

    found, fruitless = 0, 0
    try:
        while found < n:
            walls = rng.random((batch, h, h), dtype=np.float32) < wall_prob
            is_open = ~walls.reshape(batch, -1)
            counts = is_open.sum(axis=1)
            # S = the k-th open cell, k uniform in [0, count); patterns with < 2 open cells never pass
            k = (rng.random(batch) * counts).astype(np.int64)
            starts = (np.cumsum(is_open, axis=1, dtype=np.int32) <= k[:, None]).sum(axis=1)
            starts = np.minimum(starts, h * h - 1)
            kept = _reaches(walls, starts, min_path + 1)
            fruitless += batch
            for b in kept:
                r, c = divmod(int(starts[b]), h)
                s_bit = 1 << (r * (h + 1) + c)
                layers = _bfs_layers(_pack(~walls[b:b + 1])[0], s_bit, h)
                far = 0
                for layer in layers[min_path + 1:]:
                    far |= layer
                far_cells = np.flatnonzero(_unpack(far, h, h))
                g = int(far_cells[rng.integers(len(far_cells))])
                g_bit = 1 << (g // h * (h + 1) + g % h)
                dist = next(d for d, layer in enumerate(layers) if layer & g_bit)
                path = _walk_back(layers[:dist + 1], g_bit, h)

                grid = np.where(walls[b].reshape(-1), WALL, OPEN)
                grid[r * h + c], grid[g] = START, GOAL
                inputs[found] = grid
                labels[found] = np.where(_unpack(path, h, h).reshape(-1), PATH, grid)
                found, fruitless = found + 1, 0
                if bar is not None:
                    bar.update(1)
                if found == n:
                    break
            if fruitless >= MAX_FRUITLESS:
                raise PuzzleError(f"no {h}x{h} maze with a path longer than {min_path} in "
                                  f"{fruitless:,} random wall patterns: lower min_path (default for this "
                                  f"size {default_min_path(h)}) or keep wall_prob near 0.4")
    finally:
        if bar is not None:
            bar.close()
    return inputs, labels


# ---------------------------------------------------------------------------------------------
# Checker

def _side(seq_len: int) -> int:
    side = math.isqrt(seq_len)
    if side * side != seq_len or side < 2:
        raise PuzzleError(f"{seq_len} tokens are not a square maze")
    return side


def check(inputs, predictions) -> np.ndarray:
    """Is each prediction a shortest S->G path for its maze? -> bool [N] (or a 0-d array for [L]).

    Correct iff every input cell that is not open (walls, S, G) is unchanged, open cells hold
    only open or path, and the path cells form, with S and G, one 4-connected path from S to G
    exactly as long as the shortest one. Any shortest path counts, not only the label's. If G
    cannot be reached, the correct answer marks no path.
    """
    x, p = np.asarray(inputs), np.asarray(predictions)
    if x.shape != p.shape or x.ndim not in (1, 2):
        raise PuzzleError(f"inputs {x.shape} and predictions {p.shape} must both be [L] or [N, L]")
    single = x.ndim == 1
    x, p = x.reshape(-1, x.shape[-1]), p.reshape(-1, p.shape[-1])
    h = _side(x.shape[1])

    fixed = x != OPEN
    ok = np.where(fixed, p == x, (p == OPEN) | (p == PATH)).all(axis=1)
    ok &= ((x == START).sum(axis=1) == 1) & ((x == GOAL).sum(axis=1) == 1)
    rows = np.flatnonzero(ok)
    if rows.size:
        grids = lambda mask: _pack(mask[rows].reshape(-1, h, h))
        passable = grids((x != WALL) & (x != PAD))
        starts, goals = grids(x == START), grids(x == GOAL)
        routes = grids((p == PATH) | (x == START) | (x == GOAL))
        marked = grids((p == PATH) & (x == OPEN))
        for i, row in enumerate(rows):
            layers = _bfs_layers(passable[i], starts[i], h, until=goals[i])
            if not layers[-1] & goals[i]:        # G unreachable: no path is the answer
                ok[row] = marked[i] == 0
                continue
            steps = len(layers) - 1
            if marked[i].bit_count() != steps - 1:
                ok[row] = False
                continue
            on_route = _bfs_layers(routes[i], starts[i], h, until=goals[i])
            ok[row] = bool(on_route[-1] & goals[i]) and len(on_route) - 1 == steps
    return ok.reshape(()) if single else ok


def label(inputs) -> np.ndarray:
    """The label `generate` gives each maze, for any maze (a transformed one too): one shortest S->G path
    marked `o`, walking back from G to the lowest-index cell of the previous BFS layer; no path where G
    cannot be reached. inputs [N, L] (or [L]) -> labels of the same shape.

    Why training relabels with it: most mazes have many shortest paths (15x15 with paths > 28: median 32,
    1% unique; a quarter of the path's steps have a choice), and a transformed label is a shortest path
    by another tie-break (the transform's). With a random transform per maze, the same choice point would
    be labeled one way or the other at random, a target no model can fit; relabeled, the path to draw is
    a function of the maze as seen.
    """
    x = np.asarray(inputs)
    if x.ndim not in (1, 2):
        raise PuzzleError(f"inputs {x.shape} must be [L] or [N, L]")
    shape, h = x.shape, _side(x.shape[-1])
    x = x.reshape(-1, h * h)
    y = x.copy()
    grids = lambda mask: _pack(mask.reshape(-1, h, h))
    passable, starts, goals = grids((x != WALL) & (x != PAD)), grids(x == START), grids(x == GOAL)
    for i in range(len(x)):
        layers = _bfs_layers(passable[i], starts[i], h, until=goals[i])
        if starts[i] and goals[i] and layers[-1] & goals[i]:
            y[i][_unpack(_walk_back(layers, goals[i], h), h, h).reshape(-1)] = PATH
    return y.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Dihedral augmentations (the reference's ids)

def augment(inputs, labels, k) -> tuple[np.ndarray, np.ndarray]:
    """Dihedral transform k of flattened mazes: inputs, labels [N, L] (or [L]) -> same shapes.

    k is one id for the whole batch or one id per maze ([N]). A transformed maze is a valid maze
    and its transformed label is one of its shortest paths.
    """
    x, y = np.asarray(inputs), np.asarray(labels)
    if x.shape != y.shape or x.ndim not in (1, 2):
        raise PuzzleError(f"inputs {x.shape} and labels {y.shape} must both be [L] or [N, L]")
    shape = x.shape
    h = _side(shape[-1])
    x, y = x.reshape(-1, h, h), y.reshape(-1, h, h)
    ks = np.broadcast_to(np.asarray(k), (x.shape[0],))
    out_x, out_y = np.empty_like(x), np.empty_like(y)
    for t in np.unique(ks):
        sel = ks == t
        out_x[sel], out_y[sel] = dihedral(x[sel], int(t)), dihedral(y[sel], int(t))
    return out_x.reshape(shape), out_y.reshape(shape)


# ---------------------------------------------------------------------------------------------
# The task's row (trm_edge/data/task.py)

from trm_edge.data.task import Task, View  # noqa: E402


class MazeTask(Task):
    name = "maze"
    # 8 views, the shortest drawn path winning once 3 views agree on it (runtime/decide.py `best`; a path's
    # length read off the answer alone). Replayed on a recorded run of the shipped Maze model over the first 200
    # of its card's held-out mazes (8 views, q_halt 0.5): 98.5% solved at 18.1 view-steps, every maze the Sudoku
    # default solves (consensus of 2 identical answers: 93.5% at 17.8) and 10 more; with 2 agreeing 97.5% at
    # 11.3, with equal-length paths merely voting together (consensus, 2 agree) 95.0% at 11.0. On the card's 1,000
    # mazes through the LiteRT int8 bundle: 97.9% at 18.42 view-steps, 876 ms/maze (models/README.md)
    recommended_views = 8
    recommended_policy = ({"from_views": 2, "policy": {"policy": "best", "agree": 3, "wave": 2}},)
    has_checker = True
    comment = None          # rows start with '#' walls
    build_options = ("size", "n_train", "n_test", "min_path", "seed")
    example_size = (100, VOCAB_SIZE)

    def codec(self, seq_len, vocab_size=None):
        return MazeCodec.for_cells(seq_len)

    def encoding(self, task, seq_len):
        return {"layout": "row-major cells", "cells": [None, "#", " ", "S", "G", "o"], "aliases": {".": " "},
                "skip": "/"}

    def sample(self, n, seq_len, vocab_size, seed=0):
        return generate(n, math.isqrt(seq_len), seed=seed + 777)[0]

    def examples(self, n, seq_len, seed=0):
        return generate(n, math.isqrt(seq_len), seed=seed)

    def check(self, inputs, predictions):
        return check(inputs, predictions)

    def random_view(self, rng, seq_len):
        """One of the 8 dihedral transforms of the square (the reference's ids)."""
        side, k = _side(seq_len), int(rng.integers(8))
        cells = dihedral(np.arange(seq_len).reshape(side, side), k).reshape(-1)
        return View(cells=None if k == 0 else cells, describe={"name": "dihedral", "id": k,
                                                               "transform": DIHEDRAL_NAMES[k]})

    def view_count(self, seq_len):
        return 8 if _side(seq_len) > 1 else 1

    def same_answer(self, seq_len):
        """Any shortest path solves a maze, and views draw different ones (each its own frame's tie-break,
        `label`): answers marking one S->G path of the same length are one answer to the views' vote."""
        return {"rule": "path", "open": OPEN, "path": PATH, "ends": [START, GOAL]}

    def augment(self, inputs, labels, rng):
        """A random dihedral transform per maze, labeled as `generate` would label the maze it makes (`label`)."""
        x, _ = augment(inputs, labels, rng.integers(8, size=len(inputs)))
        return x, label(x)

    def fits(self, task, seq_len):
        return self.square_fits(task, seq_len, lambda side: side >= 2, "a square maze")

    def build(self, out, options):
        from trm_edge.data import build
        return build.build_maze(out, 30 if options.get("size") is None else options["size"], options["n_train"],
                                options["n_test"], options.get("min_path"), options.get("seed") or 0)


TASK = MazeTask()
