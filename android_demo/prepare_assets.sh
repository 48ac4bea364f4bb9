#!/usr/bin/env bash
# prepare_assets.sh [PRECISION]: put the shipped model's ExecuTorch bundle and 200 held-out Sudoku
# puzzles into the app's assets (app/src/main/assets/bundle/, app/src/main/assets/puzzles.txt).
# Runs in the trm-edge checkout's environment (pip install -e ".[executorch]"); PRECISION is fp32
# (default) or int8.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
precision=${1:-fp32}
assets="$here/app/src/main/assets"
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x "$python" ]] || python=python3

mkdir -p "$assets"
rm -rf "$assets/bundle"
"$python" -m trm_edge.cli export --target executorch --quantize "$precision" \
  --model "$repo/trm_edge/models/sudoku.safetensors" --out "$assets/bundle"
"$python" - "$assets/puzzles.txt" <<'PY'
import os, sys
from trm_edge.data import sudoku
grids = sudoku.generate(200, 9, seed=20261124)["puzzles"]     # not the training seed
text = "".join("".join(str(d) if d else "." for d in g.flat) + "\n" for g in grids)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write("# 200 generated 9x9 Sudoku puzzles (trm_edge.data.sudoku.generate, seed 20261124)\n" + text)
os.replace(tmp, sys.argv[1])
PY
echo "assets ready: $(du -sh "$assets/bundle" | cut -f1) bundle ($precision), $(grep -vc '^#' "$assets/puzzles.txt") puzzles"
