"""The targets table: ONE row per export target, read by the CLI's choices, `bench`, `Bundle` and the tests.

Torch-free and import-free (module paths are strings, imported only when a target is used), so the
numpy runtime on a board reads it too. A new target is one exporter module (trm_edge/export/), one
backend module (trm_edge/runtime/) and one row here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str                     # the manifest's "target", the CLI's --target
    precisions: tuple[str, ...]   # what `export --quantize` offers, fp32 first (STATIC ones calibrate)
    extra: str                    # pip install 'trm-edge[<extra>]' brings its toolchain and runtime
    runtime_extra: str            # pip install 'trm-edge[<runtime_extra>]' runs its bundles (trm_edge/extras.py)
    exporter: str                 # module with the Exporter protocol (trm_edge.export.protocol)
    backend: str                  # "module:Class" running the bundle's model file on numpy arrays
    probe: str                    # a module of the extra: installed here iff it imports
    runs_on: str = "any"          # "any", or the one sys.platform its runtime exists on
    calibrations: tuple[str, ...] = ("minmax",)   # how int8-static sets activation ranges (CALIBRATIONS), default first


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("onnx", ("fp32", "int8", "int8-static"), "onnx", "onnxruntime", "trm_edge.export.onnx",
           "trm_edge.runtime.onnx_backend:OnnxRuntimeStep", "onnxruntime", calibrations=("minmax", "percentile")),
    Target("executorch", ("fp32", "fp16", "int8", "int8-static"), "executorch", "executorch-runtime", "trm_edge.export.executorch",
           "trm_edge.runtime.executorch_backend:ExecuTorchStep", "executorch"),
    Target("coreml", ("fp32", "fp16", "int8", "int8-static"), "coreml", "coreml", "trm_edge.export.coreml",
           "trm_edge.runtime.coreml_backend:CoreMLStep", "coremltools", runs_on="darwin"),
    Target("tflite", ("fp32", "fp16", "int8", "int8-weights", "int8-static"), "tflite", "litert", "trm_edge.export.tflite",
           "trm_edge.runtime.tflite_backend:LiteRTStep", "litert_torch", calibrations=("minmax", "percentile")),
)}

STATIC = ("int8-static",)      # precisions whose activation scales are fixed at export, from calibration

CALIBRATIONS = {               # how a static export turns the calibration feeds into activation ranges
    "minmax": "each activation's range is the least and greatest value over every calibration feed",
    "percentile": "each activation's range is the mean over the feeds of its [100-P, P] percentiles "
                  "(--calibration-percentile P): rare outliers clipped instead of stretching the scale",
}

PRECISIONS = tuple(dict.fromkeys(p for t in TARGETS.values() for p in t.precisions))   # every precision, once
MATRIX = tuple((t.name, p) for t in TARGETS.values() for p in t.precisions)            # every (target, precision)


def target(name: str) -> Target:
    """The row of `name`, or a one-line error naming the targets there are."""
    from trm_edge.errors import TRMEdgeError
    if name not in TARGETS:
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise TRMEdgeError(f"unknown target {shown}; targets: {', '.join(TARGETS)}")
    return TARGETS[name]
