"""`trm-edge train --qat`: every linear layer trains with the static int8 bundles' rounding, the
checkpoint stays an ordinary float model, and a stopped run resumes exactly (observed ranges included)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from trm_edge.checkpoint import load_checkpoint
from trm_edge.data.build import build_sudoku
from trm_edge.model import TRM, TRMConfig
from trm_edge.train import qat

TINY = {"model": {"hidden_size": 16, "expansion": 2, "L_layers": 1, "H_cycles": 2, "L_cycles": 1,
                  "halt_max_steps": 3, "puzzle_emb_ndim": 16, "puzzle_emb_len": 1, "mlp_t": True,
                  "pos_encodings": "none"},
        "task": {"name": "sudoku", "size": 4}, "global_batch_size": 8, "lr": 1e-3, "lr_warmup_steps": 2,
        "weight_decay": 0.1, "puzzle_emb_lr": 1e-2, "augment": True, "checkpoint_every": 1, "threads": 1,
        "seed": 3}


def test_a_qat_linear_computes_the_static_int8_rounding_and_passes_gradients():
    torch.manual_seed(0)
    lin = nn.Linear(8, 4)
    ref = nn.Linear(8, 4)
    ref.load_state_dict(lin.state_dict())
    assert qat.prepare(nn.Sequential(lin)) == ["0"]
    x = torch.randn(5, 8) * 3 + 1
    y = lin(x)                                          # training mode: observes x's range first
    lo, hi = min(x.min().item(), 0), max(x.max().item(), 0)
    scale = (hi - lo) / 255
    zero = round(-lo / scale)
    xq = (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale
    ws = ref.weight.abs().amax(1, keepdim=True) / 127
    wq = torch.clamp(torch.round(ref.weight / ws), -127, 127) * ws
    assert torch.allclose(y, nn.functional.linear(xq, wq, ref.bias), atol=1e-5)
    assert not torch.allclose(y, ref(x), atol=1e-3)     # the rounding is really there
    y.sum().backward()                                  # straight-through: gradients reach the float weights
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert set(lin.state_dict()) == {"weight", "bias"}  # observed ranges are training state, not weights


def test_every_linear_of_the_model_is_prepared_and_its_keys_stay():
    model = TRM(TRMConfig(seq_len=16, vocab_size=6, num_puzzle_identifiers=2, **TINY["model"]))
    keys = set(model.state_dict())
    names = qat.prepare(model)
    assert names and len(names) == sum(1 for m in model.modules() if isinstance(m, nn.Linear))
    assert {"lm_head", "q_head"} <= set(names)
    assert set(model.state_dict()) == keys


@pytest.fixture(scope="module")
def data4(tmp_path_factory):
    d = tmp_path_factory.mktemp("sudoku4")
    build_sudoku(d, size=4, train=64, test=16, seed=0, progress=False)
    return d


def _train(tmp_path, data, name, *extra, steps=6, **over):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "data": str(data), "out": str(tmp_path / name), "steps": steps, **over}))
    r = subprocess.run([sys.executable, "-m", "trm_edge.cli", "train", str(cfg), *extra], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return load_checkpoint(tmp_path / name / "model.safetensors")


def test_train_qat_writes_a_float_checkpoint_and_resumes_exactly(tmp_path, data4):
    straight = _train(tmp_path, data4, "straight", "--qat")
    _train(tmp_path, data4, "resumed", "--qat", "--steps", "3")
    st = torch.load(tmp_path / "resumed" / "train_state.pt", weights_only=True)
    assert st["qat"] and all(v[2] == 1 for v in st["qat"].values())       # every layer's range observed
    resumed = _train(tmp_path, data4, "resumed", "--qat")
    assert resumed.metadata["training"]["config"]["qat"] is True
    a, b = straight.state_dict(), resumed.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    plain = _train(tmp_path, data4, "plain")                                # the same run without --qat differs
    assert not torch.equal(plain.state_dict()["lm_head.weight"], a["lm_head.weight"])


def test_torchrun_ranks_share_one_set_of_observed_ranges(tmp_path, data4):
    """Two torchrun processes each see half the batch: their ranges are averaged after every step, so
    both round alike (the in-sync check covers the ranges too) and the run matches one process."""
    torchrun = Path(sys.executable).with_name("torchrun")
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "data": str(data4), "out": str(tmp_path / "ddp"), "steps": 3,
                                   "augment": False}))
    r = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--rdzv_backend", "c10d", "--rdzv_endpoint",
                        "localhost:0", "-m", "trm_edge.cli", "train", str(cfg), "--qat"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1] == {"step": 3, "ranks": 2, "ranks_in_sync": True}
    st = torch.load(tmp_path / "ddp" / "train_state.pt", weights_only=True)
    assert st["qat"] and all(v[2] == 1 and v[1] > v[0] for v in st["qat"].values())
