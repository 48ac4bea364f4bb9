"""The reference's ACT loss: stablemax cross-entropy (float64, mean per sequence, summed) + 0.5 * BCE of
q_halt against "the whole sequence is right", + 0.5 * BCE of q_continue against its bootstrapped
Q-learning target when the model is trained with `no_ACT_continue: false` (act.py computes the target)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log of s(x) / sum s(x), s(x) = x + 1 for x >= 0 and 1 / (1 - x) below: softmax without exp."""
    s = torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logp = log_stablemax(logits.to(torch.float64))
    picked = logp.gather(-1, torch.where(mask, labels, 0).long().unsqueeze(-1)).squeeze(-1)
    return -torch.where(mask, picked, 0)


def act_loss(logits, labels, q_halt, q_continue=None, target_q_continue=None):
    """Returns (loss summed over the batch, metrics, per-row facts: scored tokens, correct tokens, sequence right).

    q_continue and target_q_continue come together (no_ACT_continue: false) or not at all; the
    target is a probability (the sigmoid of the next step's best Q), the term is BCE summed over rows.
    """
    if (q_continue is None) != (target_q_continue is None):
        raise ValueError("act_loss: pass q_continue and target_q_continue together, or neither")
    mask = labels != IGNORE
    counts = mask.sum(-1)
    correct = mask & (logits.argmax(-1) == labels)
    seq_correct = correct.sum(-1) == counts
    lm = (stablemax_cross_entropy(logits, labels, mask) / counts.clamp_min(1).unsqueeze(-1)).sum()
    q = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="sum")
    metrics = {"lm_loss": lm.detach(), "q_halt_loss": q.detach()}
    if q_continue is not None:
        qc = F.binary_cross_entropy_with_logits(q_continue, target_q_continue.to(q_continue.dtype), reduction="sum")
        metrics["q_continue_loss"] = qc.detach()
        q = q + qc
    rows = {"counts": counts, "correct": correct.sum(-1), "seq_correct": seq_correct}
    return lm + 0.5 * q, metrics, rows
