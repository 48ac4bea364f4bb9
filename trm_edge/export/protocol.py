"""What an exporter module is (one per target, named by the targets table) and what its export hands on.

The shared pipeline (export/bundle.py) calls `export`, writes the init files and the manifest from
the returned `Exported`, calls `Exported.finish(manifest)` (which writes the manifest into the model
file where the format can carry one, or writes the model file itself), then runs parity on that very
file (or, where the format cannot run here, `offline_check`). Nothing travels between these stages
in module state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable


@dataclass
class Exported:
    model_file: str                        # its name inside the stage folder
    batch: int | None = None               # the fixed batch it takes (None: a dynamic batch)
    max_batch: int | None = None           # the largest dynamic batch (None: any)
    io_names: dict = field(default_factory=dict)   # our tensor names -> the format's, where they differ
    finish: Callable[[dict], None] | None = None   # writes the manifest (without files, parity) into the model file
    quantization: dict | None = None       # how a static precision was quantized (the manifest's "quantization")


@runtime_checkable
class Exporter(Protocol):
    SPELLING: str          # the op spelling of trm_edge.step this target converts exactly
    TOKEN_DTYPE: str       # "int64" or "int32"

    def export(self, step, stage: Path, precision: str, batch: int | None, calibration=None) -> Exported:
        """Write the model file of `step` at `precision` into `stage` (batch None: dynamic); `calibration`
        (export/calibration.py, for the targets table's STATIC precisions): the step's recorded real inputs."""

    def versions(self) -> dict:
        """The toolchain's package versions, recorded in the manifest."""

    def offline_check(self, model_file: Path, manifest: dict) -> dict | None:
        """None where the bundle runs on this machine (parity decides); else what was verified without
        running it: {"ran": False, "reason", "passed", "problems", ...}."""
