"""Tasks: per task, how a puzzle becomes tokens and tokens become an answer (numpy only here).

A task is named in a checkpoint's or bundle's metadata, e.g. {"name": "sudoku", "size": 9}.
`codec(task, seq_len)` returns the task's codec: `parse(text) -> tokens [L]` and
`render(tokens) -> str`. Models that name no task use raw tokens.
"""
from __future__ import annotations

from trm_edge.errors import PuzzleError

TASKS = ("sudoku", "maze", "arc", "tokens")


def codec(task: dict | str | None, seq_len: int):
    name = task.get("name") if isinstance(task, dict) else task
    if name in (None, "tokens"):
        from trm_edge.data.tokens import TokenCodec
        return TokenCodec(seq_len)
    if name == "sudoku":
        from trm_edge.data.sudoku import SudokuCodec
        return SudokuCodec.for_cells(seq_len)
    if name == "maze":
        from trm_edge.data.maze import MazeCodec
        return MazeCodec.for_cells(seq_len)
    if name == "arc":
        from trm_edge.data.arc import ArcCodec
        return ArcCodec.for_cells(seq_len)
    raise PuzzleError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
