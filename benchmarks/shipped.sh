#!/usr/bin/env bash
# 1, 5, 6: the shipped model across every target and precision, 1 and 2 threads, halting measured.
set -euo pipefail
cd "$(dirname "$0")/.."
trm-edge bench --threads 1,2 --puzzles 1000 --batch 64 --out benchmarks/results/shipped
