"""`trm-edge eval`: checker-based accuracy per step, halting calibration read off the fixed run agrees
with a real early-halting run, JSON + PNG written; ARC goes through the voting evaluator."""
from __future__ import annotations

import json

import pytest
import torch

from trm_edge.checkpoint import save_checkpoint
from trm_edge.cli import main
from trm_edge.data.build import build_arc, build_sudoku
from trm_edge.model import TRM, TRMConfig


def _random_model(cfg: TRMConfig, seed=0) -> TRM:
    torch.manual_seed(seed)
    m = TRM(cfg)
    with torch.no_grad():
        m.q_head.weight.normal_(0, 0.3)
        m.q_head.bias.fill_(-0.5)
    return m.eval()


def test_eval_sudoku(tmp_path, capsys):
    build_sudoku(tmp_path / "data", size=4, train=0, test=40, seed=1, progress=False)
    m = _random_model(TRMConfig(seq_len=16, vocab_size=6, hidden_size=16, expansion=2, H_cycles=1, L_cycles=1,
                                halt_max_steps=5, puzzle_emb_ndim=16, puzzle_emb_len=1, mlp_t=True,
                                pos_encodings="none"))
    ckpt = save_checkpoint(m, tmp_path / "m.safetensors", task={"name": "sudoku", "size": 4})
    code = main(["eval", "--model", str(ckpt), "--data", str(tmp_path / "data"), "--puzzles", "30",
                 "--out", str(tmp_path / "ev")])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert (tmp_path / "ev" / "eval.png").stat().st_size > 1000
    assert res["puzzles"] == 30 and len(res["accuracy_per_step"]) == 5
    # what the calibration reads off the fixed run is what a real q_halt run does
    assert res["q_halt"]["0.5"]["mean_steps"] == pytest.approx(res["q_halt_run"]["mean_steps"])
    assert res["q_halt"]["0.5"]["accuracy"] == pytest.approx(res["q_halt_run"]["accuracy"])
    assert res["fixed"]["accuracy"] == res["accuracy_per_step"][-1]
    assert res["q_halt"]["0.3"]["mean_steps"] <= res["q_halt"]["0.9"]["mean_steps"]


def test_eval_arc_votes(tmp_path):
    from trm_edge.evaluate import evaluate
    build_arc(tmp_path / "arc", "arc-agi-1", augmentations=1, seed=0)
    ids = json.loads((tmp_path / "arc" / "test" / "dataset.json").read_text())["num_puzzle_identifiers"]
    m = _random_model(TRMConfig(seq_len=900, vocab_size=12, hidden_size=16, num_heads=2, expansion=2,
                                H_cycles=1, L_cycles=1, halt_max_steps=2, puzzle_emb_ndim=16, puzzle_emb_len=1,
                                num_puzzle_identifiers=ids))
    ckpt = save_checkpoint(m, tmp_path / "m.safetensors", task={"name": "arc", "version": "arc-agi-1"})
    res = evaluate(ckpt, tmp_path / "arc", puzzles=12, thresholds=(0.5,), progress=False)
    vote = res["arc_vote"]
    assert vote["tasks"] >= 1 and 0.0 <= vote["pass@1"] <= vote["pass@2"] <= 1.0


def test_eval_a_bundle_through_its_runtime(tmp_path, capsys):
    """`eval --model BUNDLE` runs the exported artifact (ONNX Runtime here) and scores it like the checkpoint."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from trm_edge.evaluate import evaluate
    from trm_edge.export.bundle import export_bundle
    build_sudoku(tmp_path / "data", size=4, train=0, test=40, seed=1, progress=False)
    m = _random_model(TRMConfig(seq_len=16, vocab_size=6, hidden_size=16, expansion=2, H_cycles=1, L_cycles=1,
                                halt_max_steps=5, puzzle_emb_ndim=16, puzzle_emb_len=1, mlp_t=True,
                                pos_encodings="none"))
    ckpt = save_checkpoint(m, tmp_path / "m.safetensors", task={"name": "sudoku", "size": 4})
    from trm_edge.checkpoint import load_checkpoint
    bundle, _ = export_bundle(load_checkpoint(ckpt), "onnx", tmp_path / "b", log=lambda *a: None)
    want = evaluate(ckpt, tmp_path / "data", puzzles=30, progress=False)
    got = evaluate(bundle, tmp_path / "data", puzzles=30, progress=False)
    assert got["accuracy_per_step"] == want["accuracy_per_step"]
    assert got["q_halt_run"]["mean_steps"] == want["q_halt_run"]["mean_steps"]
    code = main(["eval", "--model", str(bundle), "--data", str(tmp_path / "data"), "--puzzles", "30", "--no-fixed",
                 "--out", str(tmp_path / "ev")])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert "fixed" not in res and res["q_halt_run"]["accuracy"] == want["q_halt_run"]["accuracy"]
