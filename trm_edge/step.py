"""The exportable step: one supervision step of a TRM as a pure function.

    (tokens [B,L] int, puzzle_emb [B,puzzle_emb_ndim] float, y [B,P+L,D], z [B,P+L,D])
        -> (y_next, z_next, logits [B,L,V], q_halt [B])

The T and n loops unroll at trace time; there is no data-dependent control flow, no complex
number, RoPE tables are precomputed at full length, and the puzzle embedding enters as ONE row
per puzzle (ARC tables reach ~1M rows, a bundle never ships them). Models without a puzzle
embedding take (tokens, y, z).

Compilers delegate some spellings of the same math better than others (see
../shared/docs/toolchain-notes.md), so a Step is written in a `Spelling`: every spelling
computes the model's function with the model's weights; tests check each against the model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trm_edge.model import TRM, SwiGLU, TRMConfig, rope_tables, rotate_half


@dataclass(frozen=True)
class Spelling:
    """How a step is written for a compiler. Same math, same weights."""
    attention: str = "sdpa"          # sdpa | bmm: explicit bmm + softmax on [B*heads, N, head_dim]
                                     # | heads: one [B, N, head_dim] chain per head, no 4-D tensor
    split_projections: bool = False  # separate q/k/v and gate/up linears instead of fused ones
    rms: str = "mean"                # mean | matmul: mean of squares as a matmul with a constant 1/D vector
    rope: str = "heads"              # heads: on [B,N,heads,hd] | flat: on [B,N,D], rotation as a matmul

    def __post_init__(self):
        if self.attention == "heads" and self.rope != "flat":
            raise ValueError("attention='heads' applies RoPE per head as a matmul: it needs rope='flat'")


SPELLINGS = {
    "reference": Spelling(),
    # XNNPACK delegates linears, bmm and elementwise ops on <= 3-D tensors; not SDPA's decomposition,
    # 3-D mean, chunk/unbind, 4-D matmul, nor a reshape/permute that moves the dynamic batch: this
    # keeps the graph in ~2 partitions.
    "xnnpack": Spelling(attention="heads", split_projections=True, rms="matmul", rope="flat"),
    # LiteRT fixes the batch at conversion, so folding it with the heads into one bmm moves nothing dynamic;
    # per head, its dynamic int8 step at the published Maze size's 916 positions ran ~1.5-2x slower.
    "litert": Spelling(attention="bmm", split_projections=True, rms="matmul", rope="flat"),
    # Core ML's fuse_linear_bias pass crashes on RMSNorm written as a linear layer.
    "coreml": Spelling(attention="bmm", split_projections=True, rms="mean", rope="flat"),
}


def _rms(h: torch.Tensor, eps: float, mean_vec: torch.Tensor | None) -> torch.Tensor:
    if mean_vec is None:
        ms = h.square().mean(-1, keepdim=True)
    else:   # a linear layer, not a 3-D matmul: torch.matmul decomposes to view/expand ops on the dynamic
        ms = F.linear(h * h, mean_vec)              # batch that XNNPACK cannot delegate. [.., n] x [1, n] = mean
    return h * torch.rsqrt(ms + eps)


def _rope_flat(t: torch.Tensor, rope) -> torch.Tensor:
    """RoPE on the last dim with tables [N, width] and rotation R as a linear layer (rot holds R^T)."""
    cos, sin, rot = rope
    return t * cos + F.linear(t, rot) * sin


def _bmm_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, head_dim: int) -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim)) v on 3-D [rows, N, head_dim] tensors. head_dim is the module's int, not
    q.shape[-1]: a traced shape makes the scale a graph value, and Core ML's W8A8 quantizer then observes a float."""
    p = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(head_dim)), dim=-1)
    return torch.bmm(p, v)


def _linear(weight: torch.Tensor) -> nn.Linear:
    """A frozen bias-free linear layer holding a copy of `weight` [out, in]."""
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    lin.weight = nn.Parameter(weight.clone(), requires_grad=False)
    return lin


class _SwiGLU(nn.Module):
    def __init__(self, src: SwiGLU, split: bool):
        super().__init__()
        self.split = split
        w = src.gate_up.weight.detach()
        if split:
            self.gate, self.up = map(_linear, w.chunk(2, dim=0))
        else:
            self.gate_up = src.gate_up
        self.down = src.down

    def forward(self, h):
        if self.split:
            return self.down(F.silu(self.gate(h)) * self.up(h))
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class _Attention(nn.Module):
    def __init__(self, src, c: TRMConfig, s: Spelling):
        super().__init__()
        self.s, self.heads, self.hd = s, c.num_heads, c.head_dim
        w = src.qkv.weight.detach()
        if s.attention == "heads":   # per head i: q_i = h @ Wq[i]^T, ...; out = sum_i a_i @ Wout[:, i]^T
            hd, (wq, wk, wv), wo = self.hd, w.chunk(3, dim=0), src.out.weight.detach()
            rows = [slice(i * hd, (i + 1) * hd) for i in range(self.heads)]
            self.q, self.k, self.v = (nn.ModuleList(_linear(m[r]) for r in rows) for m in (wq, wk, wv))
            self.out = nn.ModuleList(_linear(wo[:, r]) for r in rows)
            return
        if s.split_projections:
            self.q, self.k, self.v = map(_linear, w.chunk(3, dim=0))
        else:
            self.qkv = src.qkv
        self.out = src.out

    def forward(self, h, rope):
        if self.s.attention == "heads":
            return self._per_head(h, rope)
        # no shape is read from a tensor (B and N stay symbolic): Core ML's converter casts traced sizes of
        # its W8A8 graph with int(), which NumPy 2 refuses for its length-1 arrays
        if self.s.split_projections:
            q, k, v = self.q(h), self.k(h), self.v(h)
        else:
            q, k, v = self.qkv(h).chunk(3, dim=-1)
        if rope is not None and self.s.rope == "flat":       # tables [N, D], rotation [D, D]
            q, k = _rope_flat(q, rope), _rope_flat(k, rope)
        q, k, v = (t.unflatten(-1, (self.heads, self.hd)) for t in (q, k, v))     # [B, N, heads, hd]
        if rope is not None and self.s.rope == "heads":      # tables [N, head_dim]
            cos, sin = rope
            q = q * cos.unsqueeze(-2) + rotate_half(q) * sin.unsqueeze(-2)
            k = k * cos.unsqueeze(-2) + rotate_half(k) * sin.unsqueeze(-2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))      # [B, heads, N, hd]
        if self.s.attention == "sdpa":
            a = F.scaled_dot_product_attention(q, k, v)
        else:                                                 # [B * heads, N, hd]
            a = _bmm_attention(*(t.flatten(0, 1) for t in (q, k, v)), self.hd).unflatten(0, (-1, self.heads))
        return self.out(a.transpose(1, 2).flatten(2))         # [B, N, D]

    def _per_head(self, h, rope):
        """Attention as `heads` chains on [B, N, head_dim]: the batch is never reshaped or permuted."""
        out = None
        for q_h, k_h, v_h, out_h in zip(self.q, self.k, self.v, self.out):
            q, k, v = q_h(h), k_h(h), v_h(h)
            if rope is not None:                                 # tables [N, head_dim], rotation [hd, hd]
                q, k = _rope_flat(q, rope), _rope_flat(k, rope)
            o = out_h(_bmm_attention(q, k, v, self.hd))
            out = o if out is None else out + o
        return out


class _Block(nn.Module):
    def __init__(self, src, c: TRMConfig, s: Spelling):
        super().__init__()
        self.eps, self.mlp_t = c.rms_norm_eps, c.mlp_t
        if c.mlp_t:
            self.token_mlp = _SwiGLU(src.token_mlp, s.split_projections)
        else:
            self.attn = _Attention(src.attn, c, s)
        self.mlp = _SwiGLU(src.mlp, s.split_projections)

    def forward(self, h, rope, mean_d, mean_n):
        if self.mlp_t:
            h = h.transpose(1, 2)
            h = _rms(h + self.token_mlp(h), self.eps, mean_n).transpose(1, 2)
        else:
            h = _rms(h + self.attn(h, rope), self.eps, mean_d)
        return _rms(h + self.mlp(h), self.eps, mean_d)


class Step(nn.Module):
    """One supervision step of `model`, written in `spelling`, as a pure function (see module doc)."""

    input_names = ("tokens", "puzzle_emb", "y", "z")
    output_names = ("y_next", "z_next", "logits", "q_halt")
    half_inside = False     # a plain attribute (torch.fx traces through it): set by half_step()

    def __init__(self, model: TRM, spelling: str | Spelling = "reference"):
        super().__init__()
        c = self.config = model.config
        s = self.spelling = SPELLINGS[spelling] if isinstance(spelling, str) else spelling
        D, N = c.hidden_size, c.positions
        self.token_emb = model.token_emb
        if hasattr(model, "pos_emb"):
            self.pos_emb = model.pos_emb
        self.blocks = nn.ModuleList(_Block(b, c, s) for b in model.net.blocks)
        self.lm_head, self.q_head = model.lm_head, model.q_head
        if c.pos_encodings == "rope" and not c.mlp_t:
            cos, sin = rope_tables(c.head_dim, N, c.rope_theta)
            if s.rope == "flat":    # on [B, N, D], or per head on [B, N, head_dim]
                heads = 1 if s.attention == "heads" else c.num_heads
                cos, sin = cos.repeat(1, heads), sin.repeat(1, heads)                # [N, heads * hd]
                self.register_buffer("rope_rot", _rotation_matrix(heads, c.head_dim).T.contiguous(), persistent=False)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        if s.rms == "matmul":
            self.register_buffer("mean_d", torch.full((1, D), 1.0 / D), persistent=False)
            self.register_buffer("mean_n", torch.full((1, N), 1.0 / N), persistent=False)
        # the initial state, for the host loop (not part of the graph)
        self.y_init = model.y_init.detach().float().numpy().copy()
        self.z_init = model.z_init.detach().float().numpy().copy()
        self.requires_grad_(False)
        self.eval()

    @property
    def rope(self):
        if not hasattr(self, "rope_cos"):
            return None
        if self.spelling.rope == "flat":
            return self.rope_cos, self.rope_sin, self.rope_rot
        return self.rope_cos, self.rope_sin

    def net(self, h, injection):
        h = h + injection
        for block in self.blocks:
            h = block(h, self.rope, getattr(self, "mean_d", None), getattr(self, "mean_n", None))
        return h

    def forward(self, tokens, puzzle_emb, y, z):
        c = self.config
        if self.half_inside:    # half_step(): float32 at the boundary, float16 inside
            y, z = y.half(), z.half()
            puzzle_emb = None if puzzle_emb is None else puzzle_emb.half()
        # x: [puzzle prefix; token embeddings] * sqrt(D)
        e = self.token_emb(tokens)
        if c.puzzle_emb_ndim > 0:
            prefix = F.pad(puzzle_emb, (0, c.P * c.hidden_size - c.puzzle_emb_ndim))
            e = torch.cat((prefix.reshape(-1, c.P, c.hidden_size), e), dim=1)
        if c.pos_encodings == "learned":
            e = 0.707106781 * (e + self.pos_emb.weight)
        x = math.sqrt(c.hidden_size) * e
        for _ in range(c.H_cycles):           # T, unrolled
            for _ in range(c.L_cycles):       # n, unrolled
                z = self.net(z, y + x)
            y = self.net(y, z)
        logits = self.lm_head(y[:, c.P:])
        q_halt = self.q_head(y[:, 0])[:, 0]
        if self.half_inside:
            return y.float(), z.float(), logits.float(), q_halt.float()
        return y, z, logits, q_halt


class PuzzleFreeStep(Step):
    """A step for models without a puzzle embedding: (tokens, y, z) -> the same outputs."""

    input_names = ("tokens", "y", "z")

    def forward(self, tokens, y, z):
        return super().forward(tokens, None, y, z)


def make_step(model: TRM, spelling: str | Spelling = "reference") -> Step:
    return (Step if model.config.puzzle_emb_ndim > 0 else PuzzleFreeStep)(model, spelling)


def half_step(step: Step) -> Step:
    """A float16 copy of `step` (the model's own weights untouched): the same float32 inputs and outputs,
    computed in half precision inside (fp16 bundles of targets whose runtime has half kernels)."""
    import copy
    half = copy.deepcopy(step).half()
    half.half_inside = True
    return half


def _rotation_matrix(heads: int, head_dim: int) -> torch.Tensor:
    """R [D, D] with x @ R = rotate_half(x) within each head (entries 0, +1, -1: exact)."""
    half = head_dim // 2
    r = torch.zeros(head_dim, head_dim)
    r[half:, :half] = -torch.eye(half)    # out[:half] = -x[half:]
    r[:half, half:] = torch.eye(half)     # out[half:] =  x[:half]
    return torch.block_diag(*[r] * heads)


def example_inputs(step: Step, batch: int = 2, token_dtype=torch.int64) -> tuple:
    """Inputs of the right shapes and dtypes, for tracing and export."""
    c = step.config
    tokens = torch.zeros(batch, c.seq_len, dtype=token_dtype)
    y = torch.from_numpy(np.broadcast_to(step.y_init, (batch, c.positions, c.hidden_size)).copy())
    z = torch.from_numpy(np.broadcast_to(step.z_init, (batch, c.positions, c.hidden_size)).copy())
    if c.puzzle_emb_ndim > 0:
        return tokens, torch.zeros(batch, c.puzzle_emb_ndim), y, z
    return tokens, y, z


def dynamic_batch(step: Step, max_batch: int) -> dict:
    """torch.export's dynamic_shapes for a batch dimension of 1..max_batch on every input."""
    B = torch.export.Dim("batch", min=1, max=max_batch)
    return {name: {0: B} for name in step.input_names}


def export_step(step: Step, batch: int | None = None, token_dtype=torch.int64, max_batch: int = 1024):
    """torch.export the step; batch=None makes the batch dimension dynamic, 1..max_batch (traced at
    batch 2: batch 1 would specialise the dimension)."""
    args = example_inputs(step, batch or 2, token_dtype)
    return torch.export.export(step, args, dynamic_shapes=None if batch else dynamic_batch(step, max_batch))
