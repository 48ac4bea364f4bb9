"""The shipped model's packaged bundle is its export. (Its model card, models/sudoku.card/, is checked with
every other card by tests/test_model_cards.py: the first 100 puzzles of each held-out set.)"""
from __future__ import annotations

from trm_edge.cli import DEFAULT_MODEL


def test_the_shipped_bundle_is_the_shipped_model_s_export():
    """trm_edge/models/sudoku-onnx-int8 (what `trm-edge run` uses without a BUNDLE) was exported from the
    shipped checkpoint, records the recommended views, and opens by the contract's rules."""
    import hashlib

    from trm_edge.extras import SHIPPED_BUNDLE
    from trm_edge.runtime.bundle import Bundle
    from trm_edge.runtime.decide import RECOMMENDED
    b = Bundle(SHIPPED_BUNDLE)
    m = b.manifest
    assert m["source_sha256"] == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest(), \
        "re-export it: trm-edge export --target onnx --quantize int8 --out trm_edge/models/sudoku-onnx-int8"
    assert (m["target"], m["precision"]) == ("onnx", "int8")
    assert m["views"]["count"] == 8 and m["views"]["recommended"] == list(RECOMMENDED)
