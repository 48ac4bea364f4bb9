"""Raw tokens: a puzzle given as its token ids, for models that name no task."""
from __future__ import annotations

import re

import numpy as np

from trm_edge.errors import PuzzleError

MAX_TOKEN = 2**31 - 1      # token ids are int32 on every backend


class TokenCodec:
    name = "tokens"

    def __init__(self, seq_len: int, vocab_size: int | None = None):
        self.seq_len = seq_len
        self.vocab_size = vocab_size

    def parse(self, text: str) -> np.ndarray:
        """'0,3,1,...' or '0 3 1 ...' -> tokens [seq_len]: ASCII whole numbers 0 or more (inside the
        vocabulary when the codec knows it); floats, signs and other digits are refused."""
        from trm_edge.data import check_text
        parts = [p for p in re.split(r"[\s,]+", check_text(text).strip()) if p]
        top = MAX_TOKEN if self.vocab_size is None else self.vocab_size - 1
        bad = next((p for p in parts if not re.fullmatch(r"[0-9]+", p, re.ASCII)), None)
        if bad is not None:
            shown = repr(bad) if len(bad) <= 20 else repr(bad[:17] + "...")
            raise PuzzleError(f"token {shown} is no token id: a raw-token puzzle is whole numbers 0-{top} in "
                              f"ASCII digits separated by commas or spaces, e.g. '0,3,1,...'")
        if len(parts) != self.seq_len:
            raise PuzzleError(f"puzzle has {len(parts)} tokens, the model takes {self.seq_len}: "
                              f"give {self.seq_len} token ids separated by commas or spaces")
        big = next((p for p in parts if len(p.lstrip("0")) > 10 or int(p) > top), None)
        if big is not None:
            shown = big if len(big) <= 20 else big[:17] + "..."
            raise PuzzleError(f"token {shown} is outside the vocabulary 0..{top}; give token ids the model knows")
        return np.array([int(p) for p in parts], dtype=np.int64)

    def contradiction(self, tokens) -> None:
        """Raw tokens follow no rules known here: always None."""
        return None

    def satisfies(self, puzzle_tokens, answer_tokens) -> None:
        """No label-free checker for raw tokens: None."""
        return None

    def compact(self, tokens) -> str:
        return ",".join(str(int(t)) for t in np.asarray(tokens).reshape(-1))

    def render(self, tokens) -> str:
        return " ".join(str(int(t)) for t in np.asarray(tokens).reshape(-1))


from trm_edge.data.task import Task  # noqa: E402


class TokensTask(Task):
    """Raw token ids: no rules, no checker, no augmentation; sampled puzzles are uniform random tokens."""
    name = "tokens"

    def codec(self, seq_len, vocab_size=None):
        return TokenCodec(seq_len, vocab_size)


TASK = TokensTask()
