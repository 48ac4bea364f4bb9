"""What a board has: a fresh Python environment holding numpy and ONE runtime, no torch, and
`trm_edge.runtime` on the path. It solves puzzles from an exported bundle. LiteRT boards
(Raspberry Pi and friends) use `tflite_runtime`, which needs numpy<2: that is its own environment."""
from __future__ import annotations

import importlib.util
import subprocess
import venv
from pathlib import Path

import pytest

from trm_edge.export.bundle import export_bundle

REPO = Path(__file__).resolve().parents[1]
BOARDS = {   # target -> (what the board installs, the extra that exports here)
    "onnx": (["numpy", "jsonschema", "onnxruntime==1.32.0"], "onnxruntime"),
    "tflite": (["numpy<2", "jsonschema", "tflite-runtime==2.14.0"], "litert_torch"),
}


@pytest.mark.parametrize("target", list(BOARDS))
def test_torch_free_environment_runs_a_bundle(tiny_sudoku_checkpoint, tmp_path, target):
    packages, exporter = BOARDS[target]
    if importlib.util.find_spec(exporter) is None:
        pytest.skip(f"exporting needs the {target} extra (pip install 'trm-edge[{target}]')")
    path, _ = export_bundle(tiny_sudoku_checkpoint, target, tmp_path / "bundle", log=lambda *a: None)
    env_dir = tmp_path / "board"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], capture_output=True, text=True, timeout=600)
    if r.returncode:
        pytest.skip(f"could not install {' '.join(packages)} from the registry: {r.stderr.strip()[-300:]}")
    code = (
        "import sys, numpy as np\n"
        "from trm_edge.runtime.bundle import Bundle\n"
        f"b = Bundle({str(path)!r})\n"
        "sol = b.solve(np.array([[1, 3, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 4, 1]] * 3))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(type(b.step).__module__, np.__version__, sol.steps.tolist(), sol.predictions.shape)\n")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "(3, 16)" in r.stdout
    if target == "tflite":
        assert r.stdout.startswith("trm_edge.runtime.tflite_backend 1.")     # tflite_runtime on numpy 1.x
    r = subprocess.run([str(py), "-c", "import torch"], capture_output=True, text=True)
    assert r.returncode != 0                      # really no torch there
