"""The reference's dataset folder format, read and written, so datasets move both ways.

    <root>/<split>/dataset.json                 metadata (below)
    <root>/<split>/<set>__inputs.npy            [E, L] token ids, one row per example
    <root>/<split>/<set>__labels.npy            [E, L] (ignore_label_id where not scored)
    <root>/<split>/<set>__puzzle_identifiers.npy [P]   puzzle-embedding row of each puzzle
    <root>/<split>/<set>__puzzle_indices.npy    [P+1] examples of puzzle p: puzzle_indices[p]:[p+1]
    <root>/<split>/<set>__group_indices.npy     [G+1] puzzles of group g (a task and its augmentations)

dataset.json: pad_id, ignore_label_id, blank_identifier_id, vocab_size, seq_len,
num_puzzle_identifiers, total_groups, mean_puzzle_examples, total_puzzles, sets.
Extra `<set>__<name>.npy` arrays (e.g. our `rating`) are ignored by the reference's loader.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trm_edge.errors import TRMEdgeError

FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")


@dataclass
class PuzzleSet:
    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray
    extra: dict = field(default_factory=dict)     # optional per-example arrays (e.g. difficulty)

    @classmethod
    def one_example_per_puzzle(cls, inputs, labels, group_size: int = 1, puzzle_identifiers=None, **extra):
        """Each example its own puzzle; consecutive runs of `group_size` puzzles form a group."""
        n = len(inputs)
        if n % group_size:
            raise ValueError(f"{n} puzzles do not split into groups of {group_size}")
        ids = np.zeros(n, np.int32) if puzzle_identifiers is None else np.asarray(puzzle_identifiers, np.int32)
        return cls(np.asarray(inputs), np.asarray(labels), ids, np.arange(n + 1, dtype=np.int32),
                   np.arange(0, n + 1, group_size, dtype=np.int32), extra)

    def validate(self, where: str = "dataset"):
        E = len(self.inputs)
        if self.labels.shape != self.inputs.shape:
            raise TRMEdgeError(f"{where}: labels {self.labels.shape} and inputs {self.inputs.shape} differ")
        if self.puzzle_indices[0] != 0 or self.puzzle_indices[-1] != E or np.any(np.diff(self.puzzle_indices) < 0):
            raise TRMEdgeError(f"{where}: puzzle_indices must rise from 0 to {E} (the number of examples)")
        P = len(self.puzzle_indices) - 1
        if len(self.puzzle_identifiers) != P:
            raise TRMEdgeError(f"{where}: {len(self.puzzle_identifiers)} puzzle_identifiers for {P} puzzles")
        if self.group_indices[0] != 0 or self.group_indices[-1] != P or np.any(np.diff(self.group_indices) < 0):
            raise TRMEdgeError(f"{where}: group_indices must rise from 0 to {P} (the number of puzzles)")


def metadata_for(sets: dict[str, PuzzleSet], seq_len: int, vocab_size: int, num_puzzle_identifiers: int = 1,
                 pad_id: int = 0, ignore_label_id: int | None = 0, blank_identifier_id: int = 0) -> dict:
    puzzles = sum(len(s.puzzle_indices) - 1 for s in sets.values())
    examples = sum(len(s.inputs) for s in sets.values())
    return dict(pad_id=pad_id, ignore_label_id=ignore_label_id, blank_identifier_id=blank_identifier_id,
                vocab_size=vocab_size, seq_len=seq_len, num_puzzle_identifiers=num_puzzle_identifiers,
                total_groups=sum(len(s.group_indices) - 1 for s in sets.values()),
                mean_puzzle_examples=examples / max(puzzles, 1), total_puzzles=puzzles, sets=list(sets))


def write_split(root, split: str, sets: dict[str, PuzzleSet], metadata: dict) -> Path:
    """Write one split atomically: a temporary folder renamed into place."""
    root = Path(root)
    final = root / split
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{split}."))
    try:
        for name, s in sets.items():
            s.validate(f"{final} set {name}")
            for f in FIELDS:
                np.save(tmp / f"{name}__{f}.npy", getattr(s, f))
            for f, v in s.extra.items():
                np.save(tmp / f"{name}__{f}.npy", np.asarray(v))
        (tmp / "dataset.json").write_text(json.dumps(metadata, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_split(root, split: str, mmap: bool = False) -> tuple[dict[str, PuzzleSet], dict]:
    d = Path(root) / split
    meta_file = d / "dataset.json"
    if not meta_file.is_file():
        raise TRMEdgeError(f"no dataset at {d} (missing dataset.json); build one with `trm-edge data build`")
    meta = json.loads(meta_file.read_text())
    sets = {}
    for name in meta["sets"]:
        load = lambda f, mode=None: np.load(d / f"{name}__{f}.npy", mmap_mode=mode)
        try:
            arrays = {f: load(f, "r" if mmap and f in ("inputs", "labels") else None) for f in FIELDS}
        except FileNotFoundError as e:
            raise TRMEdgeError(f"dataset {d} lacks {Path(e.filename).name}") from None
        extra = {p.name.split("__", 1)[1][:-4]: np.load(p) for p in d.glob(f"{name}__*.npy")
                 if p.name.split("__", 1)[1][:-4] not in FIELDS}
        sets[name] = PuzzleSet(**arrays, extra=extra)
        sets[name].validate(f"{d} set {name}")
    return sets, meta
