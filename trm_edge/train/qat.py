"""Quantization-aware fine-tuning for static int8 (W8A8) bundles: `trm-edge train CONFIG --qat`.

A static bundle fixes one int8 scale per activation tensor at export (min/max of the calibration
set) and quantizes weights per output channel. Post-training, TRM's post-norm activations carry a
few large values (the token-mixing RMSNorm normalises over positions), so one per-tensor scale
leaves most values a handful of int8 levels. Fine-tuning with that rounding in the forward pass
(straight-through gradients) teaches the weights to live with it.

Every nn.Linear of the model is made to see what a static int8 backend computes:
- its input fake-quantized per tensor, uint8 asymmetric, with the range observed as a moving
  average of each batch's min/max (what the export's MinMax calibration then measures again);
- its weight fake-quantized per output channel, int8 symmetric.
torch's own fake-quantize ops do the rounding. The model's parameters and state-dict keys stay
as they are (the observed ranges are training state, not weights), so the checkpoint is an
ordinary float model: every target's static export quantizes it as it would any other.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACT_QMIN, ACT_QMAX = 0, 255          # uint8 activations (the ONNX exporter's; XNNPACK/LiteRT take int8: same levels)
W_QMAX = 127                          # int8 symmetric weights, per output channel
MOMENTUM = 0.01                       # moving-average weight of each batch's min/max


class QATLinear(nn.Linear):
    """nn.Linear whose input and weight are fake-quantized in forward (a class swap, see prepare)."""

    def observe(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            now = torch.stack([x.min().clamp(max=0), x.max().clamp(min=0)])
            self.qat_range.copy_(torch.where(self.qat_seen, self.qat_range.lerp(now, MOMENTUM), now))
            self.qat_seen.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        if self.training:
            self.observe(x.detach())
        lo, hi = self.qat_range[0], self.qat_range[1]
        scale = ((hi - lo) / (ACT_QMAX - ACT_QMIN)).clamp(min=1e-8)
        zero = (ACT_QMIN - torch.round(lo / scale)).clamp(ACT_QMIN, ACT_QMAX).int()
        x = torch.fake_quantize_per_tensor_affine(x, scale, zero, ACT_QMIN, ACT_QMAX)
        w = self.weight.float()
        w_scale = (w.detach().abs().amax(dim=1) / W_QMAX).clamp(min=1e-8)
        w = torch.fake_quantize_per_channel_affine(w, w_scale, torch.zeros_like(w_scale, dtype=torch.int32), 0,
                                                   -W_QMAX, W_QMAX)
        bias = self.bias.float() if self.bias is not None else None
        return F.linear(x, w, bias).to(dtype)


def prepare(model: nn.Module) -> list[str]:
    """Make every nn.Linear a QATLinear (in place; parameters untouched). Returns the layers' names."""
    names = []
    for name, m in model.named_modules():
        if type(m) is nn.Linear:
            m.__class__ = QATLinear
            dev = m.weight.device
            m.register_buffer("qat_range", torch.zeros(2, device=dev), persistent=False)
            m.register_buffer("qat_seen", torch.zeros((), dtype=torch.bool, device=dev), persistent=False)
            names.append(name)
    return names


def sync_ranges(model: nn.Module, world: int) -> None:
    """Under torchrun every rank observes its own slice of the batch: after each step the ranks average
    their ranges, so all of them round alike and the saved ranges are the whole batch's (the moving
    average is linear, so this is the average over ranks of each slice's min/max, folded in once)."""
    import torch.distributed as dist
    layers = [m for m in model.modules() if isinstance(m, QATLinear)]
    both = torch.stack([m.qat_range for m in layers])        # one collective a step, not one per layer
    dist.all_reduce(both)
    for m, r in zip(layers, both / world):
        m.qat_range.copy_(r)


def ranges(model: nn.Module) -> dict:
    """The observed activation ranges (training state: saved with the optimizer, not in the weights)."""
    return {n: torch.cat([m.qat_range, m.qat_seen.float().view(1)]).cpu()
            for n, m in model.named_modules() if isinstance(m, QATLinear)}


def load_ranges(model: nn.Module, saved: dict) -> None:
    for n, m in model.named_modules():
        if isinstance(m, QATLinear) and n in saved:
            m.qat_range.copy_(saved[n][:2])
            m.qat_seen.fill_(bool(saved[n][2]))
