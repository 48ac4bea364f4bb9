"""`trm-edge eval`: checker-based accuracy per step, halting calibration read off the fixed run agrees
with a real early-halting run, JSON + PNG written; ARC goes through the voting evaluator. Sudoku runs
on the trained 4x4 model (tests/trained.py), so the accuracy and halting asserts can fail."""
from __future__ import annotations

import json

import pytest
import torch

from trained import MAX_HALT_STEPS, MAX_STEPS, MIN_FP32_ACCURACY, build_heldout, trained_model_path

from trm_edge.checkpoint import save_checkpoint
from trm_edge.cli import main
from trm_edge.data.build import build_arc
from trm_edge.model import TRM, TRMConfig


def _random_model(cfg: TRMConfig, seed=0) -> TRM:
    torch.manual_seed(seed)
    m = TRM(cfg)
    with torch.no_grad():
        m.q_head.weight.normal_(0, 0.3)
        m.q_head.bias.fill_(-0.5)
    return m.eval()


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    return build_heldout(tmp_path_factory.mktemp("heldout") / "data")


def test_eval_sudoku(heldout, tmp_path, capsys):
    code = main(["eval", "--model", str(trained_model_path()), "--data", str(heldout), "--puzzles", "150",
                 "--out", str(tmp_path / "ev")])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert (tmp_path / "ev" / "eval.png").stat().st_size > 1000
    assert res["puzzles"] == 150 and len(res["accuracy_per_step"]) == MAX_STEPS
    # the trained model solves the held-out puzzles: >= 95% after its first steps. Run past the step it
    # halts at, it drifts a little (measured: 99% after step 2, 92-95% after step 8), so the fixed run is
    # held to 85% and q_halt, which stops it once solved, to 95% and at least the fixed run's accuracy
    assert res["fixed"]["accuracy"] == res["accuracy_per_step"][-1] >= 0.85
    assert max(res["accuracy_per_step"][:2]) >= MIN_FP32_ACCURACY
    assert res["q_halt_run"]["accuracy"] >= max(MIN_FP32_ACCURACY, res["fixed"]["accuracy"])
    assert res["q_halt_run"]["mean_steps"] <= MAX_HALT_STEPS < MAX_STEPS
    # what the calibration reads off the fixed run is what a real q_halt run does
    assert res["q_halt"]["0.5"]["mean_steps"] == pytest.approx(res["q_halt_run"]["mean_steps"])
    assert res["q_halt"]["0.5"]["accuracy"] == pytest.approx(res["q_halt_run"]["accuracy"])
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


def test_eval_a_bundle_through_its_runtime(heldout, tmp_path, capsys, trained_bundles):
    """`eval --model BUNDLE` runs the exported artifact (ONNX Runtime here) and scores it like the checkpoint."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from trm_edge.evaluate import evaluate
    ckpt = trained_model_path()
    bundle, _ = trained_bundles("onnx", "fp32")
    want = evaluate(ckpt, heldout, puzzles=100, progress=False)
    got = evaluate(bundle, heldout, puzzles=100, progress=False)
    assert want["q_halt_run"]["accuracy"] >= MIN_FP32_ACCURACY and want["q_halt_run"]["mean_steps"] <= MAX_HALT_STEPS
    assert got["accuracy_per_step"] == want["accuracy_per_step"]      # fp32: the same puzzles solved at every step
    assert got["q_halt_run"]["mean_steps"] == want["q_halt_run"]["mean_steps"]
    code = main(["eval", "--model", str(bundle), "--data", str(heldout), "--puzzles", "100", "--no-fixed",
                 "--out", str(tmp_path / "ev")])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert "fixed" not in res and res["q_halt_run"]["accuracy"] == want["q_halt_run"]["accuracy"]


def test_eval_prices_views_policies_and_thresholds(heldout, tmp_path, capsys):
    """`eval --views 4`: one recorded run of 4 views prices every configuration (replayed with the live
    loop's code); exact consensus solves what the full vote solves for fewer view-steps; the live run
    of the chosen policy gives the replayed numbers."""
    code = main(["eval", "--model", str(trained_model_path()), "--data", str(heldout), "--puzzles", "60",
                 "--no-fixed", "--views", "4", "--policy", "consensus", "--thresholds", "0.5",
                 "--out", str(tmp_path / "ev")])
    out = capsys.readouterr().out
    assert code == 0 and "4 views of every puzzle recorded" in out and "live run, 4 views" in out
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    rows = {(r["views"], r["policy"], r["threshold"]): r for r in res["views"]["rows"]}
    vote, cons = rows[4, "vote", 0.5], rows[4, "consensus", 0.5]
    assert vote["solved"] >= MIN_FP32_ACCURACY and cons["solved"] == vote["solved"]
    assert cons["view_steps"] <= vote["view_steps"] and rows[1, "vote", 0.5]["view_steps"] <= MAX_HALT_STEPS
    assert rows[4, "fixed 8, vote", None]["view_steps"] == 4 * MAX_STEPS
    live = res["views_run"]
    assert live["accuracy"] == cons["solved"] and live["view_steps"] == pytest.approx(cons["view_steps"])
    assert (tmp_path / "ev" / "views.png").stat().st_size > 5000 and "| views | policy |" in (tmp_path / "ev" / "views.md").read_text()
