"""`trm-edge bench` end to end: every row measured or explained, well-formed JSON (the schema other
runners append to), Markdown and a plot. The end-to-end run uses the trained 4x4 Sudoku model
(tests/trained.py), so each row's accuracy and halting are held to PyTorch fp32's and can fail.
Speed targets live in benchmarks/."""
from __future__ import annotations

import importlib.util
import json

import pytest
from trained import MAX_STEPS, assert_close_to_fp32, assert_trained_fp32, build_heldout, trained_model_path

from trm_edge.checkpoint import save_checkpoint
from trm_edge.cli import main

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


def test_bench_end_to_end(tmp_path, capsys, trained_bundles):
    ckpt = trained_model_path()
    args = ["bench", "--model", str(ckpt), "--targets", "onnx,coreml,tflite", "--quantize", "fp32,int8", "--puzzles", "100", "--batch", "4",
            "--threads", "1", "--step-seconds", "0.2", "--out", str(tmp_path / "b"), "--bundles", str(trained_bundles.root)]
    assert main(args) == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert res["schema"] == "trm-edge-bench/1" and res["peak"]["1"]["fp32_gflops"] > 0
    rows = {(r["target"], r["precision"]): r for r in res["rows"]}
    assert list(rows)[0] == ("pytorch", "fp32")            # the baseline comes first
    assert set(rows) == {("pytorch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"), ("coreml", "fp32"),
                         ("coreml", "int8"), ("tflite", "fp32"), ("tflite", "int8")}
    runs = [("pytorch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]
    if importlib.util.find_spec("litert_torch"):
        runs += [("tflite", "fp32"), ("tflite", "int8")]       # a fixed batch of 1 timed at batch 4
    for key in runs:
        r = rows[key]
        assert r["status"] == "ok", r["reason"]
        assert 0 < r["ms_step_p50"] <= r["ms_step_p90"] and r["gflops"] > 0 and r["peak_rss_mb"] > 10
        assert r["puzzles_per_s"] > 0 and r["ms_puzzle_q_halt"] > 0 and r["ms_puzzle_fixed"] > 0
    ref = rows["pytorch", "fp32"]
    assert_trained_fp32(ref)                      # >= 95% solved, halting early
    for key in runs[1:]:                          # the same 100 puzzles: bounds in tests/trained.py
        assert_close_to_fp32(rows[key], ref, key[1])
    assert rows["onnx", "fp32"]["parity_max_abs_logits"] < 1e-2
    # each row runs in its own process: the ONNX one never loads torch, so it peaks far lower
    assert rows["onnx", "fp32"]["peak_rss_mb"] < rows["pytorch", "fp32"]["peak_rss_mb"] - 50
    curves = rows["pytorch", "fp32"]["extra"]["curves"]
    assert len(curves["solved_after_step"]) == MAX_STEPS and curves["halted_by_step"] == sorted(curves["halted_by_step"])
    assert max(curves["solved_after_step"]) >= 0.95           # fixed run: solved by its first steps
    if importlib.util.find_spec("coremltools"):
        import sys
        if sys.platform != "darwin":
            assert rows["coreml", "fp32"]["status"] == "not run here" and "macOS" in rows["coreml", "fp32"]["reason"]
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "| pytorch | fp32 | python | 1 | ok |" in md
    assert (tmp_path / "b" / "bench.png").stat().st_size > 5000
    # a second run reuses the bundles made from the same checkpoint (one row is enough to show it)
    again = args[:args.index("--targets")] + ["--targets", "onnx", "--quantize", "int8", "--no-curves"] + \
        args[args.index("--puzzles"):]
    assert main(again) == 0
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [(r["target"], r["precision"], r["extra"].get("reused")) for r in res["rows"]][1:] == [("onnx", "int8", True)]


def test_bench_views_against_the_reference(tmp_path, capsys, trained_bundles):
    """--views K --policy on a dataset: every row also solves the same puzzles with K views at batch B,
    the baseline row also runs the reference's evaluation (1 view, fixed steps); bench.md compares them."""
    data = build_heldout(tmp_path / "data", 60)
    trained_bundles("onnx", "int8")                 # exported once per session; the bench reuses it by name
    args = ["bench", "--model", str(trained_model_path()), "--targets", "onnx", "--quantize", "int8", "--data", str(data),
            "--puzzles", "60", "--batch", "16", "--threads", "1", "--step-seconds", "0.1", "--min-reps", "3",
            "--no-curves", "--views", "4", "--policy", "consensus", "--agree", "2", "--out", str(tmp_path / "b"),
            "--bundles", str(trained_bundles.root)]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert res["settings"]["views"] == 4 and res["settings"]["decision"] == {"policy": "consensus", "agree": 2}
    base, row = res["rows"]
    assert row["extra"].get("reused") and (base["target"], row["target"], row["precision"]) == ("pytorch", "onnx", "int8")
    # the model card holds the fixed run to 85% (tests/models/README.md: its accuracy dips after step 3)
    assert base["fixed_accuracy"] >= 0.85 and base["ms_puzzle_fixed_batch"] > 0 and row["fixed_accuracy"] is None
    for r in (base, row):
        assert r["views"] == 4 and r["policy"] == "consensus, 2 agree" and r["ms_puzzle_views"] > 0
        assert r["views_accuracy"] >= r["accuracy"] - 1.5 / 60       # views never cost more than a puzzle here
        assert 2 <= r["view_steps"] <= 4 * MAX_STEPS                 # two views at least finish and agree
        assert r["ms_puzzle_q_halt_batch"] == pytest.approx(1e3 / r["puzzles_per_s"])
    md = (tmp_path / "b" / "bench.md").read_text()
    for text in (md, out):
        assert "| pytorch | fp32 | 1 | 4 views, consensus, 2 agree |" in text and "the reference's evaluation" in text
    assert (tmp_path / "b" / "bench.png").stat().st_size > 5000


def test_bench_latency_only(tiny_sudoku_model, tmp_path):
    """Random weights of a published size: latency at batch 1 and B, no accuracy, no curves."""
    ckpt = save_checkpoint(tiny_sudoku_model, tmp_path / "tiny.safetensors")
    assert main(["bench", "--model", str(ckpt), "--targets", "onnx", "--quantize", "fp32", "--no-accuracy",
                 "--batch", "8", "--threads", "1", "--step-seconds", "0.1", "--min-reps", "3",
                 "--out", str(tmp_path / "b"), "--bundles", str(tmp_path / "bundles")]) == 0
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [(r["target"], r["status"]) for r in res["rows"]] == [("pytorch", "ok"), ("onnx", "ok")]
    for r in res["rows"]:
        assert r["ms_step_batch_p50"] > 0 and r["gflops_batch"] > 0 and r["accuracy"] is None
    assert not (tmp_path / "b" / "bench.png").exists()


def test_bench_calibration_and_skipped_rows(tiny_sudoku_model, tmp_path):
    """bench(calibration=...) reaches a static row's export (its row records what it was calibrated on);
    bench(skip=...) rows are neither exported nor measured, and say why."""
    from trm_edge.bench import bench
    ckpt = save_checkpoint(tiny_sudoku_model, tmp_path / "tiny.safetensors", task={"name": "sudoku", "size": 4})
    res = bench(ckpt, targets=("onnx", "tflite"), precisions=("int8-static",), puzzles=2, batch=1, threads=(1,),
                out=tmp_path / "b", bundles=tmp_path / "bundles", accuracy=False, curves=False, step_seconds=0.05,
                min_reps=2, progress=False, calibration={"count": 2, "steps": 2},
                skip={("tflite", "int8-static"): "too big here"})
    rows = {r["target"]: r for r in res["rows"]}
    assert rows["onnx"]["status"] == "ok" and rows["onnx"]["ms_step_p50"] > 0
    assert rows["onnx"]["extra"]["calibration"] == {"task": "sudoku", "source": "sampler", "count": 2, "seed": 3,
                                                    "steps": 2, "rows_per_activation": 4, "method": "minmax"}
    assert (rows["tflite"]["status"], rows["tflite"]["reason"], rows["tflite"]["ms_step_p50"]) == \
        ("not run here", "too big here", None)
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == ["tiny-onnx-int8-static"]


def test_bench_bad_arguments(tmp_path, capsys):
    assert main(["bench", "--targets", "onnx,tensorrt"]) == 2
    err = capsys.readouterr().err
    assert "--targets" in err and "'tensorrt' is not one of 'onnx', 'executorch', 'coreml', 'tflite'" in err
    assert main(["bench", "--threads", "two"]) == 2
    err = capsys.readouterr().err
    assert "--threads" in err and "'two' is not a valid integer" in err
    assert main(["bench", "--policy", "vote", "--out", str(tmp_path / "b")]) == 2
    assert "give --views K (2 or more)" in capsys.readouterr().err
    assert main(["bench", "--views", "4", "--no-accuracy", "--out", str(tmp_path / "b")]) == 2
    assert "views are measured by accuracy" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_append_rows_from_elsewhere(tmp_path):
    from trm_edge.bench import SCHEMA, RowError, append_rows
    row = {"target": "executorch", "precision": "int8", "status": "ok", "runner": "native", "device": "aarch64",
           "threads": 4, "ms_step_p50": 3.5, "ms_step_p90": 3.9, "extra": {"device_model": "Pixel 8"}}
    res = append_rows(tmp_path, [row])                      # no bench.json yet: one is made
    assert res["schema"] == SCHEMA and len(res["rows"]) == 1 and res["rows"][0]["ms_puzzle_fixed"] is None
    append_rows(tmp_path, [dict(row, threads=1)])
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert [r["threads"] for r in saved["rows"]] == [4, 1]
    assert "| executorch | int8 | native @ aarch64 | 4 | ok |" in (tmp_path / "bench.md").read_text()
    with pytest.raises(RowError, match="unknown fields speed"):
        append_rows(tmp_path, [dict(row, speed=1)])
    (tmp_path / "bench.json").write_text('{"schema": "other/2"}')
    with pytest.raises(RowError, match="has schema 'other/2'"):
        append_rows(tmp_path, [row])
    assert json.loads((tmp_path / "bench.json").read_text()) == {"schema": "other/2"}   # left as it was


def test_a_bundle_of_another_spelling_is_not_reused(trained_bundles, tmp_path):
    """bench reuses a bundle made from the same checkpoint only in the spelling its target converts now: after a
    spelling changes (LiteRT's attention, 2026-12-07), an older bundle is another graph and is exported again."""
    import shutil

    from trained import load_trained

    from trm_edge.bench import reusable
    path, _ = trained_bundles("onnx", "fp32")
    model = load_trained()
    assert reusable(path, model, "onnx", "fp32")
    older = tmp_path / "older"
    shutil.copytree(path, older)
    manifest = json.loads((older / "manifest.json").read_text())
    manifest["spelling"] = "xnnpack"
    (older / "manifest.json").write_text(json.dumps(manifest))
    assert not reusable(older, model, "onnx", "fp32")
