#!/usr/bin/env bash
# 1, 5, 6: the shipped models across every target and precision, 1 and 2 threads, halting measured:
# the Sudoku model (the default) on 1,000 generated puzzles, then the Maze model on the first 200 of its
# card's held-out mazes (15x15, seed 7; benchmarks/model_card.py's maze-15 row).
set -euo pipefail
cd "$(dirname "$0")/.."
trm_edge=trm-edge
[[ -x .venv/bin/trm-edge ]] && trm_edge=.venv/bin/trm-edge   # the project's venv (bash .ci/run makes it)
"$trm_edge" bench --threads 1,2 --puzzles 1000 --batch 64 --out benchmarks/results/shipped
mazes=runs/card-data/maze-15-200
[[ -f $mazes/test/dataset.json ]] || "$trm_edge" data build maze --size 15 --seed 7 --train 0 --test 200 --out $mazes
"$trm_edge" bench --model models/maze.safetensors --data $mazes --threads 1,2 --puzzles 200 --batch 64 \
    --out benchmarks/results/maze
