"""Core ML bundles: conversion of both variants; on Linux the spec is verified (reloads, I/O as the
manifest says, op list) and running is reported as unavailable, never faked."""
from __future__ import annotations

import json
import sys

import pytest

ct = pytest.importorskip("coremltools", reason="the coreml extra is not installed (pip install 'trm-edge[coreml]')")

from trm_edge.export.bundle import export_bundle   # noqa: E402
from trm_edge.runtime.bundle import Bundle          # noqa: E402
from trm_edge.runtime.manifest import BundleError   # noqa: E402


@pytest.mark.parametrize("precision", ["fp16"])
def test_coreml_bundle(golden, tmp_path, precision):
    path, manifest = export_bundle(golden.model(), "coreml", tmp_path / "cm", precision, log=lambda *a: None)
    assert manifest["inputs"][0] == {"name": "tokens", "shape": ["batch", golden.config["seq_len"]], "dtype": "int32"}
    spec = ct.models.MLModel(str(path / "step.mlpackage"), skip_model_load=True).get_spec()
    assert [i.name for i in spec.description.input] == [t["name"] for t in manifest["inputs"]]
    assert [o.name for o in spec.description.output] == ["y_next", "z_next", "logits", "q_halt"]
    embedded = json.loads(spec.description.metadata.userDefined["trm_edge.manifest"])
    assert embedded["trm_config"] == manifest["trm_config"]
    if sys.platform != "darwin":
        assert manifest["parity"]["ran"] is False and manifest["parity"]["io_match"] is True
        assert manifest["parity"]["op_counts"]
        with pytest.raises(BundleError, match="macOS"):
            Bundle(path)
    else:
        assert manifest["parity"]["passed"] in (True, None)
