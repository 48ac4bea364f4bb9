"""The model's shape and config: the published sizes, the reference's init, clear config errors."""
from __future__ import annotations

import pytest
import torch

from trm_edge.errors import ConfigError
from trm_edge.model import TRM, TRMConfig, attend, count_parameters, flops_per_step, swiglu_width, trunc_normal_

# parameters() of the reference class for the published runs (../shared/docs/trm-reference.md)
PUBLISHED = {
    "sudoku-extreme": (dict(seq_len=81, vocab_size=11, mlp_t=True, pos_encodings="none", L_cycles=6), 5_028_866),
    "maze-hard": (dict(seq_len=900, vocab_size=6, L_cycles=4), 6_822_914),
    "arc-agi": (dict(seq_len=900, vocab_size=12, L_cycles=4, num_puzzle_identifiers=10), 6_829_058),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_parameter_counts(name):
    overrides, expected = PUBLISHED[name]
    cfg = TRMConfig(hidden_size=512, num_heads=8, H_cycles=3, puzzle_emb_ndim=512, **overrides)
    assert count_parameters(TRM(cfg)) == expected


def test_swiglu_width():
    assert swiglu_width(512, 4) == 1536 and swiglu_width(97, 4) == 512 and swiglu_width(64, 4) == 256


def test_reference_init():
    torch.manual_seed(0)
    m = TRM(TRMConfig(seq_len=16, vocab_size=8, hidden_size=256, num_heads=4, puzzle_emb_ndim=256))
    assert torch.all(m.q_head.weight == 0) and torch.all(m.q_head.bias == -5)
    assert torch.all(m.puzzle_emb == 0)
    w = m.net.blocks[0].mlp.gate_up.weight
    assert abs(w.std().item() / 256 ** -0.5 - 1) < 0.02          # LeCun: std 1/sqrt(fan_in)
    assert w.abs().max() <= 2.28 * 256 ** -0.5                   # truncated at 2 sigma of the widened normal
    assert abs(trunc_normal_(torch.empty(200_000), 1.0).std().item() - 1.0) < 0.01


def test_config_errors():
    with pytest.raises(ConfigError, match=r"unknown config keys \['hiden_size'\]"):
        TRMConfig.from_dict({"seq_len": 4, "vocab_size": 4, "hiden_size": 3})
    with pytest.raises(ConfigError, match="seq_len"):
        TRMConfig.from_dict({"vocab_size": 4})
    with pytest.raises(ConfigError, match="num_heads"):
        TRMConfig(seq_len=4, vocab_size=4, hidden_size=30, num_heads=8)
    with pytest.raises(ConfigError, match="puzzle_emb_len"):
        TRMConfig(seq_len=4, vocab_size=4, hidden_size=8, num_heads=2, puzzle_emb_ndim=64, puzzle_emb_len=2)
    # the reference's extra keys are accepted and ignored
    cfg = TRMConfig.from_dict({"seq_len": 4, "vocab_size": 4, "batch_size": 8, "H_layers": 0, "causal": False})
    assert cfg.P == 0 and cfg.positions == 4      # no puzzle embedding: no prefix
    assert TRMConfig(seq_len=4, vocab_size=4, puzzle_emb_ndim=600, puzzle_emb_len=0).P == 2   # ceil(600/512)


def test_flops_scale_with_recursion():
    c = TRMConfig(seq_len=81, vocab_size=11, mlp_t=True, pos_encodings="none", puzzle_emb_ndim=512)
    deeper = TRMConfig(**{**c.to_dict(), "L_cycles": 2 * c.L_cycles + 1})
    assert flops_per_step(c, batch=4) == 4 * flops_per_step(c)
    assert flops_per_step(deeper) > 1.9 * flops_per_step(c)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_attention_kernels_agree(dtype, tol):
    """Training's `attention: math` (explicit matmuls, fp32 softmax) computes what torch's fused SDPA does,
    forward and backward, so a run may switch kernels when it resumes."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 37, 16, dtype=dtype, requires_grad=True) for _ in range(3))
    grads = []
    for kernel in ("sdpa", "math"):
        out = attend(q, k, v, kernel)
        g = torch.autograd.grad((out.float() * torch.linspace(-1, 1, 16)).sum(), (q, k, v))
        grads.append((out.float(), *(t.float() for t in g)))
    for a, b in zip(*grads):
        assert (a - b).abs().max().item() < tol * max(1.0, a.abs().max().item())
