"""Deep supervision with the ACT carry (the reference's training step).

Every training step runs ONE supervision step on a batch of rows. A row that halted last time
takes a fresh example (and the initial y, z); the others carry on from their (y, z). A row halts
when it reaches halt_max_steps or q_halt > 0, except that with probability halt_exploration_prob
it must first reach a random minimum of 2..halt_max_steps steps.

With `no_ACT_continue: false` (the HRM-era rule; the reference TRM defaults to true) a training row
halts when q_halt > q_continue instead, and q_continue is trained by Q-learning: one extra
supervision step without gradient from the new (y, z) on the same inputs gives the next step's
(q_halt', q_continue'), and the target is sigmoid(q_halt') on the last allowed step, else
sigmoid(max(q_halt', q_continue')). That costs one more forward step per training step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from trm_edge.model import TRM
from trm_edge.train.losses import act_loss


@dataclass
class Carry:
    y: torch.Tensor            # [B, P+L, D]
    z: torch.Tensor
    steps: torch.Tensor        # [B] int32
    halted: torch.Tensor       # [B] bool
    data: dict                 # the rows' current inputs, labels, puzzle_identifiers

    @classmethod
    def start(cls, model: TRM, batch: dict) -> "Carry":
        B = batch["inputs"].shape[0]
        y, z = model.initial_state(B)
        dev = batch["inputs"].device
        return cls(y.clone(), z.clone(), torch.zeros(B, dtype=torch.int32, device=dev),
                   torch.ones(B, dtype=torch.bool, device=dev), {k: torch.empty_like(v) for k, v in batch.items()})

    def state_dict(self) -> dict:
        return {"y": self.y, "z": self.z, "steps": self.steps, "halted": self.halted,
                **{f"data.{k}": v for k, v in self.data.items()}}

    @classmethod
    def from_state_dict(cls, d: dict) -> "Carry":
        return cls(d["y"], d["z"], d["steps"], d["halted"],
                   {k[5:]: v for k, v in d.items() if k.startswith("data.")})


def act_step(model: TRM, carry: Carry, batch: dict, puzzle_rows_fn=None):
    """One training step's forward. Returns (new carry, loss, metrics, puzzle rows that need gradients).

    puzzle_rows_fn(ids) -> rows [B, ndim] lets the trainer hand in leaf tensors for the sign-SGD update.
    """
    c = model.config
    reset = carry.halted
    y0, z0 = model.initial_state(reset.shape[0])
    y = torch.where(reset.view(-1, 1, 1), y0, carry.y)
    z = torch.where(reset.view(-1, 1, 1), z0, carry.z)
    steps = torch.where(reset, 0, carry.steps)
    data = {k: torch.where(reset.view(-1, *[1] * (v.ndim - 1)), batch[k], v) for k, v in carry.data.items()}

    ids = data["puzzle_identifiers"]
    rows = None
    if c.puzzle_emb_ndim > 0:
        rows = puzzle_rows_fn(ids) if puzzle_rows_fn else model.puzzle_rows(ids)
    x = model.input_embedding(data["inputs"], rows)
    y, z, logits, q_halt, q_continue = model.supervision_step(x, y, z)

    q_learning = model.training and c.halt_max_steps > 1 and not c.no_ACT_continue
    target_q_continue = None
    with torch.no_grad():
        steps = steps + 1
        last = steps >= c.halt_max_steps
        if q_learning:   # the next step's Q values, bootstrapped (no gradient)
            _, _, _, next_halt, next_continue = model.supervision_step(x.detach(), y.detach(), z.detach())
            target_q_continue = torch.sigmoid(torch.where(last, next_halt, torch.maximum(next_halt, next_continue)))
    loss, metrics, per_row = act_loss(logits, data["labels"], q_halt,
                                      q_continue if q_learning else None, target_q_continue)
    with torch.no_grad():
        halted = last
        if model.training and c.halt_max_steps > 1:
            halted = halted | (q_halt > 0 if c.no_ACT_continue else q_halt > q_continue)
            explore = torch.rand_like(q_halt) < c.halt_exploration_prob
            min_steps = explore * torch.randint_like(steps, low=2, high=c.halt_max_steps + 1)
            halted = halted & (steps >= min_steps)
        done = halted & (per_row["counts"] > 0)
        metrics.update(count=done.sum(), exact_accuracy=(done & per_row["seq_correct"]).sum(),
                       accuracy=torch.where(done, per_row["correct"] / per_row["counts"].clamp_min(1), 0).sum(),
                       q_halt_accuracy=(done & ((q_halt >= 0) == per_row["seq_correct"])).sum(),
                       steps=torch.where(done, steps, 0).sum())
    new = Carry(y.detach(), z.detach(), steps, halted, data)
    return new, loss, metrics, rows
