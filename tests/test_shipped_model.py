"""The shipped model reproduces its model card: `trm-edge data build` regenerates the held-out puzzles
(the test split does not depend on the train split), `trm-edge eval` scores them by the Sudoku rules."""
from __future__ import annotations

import json

import pytest

from trm_edge.cli import DEFAULT_MODEL, main

CARD = DEFAULT_MODEL.with_name("sudoku.eval.json")


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no shipped model in models/ yet")
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
