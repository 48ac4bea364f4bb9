"""Every target at every precision it offers: the export succeeds, the manifest says what was made,
the bundle runs from its manifest with its real runtime (or, for Core ML off macOS, its spec is
verified), and the parity report carries task accuracy next to PyTorch fp32. A tiny 4x4 Sudoku
model keeps this fast; the fixtures (test_export_<target>.py) and the shipped model
(benchmarks/export_matrix.py, results in the README) cover the real sizes."""
from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from trm_edge.export.bundle import export_bundle
from trm_edge.runtime.bundle import Bundle
from trm_edge.runtime.manifest import BundleError

EXTRA_MODULE = {"onnx": "onnxruntime", "executorch": "executorch", "coreml": "coremltools", "tflite": "litert_torch"}
MATRIX = [("onnx", "fp32"), ("onnx", "int8"), ("executorch", "fp32"), ("executorch", "int8"),
          ("coreml", "fp32"), ("coreml", "fp16"), ("coreml", "int8"),
          ("tflite", "fp32"), ("tflite", "int8"), ("tflite", "int8-weights")]


@pytest.mark.parametrize("target,precision", MATRIX, ids=[f"{t}-{p}" for t, p in MATRIX])
def test_every_precision_exports_and_runs(tiny_sudoku_checkpoint, tmp_path, target, precision):
    if importlib.util.find_spec(EXTRA_MODULE[target]) is None:
        pytest.skip(f"the {target} extra is not installed (pip install 'trm-edge[{target}]')")
    out = tmp_path / "bundles"
    path, manifest = export_bundle(tiny_sudoku_checkpoint, target, out / "b", precision, log=lambda *a: None)
    on_disk = json.loads((path / "manifest.json").read_text())
    assert on_disk["target"] == target and on_disk["precision"] == precision
    assert set(on_disk["files"]) == {manifest["model_file"], "init.npz", "init.bin"}
    raw = np.fromfile(path / "init.bin", dtype="<f4")       # native readers' copy of init.npz
    with np.load(path / "init.npz") as init:
        for a in on_disk["init_bin"]["arrays"]:
            start = a["offset"] // 4
            np.testing.assert_array_equal(raw[start:start + int(np.prod(a["shape"]))].reshape(a["shape"]), init[a["name"]])
    assert [p.name for p in out.iterdir()] == ["b"]               # nothing staged is left behind
    parity = manifest["parity"]
    if target == "coreml" and sys.platform != "darwin":
        assert parity["ran"] is False and parity["io_match"] is True and parity["passed"] is True
        with pytest.raises(BundleError, match="macOS"):
            Bundle(path)
        return
    assert parity["ran"] is True
    assert parity["passed"] is (True if precision == "fp32" else None)     # quantized: judged by accuracy
    acc = parity["task_accuracy"]
    assert acc["puzzles"] == 100 and 0.0 <= acc["bundle"] <= 1.0 and 1 <= acc["mean_steps_bundle"] <= 6
    sol = Bundle(path, threads=1).solve(np.ones((5, 16), dtype=np.int64))   # more rows than a fixed batch of 1
    assert sol.predictions.shape == (5, 16) and (sol.steps >= 1).all()
    if target == "executorch":     # the manifest rides in the program as a constant method
        from executorch.runtime import Runtime

        from trm_edge.export.executorch import MANIFEST_METHOD
        program = Runtime.get().load_program(path / "step.pte")
        assert set(program.method_names) == {"forward", MANIFEST_METHOD}
        embedded = json.loads(program.load_method(MANIFEST_METHOD).execute([])[0])
        assert embedded["trm_config"] == manifest["trm_config"] and embedded["parity"] == manifest["parity"]

