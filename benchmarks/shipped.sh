#!/usr/bin/env bash
# 1, 5, 6: the shipped model across every target and precision, 1 and 2 threads, halting measured.
set -euo pipefail
cd "$(dirname "$0")/.."
trm_edge=trm-edge
[[ -x .venv/bin/trm-edge ]] && trm_edge=.venv/bin/trm-edge   # the project's venv (bash .ci/run makes it)
"$trm_edge" bench --threads 1,2 --puzzles 1000 --batch 64 --out benchmarks/results/shipped
