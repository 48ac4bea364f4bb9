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
        keep = np.array([p.tobytes() not in seen for p in d["puzzles"]])
        seen.update(p.tobytes() for p in d["puzzles"])
        pset = PuzzleSet.one_example_per_puzzle(sudoku.to_tokens(d["puzzles"][keep]),
                                                sudoku.to_tokens(d["solutions"][keep]),
                                                difficulty=d["rating"][keep] * 100 - d["givens"][keep],
                                                rating=d["rating"][keep], givens=d["givens"][keep])
        meta = metadata_for({"all": pset}, seq_len=size * size, vocab_size=size + 2)
        meta["task"] = {"name": "sudoku", "size": size, "givens": list(givens)}
        write_split(out, split, {"all": pset}, meta)
    return Path(out)
