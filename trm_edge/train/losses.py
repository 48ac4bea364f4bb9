"""The reference's ACT loss: stablemax cross-entropy (float64, mean per sequence, summed) + 0.5 * BCE of
q_halt against "the whole sequence is right" (+ the q_continue bootstrap term where it is kept)."""
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
    """Returns (loss summed over the batch, per-row facts: scored tokens, correct tokens, sequence right)."""
    mask = labels != IGNORE
    counts = mask.sum(-1)
    correct = mask & (logits.argmax(-1) == labels)
    seq_correct = correct.sum(-1) == counts
    lm = (stablemax_cross_entropy(logits, labels, mask) / counts.clamp_min(1).unsqueeze(-1)).sum()
    q = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="sum")
    if target_q_continue is not None:
        q = q + F.binary_cross_entropy_with_logits(q_continue, target_q_continue, reduction="sum")
    rows = {"counts": counts, "correct": correct.sum(-1), "seq_correct": seq_correct}
    return lm + 0.5 * q, {"lm_loss": lm.detach(), "q_halt_loss": q.detach()}, rows
