"""A Maze model through the whole command line, as a Sudoku one goes: `solve` reads the maze drawn in
text and draws its answer, a bundle `run` from that text gives the same answer and steps as the
checkpoint, the 8 dihedral views work end to end, and `bench` writes maze rows. The model is a small
random attention + RoPE TRM (plumbing, not accuracy: the shipped Maze model's card checks that)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trm_edge.cli import main
from trm_edge.data import lookup

SIZE = 5


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    from trm_edge.checkpoint import save_checkpoint
    from trm_edge.model import TRM, TRMConfig
    d = tmp_path_factory.mktemp("maze")
    torch.manual_seed(0)
    cfg = TRMConfig(seq_len=SIZE * SIZE, vocab_size=6, hidden_size=32, num_heads=2, expansion=2, H_cycles=1,
                    L_cycles=1, L_layers=1, halt_max_steps=4, puzzle_emb_ndim=32, puzzle_emb_len=1,
                    pos_encodings="rope")
    m = TRM(cfg)
    with torch.no_grad():
        m.q_head.weight.normal_(0, 0.5)
        m.puzzle_emb.normal_()
    ckpt = save_checkpoint(m.eval(), d / "maze.safetensors", task={"name": "maze", "size": SIZE})
    assert main(["data", "build", "maze", "--size", str(SIZE), "--train", "0", "--test", "8", "--seed", "1",
                 "--out", str(d / "data")]) == 0
    inputs = np.load(d / "data" / "test" / "all__inputs.npy")
    text = lookup("maze").codec(SIZE * SIZE, 6).compact(inputs[0])
    return {"dir": d, "ckpt": str(ckpt), "text": text}


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_solve_draws_the_maze_and_a_bundle_run_answers_alike(maze, capsys):
    assert "S" in maze["text"] and "G" in maze["text"] and "#" in maze["text"]
    capsys.readouterr()
    assert main(["solve", "--model", maze["ckpt"], "--puzzle", maze["text"]]) == 0
    drawn = capsys.readouterr().out.splitlines()
    assert [len(line) for line in drawn[:SIZE]] == [SIZE] * SIZE          # the answer drawn as a 5x5 grid
    assert main(["solve", "--model", maze["ckpt"], "--puzzle", maze["text"], "--json"]) == 0
    eager = _json(capsys)
    bundle = maze["dir"] / "onnx"
    assert main(["export", "--target", "onnx", "--model", maze["ckpt"], "--out", str(bundle)]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["task"]["name"] == "maze"
    assert manifest["views"]["count"] == 8 and manifest["views"]["same"]["rule"] == "path"   # the Maze default
    capsys.readouterr()
    assert main(["run", str(bundle), "--puzzle", maze["text"], "--json", "--views", "1"]) == 0
    ran = _json(capsys)
    assert (ran["answer"], ran["steps"]) == (eager["answer"], eager["steps"])
    assert main(["run", str(bundle), "--puzzle", maze["text"], "--json"]) == 0     # the manifest's 8 views, best
    assert _json(capsys)["policy"] == {"policy": "best", "agree": 3, "wave": 2}
    assert ran["answer_grid"].count("\n") == SIZE - 1


def test_the_eight_dihedral_views_run_from_text(maze, capsys):
    capsys.readouterr()
    assert main(["solve", "--model", maze["ckpt"], "--puzzle", maze["text"], "--views", "8", "--policy", "vote",
                 "--json"]) == 0
    out = _json(capsys)
    assert out["views"] == 8 and len(out["view_steps"]) == 8
    assert set(out["answer"]) - set("/") <= set("#SGo .?")


def test_bench_writes_maze_rows(maze, capsys):
    out = maze["dir"] / "bench"
    assert main(["bench", "--model", maze["ckpt"], "--targets", "onnx", "--quantize", "fp32", "--puzzles", "8",
                 "--data", str(maze["dir"] / "data"), "--threads", "1", "--no-curves", "--step-seconds", "0.1",
                 "--min-reps", "2", "--out", str(out), "--bundles", str(maze["dir"] / "bundles")]) == 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["model"]["task"] == {"name": "maze", "size": SIZE}
    rows = {(r["target"], r["precision"]): r for r in bench["rows"]}
    assert rows[("onnx", "fp32")]["status"] == "ok" and rows[("onnx", "fp32")]["mean_steps"] >= 1


def test_coreml_static_int8_of_the_attention_model(maze, capsys):
    """W8A8 Core ML of an attention model converts (it once failed in coremltools' converter on an int() of a traced
    shape): the spec is verified here, with quantize / dequantize ops around the activations."""
    pytest.importorskip("coremltools", reason="the coreml extra is not installed (pip install 'trm-edge[coreml]')")
    out = maze["dir"] / "coreml-int8-static"
    assert main(["export", "--target", "coreml", "--quantize", "int8-static", "--calibration-count", "2",
                 "--model", maze["ckpt"], "--out", str(out)]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "int8-static" and manifest["parity"]["io_match"] is True
    ops = manifest["parity"]["op_counts"]
    assert ops["quantize"] > 0 and ops["dequantize"] > 0 and ops["softmax"] > 0
