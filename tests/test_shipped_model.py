"""The shipped model reproduces its model card: `trm-edge data build` regenerates the held-out puzzles
(the test split does not depend on the train split), `trm-edge eval` scores them by the Sudoku rules."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from trm_edge.cli import DEFAULT_MODEL, main

CARD = Path(__file__).resolve().parents[1] / "models" / "sudoku.eval.json"     # the model card, beside its README


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no shipped model in trm_edge/models/ yet")
def test_model_card_accuracy_reproduces(tmp_path, capsys):
    card = json.loads(CARD.read_text())
    # the first puzzles of the card's held-out set, over the first supervision steps: the card's curve
    # is solved by step 3 (accuracy_per_step), and 16 fixed steps would take minutes on 2 cores
    check = card["ci_check"]
    assert main(["data", "build", "sudoku", "--size", "9", "--train", "0", "--test", str(check["puzzles"]),
                 "--seed", str(card["data_seed"]), "--out", str(tmp_path / "data")]) == 0
    assert main(["eval", "--data", str(tmp_path / "data"), "--puzzles", str(check["puzzles"]),
                 "--max-steps", str(check["max_steps"]), "--thresholds", "0.5", "--out", str(tmp_path / "ev")]) == 0
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert res["fixed"]["accuracy"] == pytest.approx(check["fixed_accuracy"], abs=0.02)
    assert res["q_halt"]["0.5"]["accuracy"] == pytest.approx(check["q_halt_accuracy"], abs=0.02)
    assert res["q_halt"]["0.5"]["mean_steps"] == pytest.approx(check["q_halt_mean_steps"], abs=0.2)
    assert res["accuracy_per_step"] == pytest.approx(check["accuracy_per_step"], abs=0.02)


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
