"""ExecuTorch bundles: the attention fixture through torch.export -> XNNPACK -> .pte, run by the
wheel's runtime from the manifest, within fp32 tolerance of PyTorch and of the reference."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("executorch", reason="the executorch extra is not installed (pip install 'trm-edge[executorch]')")

from trm_edge.export.bundle import export_bundle   # noqa: E402
from trm_edge.runtime.bundle import Bundle          # noqa: E402


def test_executorch_fp32_bundle(golden, tmp_path):
    if golden.name != "trm_att_tiny":
        pytest.skip("one variant keeps the suite fast: exporting the unrolled step takes minutes")
    # a fixed batch of 1 (the fixture's 4 puzzles run as 4 calls): it lowers in about 2/3 of the time of a
    # dynamic batch, which tests/test_export_precisions.py covers
    path, manifest = export_bundle(golden.model(), "executorch", tmp_path / "et", "fp32", batch=1, log=lambda *a: None)
    assert manifest["parity"]["passed"] is True and manifest["spelling"] == "xnnpack"
    assert json.loads((path / "manifest.json").read_text())["files"]["step.pte"]["bytes"] > 0
    sol = Bundle(path).solve(golden["inputs"], puzzle_ids=golden["puzzle_identifiers"], halting="fixed", record=True)
    for s, rec in enumerate(sol.trace):
        assert np.abs(rec.logits - golden["eval_logits"][s]).max() <= 1e-3
