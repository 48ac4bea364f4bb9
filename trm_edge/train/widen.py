"""Start a wider model where a narrower one stopped (Net2Net's function-preserving widening).

Issue 16 asks whether more width buys hard Sudoku; training hidden 256 from scratch on a 2-core CPU
would throw away every hour the hidden-128 model already trained. Instead every channel of the
narrow model is written twice, so the wide model computes exactly what the narrow one did:

    h (D channels)  ->  h' = [h, h] (2D)
    RMSNorm over channels:  mean([h, h]^2) = mean(h^2)           same normalised values, twice
    MLP-t token mixing:     acts on each channel alone            same weights
    a Linear reading h':    [W/2 + E, W/2 - E] [h; h] = W h         E small noise: the halves can drift apart
    a Linear writing h':    rows copied, [W; W]
    SwiGLU's new units:     random gate/up, zero down columns      silent at first, trained from there
    x = sqrt(D) * emb:      emb' = [emb, emb] / sqrt(2)             sqrt(2D) / sqrt(2) = sqrt(D)

Only the MLP-t network (Sudoku) is handled: attention's heads would have to be split as well.
"""
from __future__ import annotations

import math

import torch

from trm_edge.errors import ConfigError
from trm_edge.model import TRM, swiglu_width, trunc_normal_

NOISE = 1e-2     # E's std as a share of W/2's: breaks the symmetry of the two halves, changes no output


def _reads(w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A Linear [out, D] reading h  ->  [out, 2D] reading [h, h], same outputs."""
    half = w / 2
    e = torch.randn(half.shape, generator=g) * NOISE * half.std()
    return torch.cat((half + e, half - e), dim=1)


def _swiglu(gate_up: torch.Tensor, down: torch.Tensor, inter: int, g: torch.Generator, reads: bool):
    """A channel SwiGLU widened: input and output channels doubled (when `reads`), its units from
    I to `inter`: the old units compute what they did, the new ones start silent."""
    I = down.shape[1]
    gate, up = gate_up.chunk(2, dim=0)
    if reads:
        gate, up = _reads(gate, g), _reads(up, g)
    extra = inter - I

    def fresh(n_in):
        return trunc_normal_(torch.empty(extra, n_in), std=n_in ** -0.5)

    gate = torch.cat((gate, fresh(gate.shape[1])))
    up = torch.cat((up, fresh(up.shape[1])))
    down = torch.cat((down, torch.zeros(down.shape[0], extra)), dim=1)
    if reads:
        down = torch.cat((down, down))
    return torch.cat((gate, up)), down


def widen(narrow: TRM, wide: TRM, seed: int = 0) -> dict:
    """The state dict of `wide` (hidden 2D) that computes what `narrow` (hidden D) computes.
    Raises ConfigError when the two differ in anything but hidden_size (and puzzle_emb_ndim with it)."""
    a, b = narrow.config, wide.config
    if not (a.mlp_t and b.mlp_t):
        raise ConfigError("widening handles MLP-t models (mlp_t: true) only; train an attention model of the new "
                          "width from scratch")
    if b.hidden_size != 2 * a.hidden_size:
        raise ConfigError(f"widening doubles hidden_size: the init has {a.hidden_size}, this config "
                          f"{b.hidden_size}; set model.hidden_size to {2 * a.hidden_size}")
    if b.puzzle_emb_ndim != 2 * a.puzzle_emb_ndim or b.puzzle_emb_len != a.puzzle_emb_len:
        raise ConfigError(f"widening doubles puzzle_emb_ndim too: set it to {2 * a.puzzle_emb_ndim} and keep "
                          f"puzzle_emb_len {a.puzzle_emb_len}")
    same = ("seq_len", "vocab_size", "expansion", "L_layers", "H_cycles", "L_cycles", "num_puzzle_identifiers",
            "pos_encodings", "rms_norm_eps")
    for k in same:
        if getattr(a, k) != getattr(b, k):
            raise ConfigError(f"widening changes hidden_size only: the init has {k} {getattr(a, k)!r}, this config "
                              f"{getattr(b, k)!r}; give the init's {k}")
    g = torch.Generator().manual_seed(seed)
    src = {k: v.detach().float() for k, v in narrow.state_dict().items()}
    inter = swiglu_width(b.hidden_size, b.expansion)
    out = {}
    for k, v in src.items():
        if k in ("y_init", "z_init"):
            out[k] = torch.cat((v, v))
        elif k in ("token_emb.weight", "puzzle_emb"):
            out[k] = torch.cat((v, v), dim=-1) / math.sqrt(2)
        elif k in ("lm_head.weight", "q_head.weight"):
            out[k] = _reads(v, g)
        elif k == "q_head.bias" or ".token_mlp." in k:
            out[k] = v.clone()
        elif k.endswith(".mlp.gate_up.weight"):
            out[k], out[k.replace("gate_up", "down")] = _swiglu(v, src[k.replace("gate_up", "down")], inter, g, True)
        elif k.endswith(".mlp.down.weight"):
            continue
        else:
            raise ConfigError(f"widening does not know the tensor {k}; train this model at the new width from scratch")
    want = wide.state_dict()
    for k, v in want.items():
        if k not in out or out[k].shape != v.shape:
            raise ConfigError(f"widening made {k} {tuple(out[k].shape) if k in out else 'nothing'}, the config's "
                              f"model needs {tuple(v.shape)}; check the config against the init")
    return {k: out[k].to(want[k].dtype) for k in want}
