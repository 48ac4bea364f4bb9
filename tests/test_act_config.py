"""`no_ACT_continue: false` trains q_continue (the HRM-era Q-learning target) instead of only
changing the halting rule; with the default (true) q_continue gets no gradient and nothing changes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trm_edge.model import TRM, TRMConfig
from trm_edge.train.act import Carry, act_step
from trm_edge.train.config import TrainConfig
from trm_edge.train.losses import act_loss


def _model(no_act_continue: bool, halt_max_steps: int = 4) -> TRM:
    torch.manual_seed(0)
    cfg = TRMConfig(seq_len=16, vocab_size=6, hidden_size=32, expansion=2, H_cycles=1, L_cycles=2,
                    halt_max_steps=halt_max_steps, puzzle_emb_ndim=0, mlp_t=True, pos_encodings="none",
                    no_ACT_continue=no_act_continue)
    m = TRM(cfg)
    with torch.no_grad():   # q_head ~ 0 with bias -5 at init: give it something to learn from
        m.q_head.weight.normal_(0, 0.5)
        m.q_head.bias.zero_()
    return m.train()


def _batch(B: int = 6) -> dict:
    g = torch.Generator().manual_seed(1)
    return {"inputs": torch.randint(1, 6, (B, 16), generator=g, dtype=torch.int32),
            "labels": torch.randint(2, 6, (B, 16), generator=g, dtype=torch.int32),
            "puzzle_identifiers": torch.zeros(B, dtype=torch.int32)}


def _one_step(m: TRM, seed: int = 0):
    batch = _batch()
    carry = Carry.start(m, batch)
    torch.manual_seed(seed)
    new, loss, metrics, _ = act_step(m, carry, batch)
    loss.backward()
    return batch, new, loss, metrics


def test_q_continue_gets_a_gradient_only_with_no_act_continue_false():
    m = _model(no_act_continue=False)
    _, _, _, metrics = _one_step(m)
    assert "q_continue_loss" in metrics and metrics["q_continue_loss"].item() > 0
    assert m.q_head.bias.grad[1].abs().item() > 1e-6        # the q_continue output is trained
    assert m.q_head.weight.grad[1].abs().sum().item() > 1e-6

    m = _model(no_act_continue=True)
    _, _, _, metrics = _one_step(m)
    assert "q_continue_loss" not in metrics
    assert m.q_head.bias.grad[1].item() == 0.0               # the default: q_continue is never trained
    assert m.q_head.weight.grad[1].abs().sum().item() == 0.0


def test_q_continue_target_is_the_next_steps_best_q():
    """The loss is the q_halt-only loss plus 0.5 * BCE(q_continue, sigmoid(next q_halt, or the max of the
    next step's two Q values where another step is allowed)), the next step run from the new (y, z)."""
    for max_steps in (4, 2):     # after step 1 no row is on its last step yet
        m = _model(no_act_continue=False, halt_max_steps=max_steps)
        batch, new, loss, metrics = _one_step(m)
        with torch.no_grad():
            x = m.input_embedding(batch["inputs"], None)
            y0, z0 = m.initial_state(batch["inputs"].shape[0])
            y1, z1, logits, q_halt, q_cont = m.supervision_step(x, y0, z0)
            _, _, _, nh, nc = m.supervision_step(x, y1, z1)
            target = torch.sigmoid(torch.maximum(nh, nc))         # step 1 is not the last of max_steps >= 2
            base, _, _ = act_loss(logits, batch["labels"], q_halt)
            want = base + 0.5 * F.binary_cross_entropy_with_logits(q_cont, target, reduction="sum")
        torch.testing.assert_close(loss.detach(), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(metrics["q_continue_loss"],
                                   F.binary_cross_entropy_with_logits(q_cont, target, reduction="sum"))
        torch.testing.assert_close(new.y, y1)


def test_on_the_last_step_the_target_is_the_next_q_halt():
    m = _model(no_act_continue=False, halt_max_steps=2)
    batch = _batch()
    carry = Carry.start(m, batch)
    torch.manual_seed(0)
    carry, _, _, _ = act_step(m, carry, batch)
    carry.halted[:] = False                      # keep every row going: step 2 is the last allowed one
    y1, z1 = carry.y, carry.z
    torch.manual_seed(0)
    _, loss, metrics, _ = act_step(m, carry, batch)
    with torch.no_grad():
        x = m.input_embedding(batch["inputs"], None)
        y2, z2, _, _, q_cont = m.supervision_step(x, y1, z1)
        nh, _nc = m.supervision_step(x, y2, z2)[3:]
        want = F.binary_cross_entropy_with_logits(q_cont, torch.sigmoid(nh), reduction="sum")
    torch.testing.assert_close(metrics["q_continue_loss"], want)


def test_training_q_continue_moves_it_toward_its_target():
    """A few optimizer steps on the same batch lower the q_continue loss (it is really being learned)."""
    m = _model(no_act_continue=False)
    opt = torch.optim.SGD([m.q_head.weight, m.q_head.bias], lr=0.05)
    batch = _batch()
    first = last = None
    for i in range(30):
        carry = Carry.start(m, batch)
        torch.manual_seed(i)
        _, loss, metrics, _ = act_step(m, carry, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        v = metrics["q_continue_loss"].item()
        first = v if first is None else first
        last = v
    assert last < first


def test_eval_mode_and_single_step_models_skip_the_extra_step():
    m = _model(no_act_continue=False).eval()
    batch = _batch()
    _, _, metrics, _ = act_step(m, Carry.start(m, batch), batch)
    assert "q_continue_loss" not in metrics
    m = _model(no_act_continue=False, halt_max_steps=1)
    _, _, metrics, _ = act_step(m, Carry.start(m, batch), batch)
    assert "q_continue_loss" not in metrics


def test_act_loss_takes_q_continue_and_its_target_together():
    logits, labels, q = torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), torch.zeros(2)
    with pytest.raises(ValueError, match="together"):
        act_loss(logits, labels, q, q_continue=q)
    with pytest.raises(ValueError, match="together"):
        act_loss(logits, labels, q, target_q_continue=q)


def test_the_config_accepts_no_act_continue_false(tmp_path):
    cfg = TrainConfig(model={"hidden_size": 16, "no_ACT_continue": False}, data=str(tmp_path), steps=1).validate()
    assert cfg.model["no_ACT_continue"] is False
