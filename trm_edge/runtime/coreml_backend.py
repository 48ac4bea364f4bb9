"""Core ML backend: coremltools' predict, which exists on macOS only. Elsewhere it says so."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from trm_edge.runtime.backend import ManifestStep
from trm_edge.runtime.manifest import BundleError


class CoreMLStep(ManifestStep):
    name = "coreml"

    def __init__(self, model_file, manifest: dict, threads: int | None = None, compute_units: str = "ALL"):
        if sys.platform != "darwin":
            raise BundleError(f"Core ML runs on macOS/iOS only; this is {sys.platform}. The bundle's spec was "
                              "verified at export (see manifest parity); run it on a Mac or in an app")
        import coremltools as ct
        self.model = ct.models.MLModel(str(Path(model_file)), compute_units=getattr(ct.ComputeUnit, compute_units))
        self.read_manifest(manifest)

    def __call__(self, tokens, puzzle_emb, y, z):
        out = self.model.predict(self.feed(tokens, puzzle_emb, y, z))
        return tuple(np.asarray(out[n], dtype=np.float32) for n in self.outputs)
