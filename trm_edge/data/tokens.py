"""Raw tokens: a puzzle given as its token ids, for models that name no task."""
from __future__ import annotations

import re

import numpy as np

from trm_edge.errors import PuzzleError


class TokenCodec:
    name = "tokens"

    def __init__(self, seq_len: int):
        self.seq_len = seq_len

    def parse(self, text: str) -> np.ndarray:
        parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
        if not all(re.fullmatch(r"-?\d+", p) for p in parts):
            raise PuzzleError("a raw-token puzzle is integers separated by commas or spaces, e.g. '0,3,1,...'")
        if len(parts) != self.seq_len:
            raise PuzzleError(f"puzzle has {len(parts)} tokens, the model takes {self.seq_len}")
        return np.array([int(p) for p in parts], dtype=np.int64)

    def render(self, tokens) -> str:
        return " ".join(str(int(t)) for t in np.asarray(tokens).reshape(-1))
