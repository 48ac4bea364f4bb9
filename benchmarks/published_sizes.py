"""Latency at the published sizes, random weights (accuracy means nothing without training):
Sudoku-Extreme MLP-t (5.0M parameters, 81+16 positions, T=3 n=6) and Maze/ARC attention + RoPE
(6.8M, 900+16 positions, T=3 n=4), batch 1 and 8, every backend that runs here, fp32 and int8.

    python benchmarks/published_sizes.py [--threads 2] [--out benchmarks/results]

Checkpoints are made from a fixed seed (same bytes every run, so `bench` reuses their bundles).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from trm_edge.bench import bench
from trm_edge.checkpoint import save_checkpoint
from trm_edge.model import TRM, TRMConfig

BASE = dict(hidden_size=512, num_heads=8, H_cycles=3, puzzle_emb_ndim=512)   # with a 16-row puzzle prefix
SIZES = {   # the reference's published configurations (tests/test_model.py checks their parameter counts)
    "sudoku_extreme_5m": dict(BASE, seq_len=81, vocab_size=11, mlp_t=True, pos_encodings="none", L_cycles=6),
    "maze_hard_6.8m": dict(BASE, seq_len=900, vocab_size=6, L_cycles=4),
}


def checkpoint(name: str, root: Path) -> Path:
    path = root / f"{name}.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        save_checkpoint(TRM(TRMConfig(**SIZES[name])).eval(), path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="2")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    for name in a.sizes.split(","):
        path = checkpoint(name, Path("runs/published"))
        bench(path, targets=("onnx", "executorch", "tflite"), precisions=("fp32", "int8"), puzzles=8, batch=8,
              threads=tuple(int(t) for t in a.threads.split(",")), out=Path(a.out) / name,
              bundles="runs/published/bundles", accuracy=False, curves=False, step_seconds=3.0, min_reps=3)
        print((Path(a.out) / name / "bench.md").read_text())


if __name__ == "__main__":
    main()
