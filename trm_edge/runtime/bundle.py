"""Run an exported bundle from its manifest: numpy + the target's runtime, never torch.

    from trm_edge.runtime.bundle import Bundle
    b = Bundle("bundles/sudoku-onnx-fp32")
    sol = b.solve(tokens)                       # q_halt halting as the manifest says

Opening a bundle applies the contract's rules (trm_edge/runtime/manifest.py): the manifest against
the schema, every file it names plain, inside the folder, regular, listed, of its size and sha256;
init.npz's arrays of the shapes trm_config gives. Nothing outside the bundle folder is opened.

Quiet when solving: the target's runtime is imported and opened inside trm_edge.quiet.quiet(), so its
start-up chatter (LiteRT's `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`, ExecuTorch's
torchao, pytree and cpuinfo lines) never reaches the terminal; a backend whose runtime prints at its
first step does that work while loading (LiteRT allocates its tensors there), so the steps run
unwrapped. `Bundle(path, verbose=True)` or TRM_EDGE_DEBUG=1 lets it all through; a load error is
raised unchanged (one line).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from trm_edge.runtime.manifest import INIT, BundleError, bundle_file, init_shape_ok, read_manifest
from trm_edge.runtime.solver import Solver, check_threads

def backend_for(target: str):
    """The backend class of a target (the targets table's row), imported now; a one-line error without it."""
    import importlib

    from trm_edge.targets import TARGETS
    if target not in TARGETS:
        raise BundleError(f"no runtime backend for target {target!r} here; known: {', '.join(TARGETS)}")
    row = TARGETS[target]
    mod, cls = row.backend.split(":")
    try:
        return getattr(importlib.import_module(mod), cls)
    except ImportError as e:
        board = " (or 'trm-edge[tflite-runtime]' on a board)" if target == "tflite" else ""
        raise BundleError(f"running a {target} bundle needs {e.name}, which is not installed here; "
                          f"pip install 'trm-edge[{row.runtime_extra}]'{board}") from None


def open_backend(target: str, model_file, manifest: dict, verbose: bool = False, **options):
    """The target's backend on `model_file`, imported and opened inside quiet(verbose): the one place a
    runtime starts, so whatever it prints while starting stays off the terminal unless asked for."""
    from trm_edge.quiet import quiet
    with quiet(verbose):
        return backend_for(target)(model_file, manifest, **options)


def table_dtype(m: dict) -> str:
    """How the manifest says the shipped puzzle table is stored: float32, or float16 (export --table-dtype
    float16; init_bin's puzzle_emb_table entry, which rule 8 ties to task_rows.dtype)."""
    init_bin = m.get("init_bin") or {}
    entry = next((a for a in init_bin.get("arrays", []) if a["name"] == "puzzle_emb_table"), {})
    return entry.get("dtype", init_bin.get("dtype", "float32"))


def _read_init(path: Path, config: dict, table: str = "float32") -> dict:
    """init.npz's arrays, checked: float32 (puzzle_emb_table: `table`, float32 or float16, as the manifest
    says), finite, the shapes trm_config gives; no pickles. A float16 table is widened to float32 here, once."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as init:
            arrays = {k: init[k] for k in init.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise BundleError(f"{path} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}); "
                          f"re-export the bundle") from None
    for name in ("y_init", "z_init"):
        if name not in arrays:
            raise BundleError(f"{path} lacks {name}; re-export the bundle")
    for name, a in arrays.items():
        if name not in ("y_init", "z_init", "puzzle_emb_table"):
            continue
        want = table if name == "puzzle_emb_table" else "float32"
        if a.dtype != np.dtype(want) or not init_shape_ok(name, a.shape, config):
            raise BundleError(f"{path}: {name} is {a.dtype} {list(a.shape)}, not {want} of the shape trm_config gives; "
                              f"re-export the bundle")
        if not np.isfinite(a).all():
            raise BundleError(f"{path}: {name} holds NaN or infinite values; re-export from a good checkpoint")
        if a.dtype != np.float32:
            arrays[name] = a.astype(np.float32)
    return arrays


class Bundle(Solver):
    """An exported bundle, opened by the contract's rules and run by its target's runtime."""
    table_name = "the bundle's table"

    def __init__(self, path, threads: int | None = None, verify: bool = True, verbose: bool = False,
                 **backend_options):
        if not isinstance(path, (str, os.PathLike)) or str(path) == "":
            raise BundleError(f"a bundle is a folder path, got {path!r}")
        check_threads(threads)
        self.path = Path(path)
        self.manifest = m = read_manifest(self.path, verify=verify)
        self.config, self.task = m["trm_config"], m.get("task")
        self.halting = dict(m["halting"])
        if m.get("views"):
            from trm_edge.data.task import View
            from trm_edge.runtime.decide import from_manifest
            self.listed_views = [View.from_manifest(d) for d in m["views"]["list"]]
            self.views_default = {"count": m["views"]["count"], "policy_object": from_manifest(m["views"]["policy"])}
            self.views_recommended = tuple(m["views"].get("recommended") or ())   # absent: `policy` for every K
        else:
            self.listed_views = None
            self.views_recommended = ()
        self.backend = f"{m['target']} {m['precision']}"
        init = _read_init(bundle_file(self.path, m, INIT, "init file", verify), self.config, table_dtype(m))
        self.y_init, self.z_init = init["y_init"], init["z_init"]
        self.puzzle_table = init.get("puzzle_emb_table")
        model_file = bundle_file(self.path, m, m["model_file"], "model_file", verify)
        self.step = open_backend(m["target"], model_file, m, verbose, threads=threads, **backend_options)

    def views_same(self):
        """The manifest's views.same (absent: equal cells), whatever the task's own rule: an app does what
        the manifest says."""
        return (self.manifest.get("views") or {}).get("same")

    def task_views(self, k):
        """The first k views the manifest lists (an app runs the same ones); without a list, the task's."""
        if self.listed_views is None:
            return super().task_views(k)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BundleError(f"views must be a whole number from 1 to {len(self.listed_views)}, got {k!r}")
        if k > len(self.listed_views):
            raise BundleError(f"this bundle lists {len(self.listed_views)} views, not {k}; ask for fewer or re-export "
                              f"with --views {k}")
        return self.listed_views[:k]

    def solve_arc(self, task, task_id: str, **options) -> dict:
        """One ARC task (its JSON data) through this bundle's views of `task_id`, voted: runtime/arc.py."""
        from trm_edge.runtime.arc import solve_arc
        return solve_arc(self, task, task_id, **options)

    def table_size(self):
        return None if self.puzzle_table is None else len(self.puzzle_table)

    def table_rows(self, ids):
        return self.puzzle_table[ids]
