"""Maze task: codec, Maze-Hard-style generator, any-shortest-path checker, dihedral augmentations."""
from __future__ import annotations

import subprocess
import sys
from collections import deque

import numpy as np
import pytest

from trm_edge.data import maze
from trm_edge.data.maze import (DIHEDRAL_INVERSE, GOAL, OPEN, PATH, START, WALL, MazeCodec, augment, check,
                                default_min_path, dihedral, generate, inverse_dihedral, label)
from trm_edge.errors import PuzzleError

# Two equally short routes around a block: along the top and right, or down the left and bottom.
RING = "S..../.###./.###./.###./....G"
RING_TOP = "Soooo/.###o/.###o/.###o/....G"
RING_LEFT = "S..../o###./o###./o###./ooooG"

# One short route over the top (8 steps) and a long one round the left and bottom (12 steps).
FORK = "S...#/.##.#/.#.../.#.#./...#G"
FORK_SHORT = "Sooo#/.##o#/.#.oo/.#.#o/...#G"
FORK_LONG = "S...#/o##.#/o#ooo/o#o#o/ooo#G"


def codec5():
    return MazeCodec(5)


def bfs_steps(tokens: np.ndarray) -> int | None:
    """Shortest S->G path length of a flattened maze, by a plain queue BFS (independent of maze.py)."""
    n = int(round(len(tokens) ** 0.5))
    grid = tokens.reshape(n, n)
    s = tuple(np.argwhere(grid == START)[0])
    dist = {s: 0}
    queue = deque([s])
    while queue:
        r, c = queue.popleft()
        if grid[r, c] == GOAL:
            return dist[(r, c)]
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < n and 0 <= nc < n and grid[nr, nc] != WALL and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                queue.append((nr, nc))
    return None


def assert_valid_mazes(x, y, size, min_path):
    assert x.shape == y.shape == (len(x), size * size) and x.dtype == y.dtype == np.int64
    assert ((x == START).sum(1) == 1).all() and ((x == GOAL).sum(1) == 1).all()
    assert np.isin(x, [WALL, OPEN, START, GOAL]).all()
    assert (y[y != PATH] == x[y != PATH]).all() and (x[y == PATH] == OPEN).all()
    for xi, yi in zip(x, y):
        steps = bfs_steps(xi)
        assert steps is not None and steps > min_path and (yi == PATH).sum() == steps - 1
    assert check(x, y).all()


# ---------------------------------------------------------------------------------------------
# Codec

def test_codec_round_trip():
    c = codec5()
    tokens = c.parse(FORK)
    assert tokens.dtype == np.int64 and tokens.shape == (25,)
    assert tokens[0] == START and tokens[4] == WALL and tokens[1] == OPEN and tokens[-1] == GOAL
    text = c.render(tokens)
    assert text.splitlines()[0] == "S   #" and len(text.splitlines()) == 5
    assert (c.parse(text) == tokens).all()
    assert (c.parse(FORK.replace("/", "\n")) == tokens).all()          # newlines work like '/'
    assert (c.parse(FORK.replace("/", "")) == tokens).all()            # one flat line of 25 cells
    assert (c.parse(c.render(c.parse(FORK_SHORT))) == c.parse(FORK_SHORT)).all()
    assert c.render(np.array([0, 9] + [2] * 23)).startswith("??")


def test_codec_sizes():
    assert MazeCodec.for_cells(900).size == 30 and MazeCodec.for_cells(900).seq_len == 900
    assert MazeCodec(10).vocab_size == 6 and MazeCodec(10).name == "maze"
    with pytest.raises(PuzzleError, match="not a square maze"):
        MazeCodec.for_cells(50)


@pytest.mark.parametrize("text, message", [
    ("S..../.###./.###./....G", "4 rows"),
    ("S..../.###./.###./.##./....G", "row 4 has 4 cells"),
    ("S..../.###./.#x#./.###./....G", r"row 3, column 3\) is 'x'"),
    ("S..../.###./.###./.###./.....", "0 'G' cells"),
    ("S..../.###./.#S#./.###./....G", "2 'S' cells"),
])
def test_codec_errors_are_one_line(text, message):
    with pytest.raises(PuzzleError, match=message) as e:
        codec5().parse(text)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# Checker

def test_check_accepts_any_shortest_path():
    c = codec5()
    x = c.parse(RING)
    assert check(x, c.parse(RING_TOP)) and check(x, c.parse(RING_LEFT))
    batch = check(np.stack([x, x]), np.stack([c.parse(RING_TOP), c.parse(RING_LEFT)]))
    assert batch.dtype == bool and batch.tolist() == [True, True]
    assert check(c.parse(FORK), c.parse(FORK_SHORT))


def test_check_rejects_wrong_answers():
    c = codec5()
    x, good = c.parse(FORK), c.parse(FORK_SHORT)

    def variant(cells):                 # the good answer with some cells changed
        p = good.copy()
        for i, v in cells.items():
            p[i] = v
        return p

    wrong = {
        "longer path": c.parse(FORK_LONG),
        "missing path": x.copy(),
        "broken path (a cell left out)": variant({8: OPEN}),
        "broken path (a cell moved)": variant({8: OPEN, 20: PATH}),
        "extra path cell": variant({20: PATH}),
        "changed wall": variant({4: OPEN}),
        "path through a wall": variant({6: PATH}),
        "moved start": variant({0: OPEN, 5: START}),
        "PAD on an open cell": variant({20: 0}),
        "two shortest paths at once": np.where(
            (c.parse(RING_TOP) == PATH) | (c.parse(RING_LEFT) == PATH), PATH, c.parse(RING)),
    }
    inputs = np.stack([c.parse(RING) if "two" in k else x for k in wrong])
    result = check(inputs, np.stack(list(wrong.values())))
    assert not result.any(), [k for k, ok in zip(wrong, result) if ok]


def test_check_unreachable_goal_and_shapes():
    c = codec5()
    x = c.parse("S.#../..#../###../...../....G")
    assert check(x, x) and not check(x, c.parse("So#../..#../###../...../....G"))
    assert check(x, x).shape == ()
    with pytest.raises(PuzzleError, match="must both be"):
        check(np.stack([x, x]), x)
    with pytest.raises(PuzzleError, match="not a square maze"):
        check(np.zeros(24, dtype=np.int64), np.zeros(24, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# Generator

@pytest.mark.parametrize("size, min_path", [(10, None), (15, 20)])
def test_generate_small(size, min_path):
    x, y = generate(12, size=size, min_path=min_path, seed=1)
    assert_valid_mazes(x, y, size, default_min_path(size) if min_path is None else min_path)


def test_generate_maze_hard_30():
    x, y = generate(2, size=30, min_path=110, seed=0)
    assert_valid_mazes(x, y, 30, 110)
    assert default_min_path(30) == 110 and 0.3 < (x == WALL).mean() < 0.5


def test_generate_is_deterministic():
    a = generate(6, size=10, seed=7)
    b = generate(6, size=10, seed=7)
    head = generate(3, size=10, seed=7)
    other = generate(6, size=10, seed=8)
    assert all((p == q).all() for p, q in zip(a, b))
    assert (head[0] == a[0][:3]).all() and (head[1] == a[1][:3]).all()   # a longer run extends a shorter
    assert not (other[0] == a[0]).all()
    assert len({row.tobytes() for row in a[0]}) == 6


def test_generate_errors(monkeypatch):
    with pytest.raises(PuzzleError, match="impossible"):
        generate(1, size=10, min_path=110)
    with pytest.raises(PuzzleError, match="wall_prob"):
        generate(1, size=10, wall_prob=1.0)
    monkeypatch.setattr(maze, "MAX_FRUITLESS", 8000)
    with pytest.raises(PuzzleError, match="lower min_path") as e:
        generate(1, size=10, wall_prob=0.9)
    assert "\n" not in str(e.value)
    assert generate(0, size=10)[0].shape == (0, 100)


# ---------------------------------------------------------------------------------------------
# Dihedral augmentations

def test_dihedral_ids_and_inverses():
    g = np.arange(36).reshape(6, 6)
    n = 6
    assert (dihedral(g, 1) == np.rot90(g)).all() and (dihedral(g, 4) == np.fliplr(g)).all()
    assert (dihedral(g, 5) == np.flipud(g)).all() and (dihedral(g, 6) == g.T).all()
    anti = dihedral(g, 7)
    assert all(anti[n - 1 - j, n - 1 - i] == g[i, j] for i in range(n) for j in range(n))
    assert len({dihedral(g, k).tobytes() for k in range(8)}) == 8
    for k in range(8):
        assert (inverse_dihedral(dihedral(g, k), k) == g).all()
        assert (dihedral(dihedral(g, k), DIHEDRAL_INVERSE[k]) == g).all()
    with pytest.raises(PuzzleError, match="0..7"):
        dihedral(g, 8)


def test_augmented_mazes_stay_valid():
    x, y = generate(4, size=10, seed=3)
    for k in range(8):
        ax, ay = augment(x, y, k)
        assert ax.shape == x.shape and check(ax, ay).all()
        back = [inverse_dihedral(a.reshape(10, 10), k).reshape(-1) for a in ay]
        assert (np.stack(back) == y).all()
    ks = np.array([0, 3, 6, 7])
    ax, ay = augment(x, y, ks)
    assert check(ax, ay).all() and (ax[0] == x[0]).all()
    assert (ax[2] == dihedral(x[2].reshape(10, 10), 6).reshape(-1)).all()
    c = codec5()                                  # the checker accepts either path of the ring, transformed
    for k in range(8):
        ax, ay = augment(c.parse(RING), c.parse(RING_LEFT), k)
        assert check(ax, ay)


def test_training_relabels_each_transformed_maze_as_generate_would():
    """The training hook: a transform per maze, and the label `generate` gives the maze as seen; a transformed
    label keeps the original's tie-break instead (the ring's top route becomes the left one under transpose)."""
    from trm_edge.data import lookup
    x, y = generate(64, size=10, seed=4)
    assert (label(x) == y).all() and (label(x[0]) == y[0]).all()       # generate's labels, [N, L] and [L]
    c = codec5()
    assert (label(c.parse(RING)) == c.parse(RING_TOP)).all()
    transposed = augment(c.parse(RING), c.parse(RING_TOP), 6)          # 6: the transpose
    assert (transposed[1] == c.parse(RING_LEFT)).all() and (label(transposed[0]) == c.parse(RING_TOP)).all()
    assert (label(c.parse("S.#../..#../###../...../....G")) == c.parse("S.#../..#../###../...../....G")).all()
    ax, ay = lookup("maze").augment(x, y, np.random.default_rng(0))
    ks = [next(k for k in range(8) if (dihedral(a.reshape(10, 10), DIHEDRAL_INVERSE[k]).reshape(-1) == b).all())
          for a, b in zip(ax, x)]
    assert len(set(ks)) > 4                                            # not one transform for the whole batch
    assert check(ax, ay).all() and (ay == label(ax)).all()
    assert (ay != augment(x, y, np.array(ks))[1]).any()                # where the two tie-breaks differ


def test_module_needs_only_numpy():
    code = ("import sys, trm_edge.data.maze as m; m.generate(1, size=8); "
            "print(sorted({'torch', 'tqdm', 'scipy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
