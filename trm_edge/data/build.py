"""`trm-edge data build ...`: generate a task's puzzles and write them in the reference's folder format.

Every parameter is checked before anything is generated, and both splits are built in a staging
folder that is moved into place only when all of it is written: a failed or interrupted build
leaves nothing new behind, and `--out` is never a user's folder of other things (`outdir.claim`).
"""
from __future__ import annotations

import numbers
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from trm_edge.data.dataset import PuzzleSet, metadata_for, write_split
from trm_edge.errors import TRMEdgeError
from trm_edge.outdir import OutputError, claim, make, reason, show, unmake

SUDOKU_SIZES = (4, 6, 9)
SUDOKU_DEFAULT_GIVENS = {4: (5, 9), 6: (12, 20), 9: (31, 45)}
SUDOKU_MIN_GIVENS = {4: 4, 6: 8, 9: 17}       # fewest clues a unique-solution puzzle can have
MAZE_SIZES = (2, 64)                          # what the generator makes
MAX_COUNT = 100_000_000
MAX_SEED = 2**63 - 1
MAX_AUGMENTATIONS = 100_000
OUR_FILES = ("train", "test", "identifiers.json", "test_puzzles.json")   # what a build writes into --out
STAGE = ".trm-edge-build."                                              # staging folders' prefix


class DataBuildError(TRMEdgeError):
    pass


# ----------------------------------------------------------------------------- checks

def _whole(value, what: str, lo: int, hi: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataBuildError(f"{what} {value!r} is not a whole number; {fix}")
    if not lo <= int(value) <= hi:
        raise DataBuildError(f"{what} {value} is out of range; {fix}")
    return int(value)


def _counts(train, test) -> tuple[int, int]:
    train = _whole(train, "--train", 0, MAX_COUNT, f"give the number of training puzzles, 0 to {MAX_COUNT:,}")
    test = _whole(test, "--test", 0, MAX_COUNT, f"give the number of held-out puzzles, 0 to {MAX_COUNT:,}")
    if train + test == 0:
        raise DataBuildError("--train 0 and --test 0 build an empty dataset; ask for at least one puzzle")
    return train, test


def _seed(seed) -> int:
    return _whole(seed, "--seed", 0, MAX_SEED, f"give a seed from 0 to {MAX_SEED}")


def check_sudoku(size, train, test, givens, seed) -> tuple[int, int, int, tuple[int, int], int]:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or int(size) not in SUDOKU_SIZES:
        raise DataBuildError(f"--size {size!r} is not a Sudoku size; give --size 4, 6 or 9")
    size = int(size)
    train, test = _counts(train, test)
    cells, least = size * size, SUDOKU_MIN_GIVENS[size]
    fix = f"give two clue counts LOW HIGH with {least} <= LOW <= HIGH <= {cells - 1} for a {size}x{size} Sudoku"
    if givens is None:
        givens = SUDOKU_DEFAULT_GIVENS[size]
    else:
        try:
            givens = tuple(givens)
        except TypeError:
            raise DataBuildError(f"--givens {givens!r} is not a pair; {fix}") from None
        if len(givens) != 2:
            raise DataBuildError(f"--givens needs two numbers, got {len(givens)}; {fix}")
        lo, hi = (_whole(g, "--givens", -MAX_COUNT, MAX_COUNT, fix) for g in givens)
        if lo > hi:
            raise DataBuildError(f"--givens {lo} {hi} is reversed; {fix}")
        if lo < least:
            raise DataBuildError(f"--givens {lo} {hi}: no {size}x{size} Sudoku with fewer than {least} clues has "
                                 f"one solution; {fix}")
        if hi > cells - 1:
            raise DataBuildError(f"--givens {lo} {hi}: a {size}x{size} Sudoku has {cells} cells and needs a blank; {fix}")
        givens = (lo, hi)
    return size, train, test, givens, _seed(seed)


def check_maze(size, train, test, min_path, seed) -> tuple[int, int, int, int | None, int]:
    from trm_edge.data import maze
    lo, hi = MAZE_SIZES
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or not lo <= int(size) <= hi:
        raise DataBuildError(f"--size {size!r} is not a maze size; give a side from {lo} to {hi} (Maze-Hard is 30)")
    size = int(size)
    train, test = _counts(train, test)
    if min_path is not None:
        most = size * size - 2
        min_path = _whole(min_path, "--min-path", 0, most,
                          f"give a shortest-path length from 0 to {most} for a {size}x{size} maze "
                          f"(default {maze.default_min_path(size)})")
    return size, train, test, min_path, _seed(seed)


def check_arc(version, augmentations, seed) -> tuple[str, int, int]:
    from trm_edge.data.arc import VERSIONS
    if version not in VERSIONS:
        raise DataBuildError(f"--version {version!r} is not an ARC version; give one of {', '.join(VERSIONS)}")
    augmentations = _whole(augmentations, "--augmentations", 0, MAX_AUGMENTATIONS,
                           f"give the number of augmented variants per task, 0 to {MAX_AUGMENTATIONS:,}")
    return version, augmentations, _seed(seed)


# ----------------------------------------------------------------------------- writing

def is_our_dataset(d: Path) -> bool:
    """A folder a build may write into again: it holds a split of ours (or only a killed build's staging)."""
    if (d / "train" / "dataset.json").is_file() or (d / "test" / "dataset.json").is_file():
        return True
    return all(p.name.startswith(STAGE) for p in d.iterdir())


def _mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


@contextmanager
def staged(out):
    """Yield a staging folder to write the whole dataset into; on success its entries replace those of
    `out`, on any failure it is removed and `out` is as it was. OSError -> OutputError."""
    out = claim(out, "dataset", is_our_dataset)
    exists = out.is_dir()
    if exists:   # stage inside: the same file system even when out is a mount point
        for old in out.glob(STAGE + "*"):     # a killed build's leftovers (ours by name)
            shutil.rmtree(old, ignore_errors=True)
        base = out
    else:
        base = out.absolute().parent
        while not base.exists():
            base = base.parent
    tmp = base / f"{STAGE}{secrets.token_hex(6)}"
    try:
        os.mkdir(tmp)
    except OSError as e:
        raise OutputError(f"--out {show(out)} cannot be written: {reason(e)}; choose another folder") from None
    try:
        yield tmp
        mode = _mode()
        for p in tmp.iterdir():   # write_split stages with mkdtemp (0700): give the splits the usual mode
            os.chmod(p, mode if p.is_dir() else mode & 0o666)
        if exists:
            _swap_into(tmp, out)
        else:
            created = make(out.parent, "dataset")
            try:
                os.replace(tmp, out)
            except BaseException:
                unmake(created)
                raise
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write the dataset to {show(out)}: {reason(e)}; "
                          f"nothing was left behind: free space or choose another --out") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)


def _swap_into(tmp: Path, out: Path):
    """Move tmp's entries into out, the old ones (ours by name) aside into tmp; undo all on failure."""
    new = [p.name for p in tmp.iterdir() if not p.name.startswith(".")]
    old_dir = tmp / ".old"
    old_dir.mkdir()
    moved_old, moved_new = [], []
    try:
        for name in OUR_FILES:
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, old_dir / name)
                moved_old.append(name)
        for name in new:
            os.replace(tmp / name, out / name)
            moved_new.append(name)
    except BaseException:
        for name in moved_new:
            os.replace(out / name, tmp / name)
        for name in moved_old:
            os.replace(old_dir / name, out / name)
        raise


def _write(root: Path, split: str, pset: PuzzleSet, meta: dict):
    write_split(root, split, {"all": pset}, meta)


# ----------------------------------------------------------------------------- builders

def build_sudoku(out, size: int = 9, train: int = 10000, test: int = 1000, givens=None, seed: int = 0,
                 progress: bool = True, difficulty: str = "moderate") -> Path:
    """Unique-solution Sudoku (SAT-proved) of a difficulty (sudoku.DIFFICULTIES); test puzzles never
    appear in train. `difficulty` (for the curriculum), `rating`, `backtracks` and `givens` ride along."""
    from trm_edge.data.sudoku import DIFFICULTIES
    if difficulty not in DIFFICULTIES:
        raise DataBuildError(f"--difficulty {difficulty!r} is unknown; give one of {', '.join(DIFFICULTIES)}")
    if givens is not None and difficulty != "moderate":
        raise DataBuildError(f"--givens sets the clues of moderate puzzles; {difficulty} puzzles keep as few as "
                             f"uniqueness allows: drop --givens or use --difficulty moderate")
    size, train, test, givens, seed = check_sudoku(size, train, test, givens, seed)
    from trm_edge.data import sudoku
    seen: set[bytes] = set()
    with staged(out) as tmp:
        for split, count, split_seed in (("test", test, seed + 1_000_003), ("train", train, seed)):
            d = sudoku.generate(count, size, givens, seed=split_seed, progress=progress, difficulty=difficulty)
            keep = np.array([p.tobytes() not in seen for p in d["puzzles"]], dtype=bool)
            seen.update(p.tobytes() for p in d["puzzles"])
            pset = PuzzleSet.one_example_per_puzzle(sudoku.to_tokens(d["puzzles"][keep]),
                                                    sudoku.to_tokens(d["solutions"][keep]),
                                                    difficulty=d["rating"][keep] * 100 - d["givens"][keep],
                                                    rating=d["rating"][keep], givens=d["givens"][keep],
                                                    backtracks=d["backtracks"][keep])
            meta = metadata_for({"all": pset}, seq_len=size * size, vocab_size=size + 2)
            meta["task"] = ({"name": "sudoku", "size": size, "givens": list(givens)} if difficulty == "moderate"
                            else {"name": "sudoku", "size": size, "difficulty": difficulty})
            _write(tmp, split, pset, meta)
    return Path(out)


def build_maze(out, size: int = 30, train: int = 1000, test: int = 1000, min_path: int | None = None,
               seed: int = 0, progress: bool = True) -> Path:
    """Maze-Hard-style mazes (shortest path > min_path); the test split uses other seeds."""
    size, train, test, min_path, seed = check_maze(size, train, test, min_path, seed)
    from trm_edge.data import maze
    with staged(out) as tmp:
        for split, count, split_seed in (("test", test, seed + 1_000_003), ("train", train, seed)):
            inputs, labels = maze.generate(count, size, min_path, seed=split_seed, progress=progress)
            pset = PuzzleSet.one_example_per_puzzle(inputs, labels)
            meta = metadata_for({"all": pset}, seq_len=size * size, vocab_size=maze.VOCAB_SIZE)
            meta["task"] = {"name": "maze", "size": size,
                            "min_path": maze.default_min_path(size) if min_path is None else min_path}
            _write(tmp, split, pset, meta)
    return Path(out)


def build_arc(out, version: str = "arc-agi-1", augmentations: int = 1000, seed: int = 42) -> Path:
    """The reference's ARC set: training tasks and the evaluation tasks' demonstrations train, the
    evaluation tasks' test pairs test; `augmentations` dihedral + colour variants per task."""
    import json

    version, augmentations, seed = check_arc(version, augmentations, seed)
    claim(out, "dataset", is_our_dataset)   # refuse a bad --out before the (slow) task loading
    from trm_edge.data import arc
    tasks = arc.load_tasks(version)
    sets = arc.build_arc_sets(tasks["training"], tasks["evaluation"], num_aug=augmentations, seed=seed)
    with staged(out) as tmp:
        for split in ("train", "test"):
            s = sets.splits[split]
            meta = sets.metadata(split)
            meta["task"] = {"name": "arc", "version": version}
            write_split(tmp, split, {"all": PuzzleSet(**s.arrays(), extra={"test_index": s.test_index})}, meta)
        (tmp / "identifiers.json").write_text(json.dumps(sets.reference_names()))
        (tmp / "test_puzzles.json").write_text(json.dumps({t.id: t.to_json() for t in tasks["evaluation"]}))
    return Path(out)
