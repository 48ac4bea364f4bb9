"""Tasks: per task, how a puzzle becomes tokens and tokens become an answer (numpy only here).

A task is named in a checkpoint's or bundle's metadata, e.g. {"name": "sudoku", "size": 9}, and
is one module here plus one row of TASKS (see trm_edge/data/task.py for what a task supplies);
`lookup(task)` gives its Task. `codec(task, seq_len)` returns the task's codec:

    parse(text) -> tokens [L]                 PuzzleError for text that is no puzzle of the task
    render(tokens) -> str                     the pretty form (grid lines, one row per line)
    compact(tokens) -> str                    the one-line notation parse reads back (81 digits for Sudoku)
    contradiction(tokens) -> str | None       why the puzzle's givens break the task's rules, or None
    satisfies(puzzle_tokens, answer_tokens) -> bool | None
                                              whether an answer keeps the task's rules (no label
                                              needed); None: the task has no such checker

Models that name no task use raw tokens. `read_puzzle_file(path)` reads a file of puzzles, one per
line, refusing what is not UTF-8 text.
"""
from __future__ import annotations

import numbers
import os
import stat
from pathlib import Path

from trm_edge.errors import PuzzleError

TASKS = {   # THE table of tasks: name -> the module holding its `TASK` (a trm_edge.data.task.Task)
    "sudoku": "trm_edge.data.sudoku",
    "maze": "trm_edge.data.maze",
    "arc": "trm_edge.data.arc",
    "tokens": "trm_edge.data.tokens",
}
MAX_PUZZLE_FILE_BYTES = 64 * 2**20     # puzzle files are text: a bigger one is a mistake


def task_name(task) -> str:
    """The table's name for a task as metadata gives it ({"name": ...}, a name, or None: raw tokens)."""
    name = task.get("name") if isinstance(task, dict) else task
    return "tokens" if name is None else name


def lookup(task):
    """The Task of `task` ({"name": "sudoku", ...}, "sudoku", or None for raw tokens), or a PuzzleError."""
    import importlib
    name = task_name(task)
    if not isinstance(name, str) or name not in TASKS:
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise PuzzleError(f"unknown task {shown}; known tasks: {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name]).TASK


def codec(task: dict | str | None, seq_len: int, vocab_size: int | None = None):
    """The codec of `task` for a model of `seq_len` tokens (and, for raw tokens, `vocab_size` ids)."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral) or seq_len < 1:
        raise PuzzleError(f"seq_len must be a positive whole number, got {seq_len!r}")
    return lookup(task).codec(int(seq_len), vocab_size)


def with_encoding(task, seq_len: int):
    """A task's metadata with its encoding (data, from the task's row): what a manifest's `task` holds."""
    if task is None:
        return None
    encoding = lookup(task).encoding(task, seq_len)
    return task if encoding is None else {**task, "encoding": encoding}


def sample_puzzles(task, seq_len: int, vocab_size: int, n: int, seed: int = 0):
    """n real puzzles of the task (generated; raw tokens: uniform random ids), tokens int64 [n, seq_len]."""
    import numpy as np
    return np.asarray(lookup(task).sample(n, seq_len, vocab_size, seed), dtype=np.int64)


def checker(task, labels=None):
    """(inputs, predictions) -> bool [B]: the task's own rule checker; without one, exact match with
    `labels` (ids < 0 ignored); None when there is neither."""
    t = lookup(task)
    if t.has_checker:
        return t.check
    if labels is None:
        return None
    mask = labels >= 0
    return lambda inputs, preds: ((preds == labels) | ~mask).all(-1)


def read_puzzle_file(path, comment: str | None = "#") -> list[str]:
    """The puzzles of a UTF-8 text file, one per line (line endings removed, nothing else changed).

    Blank lines are skipped, and so are lines starting with `comment` (after leading spaces; pass
    comment=None to keep them, e.g. for mazes whose rows start with '#' walls). A file that is not
    UTF-8 text (binary, UTF-16, Latin-1, ...), is no regular file, is too big, or holds no puzzle
    raises a one-line PuzzleError naming the file. A UTF-8 byte-order mark is allowed."""
    fix = "save it as UTF-8 text, one puzzle per line"
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise PuzzleError(f"a puzzle file is a path, got {path!r}; {fix}")
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise PuzzleError(f"no puzzle file at {p}; give a text file with one puzzle per line") from None
    except (OSError, ValueError) as e:
        raise PuzzleError(f"cannot open puzzle file {p} ({type(e).__name__}); give a readable text file") from None
    if not stat.S_ISREG(st.st_mode):
        raise PuzzleError(f"puzzle file {p} is not a regular file; {fix}")
    if st.st_size > MAX_PUZZLE_FILE_BYTES:
        raise PuzzleError(f"puzzle file {p} is {st.st_size / 2**20:.0f} MB, over the {MAX_PUZZLE_FILE_BYTES >> 20} MB "
                          f"a file of puzzles may hold; split it")
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_PUZZLE_FILE_BYTES + 1)
    except OSError as e:
        raise PuzzleError(f"cannot read puzzle file {p} ({e.strerror or type(e).__name__}); "
                          f"check that it exists and is readable") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PuzzleError(f"puzzle file {p} is UTF-16 text; {fix}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw:
        raise PuzzleError(f"puzzle file {p} holds NUL bytes (a binary or UTF-16 file); {fix}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PuzzleError(f"puzzle file {p} is not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}; "
                          f"Latin-1 or another encoding?); {fix}") from None
    bad = next((ch for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ord(ch) == 127), None)
    if bad is not None:
        raise PuzzleError(f"puzzle file {p} holds the control character {bad!r} (a binary file?); {fix}")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    puzzles = [ln for ln in lines if ln.strip() and not (comment and ln.lstrip().startswith(comment))]
    if not puzzles:
        raise PuzzleError(f"puzzle file {p} holds no puzzle; write one puzzle per line"
                          + (f" (lines starting with {comment!r} are comments)" if comment else ""))
    return puzzles


def check_text(text, what: str = "a puzzle") -> str:
    """`text` if it is a str, else a PuzzleError (bytes, None, numbers are no puzzle text)."""
    if not isinstance(text, str):
        raise PuzzleError(f"{what} is text, got {type(text).__name__}; pass the puzzle as a string")
    return text


def as_tokens(tokens, seq_len: int, what: str = "puzzle"):
    """tokens as a 1-D int64 array of `seq_len`, or a PuzzleError."""
    import numpy as np
    try:
        t = np.asarray(tokens)
    except (ValueError, TypeError, OverflowError):
        raise PuzzleError(f"{what} tokens must be {seq_len} integers; got a ragged or mixed list") from None
    if t.ndim != 1 or t.shape[0] != seq_len or not np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_:
        raise PuzzleError(f"{what} tokens must be {seq_len} integers, got {t.dtype} {list(t.shape)}")
    return t.astype(np.int64)
