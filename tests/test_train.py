"""Training runs end to end: kill-and-resume continues the same schedule exactly, and two torchrun
processes (gloo on CPU) stay in sync and agree with one process on the same global batch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from trm_edge.checkpoint import load_checkpoint
from trm_edge.data.build import build_sudoku

TINY = {"model": {"hidden_size": 16, "expansion": 2, "L_layers": 1, "H_cycles": 2, "L_cycles": 1,
                  "halt_max_steps": 3, "puzzle_emb_ndim": 16, "puzzle_emb_len": 1, "mlp_t": True,
                  "pos_encodings": "none"},
        "task": {"name": "sudoku", "size": 4}, "global_batch_size": 8, "steps": 60, "lr": 1e-3,
        "lr_warmup_steps": 2, "weight_decay": 0.1, "puzzle_emb_lr": 1e-2, "augment": True,
        "curriculum_steps": 4, "curriculum_start": 0.5, "checkpoint_every": 1, "threads": 1, "seed": 3}


@pytest.fixture(scope="module")
def data4(tmp_path_factory):
    d = tmp_path_factory.mktemp("sudoku4")
    build_sudoku(d, size=4, train=64, test=16, seed=0, progress=False)
    return d


def _config(tmp_path, data, name, **over) -> Path:
    cfg = {**TINY, "data": str(data), "out": str(tmp_path / name), **over}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _train(cfg: Path, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "trm_edge.cli", "train", str(cfg), *extra],
                          capture_output=True, text=True, env=env, timeout=300)


def _weights(run: Path) -> dict:
    return load_checkpoint(run / "model.safetensors").state_dict()


def test_kill_and_resume_continues_the_same_schedule(tmp_path, data4):
    straight = _config(tmp_path, data4, "straight")
    r = _train(straight)
    assert r.returncode == 0, r.stderr[-2000:]

    killed = _config(tmp_path, data4, "killed")
    proc = subprocess.Popen([sys.executable, "-m", "trm_edge.cli", "train", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "train_state.pt"
    deadline = time.time() + 240
    while time.time() < deadline:
        if state.exists() and torch.load(state, weights_only=True)["step"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = torch.load(state, weights_only=True)["step"]
    assert 3 <= stopped_at < 60, "the kill should land mid-run"
    r = _train(killed)                                   # the same command resumes
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed" in r.stdout + r.stderr

    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 60
    meta = load_checkpoint(tmp_path / "killed" / "model.safetensors").metadata
    assert meta["task"] == {"name": "sudoku", "size": 4} and meta["training"]["ema"] is True


def test_torchrun_two_processes_stay_in_sync(tmp_path, data4):
    torchrun = Path(sys.executable).with_name("torchrun")
    ddp = _config(tmp_path, data4, "ddp", steps=4, augment=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--rdzv_backend", "c10d", "--rdzv_endpoint",
                        "localhost:0", "-m", "trm_edge.cli", "train", str(ddp)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1] == {"step": 4, "ranks": 2, "ranks_in_sync": True}

    single = _config(tmp_path, data4, "single", steps=4, augment=False)
    assert _train(single).returncode == 0
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    for k in a:   # two halves of the batch, gradients all-reduced == the whole batch (float rounding apart)
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_init_starts_from_a_checkpoints_weights_and_refuses_another_shape(tmp_path, data4):
    """`init:` (fine-tuning): the run starts from that checkpoint's weights, not a fresh draw; a
    checkpoint of another size is one line, before a run folder exists."""
    base = _config(tmp_path, data4, "base", steps=5)
    assert _train(base).returncode == 0
    start = _weights(tmp_path / "base")
    tuned = _config(tmp_path, data4, "tuned", steps=1, lr=1e-12, puzzle_emb_lr=1e-12, ema=False,
                    init=str(tmp_path / "base" / "model.safetensors"))
    r = _train(tuned)
    assert r.returncode == 0, r.stderr[-2000:]
    after = _weights(tmp_path / "tuned")
    for k in start:   # one step at a negligible learning rate: still the init's weights
        assert torch.allclose(start[k], after[k], atol=1e-6), k
    fresh = _config(tmp_path, data4, "fresh", steps=1, lr=1e-12, puzzle_emb_lr=1e-12, ema=False)
    assert _train(fresh).returncode == 0
    assert not torch.allclose(_weights(tmp_path / "fresh")["lm_head.weight"], start["lm_head.weight"])

    wide = _config(tmp_path, data4, "wide", init=str(tmp_path / "base" / "model.safetensors"),
                   model={**TINY["model"], "hidden_size": 32, "puzzle_emb_ndim": 32})
    r = _train(wide)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "does not fit this config's model" in lines[0], r.stderr
    assert not (tmp_path / "wide").exists()

    # `widen: true`: the same wider config starts from the narrow weights with every channel doubled, and
    # computes what the narrow model computed (one step at a negligible learning rate, no EMA)
    widened = _config(tmp_path, data4, "widened", init=str(tmp_path / "base" / "model.safetensors"), widen=True,
                      steps=1, lr=1e-12, puzzle_emb_lr=1e-12, ema=False,
                      model={**TINY["model"], "hidden_size": 32, "puzzle_emb_ndim": 32})
    r = _train(widened)
    assert r.returncode == 0, r.stderr[-2000:]
    narrow, wide = (load_checkpoint(tmp_path / n / "model.safetensors") for n in ("base", "widened"))
    assert wide.config.hidden_size == 32 and wide.state_dict()["lm_head.weight"].shape == (narrow.config.vocab_size, 32)
    inputs = torch.as_tensor(np.load(data4 / "test" / "all__inputs.npy"))
    a, b = narrow.rollout(inputs), wide.rollout(inputs)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-4) and torch.allclose(a["q_halt"], b["q_halt"], atol=1e-4)
    assert torch.equal(a["logits"].argmax(-1), b["logits"].argmax(-1))


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": 48, "puzzle_emb_ndim": 48}, "widening doubles hidden_size: the init has 16, this config 48; "
                                                 "set model.hidden_size to 32"),
    ({"hidden_size": 32}, "widening doubles puzzle_emb_ndim too: set it to 32"),
    ({"hidden_size": 32, "puzzle_emb_ndim": 32, "H_cycles": 3}, "widening changes hidden_size only: the init has "
                                                                "H_cycles 2, this config 3"),
    ({"hidden_size": 32, "puzzle_emb_ndim": 32, "mlp_t": False, "num_heads": 2},
     "widening handles MLP-t models (mlp_t: true) only"),
])
def test_widen_refuses_what_it_cannot_double(tmp_path, change, message):
    from trm_edge.errors import ConfigError
    from trm_edge.model import TRM, TRMConfig
    from trm_edge.train.widen import widen
    base = {**TINY["model"], "seq_len": 16, "vocab_size": 6}
    narrow, wide = TRM(TRMConfig.from_dict(base)), TRM(TRMConfig.from_dict({**base, **change}))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        widen(narrow, wide)


def test_widen_without_init_is_one_line(tmp_path, data4):
    r = _train(_config(tmp_path, data4, "lonely", widen=True))
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "widen starts from a narrower checkpoint; give it as init" in lines[0]


def test_a_mix_of_difficulties_is_built_in_equal_parts(tmp_path):
    from trm_edge.data.dataset import read_split
    d = build_sudoku(tmp_path / "mix", size=9, train=12, test=6, seed=1, progress=False,
                     difficulty=["moderate", "hard"])
    meta = json.loads((d / "train" / "dataset.json").read_text())
    assert meta["task"] == {"name": "sudoku", "size": 9, "givens": [31, 45], "difficulty": ["moderate", "hard"]}
    train = read_split(d, "train")[0]["all"]
    givens = train.extra["givens"]
    assert len(givens) == 12 and (givens >= 31).sum() == 6 and (train.extra["rating"] > 0).sum() >= 6
    assert not (givens[:6] >= 31).all(), "the parts are shuffled together"
    one = build_sudoku(tmp_path / "one", size=9, train=3, test=0, seed=1, progress=False, difficulty="hard")
    assert json.loads((one / "train" / "dataset.json").read_text())["task"]["difficulty"] == "hard"


def test_sigterm_stops_after_the_step_with_a_checkpoint_and_the_same_command_resumes(tmp_path, data4):
    straight = _config(tmp_path, data4, "straight", checkpoint_every=1000)
    assert _train(straight).returncode == 0
    run = _config(tmp_path, data4, "termed", checkpoint_every=1000)   # no periodic checkpoint to fall back on
    proc = subprocess.Popen([sys.executable, "-m", "trm_edge.cli", "train", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "termed" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    stopped_at = torch.load(tmp_path / "termed" / "train_state.pt", weights_only=True)["step"]
    assert 3 <= stopped_at < 60 and f"stopped at step {stopped_at}/60" in err
    assert _train(run).returncode == 0
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "termed")
    for k in a:
        assert torch.equal(a[k], b[k]), k
