#!/usr/bin/env bash
# Install size and time of trm-edge's wheel with each extra, each into a fresh venv (the README's
# install table). Usage: bash benchmarks/install.sh [OUT_DIR]   (default /tmp/trm-edge-install)
# Builds the wheel from this checkout with `python -m build`, then per extra: a new venv, pip
# upgraded (not timed), `pip install WHEEL[extra]` timed; size = du of the venv; whether torch is in it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/trm-edge-install}
rm -rf "$out" && mkdir -p "$out"
python3 -m build --outdir "$out/dist" . >/dev/null 2>&1 || .venv/bin/python -m build --outdir "$out/dist" . >/dev/null
wheel=$(ls "$out"/dist/*.whl)
printf '| install | seconds | venv MB | torch |\n|---|---|---|---|\n'
for extra in "" "[onnxruntime]" "[litert]" "[torch]" "[all]"; do
  d="$out/venv$(echo "$extra" | tr -d '[]')"
  python3 -m venv "$d"
  "$d/bin/pip" install -q --upgrade pip >/dev/null 2>&1
  s=$(date +%s.%N)
  "$d/bin/pip" install -q "$wheel$extra" >/dev/null 2>&1
  e=$(date +%s.%N)
  torch=$("$d/bin/pip" list 2>/dev/null | grep -ci '^torch ' || true)
  printf '| `pip install trm_edge-*.whl%s` | %.1f | %s | %s |\n' "$extra" "$(echo "$e - $s" | bc)" \
    "$(du -sm "$d" | cut -f1)" "$([ "$torch" = 1 ] && echo yes || echo no)"
done
