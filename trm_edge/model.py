"""The Tiny Recursive Model (TRM), top-down like the paper.

"Less is More: Recursive Reasoning with Tiny Networks" (Jolicoeur-Martineau, 2025).

    x   input embedding of the puzzle (P puzzle-prefix positions + L tokens)
    y   answer state            (reference name z_H)
    z   latent reasoning state  (reference name z_L)
    net ONE tiny stack of L_layers blocks, shared by every update

One supervision step:

    repeat T times:                      # T = H_cycles; the first T-1 without gradient
        repeat n times: z = net(z, y + x)    # n = L_cycles
        y = net(y, z)
    logits = lm_head(y)[:, P:]
    q_halt, q_continue = q_head(y[:, 0])

A puzzle gets up to `halt_max_steps` (16) supervision steps; (y, z) carry over between them.
This module computes exactly what the official implementation computes (golden fixtures in
`../shared/fixtures/reference_trm/`); `trm_edge.step` re-spells one step for export.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trm_edge.errors import ConfigError


# -----------------------------------------------------------------------------
# Config: the reference's field names, so its YAML/JSON configs load as they are.

@dataclass
class TRMConfig:
    seq_len: int                      # L: tokens per puzzle (81 Sudoku, 900 Maze/ARC)
    vocab_size: int                   # V
    hidden_size: int = 512            # D
    num_heads: int = 8                # attention variant only
    expansion: float = 4.0            # SwiGLU width factor
    L_layers: int = 2                 # blocks in net
    H_cycles: int = 3                 # T in paper
    L_cycles: int = 6                 # n in paper
    halt_max_steps: int = 16          # N_sup in paper: supervision steps per puzzle
    halt_exploration_prob: float = 0.1
    puzzle_emb_ndim: int = 0          # width of one puzzle-embedding row (0: no puzzle embedding)
    puzzle_emb_len: int = 16          # P: prefix positions (0: ceil(puzzle_emb_ndim / D))
    num_puzzle_identifiers: int = 1   # rows in the puzzle table (id 0 = blank)
    pos_encodings: str = "rope"       # rope | learned | none
    mlp_t: bool = False               # token-mixing MLP instead of attention (Sudoku)
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    forward_dtype: str = "bfloat16"   # training autocast dtype; inference here runs float32
    no_ACT_continue: bool = True      # halting trained on q_halt alone

    # keys the reference's configs carry that do not change the network
    IGNORED = ("batch_size", "H_layers", "causal", "name", "loss")

    @classmethod
    def from_dict(cls, d: dict) -> "TRMConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"a model config is a mapping of keys to values, got {type(d).__name__}; "
                              f"pass e.g. {{'seq_len': 81, 'vocab_size': 11}}")
        bad_keys = [k for k in d if not isinstance(k, str)]
        if bad_keys:
            raise ConfigError(f"config keys must be strings, got {bad_keys[:3]!r}; name the fields as TRMConfig does")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in d if k not in known and k not in cls.IGNORED)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
        missing = sorted(k for k in ("seq_len", "vocab_size") if k not in d)
        if missing:
            raise ConfigError(f"config lacks {missing}; pass them, e.g. config={{'seq_len': 81, 'vocab_size': 11}}")
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def check_values(cls, d: dict) -> dict:
        """The known fields of `d` checked one by one (types and bounds) and normalised (2.0 -> 2), or a
        ConfigError naming the first bad one. Fields not given are not checked."""
        return {k: _check_field(k, v) for k, v in d.items() if k in _FIELD_RULES}

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self):
        for name in _FIELD_RULES:
            setattr(self, name, _check_field(name, getattr(self, name)))
        if self.puzzle_emb_ndim == 0:
            self.puzzle_emb_len = 0  # the reference only works this way without a puzzle embedding
        elif self.puzzle_emb_len == 0:
            self.puzzle_emb_len = -(self.puzzle_emb_ndim // -self.hidden_size)
        if self.puzzle_emb_ndim > self.puzzle_emb_len * self.hidden_size:
            raise ConfigError(f"puzzle_emb_ndim {self.puzzle_emb_ndim} does not fit puzzle_emb_len "
                              f"{self.puzzle_emb_len} x hidden_size {self.hidden_size}; raise puzzle_emb_len")
        if not self.mlp_t and self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if not self.mlp_t and self.pos_encodings == "rope" and self.head_dim % 2:
            raise ConfigError(f"rope needs an even head size, got hidden_size {self.hidden_size} / num_heads "
                              f"{self.num_heads} = {self.head_dim}; change num_heads or use pos_encodings learned")
        if swiglu_width(self.hidden_size, self.expansion) < 1:
            raise ConfigError(f"expansion {self.expansion:g} leaves the SwiGLU of hidden_size {self.hidden_size} "
                              f"no width; raise expansion (the reference uses 4)")
        n = estimated_parameters(self)
        if n > MAX_PARAMETERS:
            raise ConfigError(f"this config makes a network of about {n:,} parameters ({n * 4 / 2**30:.0f} GiB "
                              f"in float32), over the {MAX_PARAMETERS:,} this package builds; check seq_len, "
                              f"hidden_size, num_puzzle_identifiers and puzzle_emb_ndim")

    @property
    def P(self) -> int:  # puzzle-prefix positions
        return self.puzzle_emb_len

    @property
    def positions(self) -> int:  # P + L: the length of x, y and z
        return self.puzzle_emb_len + self.seq_len

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


# what every field may hold: (kind, lowest, highest); sizes are bounded so that a config cannot ask
# for absurd storage (a seq_len of 1e9, say) before a single tensor is made
MAX_PARAMETERS = 2 ** 31          # 8 GiB of float32 weights
_FIELD_RULES = {
    "seq_len": ("int", 1, 65536),
    "vocab_size": ("int", 1, 1 << 20),
    "hidden_size": ("int", 1, 16384),
    "num_heads": ("int", 1, 1024),
    "expansion": ("float", 1 / 64, 64.0),
    "L_layers": ("int", 1, 256),
    "H_cycles": ("int", 1, 256),
    "L_cycles": ("int", 1, 256),
    "halt_max_steps": ("int", 1, 1024),
    "halt_exploration_prob": ("float", 0.0, 1.0),
    "puzzle_emb_ndim": ("int", 0, 1 << 20),
    "puzzle_emb_len": ("int", 0, 4096),
    "num_puzzle_identifiers": ("int", 1, 1 << 30),
    "pos_encodings": ("choice", ("rope", "learned", "none"), None),
    "mlp_t": ("bool", None, None),
    "rms_norm_eps": ("float", 1e-30, 1.0),
    "rope_theta": ("float", 1e-6, 1e12),
    "forward_dtype": ("choice", ("bfloat16", "float16", "float32"), None),
    "no_ACT_continue": ("bool", None, None),
}


def _show(v) -> str:
    """A value for a one-line message: its repr, cut short."""
    r = repr(v).replace("\n", " ")
    return r if len(r) <= 40 else r[:37] + "..."


def _check_field(name: str, v):
    kind, lo, hi = _FIELD_RULES[name]
    if kind == "choice":
        if not isinstance(v, str) or v not in lo:
            raise ConfigError(f"{name} {_show(v)} is not one of {', '.join(lo)}; fix it in the config")
        return v
    if kind == "bool":
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise ConfigError(f"{name} must be true or false, got {_show(v)}; fix it in the config")
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        fix = "write it without quotes" if isinstance(v, str) else "give a number"
        raise ConfigError(f"{name} must be a number, got {_show(v)} ({type(v).__name__}); {fix} in the config")
    if isinstance(v, (int, np.integer)):
        v = int(v)
    elif not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {_show(v)}; fix it in the config")
    elif kind == "int" and not float(v).is_integer():
        raise ConfigError(f"{name} must be a whole number, got {_show(v)}; fix it in the config")
    if not lo <= v <= hi:
        raise ConfigError(f"{name} {_show(v)} is outside {lo:g}..{hi:g}; fix it in the config")
    return int(v) if kind == "int" else float(v)


def estimated_parameters(c: "TRMConfig") -> int:
    """About how many weights TRM(c) holds (exact for the tensors that dominate), computed before building."""
    D, N = c.hidden_size, c.puzzle_emb_len + c.seq_len
    inner = swiglu_width(D, c.expansion)
    block = 3 * D * inner + (3 * N * swiglu_width(N, c.expansion) if c.mlp_t else 4 * D * D)
    n = c.L_layers * block + 2 * c.vocab_size * D + 2 * N * D
    if c.puzzle_emb_ndim:
        n += c.num_puzzle_identifiers * c.puzzle_emb_ndim
    return n


def swiglu_width(d: int, expansion: float) -> int:
    """SwiGLU intermediate size: round(expansion * d * 2/3) rounded up to a multiple of 256."""
    return -(round(expansion * d * 2 / 3) // -256) * 256


# -----------------------------------------------------------------------------
# Building blocks (post-norm, no biases, RMSNorm without a learnable scale)

def rms_norm(h: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = h.dtype
    h = h.to(torch.float32)
    h = h * torch.rsqrt(h.square().mean(-1, keepdim=True) + eps)
    return h.to(dtype)


def rope_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [length, head_dim] (halves repeated: rotate_half layout), float32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, N, heads, head_dim]; computed in float32."""
    dtype = x.dtype
    x = x.to(cos.dtype)
    return (x * cos.unsqueeze(-2) + rotate_half(x) * sin.unsqueeze(-2)).to(dtype)


def trunc_normal_(t: torch.Tensor, std: float) -> torch.Tensor:
    """Normal truncated at +-2 sigma, widened so that its std really is `std` (JAX/Flax, the reference)."""
    if std == 0:
        return t.zero_()
    # variance of a standard normal truncated to [-2, 2]: 1 - 4 phi(2) / (Phi(2) - Phi(-2))
    var = 1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(math.sqrt(2))
    s = std / math.sqrt(var)
    return nn.init.trunc_normal_(t, std=s, a=-2 * s, b=2 * s)


class SwiGLU(nn.Module):
    def __init__(self, d: int, expansion: float):
        super().__init__()
        inter = swiglu_width(d, expansion)
        self.gate_up = nn.Linear(d, 2 * inter, bias=False)  # [gate; up] fused
        self.down = nn.Linear(inter, d, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str = "sdpa") -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim)) v over [B, heads, N, head_dim]. kernel "sdpa": torch's fused kernel;
    "math": the two matmuls spelled out, softmax in fp32 (same numbers; in bf16 on CPUs with AMX the matmuls
    take the AMX path and a Maze training step runs ~30% faster than the fused kernel, see TrainConfig)."""
    if kernel == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, is_causal=False)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    return torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v


class Attention(nn.Module):
    """Non-causal multi-head self-attention with RoPE, no mask, fused qkv."""
    kernel = "sdpa"      # or "math" (attend); training sets it from its config, checkpoints do not carry it

    def __init__(self, d: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, d // num_heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, N, D = h.shape
        qkv = self.qkv(h).view(B, N, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.split(self.num_heads, dim=2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))         # [B, heads, N, head_dim]
        a = attend(q, k, v, self.kernel)
        return self.out(a.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """h = rms(h + mix(h)); h = rms(h + SwiGLU(h)). mix: attention, or (MLP-t) a SwiGLU over positions."""

    def __init__(self, c: TRMConfig):
        super().__init__()
        self.eps, self.mlp_t = c.rms_norm_eps, c.mlp_t
        if c.mlp_t:
            self.token_mlp = SwiGLU(c.positions, c.expansion)
        else:
            self.attn = Attention(c.hidden_size, c.num_heads)
        self.mlp = SwiGLU(c.hidden_size, c.expansion)

    def forward(self, h: torch.Tensor, rope) -> torch.Tensor:
        if self.mlp_t:
            h = h.transpose(1, 2)                                 # [B, D, P+L]: mix positions
            h = rms_norm(h + self.token_mlp(h), self.eps)         # (normalised over positions, as the reference)
            h = h.transpose(1, 2)
        else:
            h = rms_norm(h + self.attn(h, rope), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)


class Net(nn.Module):
    """The one tiny network: net(h, injection) = blocks(h + injection)."""

    def __init__(self, c: TRMConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.L_layers))

    def forward(self, h: torch.Tensor, injection: torch.Tensor, rope=None) -> torch.Tensor:
        h = h + injection
        for block in self.blocks:
            h = block(h, rope)
        return h


# -----------------------------------------------------------------------------
# The model

class TRM(nn.Module):
    def __init__(self, config: TRMConfig):
        super().__init__()
        c = self.config = config
        D = c.hidden_size
        self.token_emb = nn.Embedding(c.vocab_size, D)
        if c.puzzle_emb_ndim > 0:   # a buffer, as in the reference: trained by sign-SGD, not by the optimizer
            self.register_buffer("puzzle_emb", torch.zeros(c.num_puzzle_identifiers, c.puzzle_emb_ndim))
        if c.pos_encodings == "learned":
            self.pos_emb = nn.Embedding(c.positions, D)
        self.net = Net(c)
        self.lm_head = nn.Linear(D, c.vocab_size, bias=False)
        self.q_head = nn.Linear(D, 2, bias=True)            # (q_halt, q_continue)
        self.register_buffer("y_init", torch.zeros(D))      # initial answer  (reference H_init)
        self.register_buffer("z_init", torch.zeros(D))      # initial latent  (reference L_init)
        if c.pos_encodings == "rope":
            cos, sin = rope_tables(c.head_dim, c.positions, c.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """The reference init: truncated LeCun normal weights, q_head ~ 0 with bias -5 (halt rarely at first)."""
        D = self.config.hidden_size
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=m.in_features ** -0.5)
        trunc_normal_(self.token_emb.weight, std=D ** -0.5)
        if hasattr(self, "pos_emb"):
            trunc_normal_(self.pos_emb.weight, std=D ** -0.5)
        self.q_head.weight.zero_()
        self.q_head.bias.fill_(-5.0)
        trunc_normal_(self.y_init, std=1.0)
        trunc_normal_(self.z_init, std=1.0)

    @property
    def rope(self):
        return (self.rope_cos, self.rope_sin) if hasattr(self, "rope_cos") else None

    # x -------------------------------------------------------------------------
    def input_embedding(self, tokens: torch.Tensor, puzzle_rows: torch.Tensor | None) -> torch.Tensor:
        """x = sqrt(D) * [puzzle prefix (P positions); token embeddings (L)]  ->  [B, P+L, D]."""
        c = self.config
        e = self.token_emb(tokens.long())
        if c.puzzle_emb_ndim > 0:
            prefix = F.pad(puzzle_rows.to(e.dtype), (0, c.P * c.hidden_size - c.puzzle_emb_ndim))
            e = torch.cat((prefix.view(-1, c.P, c.hidden_size), e), dim=-2)
        if c.pos_encodings == "learned":
            e = 0.707106781 * (e + self.pos_emb.weight)     # keep the forward variance
        return math.sqrt(c.hidden_size) * e

    def puzzle_rows(self, puzzle_identifiers: torch.Tensor) -> torch.Tensor | None:
        """One table row per puzzle: what the exported step takes instead of the whole table."""
        return self.puzzle_emb[puzzle_identifiers.long()] if self.config.puzzle_emb_ndim > 0 else None

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (batch, self.config.positions, self.config.hidden_size)
        return self.y_init.float().expand(shape), self.z_init.float().expand(shape)

    # one supervision step ------------------------------------------------------
    def latent_recursion(self, x, y, z):
        for _ in range(self.config.L_cycles):            # n in paper
            z = self.net(z, y + x, self.rope)            # think: update the latent from (x, y, z)
        y = self.net(y, z, self.rope)                    # act: update the answer from (y, z)
        return y, z

    def supervision_step(self, x, y, z):
        """T recursions (the first T-1 without gradient); returns y, z, logits, q_halt, q_continue."""
        with torch.no_grad():
            for _ in range(self.config.H_cycles - 1):    # T - 1 in paper
                y, z = self.latent_recursion(x, y, z)
        y, z = self.latent_recursion(x, y, z)
        logits = self.lm_head(y)[:, self.config.P:]
        q = self.q_head(y[:, 0]).to(torch.float32)       # reads the first (puzzle-prefix) position
        return y, z, logits, q[..., 0], q[..., 1]

    # many steps ----------------------------------------------------------------
    @torch.inference_mode()
    def rollout(self, inputs, puzzle_identifiers=None, steps: int | None = None) -> dict:
        """Run `steps` supervision steps (default halt_max_steps) from the initial state, no halting.

        Returns per step: logits [S,B,L,V], q_halt and q_continue [S,B], y and z [S,B,P+L,D];
        numpy arrays when `inputs` is numpy, tensors otherwise.
        """
        as_numpy = isinstance(inputs, np.ndarray)
        tokens = torch.as_tensor(inputs)
        B = tokens.shape[0]
        ids = torch.zeros(B, dtype=torch.long) if puzzle_identifiers is None else torch.as_tensor(puzzle_identifiers)
        x = self.input_embedding(tokens, self.puzzle_rows(ids))
        y, z = self.initial_state(B)
        out = {k: [] for k in ("logits", "q_halt", "q_continue", "y", "z")}
        for _ in range(steps or self.config.halt_max_steps):
            y, z, logits, q_halt, q_continue = self.supervision_step(x, y, z)
            for k, v in zip(out, (logits, q_halt, q_continue, y, z)):
                out[k].append(v)
        out = {k: torch.stack(v) for k, v in out.items()}
        return {k: v.numpy() for k, v in out.items()} if as_numpy else out


# -----------------------------------------------------------------------------
# Size and cost

def count_parameters(model: TRM) -> int:
    """parameters() as the reference counts them: the puzzle table is a buffer and not included."""
    return sum(p.numel() for p in model.parameters())


def flops_per_step(c: TRMConfig, batch: int = 1) -> int:
    """Multiply-adds x 2 of one supervision step (matmuls only; norms and activations are noise)."""
    N, D = c.positions, c.hidden_size
    I = swiglu_width(D, c.expansion)
    mlp = 2 * N * (D * 2 * I + I * D)
    if c.mlp_t:
        It = swiglu_width(N, c.expansion)
        mix = 2 * D * (N * 2 * It + It * N)
    else:
        mix = 2 * N * (D * 3 * D + D * D) + 2 * 2 * N * N * D   # projections + scores + weighted sum
    net = c.L_layers * (mix + mlp)
    heads = 2 * c.seq_len * D * c.vocab_size + 2 * D * 2
    return batch * (c.H_cycles * (c.L_cycles + 1) * net + heads)
