"""The trained 4x4-Sudoku TRM (tests/models/sudoku4.safetensors) and the accuracy checks made with it.

A random model solves nothing and halts at once, so accuracy asserts on it cannot fail; this one
solves >= 95% of held-out puzzles and halts early, so a broken export, runtime or quantizer shows
up as lost accuracy or changed halting. Rebuild it with tests/models/train_sudoku4.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parent / "models" / "sudoku4.safetensors"
TASK = {"name": "sudoku", "size": 4}
MAX_STEPS = 8                 # the model's halt_max_steps
HELDOUT_SEED = 7              # not the training data's seed (0)
HELDOUT_PUZZLES = 200
MIN_FP32_ACCURACY = 0.95       # q_halt halting; measured 98.9% on 1000 held-out puzzles
MAX_HALT_STEPS = 2.0           # mean q_halt steps of fp32; measured 1.01 (it halts once it has solved)

# Accuracy a bundle may lose against PyTorch fp32 on the same puzzles (share of puzzles, q_halt
# halting), and how far its mean q_halt steps may move. Measured on the 200 held-out puzzles (fp32
# 98.5%, 1.005 steps): onnx/executorch/tflite fp32 identical; onnx int8 99.0% (1.010 steps);
# executorch int8, tflite int8 and int8-weights identical to fp32 (Core ML runs only on macOS). The
# bounds leave room for toolchain drift and other puzzle sets; a bundle whose weights carry noise of
# half their std falls to 84.5% (1.2 steps), of their std to 0% (6.5 steps): caught.
ACCURACY_POINTS = {"fp32": 0.01, "fp16": 0.03, "int8": 0.05, "int8-weights": 0.05, "int8-static": 0.03}
STEPS_BOUND = {"fp32": 0.05, "fp16": 0.25, "int8": 0.5, "int8-weights": 0.5, "int8-static": 0.25}


def trained_model_path() -> Path:
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing; rebuild it with .venv/bin/python tests/models/train_sudoku4.py")
    return MODEL


def load_trained():
    """The trained checkpoint as `trm-edge export --model` loads it (task: 4x4 Sudoku)."""
    from trm_edge.checkpoint import load_checkpoint
    return load_checkpoint(trained_model_path())


def build_heldout(folder: Path, puzzles: int = HELDOUT_PUZZLES) -> Path:
    """Held-out 4x4 puzzles (another seed than training) in the dataset format `eval` reads."""
    from trm_edge.data.build import build_sudoku
    build_sudoku(folder, size=4, train=0, test=puzzles, seed=HELDOUT_SEED, progress=False)
    return folder


def score(model_path, data, puzzles: int = HELDOUT_PUZZLES) -> dict:
    """q_halt accuracy and mean steps of a checkpoint or bundle on `data` (its own runtime)."""
    from trm_edge.evaluate import evaluate
    run = evaluate(model_path, data, puzzles=puzzles, fixed=False, threads=1, progress=False)["q_halt_run"]
    return {"accuracy": run["accuracy"], "mean_steps": run["mean_steps"]}


def assert_trained_fp32(ref: dict) -> None:
    """The fp32 reference really solves the task and halts early (so the bounds below mean something)."""
    assert ref["accuracy"] >= MIN_FP32_ACCURACY, f"fp32 solves {ref['accuracy']:.1%} < {MIN_FP32_ACCURACY:.0%}"
    assert ref["mean_steps"] <= MAX_HALT_STEPS, f"fp32 halts after {ref['mean_steps']:.2f} steps: q_halt is not working"


def assert_close_to_fp32(got: dict, ref: dict, precision: str) -> None:
    """A bundle's accuracy and mean q_halt steps stay within the stated bounds of PyTorch fp32's."""
    lost, moved = ref["accuracy"] - got["accuracy"], abs(got["mean_steps"] - ref["mean_steps"])
    assert lost <= ACCURACY_POINTS[precision], (
        f"{precision} bundle solves {got['accuracy']:.1%} vs fp32 {ref['accuracy']:.1%}: "
        f"lost {lost:.1%} > {ACCURACY_POINTS[precision]:.0%}")
    assert moved <= STEPS_BOUND[precision], (
        f"{precision} bundle halts after {got['mean_steps']:.2f} steps vs fp32 {ref['mean_steps']:.2f}: "
        f"moved {moved:.2f} > {STEPS_BOUND[precision]}")
