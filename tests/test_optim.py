"""Optimizer pieces: the lr schedule, sign-SGD on puzzle rows, the EMA (with and without warm-up)."""
from __future__ import annotations

import torch

from trm_edge.train.optim import EMA, lr_at, sign_sgd_rows


def test_lr_schedule():
    assert lr_at(0, 1e-3, 10, 100) == 0.0
    assert lr_at(5, 1e-3, 10, 100) == 5e-4
    assert lr_at(50, 1e-3, 10, 100) == 1e-3                        # min_ratio 1: constant after warm-up
    assert lr_at(100, 1e-3, 10, 100, min_ratio=0.1) == 1e-4         # cosine down to min_ratio


def test_sign_sgd_rows_sums_repeated_ids_and_decays():
    table = torch.ones(4, 2)
    ids = torch.tensor([1, 1, 3])
    grad = torch.tensor([[1.0, -2.0], [1.0, 1.0], [-3.0, 0.0]])
    sign_sgd_rows(table, ids, grad, lr=0.1, weight_decay=0.5)
    # row 1: grad sum (2, -1) -> 1*(1-0.05) - 0.1*sign; row 3: (-3, 0); rows 0, 2 untouched
    assert torch.allclose(table, torch.tensor([[1, 1], [0.85, 1.05], [1, 1], [1.05, 0.95]]))


def test_ema_with_and_without_warmup():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    plain, warm = EMA(lin, 0.999), EMA(lin, 0.999, warmup=True)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    plain.update(lin, step=1)
    warm.update(lin, step=1)
    assert abs(plain.shadow["weight"].item() - 0.001) < 1e-6
    assert abs(warm.shadow["weight"].item() - (1 - 2 / 11)) < 1e-6   # rate (1+t)/(10+t) at t=1
    sd = warm.state_dict_for(lin)
    assert sd["weight"].item() == warm.shadow["weight"].item()
