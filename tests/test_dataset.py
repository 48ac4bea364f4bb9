"""The reference's dataset folder format: round trip, layout and metadata keys."""
from __future__ import annotations

import json

import numpy as np
import pytest

from trm_edge.data.dataset import FIELDS, PuzzleSet, metadata_for, read_split, write_split
from trm_edge.errors import TRMEdgeError

REFERENCE_META_KEYS = {"pad_id", "ignore_label_id", "blank_identifier_id", "vocab_size", "seq_len",
                       "num_puzzle_identifiers", "total_groups", "mean_puzzle_examples", "total_puzzles", "sets"}


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 11, (12, 81)).astype(np.uint8)
    labels = rng.integers(0, 11, (12, 81)).astype(np.uint8)
    # 4 puzzles of 3 examples, 2 groups of 2 puzzles
    pset = PuzzleSet(inputs, labels, np.array([1, 2, 3, 4], np.int32), np.array([0, 3, 6, 9, 12], np.int32),
                     np.array([0, 2, 4], np.int32), {"rating": np.arange(12)})
    meta = metadata_for({"all": pset}, seq_len=81, vocab_size=11, num_puzzle_identifiers=5)
    assert REFERENCE_META_KEYS <= set(meta) and meta["mean_puzzle_examples"] == 3
    write_split(tmp_path, "train", {"all": pset}, meta)
    files = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert files == sorted(["dataset.json"] + [f"all__{f}.npy" for f in (*FIELDS, "rating")])
    sets, meta2 = read_split(tmp_path, "train")
    assert meta2 == json.loads(json.dumps(meta))
    for f in FIELDS:
        assert np.array_equal(getattr(sets["all"], f), getattr(pset, f))
    assert np.array_equal(sets["all"].extra["rating"], np.arange(12))
    assert not list(tmp_path.glob(".train.*"))          # no temporary folder left behind


def test_invalid_sets_are_refused(tmp_path):
    bad = PuzzleSet.one_example_per_puzzle(np.zeros((4, 9)), np.zeros((4, 9)))
    bad.group_indices = np.array([0, 3], np.int32)       # does not reach the 4 puzzles
    with pytest.raises(TRMEdgeError, match="group_indices"):
        write_split(tmp_path, "train", {"all": bad}, {})
    assert not (tmp_path / "train").exists()
    with pytest.raises(TRMEdgeError, match="dataset.json"):
        read_split(tmp_path, "test")
