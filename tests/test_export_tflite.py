"""LiteRT bundles: litert-torch conversion at a fixed batch, io_names mapping the renamed signature,
parity through ai_edge_litert, and the host loop padding/chunking rows to the fixed batch."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="the tflite extra is not installed (pip install 'trm-edge[tflite]')")

from trm_edge.export.bundle import export_bundle   # noqa: E402
from trm_edge.runtime.bundle import Bundle          # noqa: E402


def test_tflite_fp32_bundle(golden, tmp_path):
    if golden.name != "trm_att_tiny":
        pytest.skip("one variant keeps the suite fast")
    path, manifest = export_bundle(golden.model(), "tflite", tmp_path / "lt", "fp32", log=lambda *a: None)
    assert manifest["batch"] == 1 and manifest["parity"]["passed"] is True
    assert manifest["io_names"]["tokens"] == "args_0" and manifest["io_names"]["q_halt"] == "output_3"
    assert manifest["inputs"][0] == {"name": "tokens", "shape": [1, 16], "dtype": "int32"}
    sol = Bundle(path).solve(golden["inputs"], puzzle_ids=golden["puzzle_identifiers"], halting="fixed", record=True)
    for s, rec in enumerate(sol.trace):     # 4 rows through a batch-1 model
        assert np.abs(rec.logits - golden["eval_logits"][s]).max() <= 1e-3
