"""Helpers shared by the tests of native code (the C++ runner, its JNI layer, the device script):
what the host lacks, building, and the Python runtime's answers to compare with."""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
RUNNER_DIR = REPO / "export" / "executorch" / "runner"
MODEL = REPO / "trm_edge" / "models" / "sudoku.safetensors"


def executorch_root() -> Path | None:
    spec = importlib.util.find_spec("executorch")     # without importing it (that loads torch)
    locations = list(spec.submodule_search_locations or []) if spec else []   # a namespace package
    return Path(locations[0]) if locations else None


def why_no_native() -> str | None:
    missing = [t for t in ("g++", "cmake") if not shutil.which(t)]
    if missing:
        return f"the native runner needs {' and '.join(missing)}: apt-get install g++ cmake nlohmann-json3-dev"
    if not Path("/usr/include/nlohmann/json.hpp").exists():
        return "the native runner needs nlohmann/json.hpp: apt-get install nlohmann-json3-dev"
    root = executorch_root()
    if root is None or not (root / "lib" / "libexecutorch.so").exists() or not (root / "include").is_dir():
        return "the native runner needs the executorch extra's C++ runtime: pip install 'trm-edge[executorch]'"
    if platform.machine() != "x86_64":
        return f"the native build test is written for x86-64 hosts, this is {platform.machine()}"
    return None


def why_no_arm() -> str | None:
    missing = [t for t in ("aarch64-linux-gnu-g++", "qemu-aarch64", "unzip") if not shutil.which(t)]
    if missing:
        return f"the ARM64 build needs {', '.join(missing)}: apt-get install g++-aarch64-linux-gnu qemu-user unzip"
    return None


def build_runner(arch: str, out: Path) -> Path:
    """export/executorch/runner/build.sh ARCH OUT; the test fails with the build's output if it does."""
    r = subprocess.run(["bash", str(RUNNER_DIR / "build.sh"), arch, str(out)], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    if r.returncode:
        pytest.fail(f"build.sh {arch} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return out


def python_solutions(bundle: Path, puzzles: np.ndarray, **kw) -> list[dict]:
    """`Bundle.solve` per puzzle (batch 1, as the native runner runs): answer, steps, q_halt per step."""
    from trm_edge.runtime.bundle import Bundle
    b = Bundle(bundle)
    out = []
    for t in puzzles:
        sol = b.solve(t[None], record=True, **kw)
        out.append({"answer": sol.predictions[0].tolist(), "steps": int(sol.steps[0]),
                    "q_halt": [float(r.q_halt[0]) for r in sol.trace]})
    return out


def sudoku_text(tokens) -> str:
    """9x9 Sudoku tokens as the task writes them: '.' blank (token 1), digit d is token d + 1."""
    return "".join("." if t == 1 else str(t - 1) for t in tokens)
