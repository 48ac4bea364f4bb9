"""What every bundle backend shares: the step's inputs and outputs as the manifest lists them."""
from __future__ import annotations

import numpy as np

from trm_edge.runtime.manifest import BundleError


class ManifestStep:
    """Reads input order and dtypes, output order, the batch (fixed or its bound) and P+L from a manifest."""

    def read_manifest(self, manifest: dict) -> None:
        self.inputs = [(i["name"], np.dtype(i["dtype"])) for i in manifest["inputs"]]
        self.outputs = [o["name"] for o in manifest["outputs"]]
        self.batch = manifest.get("batch")                  # a fixed batch, or None
        self.max_batch = manifest.get("max_batch")          # the largest dynamic batch, or None for any
        c = manifest["trm_config"]
        self.positions = c["seq_len"] + (c["puzzle_emb_len"] if c.get("puzzle_emb_ndim") else 0)

    def feed(self, tokens, puzzle_emb, y, z) -> dict:
        """name -> contiguous array of the manifest's dtype, in the step's input order."""
        given = {"tokens": tokens, "puzzle_emb": puzzle_emb, "y": y, "z": z}
        return {n: np.ascontiguousarray(given[n], dtype=d) for n, d in self.inputs}


def load_error(runtime: str, model_file, e: Exception) -> BundleError:
    """One line out of a runtime's (often multi-line) complaint about a model file."""
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return BundleError(f"{runtime} cannot load {model_file}: {msg}")
