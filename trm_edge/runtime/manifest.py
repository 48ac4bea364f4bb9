"""The bundle manifest: the contract between exporters, the Python runtime and native runners.

A bundle is a directory:

    manifest.json   this schema (format_version 1)
    <model_file>    the step graph for one target (step.onnx, step.pte, step.mlpackage, step.tflite)
    init.npz        y_init, z_init [D] float32 (and puzzle_emb_table [rows, ndim] when the table is small)

manifest.json holds: format_version, target, precision, model_file, batch (an int, or null for any
batch), files (name -> sha256, bytes) for every file, trm_config, task (with its token encoding),
inputs and outputs (name, shape, dtype; "batch" stands for the batch dimension), io_names (our
tensor name -> the name inside the format, where the format renames them), halting (max_steps,
threshold), tools (versions) and parity (what was measured against PyTorch float32 at export).

This module needs the standard library alone: anything that can read JSON can run a bundle.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from trm_edge.errors import TRMEdgeError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INIT = "init.npz"
INIT_BIN = "init.bin"     # the same arrays, raw little-endian float32, for native readers (see manifest "init_bin")
TARGETS = ("onnx", "executorch", "coreml", "tflite")


class BundleError(TRMEdgeError):
    pass


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory's files (sorted relative paths and their bytes)."""
    h = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size_of(path: Path) -> int:
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def step_io(config: dict, token_dtype: str = "int64", batch=None) -> tuple[list, list]:
    """The step's inputs and outputs in order, from a TRM config dict."""
    B = "batch" if batch is None else int(batch)
    L, D, V = config["seq_len"], config["hidden_size"], config["vocab_size"]
    N = L + (config["puzzle_emb_len"] if config.get("puzzle_emb_ndim", 0) else 0)
    inputs = [{"name": "tokens", "shape": [B, L], "dtype": token_dtype}]
    if config.get("puzzle_emb_ndim", 0):
        inputs.append({"name": "puzzle_emb", "shape": [B, config["puzzle_emb_ndim"]], "dtype": "float32"})
    inputs += [{"name": "y", "shape": [B, N, D], "dtype": "float32"}, {"name": "z", "shape": [B, N, D], "dtype": "float32"}]
    outputs = [{"name": "y_next", "shape": [B, N, D], "dtype": "float32"},
               {"name": "z_next", "shape": [B, N, D], "dtype": "float32"},
               {"name": "logits", "shape": [B, L, V], "dtype": "float32"},
               {"name": "q_halt", "shape": [B], "dtype": "float32"}]
    return inputs, outputs


def record_files(bundle: Path, manifest: dict) -> dict:
    """Fill manifest["files"] with the sha256 and size of every file in the bundle but the manifest."""
    bundle = Path(bundle)
    manifest["files"] = {p.name: {"sha256": sha256_of(p), "bytes": size_of(p)}
                         for p in sorted(bundle.iterdir()) if p.name != MANIFEST and not p.name.startswith(".")}
    return manifest


def write_manifest(bundle: Path, manifest: dict) -> Path:
    p = Path(bundle) / MANIFEST
    tmp = p.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False))
    tmp.replace(p)
    return p


def read_manifest(bundle, verify: bool = True) -> dict:
    """manifest.json of a bundle, checked: version, required keys, every file present and unchanged."""
    bundle = Path(bundle)
    p = bundle / MANIFEST
    if not p.is_file():
        raise BundleError(f"{bundle} is not a bundle: it has no {MANIFEST} (export one with `trm-edge export`)")
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{p} is not valid JSON ({e.msg} at line {e.lineno}); re-export the bundle") from None
    if m.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{p}: format_version {m.get('format_version')!r}, this runtime reads {FORMAT_VERSION}")
    missing = [k for k in ("target", "precision", "model_file", "files", "trm_config", "inputs", "outputs", "halting")
               if k not in m]
    if missing:
        raise BundleError(f"{p} lacks {', '.join(missing)}; re-export the bundle")
    if verify:
        for name, info in m["files"].items():
            f = bundle / name
            if not f.exists():
                raise BundleError(f"{bundle}: {name} is missing (the manifest lists it); copy the whole bundle")
            if sha256_of(f) != info["sha256"]:
                raise BundleError(f"{bundle}: {name} does not match its sha256 in the manifest (corrupted or "
                                  f"truncated: {size_of(f)} bytes, expected {info['bytes']}); re-export or re-copy it")
    return m
