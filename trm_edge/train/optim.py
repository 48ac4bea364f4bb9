"""Optimizers and schedule as the reference: AdamATan2 for the network, sign-SGD with decoupled weight
decay for the puzzle-embedding rows in the batch, linear warm-up then cosine to lr_min_ratio (1.0 in
the published runs: constant), and an EMA of the weights used for evaluation and export."""
from __future__ import annotations

import math

import torch
import torch.distributed as dist


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float = 1.0) -> float:
    if step < warmup:
        return base_lr * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))))


def adam_atan2(params, lr: float, betas, weight_decay: float):
    """AdamATan2 (update = atan2(m, sqrt(v)), no epsilon) in pure PyTorch, no CUDA extension."""
    from adam_atan2_pytorch import AdamAtan2
    return AdamAtan2(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


@torch.no_grad()
def sign_sgd_rows(table: torch.Tensor, ids: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float):
    """Sign-SGD on the table rows seen in this step (gradients of repeated ids summed, across ranks too)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        world = dist.get_world_size()
        all_grad = torch.empty((world * grad.shape[0], grad.shape[1]), dtype=grad.dtype, device=grad.device)
        all_ids = torch.empty(world * ids.shape[0], dtype=ids.dtype, device=ids.device)
        dist.all_gather_into_tensor(all_grad, grad.contiguous())
        dist.all_gather_into_tensor(all_ids, ids.contiguous())
        grad, ids = all_grad, all_ids
    uniq, inv = ids.unique(return_inverse=True)
    summed = torch.zeros((len(uniq), grad.shape[1]), dtype=grad.dtype, device=grad.device)
    summed.index_add_(0, inv, grad)
    rows = table[uniq]
    rows.mul_(1.0 - lr * weight_decay).add_(torch.sign(summed), alpha=-lr)
    table[uniq] = rows.to(table.dtype)


class EMA:
    """shadow = rate * shadow + (1 - rate) * weights, over parameters (the puzzle table is trained by sign-SGD
    and copied as it is, as in the reference).

    warmup: rate_t = min(rate, (1 + t) / (10 + t)), so that a short run's average is not dominated by the
    random initial weights (with 0.999 plain, 0.999^2000 = 14% of the average is still the init).
    The reference has no warm-up: its runs are long enough for it not to matter."""

    def __init__(self, model: torch.nn.Module, rate: float = 0.999, warmup: bool = False):
        self.rate, self.warmup = rate, warmup
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model, step: int | None = None):
        rate = self.rate
        if self.warmup and step is not None:
            rate = min(rate, (1 + step) / (10 + step))
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach(), 1.0 - rate)

    def state_dict_for(self, model) -> dict:
        """The model's state dict with EMA weights in place of the parameters."""
        sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        sd.update({k: v.clone() for k, v in self.shadow.items()})
        return sd
