#!/usr/bin/env bash
# build.sh [x86_64|aarch64] BUILD_DIR: configure and build trm-runner.
#
#   x86_64   against the executorch package of the repo's .venv (or $EXECUTORCH_ROOT, or $PYTHON's)
#   aarch64  cross-compiled with aarch64-linux-gnu-g++ against the aarch64 executorch wheel, which
#            is downloaded once into BUILD_DIR/wheel ($EXECUTORCH_AARCH64_WHEEL: use that file instead)
#
# Then: BUILD_DIR/trm-runner BUNDLE --puzzle ...   (aarch64: qemu-aarch64 -cpu cortex-a76 -L /usr/aarch64-linux-gnu BUILD_DIR/trm-runner ...)
set -euo pipefail

arch=${1:-}
build=${2:-}
if [[ -z "$arch" || -z "$build" || ( "$arch" != x86_64 && "$arch" != aarch64 ) ]]; then
  echo "usage: build.sh [x86_64|aarch64] BUILD_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
mkdir -p "$build"
build=$(cd "$build" && pwd)
ET_VERSION=${EXECUTORCH_VERSION:-1.5.1}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
cmake_args=(-DCMAKE_BUILD_TYPE=Release)

case "$arch" in
  x86_64)
    if [[ "$(uname -m)" != x86_64 ]]; then
      echo "build.sh: x86_64 builds natively on an x86_64 machine (this is $(uname -m))" >&2
      exit 2
    fi
    if [[ -z "${EXECUTORCH_ROOT:-}" ]]; then
      # find_spec locates the package without importing it (importing it loads torch)
      # (executorch is a namespace package: no __init__.py, so its folder is the search location)
      EXECUTORCH_ROOT=$("$PYTHON" -c 'import importlib.util as u; s = u.find_spec("executorch"); print(list(s.submodule_search_locations)[0] if s else "")')
    fi
    if [[ -z "$EXECUTORCH_ROOT" ]]; then
      echo "build.sh: no executorch package for $PYTHON: pip install 'trm-edge[executorch]' or set EXECUTORCH_ROOT" >&2
      exit 2
    fi
    ;;
  aarch64)
    for tool in aarch64-linux-gnu-g++ unzip; do
      if ! command -v "$tool" >/dev/null; then
        echo "build.sh: $tool is missing (apt-get install g++-aarch64-linux-gnu unzip)" >&2
        exit 2
      fi
    done
    wheel=${EXECUTORCH_AARCH64_WHEEL:-}
    if [[ -z "$wheel" ]]; then
      mkdir -p "$build/wheel"
      wheel=$(ls "$build"/wheel/executorch-"$ET_VERSION"-*aarch64*.whl 2>/dev/null | head -n 1 || true)
      if [[ -z "$wheel" ]]; then
        "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64 \
          --python-version 3.11 "executorch==$ET_VERSION" -d "$build/wheel"
        wheel=$(ls "$build"/wheel/executorch-"$ET_VERSION"-*aarch64*.whl | head -n 1)
      fi
    fi
    root="$build/executorch-aarch64"
    if [[ ! -f "$root/.unpacked" || "$(cat "$root/.unpacked")" != "$wheel" ]]; then
      rm -rf "$root"
      mkdir -p "$root"
      unzip -q "$wheel" 'executorch/include/*' 'executorch/lib/*' -d "$root"
      echo "$wheel" > "$root/.unpacked"
    fi
    EXECUTORCH_ROOT="$root/executorch"
    cmake_args+=(-DCMAKE_TOOLCHAIN_FILE="$here/aarch64-linux-gnu.cmake")
    ;;
esac

cmake -S "$here" -B "$build" -DEXECUTORCH_ROOT="$EXECUTORCH_ROOT" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j "${JOBS:-2}"
echo "built $build/trm-runner ($arch)"
