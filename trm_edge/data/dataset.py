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
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trm_edge.errors import TRMEdgeError

FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
_FIX = "fix or rebuild the dataset (`trm-edge data build`)"
_JSON_NAMES = {int: "an integer", float: "a number", list: "a list", dict: "an object", str: "a string",
               type(None): "null", bool: "true/false"}


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
        for f, ndim in (("inputs", 2), ("labels", 2), ("puzzle_identifiers", 1), ("puzzle_indices", 1),
                        ("group_indices", 1)):
            a = getattr(self, f)
            integer = f in ("inputs", "labels") or (np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_)
            if not isinstance(a, np.ndarray) or a.ndim != ndim or not integer:
                got = f"{a.dtype} {list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
                raise TRMEdgeError(f"{where}: {f} must be a {ndim}-D integer array, got {got}; "
                                   f"rebuild the dataset with `trm-edge data build`")
        for f in ("puzzle_indices", "group_indices"):
            if len(getattr(self, f)) == 0:
                raise TRMEdgeError(f"{where}: {f} is empty (it starts with 0); rebuild the dataset")
        E = len(self.inputs)
        if self.labels.shape != self.inputs.shape:
            raise TRMEdgeError(f"{where}: labels {self.labels.shape} and inputs {self.inputs.shape} differ; {_FIX}")
        if self.puzzle_indices[0] != 0 or self.puzzle_indices[-1] != E or np.any(np.diff(self.puzzle_indices) < 0):
            raise TRMEdgeError(f"{where}: puzzle_indices must rise from 0 to {E} (the number of examples); {_FIX}")
        P = len(self.puzzle_indices) - 1
        if len(self.puzzle_identifiers) != P:
            raise TRMEdgeError(f"{where}: {len(self.puzzle_identifiers)} puzzle_identifiers for {P} puzzles; {_FIX}")
        if self.group_indices[0] != 0 or self.group_indices[-1] != P or np.any(np.diff(self.group_indices) < 0):
            raise TRMEdgeError(f"{where}: group_indices must rise from 0 to {P} (the number of puzzles); {_FIX}")
        for f in ("inputs", "labels"):
            a = getattr(self, f)
            if not np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
                raise TRMEdgeError(f"{where}: {f} must hold integer token ids, got {a.dtype}; "
                                   f"rebuild the dataset with `trm-edge data build`")


def metadata_for(sets: dict[str, PuzzleSet], seq_len: int, vocab_size: int, num_puzzle_identifiers: int = 1,
                 pad_id: int = 0, ignore_label_id: int | None = 0, blank_identifier_id: int = 0) -> dict:
    puzzles = sum(len(s.puzzle_indices) - 1 for s in sets.values())
    examples = sum(len(s.inputs) for s in sets.values())
    return dict(pad_id=pad_id, ignore_label_id=ignore_label_id, blank_identifier_id=blank_identifier_id,
                vocab_size=vocab_size, seq_len=seq_len, num_puzzle_identifiers=num_puzzle_identifiers,
                total_groups=sum(len(s.group_indices) - 1 for s in sets.values()),
                mean_puzzle_examples=examples / max(puzzles, 1), total_puzzles=puzzles, sets=list(sets))


def write_split(root, split: str, sets: dict[str, PuzzleSet], metadata: dict, indent: int | None = 1) -> Path:
    """Write one split atomically: a temporary folder renamed into place. `indent=None` writes
    dataset.json on one line, as the reference's builders do."""
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
        (tmp / "dataset.json").write_text(json.dumps(metadata, indent=indent))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# dataset.json keys read here and by training/evaluation: (types allowed, required); every writer of the
# reference format (its build scripts, metadata_for, ArcSets.metadata) writes them all
_META_KEYS = {
    "sets": ((list,), True),
    "seq_len": ((int,), True),
    "vocab_size": ((int,), True),
    "num_puzzle_identifiers": ((int,), True),
    "total_groups": ((int,), True),
    "mean_puzzle_examples": ((int, float), True),
    "total_puzzles": ((int,), False),
    "pad_id": ((int,), False),
    "ignore_label_id": ((int, type(None)), False),
    "blank_identifier_id": ((int,), False),
    "task": ((dict, type(None)), False),
}


def _read_meta(meta_file: Path) -> dict:
    rebuild = "rebuild it with `trm-edge data build`"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise TRMEdgeError(f"{meta_file} is not UTF-8 text; {rebuild}") from None
    except (ValueError, RecursionError) as e:
        raise TRMEdgeError(f"{meta_file} is not JSON ({str(e).splitlines()[0][:80]}); {rebuild}") from None
    except OSError as e:
        raise TRMEdgeError(f"cannot read {meta_file} ({e.strerror or type(e).__name__}); check its permissions") from None
    if not isinstance(meta, dict):
        raise TRMEdgeError(f"{meta_file} holds {_JSON_NAMES.get(type(meta), type(meta).__name__)} in JSON, "
                           f"not an object of dataset facts; {rebuild}")
    for key, (types, required) in _META_KEYS.items():
        if key not in meta:
            if required:
                raise TRMEdgeError(f"{meta_file} lacks '{key}'; {rebuild}")
            continue
        v = meta[key]
        if isinstance(v, bool) or not isinstance(v, types):
            raise TRMEdgeError(f"{meta_file}: '{key}' is {json.dumps(v)[:40]}, not "
                               f"{' or '.join(_JSON_NAMES[t] for t in types)}; {rebuild}")
        if isinstance(v, (int, float)) and key != "ignore_label_id" and not (v >= 0 and math.isfinite(v)):
            raise TRMEdgeError(f"{meta_file}: '{key}' is {v}, not a finite number of 0 or more; {rebuild}")
    for key in ("seq_len", "vocab_size", "num_puzzle_identifiers"):
        if key in meta and meta[key] < 1:
            raise TRMEdgeError(f"{meta_file}: '{key}' is {meta[key]}; it must be at least 1; {rebuild}")
    names = meta["sets"]
    if not names:
        raise TRMEdgeError(f"{meta_file}: 'sets' is empty; it names the sets of the split, e.g. [\"all\"]; {rebuild}")
    for name in names:
        if not isinstance(name, str) or not _SET_NAME.fullmatch(name) or "__" in name:
            raise TRMEdgeError(f"{meta_file}: set name {json.dumps(name)[:40]} is not a plain name (letters, digits, "
                               f"'_', '-', '.'; no '__', no '/'); {rebuild}")
    if len(set(names)) != len(names):
        raise TRMEdgeError(f"{meta_file}: 'sets' names a set twice; {rebuild}")
    return meta


def _load_array(f: Path, mmap: bool) -> np.ndarray:
    """One .npy array (never pickled objects), or a one-line TRMEdgeError."""
    if not f.is_file():
        raise TRMEdgeError(f"dataset {f.parent} lacks {f.name}; rebuild it with `trm-edge data build`")
    try:
        a = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as e:   # random bytes, a pickle, a cut file
        why = "it is no NumPy array file; pickled data is never loaded" if "pickle" in str(e) else \
            (str(e).strip().splitlines() or [type(e).__name__])[0][:80]
        raise TRMEdgeError(f"{f} is not a .npy array ({why}); rebuild the dataset with `trm-edge data build`") from None
    if not isinstance(a, np.ndarray):      # an .npz archive under a .npy name
        raise TRMEdgeError(f"{f} is not a .npy array but an archive; rebuild the dataset with `trm-edge data build`")
    return a


def read_split(root, split: str, mmap: bool = False) -> tuple[dict[str, PuzzleSet], dict]:
    """The sets of `<root>/<split>` and its dataset.json, checked: every malformed dataset (metadata that is
    not JSON or lacks keys, arrays that are not .npy integer arrays of the right shapes, puzzle
    identifiers outside the table) raises a one-line TRMEdgeError naming the file and the fix."""
    if not isinstance(root, (str, os.PathLike)) or not str(root):
        raise TRMEdgeError(f"a dataset is a folder path, got {root!r}; pass the folder `trm-edge data build` wrote")
    d = Path(root) / split
    meta_file = d / "dataset.json"
    try:
        found = meta_file.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise TRMEdgeError(f"no dataset at {d} (missing dataset.json); build one with `trm-edge data build`")
    meta = _read_meta(meta_file)
    sets = {}
    for name in meta["sets"]:
        arrays = {f: _load_array(d / f"{name}__{f}.npy", mmap and f in ("inputs", "labels")) for f in FIELDS}
        extra = {}
        for p in sorted(d.glob(f"{name}__*.npy")):
            key = p.name.split("__", 1)[1][:-4]
            if key not in FIELDS:
                extra[key] = _load_array(p, False)
        where = f"{d} set {name}"
        pset = PuzzleSet(**arrays, extra=extra)
        pset.validate(where)
        if pset.inputs.shape[1] != meta["seq_len"]:
            raise TRMEdgeError(f"{where}: inputs have {pset.inputs.shape[1]} tokens per example, dataset.json says "
                               f"seq_len {meta['seq_len']}; rebuild the dataset")
        table = meta.get("num_puzzle_identifiers")
        ids = pset.puzzle_identifiers
        if table is not None and len(ids) and (ids.min() < 0 or ids.max() >= table):
            raise TRMEdgeError(f"{where}: puzzle identifiers reach {int(ids.min())}..{int(ids.max())}, outside the "
                               f"table 0..{table - 1} of dataset.json; rebuild the dataset")
        for key, v in extra.items():
            if v.ndim >= 1 and len(v) != len(pset.inputs) and key == "test_index":
                raise TRMEdgeError(f"{where}: {key} has {len(v)} rows for {len(pset.inputs)} examples; rebuild the dataset")
        sets[name] = pset
    return sets, meta
