"""The host loop: fixed halting reproduces the reference, q_halt halting stops each row at its first
confident step, batching does not change answers, and the runtime needs numpy alone."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from trm_edge.errors import PuzzleError, TRMEdgeError
from trm_edge.runtime import check_tokens, solve
from trm_edge.runtime.torch_eager import TorchEagerStep
from trm_edge.step import make_step


def _setup(m, ids):
    backend = TorchEagerStep(make_step(m))
    pe = m.puzzle_rows(torch.as_tensor(ids)).numpy() if m.config.puzzle_emb_ndim else None
    return backend, pe


def test_importing_runtime_does_not_import_torch():
    code = ("import sys, trm_edge.runtime, trm_edge.runtime.loop, trm_edge.data, trm_edge.data.sudoku;"
            "heavy = [m for m in ('torch', 'safetensors', 'click') if m in sys.modules];"
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_fixed_halting_reproduces_the_reference_steps(golden):
    m = golden.model()
    S = golden["eval_logits"].shape[0]
    backend, pe = _setup(m, golden["puzzle_identifiers"])
    sol = solve(backend, golden["inputs"], pe, backend.module.y_init, backend.module.z_init,
                max_steps=S, halting="fixed", record=True, record_states=True)
    ref = m.rollout(golden["inputs"], golden["puzzle_identifiers"], steps=S)
    assert (sol.steps == S).all()
    for s, rec in enumerate(sol.trace):          # identical to the model's rollout ...
        assert (rec.rows == np.arange(len(golden["inputs"]))).all()
        np.testing.assert_array_equal(rec.logits, ref["logits"][s])
        np.testing.assert_array_equal(rec.q_halt, ref["q_halt"][s])
        np.testing.assert_array_equal(rec.y, ref["y"][s])
        np.testing.assert_array_equal(rec.z, ref["z"][s])
    # ... which test_golden.py checks against the reference
    np.testing.assert_array_equal(sol.predictions, ref["logits"][-1].argmax(-1))


@pytest.mark.parametrize("threshold", [0.5, 0.2, 0.9])
def test_q_halt_stops_each_row_at_its_first_confident_step(golden, threshold):
    m = golden.model()
    S = golden["eval_logits"].shape[0]
    backend, pe = _setup(m, golden["puzzle_identifiers"])
    ref = m.rollout(golden["inputs"], golden["puzzle_identifiers"], steps=S)
    prob = 1 / (1 + np.exp(-ref["q_halt"]))               # [S, B]
    confident = prob > threshold
    expected = np.where(confident.any(0), confident.argmax(0) + 1, S)
    if threshold == 0.5:   # the fixtures mix signs: some rows halt early, some never
        assert len(set(expected.tolist())) > 1
    sol = solve(backend, golden["inputs"], pe, backend.module.y_init, backend.module.z_init,
                max_steps=S, halting="q_halt", threshold=threshold, record=True)
    np.testing.assert_array_equal(sol.steps, expected)
    rows = np.arange(len(expected))
    np.testing.assert_allclose(sol.q_halt, ref["q_halt"][expected - 1, rows], atol=1e-5)
    np.testing.assert_array_equal(sol.predictions, ref["logits"][expected - 1, rows].argmax(-1))
    # compaction: each step ran only the rows still going
    for rec in sol.trace:
        assert (rec.rows == rows[expected >= rec.step]).all()


@pytest.mark.parametrize("halting", ["fixed", "q_halt"])
def test_batched_and_one_at_a_time_agree(golden, halting):
    m = golden.model()
    S = golden["eval_logits"].shape[0]
    backend, pe = _setup(m, golden["puzzle_identifiers"])
    args = dict(max_steps=S, halting=halting)
    batched = solve(backend, golden["inputs"], pe, backend.module.y_init, backend.module.z_init, **args)
    for i in range(len(golden["inputs"])):
        one = solve(backend, golden["inputs"][i:i + 1], None if pe is None else pe[i:i + 1],
                    backend.module.y_init, backend.module.z_init, **args)
        assert one.steps[0] == batched.steps[i]
        np.testing.assert_array_equal(one.predictions[0], batched.predictions[i])
        np.testing.assert_allclose(one.q_halt[0], batched.q_halt[i], atol=1e-4)


@pytest.mark.parametrize("bound", ["batch", "max_batch"])
def test_bounded_batch_backend_is_chunked(golden, bound):
    """A backend exported for a fixed batch (e.g. 2: rows padded) or with a largest batch (e.g. 3:
    ExecuTorch's dynamic batch has an upper bound) still solves any number of rows the same way."""
    m = golden.model()
    S = golden["eval_logits"].shape[0]
    backend, pe = _setup(m, golden["puzzle_identifiers"])
    seen = []
    size = 2 if bound == "batch" else 3

    class FixedBatch:
        positions = backend.positions
        batch = size if bound == "batch" else None
        max_batch = size if bound == "max_batch" else None

        def __call__(self, tokens, puzzle_emb, y, z):
            seen.append(tokens.shape[0])
            return backend(tokens, puzzle_emb, y, z)

    want = solve(backend, golden["inputs"], pe, backend.module.y_init, backend.module.z_init, max_steps=S)
    got = solve(FixedBatch(), golden["inputs"], pe, backend.module.y_init, backend.module.z_init, max_steps=S)
    assert (set(seen) == {2}) if bound == "batch" else (max(seen) == 3 and 1 in seen)   # 4 rows: 3 + 1
    np.testing.assert_array_equal(got.steps, want.steps)
    np.testing.assert_array_equal(got.predictions, want.predictions)


def test_check_tokens():
    assert check_tokens([1, 2, 3], 3, 4).shape == (1, 3)
    with pytest.raises(PuzzleError, match="has 2 tokens, the model takes 3"):
        check_tokens([[1, 2]], 3, 4)
    with pytest.raises(PuzzleError, match="token 7 at position 1 is outside the vocabulary 0..3"):
        check_tokens([[1, 7, 0]], 3, 4)
    with pytest.raises(PuzzleError, match="integers"):
        check_tokens([[1.5, 2.0, 0.0]], 3, 4)


def test_bad_solve_arguments(tiny_sudoku_model):
    backend, pe = _setup(tiny_sudoku_model, np.zeros(1, dtype=np.int64))
    tok = np.ones((1, 16), dtype=np.int64)
    for kwargs, match in (({"halting": "sometimes"}, "halting"), ({"threshold": 1.0}, "threshold"),
                          ({"max_steps": 0}, "max_steps")):
        with pytest.raises(TRMEdgeError, match=match):
            solve(backend, tok, pe, backend.module.y_init, backend.module.z_init, **kwargs)
