"""The host runtime: numpy only. A board runs it with numpy and one backend runtime.

    from trm_edge.runtime import solve
    solution = solve(step, tokens, puzzle_emb, y_init, z_init, max_steps=16, halting="q_halt")

or, for a bundle folder or a checkpoint, `trm_edge.open(path).solve(tokens)` (a Solver).

Backends live in one small module each and are imported on demand:
    trm_edge.runtime.torch_eager   PyTorch eager (the baseline)
"""
from trm_edge.runtime.halting import POLICIES, Fixed, Halting, QHalt, policy
from trm_edge.runtime.loop import HALTING, Solution, StepRecord, broadcast_state, check_tokens, run_step, solve
from trm_edge.runtime.solver import Solver

__all__ = ["HALTING", "POLICIES", "Fixed", "Halting", "QHalt", "Solution", "Solver", "StepRecord", "broadcast_state",
           "check_tokens", "policy", "run_step", "solve"]
