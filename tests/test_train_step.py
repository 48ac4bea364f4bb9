"""One training step against the reference fixture: same loss, gradients, puzzle-row gradients and
halting decisions for the same weights, batch and RNG seed."""
from __future__ import annotations

import numpy as np
import torch

from trm_edge.train.act import Carry, act_step


def test_training_step_matches_reference(golden):
    m = golden.model()
    m.train()
    batch = {k: torch.as_tensor(golden[k]) for k in ("inputs", "labels", "puzzle_identifiers")}
    carry = Carry.start(m, batch)
    leaf = {}

    def rows_fn(ids):
        leaf["rows"] = m.puzzle_emb[ids.long()].detach().clone().requires_grad_(True)
        return leaf["rows"]

    torch.manual_seed(int(golden["train_rng_seed"]))
    carry, loss, metrics, _ = act_step(m, carry, batch, rows_fn)
    loss.backward()
    assert abs(loss.item() - float(golden["train_loss"])) <= 1e-4 * max(1.0, abs(float(golden["train_loss"])))
    grad_norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in m.parameters() if p.grad is not None))
    assert abs(grad_norm.item() - float(golden["train_grad_norm"])) <= 1e-4 * float(golden["train_grad_norm"])
    np.testing.assert_allclose(leaf["rows"].grad.numpy(), golden["train_puzzle_emb_local_grad"], atol=1e-5, rtol=1e-4)
    np.testing.assert_array_equal(carry.halted.numpy(), golden["train_halted"])
    np.testing.assert_array_equal(carry.steps.numpy(), golden["train_steps"])
