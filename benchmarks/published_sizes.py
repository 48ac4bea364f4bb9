"""Latency at the published sizes, random weights (accuracy means nothing without training):
Sudoku-Extreme MLP-t (5.0M parameters, 81+16 positions, T=3 n=6) and Maze/ARC attention + RoPE
(6.8M, 900+16 positions, T=3 n=4), batch 1 and 8, every backend that runs here, every precision
each target offers (the targets table: fp32, int8 dynamic, int8-static, fp16, ...), 1 and 2 threads.

    python benchmarks/published_sizes.py [--sizes maze_hard_6.8m] [--quantize fp32,int8-static]
        [--threads 1,2] [--calibration-count 4] [--memory-gb 16] [--out benchmarks/results]

Checkpoints are made from a fixed seed and carry their task (9x9 Sudoku, 30x30 maze): the same
bytes every run (so `bench` reuses their bundles), and int8-static calibrates on real puzzles of
the task from its sampler, every supervision step of each. `--tiny` makes hidden-64 checkpoints of
the same shapes otherwise (a minutes-long check of this script, not a result).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open

from trm_edge.bench import bench
from trm_edge.checkpoint import save_checkpoint
from trm_edge.model import TRM, TRMConfig
from trm_edge.targets import TARGETS

BASE = dict(hidden_size=512, num_heads=8, H_cycles=3, puzzle_emb_ndim=512)   # with a 16-row puzzle prefix
SIZES = {   # the reference's published configurations (tests/test_model.py checks their parameter counts)
    "sudoku_extreme_5m": dict(BASE, seq_len=81, vocab_size=11, mlp_t=True, pos_encodings="none", L_cycles=6),
    "maze_hard_6.8m": dict(BASE, seq_len=900, vocab_size=6, L_cycles=4),
}
TASKS = {   # what `trm-edge data build` writes for these sets (the sampler calibrates on them)
    "sudoku_extreme_5m": {"name": "sudoku", "size": 9},
    "maze_hard_6.8m": {"name": "maze", "size": 30, "min_path": 110},
}
TINY = dict(hidden_size=64, num_heads=2, puzzle_emb_ndim=64)
# Exports that ran out of memory here at the Maze size, {(size, target, precision): GB}: skipped unless --memory-gb
# is above it. Peak RSS of the static int8 exports at 916 positions (2026-12-07, 4 calibration puzzles; measured with
# an RSS watch over the process tree, not `ulimit -v`, under which the benchmark could not start threads): ONNX 10.4
# GB, LiteRT 8.6 GB; ExecuTorch's XNNPACK lowering (`to_edge_transform_and_lower`) passed 18 GB and was stopped
# there. How the ONNX and LiteRT ones came down: benchmarks/RESULTS.md, section 2's 916-position subsection.
FAILED_AT_GB: dict[tuple[str, str, str], float] = {("maze_hard_6.8m", "executorch", "int8-static"): 18}
TARGETS_HERE = ("onnx", "executorch", "tflite")     # Core ML runs on macOS only


def checkpoint(name: str, root: Path, tiny: bool = False) -> Path:
    """The size's random checkpoint (torch.manual_seed(0)), written again if missing or if an older one
    lacks its task or config."""
    config, task = dict(SIZES[name], **(TINY if tiny else {})), TASKS[name]
    path = root / f"{name}{'-tiny' if tiny else ''}.safetensors"
    if path.exists():
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        model_config = json.loads(meta.get("config", "{}"))
        if json.loads(meta.get("task", "null")) == task and all(model_config.get(k) == v for k, v in config.items()):
            return path
    torch.manual_seed(0)
    save_checkpoint(TRM(TRMConfig(**config)).eval(), path, task=task)
    sorted_metadata(path)
    return path


def sorted_metadata(path: Path) -> None:
    """The safetensors header's metadata keys in sorted order, rewritten in place: safetensors writes them in
    a random (hash map) order, so the same weights would not be the same bytes. The JSON is as long in any
    order (compact, unescaped UTF-8), so the tensors' offsets stay; a header that is not is left as it was."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n)
        header = json.loads(raw)
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (n - len(text))       # safetensors pads its header with spaces to 8 bytes
        if len(text) == n and json.loads(text) == json.loads(raw):
            f.seek(8)
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--quantize", default="all", help="precisions, comma-separated (default: every one a target offers)")
    ap.add_argument("--targets", default=",".join(TARGETS_HERE))
    ap.add_argument("--calibration-count", type=int, default=4,
                    help="int8-static: sampled puzzles, each run through every supervision step")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--step-seconds", type=float, default=3.0)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--tiny", action="store_true", help="hidden 64: check the script in minutes (results/<size>-tiny)")
    ap.add_argument("--memory-gb", type=float, default=16,
                    help="memory this machine has for one export: exports that ran out of memory at this much or "
                         "more are skipped, their rows say so (default 16)")
    a = ap.parse_args()
    asked = None if a.quantize == "all" else tuple(a.quantize.split(","))
    # the targets offering any of the precisions asked for, each with the ones it offers (targets table)
    targets = tuple(t for t in a.targets.split(",") if asked is None or set(asked) & set(TARGETS[t].precisions))
    for name in a.sizes.split(","):
        path = checkpoint(name, Path("runs/published"), a.tiny)
        out = Path(a.out) / (path.stem)
        skip = {(t, p): f"its export ran out of memory at a {gb} GB cap (benchmarks/published_sizes.py); "
                        f"run with --memory-gb above {gb} on a larger machine"
                for (size, t, p), gb in FAILED_AT_GB.items() if size == name and a.memory_gb <= gb and not a.tiny}
        bench(path, targets=targets, precisions=asked, puzzles=8, batch=a.batch,
              threads=tuple(int(t) for t in a.threads.split(",")), out=out, bundles="runs/published/bundles",
              accuracy=False, curves=False, step_seconds=a.step_seconds, min_reps=3,
              calibration={"count": a.calibration_count}, skip=skip)
        print((out / "bench.md").read_text())


if __name__ == "__main__":
    main()
