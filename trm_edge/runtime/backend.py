"""What every bundle backend shares: the step's inputs and outputs as the manifest lists them."""
from __future__ import annotations

import numpy as np

from trm_edge.runtime.manifest import BundleError


class ManifestStep:
    """Reads input order and dtypes, output order, the batch (fixed or its bound) and P+L from a manifest."""

    def read_manifest(self, manifest: dict) -> None:
        self.manifest = manifest
        self.inputs = [(i["name"], np.dtype(i["dtype"])) for i in manifest["inputs"]]
        self.outputs = [o["name"] for o in manifest["outputs"]]
        self.batch = manifest.get("batch")                  # a fixed batch, or None
        self.max_batch = manifest.get("max_batch")          # the largest dynamic batch, or None for any
        c = manifest["trm_config"]
        self.positions = c["seq_len"] + (c["puzzle_emb_len"] if c.get("puzzle_emb_ndim") else 0)

    def check_io(self, model_file, found: dict) -> None:
        """The model file's own inputs and outputs (name -> (shape, dtype) as the runtime reports them, our
        names) against the manifest's, before any step: another bundle's model file is refused here."""
        want = {t["name"]: t for t in self.manifest["inputs"] + self.manifest["outputs"]}
        missing = sorted(set(want) - set(found))
        if missing:
            raise BundleError(f"{model_file} lacks the tensors {', '.join(missing)} the manifest lists; "
                              f"the model file belongs to another bundle (re-export)")
        for name, (shape, dtype) in found.items():
            if name not in want:
                continue
            w = want[name]
            fixed = [d if isinstance(d, int) else None for d in w["shape"]]
            got = [d if isinstance(d, int) and d >= 0 else None for d in shape]
            if len(got) != len(fixed) or any(g is not None and f is not None and g != f for g, f in zip(got, fixed)) \
                    or (dtype is not None and str(dtype) != w["dtype"]):
                raise BundleError(f"{model_file}: {name} is {dtype} {shape} in the model file, the manifest says "
                                  f"{w['dtype']} {w['shape']}; the model file belongs to another bundle (re-export)")

    def feed(self, tokens, puzzle_emb, y, z) -> dict:
        """name -> contiguous array of the manifest's dtype, in the step's input order."""
        given = {"tokens": tokens, "puzzle_emb": puzzle_emb, "y": y, "z": z}
        return {n: np.ascontiguousarray(given[n], dtype=d) for n, d in self.inputs}


def load_error(runtime: str, model_file, e: Exception) -> BundleError:
    """One line out of a runtime's (often multi-line) complaint about a model file."""
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return BundleError(f"{runtime} cannot load {model_file}: {msg}")
