"""Rebuild tests/models/sudoku4.safetensors, the trained 4x4-Sudoku TRM the accuracy tests use.

    .venv/bin/python tests/models/train_sudoku4.py          # from the repo root; minutes on 2 CPU cores

Builds the data with trm_edge's own builder (data/sudoku4-tests: 3000 train puzzles, seed 0), trains
with trm_edge's own loop (tests/models/sudoku4.yaml, seeded; an interrupted run resumes from
runs/sudoku4-tests), copies the EMA weights here and scores them on held-out puzzles from another
seed (data/sudoku4-heldout, seed 7), writing tests/models/sudoku4.eval.json.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA, HELDOUT = ROOT / "data" / "sudoku4-tests", ROOT / "data" / "sudoku4-heldout"
HELDOUT_SEED, HELDOUT_PUZZLES = 7, 1000


def main() -> int:
    from trm_edge.data.build import build_sudoku
    from trm_edge.evaluate import evaluate
    from trm_edge.train.config import TrainConfig
    from trm_edge.train.loop import train

    if not DATA.is_dir():
        build_sudoku(DATA, size=4, train=3000, test=200, seed=0, progress=False)
    if not HELDOUT.is_dir():
        build_sudoku(HELDOUT, size=4, train=0, test=HELDOUT_PUZZLES, seed=HELDOUT_SEED, progress=False)
    cfg = TrainConfig.from_yaml(HERE / "sudoku4.yaml", data=str(DATA), out=str(ROOT / "runs" / "sudoku4-tests"))
    made = train(cfg, progress=sys.stderr.isatty())
    shutil.copyfile(made, HERE / "sudoku4.safetensors")
    res = evaluate(HERE / "sudoku4.safetensors", HELDOUT, puzzles=HELDOUT_PUZZLES, thresholds=(0.5,), progress=False)
    summary = {"heldout_seed": HELDOUT_SEED, "puzzles": res["puzzles"], "fixed": res["fixed"],
               "q_halt_run": res["q_halt_run"], "accuracy_per_step": res["accuracy_per_step"]}
    (HERE / "sudoku4.eval.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
