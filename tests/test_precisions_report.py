"""benchmarks/precisions.py on small synthetic bench.json files: the table per model (speed-up over PyTorch
eager fp32 at the same threads, share of the int8 or fp32 GEMM peak) and a plot per file (accuracy vs ms per
step where accuracy was measured, bars of ms per step where not)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "precisions.py"


def row(target, precision, threads, ms, gflops=None, accuracy=None, steps=None, mb=1.0, status="ok", **kw):
    return {"target": target, "precision": precision, "status": status, "reason": "", "runner": "python", "device": "",
            "threads": threads, "ms_step_p50": ms, "gflops": gflops, "artifact_mb": mb, "accuracy": accuracy,
            "mean_steps": steps, "extra": {}, **kw}


def bench_json(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    res = {"schema": "trm-edge-bench/1", "date": "2026-12-05 12:00", "rows": rows,
           "model": {"path": f"{folder.name}.safetensors", "parameters": 1000, "gflop_per_step": 1.0},
           "peak": {"1": {"fp32_gflops": 100.0, "int8_gops": 400.0}, "2": {"fp32_gflops": 200.0, "int8_gops": 800.0}}}
    (folder / "bench.json").write_text(json.dumps(res))
    return folder / "bench.json"


def test_precisions_table_and_plots(tmp_path):
    acc = bench_json(tmp_path / "trained", [
        row("pytorch", "fp32", 1, 100.0, gflops=10.0, accuracy=0.98, steps=1.2),
        row("onnx", "int8-static", 1, 25.0, gflops=40.0, accuracy=0.97, steps=1.3),
        row("tflite", "fp16", 1, 50.0, gflops=20.0, accuracy=0.98, steps=1.2),
        row("pytorch", "fp32", 2, 60.0, gflops=16.0, accuracy=0.98, steps=1.2),
        row("onnx", "int8-static", 2, 20.0, gflops=50.0, accuracy=0.97, steps=1.3),
        row("coreml", "fp32", 2, None, status="not run here", mb=None)])
    lat = bench_json(tmp_path / "random", [row("pytorch", "fp32", 1, 300.0), row("executorch", "int8", 1, 100.0),
                                           row("executorch", "fp16", 1, 600.0)])
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, str(SCRIPT), str(acc), str(lat), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    md = (out / "precisions.md").read_text()
    lines = {tuple(c.strip() for c in ln.strip("|").split("|"))[:3]: [c.strip() for c in ln.strip("|").split("|")]
             for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| target")}
    # | target | precision | threads | device | ms/step p50 | speed-up | of peak | MB | solved | steps |
    assert lines["pytorch", "fp32", "1"][5] == "1.00x"
    assert lines["onnx", "int8-static", "1"][5] == "4.00x"          # 100 / 25 at 1 thread
    assert lines["onnx", "int8-static", "2"][5] == "3.00x"          # 60 / 20 at 2 threads, not 100 / 20
    assert lines["tflite", "fp16", "1"][5] == "2.00x"
    assert lines["executorch", "int8", "1"][5] == "3.00x" and lines["executorch", "fp16", "1"][5] == "0.50x"
    assert lines["onnx", "int8-static", "1"][6] == "10%"            # 40 GOP/s of the 400 int8 peak
    assert lines["tflite", "fp16", "1"][6] == "20%"                 # 20 GFLOP/s of the 100 fp32 peak
    assert lines["onnx", "int8-static", "2"][8:10] == ["97.0%", "1.30"]
    assert "coreml fp32, threads 2: not run here" in md
    for name in ("trained", "random"):
        assert (out / f"{name}.png").stat().st_size > 5000 and f"![{name}]({name}.png)" in md
