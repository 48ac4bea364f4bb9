"""The host runtime: numpy only. A board runs it with numpy and one backend runtime.

    from trm_edge.runtime import solve
    solution = solve(step, tokens, puzzle_emb, y_init, z_init, max_steps=16, halting="q_halt")

Backends live in one small module each and are imported on demand:
    trm_edge.runtime.torch_eager   PyTorch eager (the baseline)
"""
from trm_edge.runtime.loop import HALTING, Solution, StepRecord, check_tokens, solve

__all__ = ["HALTING", "Solution", "StepRecord", "check_tokens", "solve"]
