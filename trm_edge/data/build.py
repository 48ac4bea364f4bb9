"""`trm-edge data build ...`: generate a task's puzzles and write them in the reference's folder format."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trm_edge.data.dataset import PuzzleSet, metadata_for, write_split


def build_sudoku(out, size: int = 9, train: int = 10000, test: int = 1000, givens=None, seed: int = 0,
                 progress: bool = True) -> Path:
    """Unique-solution Sudoku (SAT-proved); test puzzles never appear in train. `difficulty` (for the curriculum), `rating` and `givens` ride along."""
    from trm_edge.data import sudoku
    givens = tuple(givens) if givens else {4: (5, 9), 6: (12, 20), 9: (31, 45)}[size]
    seen: set[bytes] = set()
    for split, count, split_seed in (("test", test, seed + 1_000_003), ("train", train, seed)):
        d = sudoku.generate(count, size, givens, seed=split_seed, progress=progress)
        keep = np.array([p.tobytes() not in seen for p in d["puzzles"]], dtype=bool)
        seen.update(p.tobytes() for p in d["puzzles"])
        pset = PuzzleSet.one_example_per_puzzle(sudoku.to_tokens(d["puzzles"][keep]),
                                                sudoku.to_tokens(d["solutions"][keep]),
                                                difficulty=d["rating"][keep] * 100 - d["givens"][keep],
                                                rating=d["rating"][keep], givens=d["givens"][keep])
        meta = metadata_for({"all": pset}, seq_len=size * size, vocab_size=size + 2)
        meta["task"] = {"name": "sudoku", "size": size, "givens": list(givens)}
        write_split(out, split, {"all": pset}, meta)
    return Path(out)


def build_maze(out, size: int = 30, train: int = 1000, test: int = 1000, min_path: int | None = None,
               seed: int = 0, progress: bool = True) -> Path:
    """Maze-Hard-style mazes (shortest path > min_path); the test split uses other seeds."""
    from trm_edge.data import maze
    for split, count, split_seed in (("test", test, seed + 1_000_003), ("train", train, seed)):
        inputs, labels = maze.generate(count, size, min_path, seed=split_seed, progress=progress)
        pset = PuzzleSet.one_example_per_puzzle(inputs, labels)
        meta = metadata_for({"all": pset}, seq_len=size * size, vocab_size=maze.VOCAB_SIZE)
        meta["task"] = {"name": "maze", "size": size, "min_path": min_path or maze.default_min_path(size)}
        write_split(out, split, {"all": pset}, meta)
    return Path(out)


def build_arc(out, version: str = "arc-agi-1", augmentations: int = 1000, seed: int = 42) -> Path:
    """The reference's ARC set: training tasks and the evaluation tasks' demonstrations train, the
    evaluation tasks' test pairs test; `augmentations` dihedral + colour variants per task."""
    import json

    from trm_edge.data import arc
    tasks = arc.load_tasks(version)
    sets = arc.build_arc_sets(tasks["training"], tasks["evaluation"], num_aug=augmentations, seed=seed)
    for split in ("train", "test"):
        s = sets.splits[split]
        meta = sets.metadata(split)
        meta["task"] = {"name": "arc", "version": version}
        write_split(out, split, {"all": PuzzleSet(**s.arrays(), extra={"test_index": s.test_index})}, meta)
    (Path(out) / "identifiers.json").write_text(json.dumps(sets.reference_names()))
    (Path(out) / "test_puzzles.json").write_text(json.dumps({t.id: t.to_json() for t in tasks["evaluation"]}))
    return Path(out)
