"""The export pipeline shared by every target: stage, export, init, manifest, parity, embed, move."""
from __future__ import annotations

import contextlib
import importlib
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import trm_edge
from trm_edge.atomic import replace_folder
from trm_edge.errors import TRMEdgeError
from trm_edge.data import lookup, with_encoding
from trm_edge.export.parity import FP32_LOGITS_TOL, check_parity
from trm_edge.export.protocol import Exporter
from trm_edge.outdir import claim, make, unmake
from trm_edge.runtime.halting import QHalt
from trm_edge.runtime.loop import check_options
from trm_edge.runtime.manifest import (FORMAT_VERSION, INIT, INIT_BIN, MANIFEST, BundleError, read_manifest,
                                       record_files, sha256_of, size_of, step_io, validate_manifest, write_manifest)
from trm_edge.step import make_step
from trm_edge.targets import STATIC, TARGETS

MAX_SHIPPED_TABLE_ROWS = 4096     # larger puzzle tables (ARC: ~1M rows) never ship whole in a bundle
STATIC_BOUND_POINTS = 2.0       # a static bundle may solve this many points fewer of the export's accuracy puzzles
MAX_TASK_ROWS = 65536             # rows of chosen tasks' views a bundle ships at most (128 MB at width 512)


class ExportError(TRMEdgeError):
    pass


def exporter(target: str) -> Exporter:
    """The exporter module of a target (its row of the targets table), imported now."""
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; targets: {', '.join(TARGETS)}")
    row = TARGETS[target]
    try:
        return importlib.import_module(row.exporter)
    except ImportError as e:
        raise ExportError(f"exporting to {target} needs {e.name}: pip install 'trm-edge[{row.extra}]'") from None


def _stage_error(target: str, stage: str, e: Exception) -> ExportError:
    """A toolchain's failure (often pages of text) as one line; TRM_EDGE_DEBUG=1 shows the traceback."""
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return ExportError(f"{target} {stage} failed: {type(e).__name__}: {first} "
                       f"(set TRM_EDGE_DEBUG=1 for the full traceback)")


def write_init_bin(stage: Path, arrays: dict) -> dict:
    """init.npz's arrays again as one raw little-endian file, and where each one starts: what a native
    runner reads without a zip or .npy parser. float32 (init_bin.dtype, the default), except a float16
    array (the puzzle table exported with --table-dtype float16), stored as IEEE half and marked with its
    own "dtype"."""
    layout, offset = [], 0
    with open(stage / INIT_BIN, "wb") as f:
        for name, a in arrays.items():
            half = np.asarray(a).dtype == np.float16
            a = np.ascontiguousarray(a, dtype="<f2" if half else "<f4")
            f.write(a.tobytes())
            layout.append({"name": name, "shape": list(a.shape), "offset": offset, **({"dtype": "float16"} if half else {})})
            offset += a.nbytes
    return {"file": INIT_BIN, "dtype": "float32", "byte_order": "little", "arrays": layout}


def table_as(table: np.ndarray, dtype: str) -> np.ndarray:
    """The shipped puzzle table in the manifest's task_rows.dtype: float32, or float16 (rounded to nearest;
    a value beyond float16's range is refused rather than shipped as infinity)."""
    if dtype == "float32":
        return table.astype(np.float32)
    if dtype != "float16":
        raise ExportError(f"the table's dtype is float32 or float16, not {dtype!r}")
    with np.errstate(over="ignore"):
        half = table.astype(np.float16)
    over = np.isinf(half) & np.isfinite(table)         # NaN and infinity stay as they were: refused when read
    if over.any():
        raise ExportError(f"the puzzle table holds values float16 cannot hold ({float(np.abs(table[over]).max()):g}; "
                          f"float16 ends at 65504); export with --table-dtype float32")
    return half


@contextlib.contextmanager
def _rows_as_shipped(model, task_rows: dict | None):
    """The model's shipped table rows rounded as the bundle stores them (float16) while parity runs, so parity
    measures the step graph, not the table's rounding; restored afterwards."""
    if task_rows is None or task_rows.get("dtype", "float32") == "float32":
        yield
        return
    rows = torch.as_tensor(task_rows["rows"])
    with torch.no_grad():
        kept = model.puzzle_emb[rows].clone()
        model.puzzle_emb[rows] = kept.half().float()
    try:
        yield
    finally:
        with torch.no_grad():
            model.puzzle_emb[rows] = kept


def accuracy_guard(acc: dict, quantization: dict | None) -> dict:
    """A static bundle against PyTorch fp32 on the export's accuracy puzzles: points lost, the bound,
    and (when over it) the activations the static graph reproduces worst, named as --keep-fp32 takes them."""
    lost = round(100 * (acc["pytorch_fp32"] - acc["bundle"]), 2)     # 1.0 - 0.98 is 2.0000000000000018 points
    guard = {"bound_points": STATIC_BOUND_POINTS, "lost_points": lost, "passed": lost <= STATIC_BOUND_POINTS,
             "puzzles": acc["puzzles"]}
    if not guard["passed"] and quantization:
        guard["worst_activations"] = quantization.get("worst_activations", [])
    return guard


def guard_report(guard: dict) -> list[str]:
    """The loud lines of a static bundle over its accuracy bound: the loss, the worst activations, the way out."""
    lines = [f"WARNING: this static int8 bundle solves {guard['lost_points']:.1f} points fewer of {guard['puzzles']} puzzles "
             f"than PyTorch fp32 (bound {guard['bound_points']}); its worst activations (SQNR, dB):"]
    worst = guard.get("worst_activations", [])
    lines += [f"    {w['sqnr_db']:7.2f}  {w['layer']}" for w in worst[:5]]
    if worst:
        lines.append(f"  keep the worst in float with --keep-fp32 {','.join(w['layer'] for w in worst[:2])}, calibrate on "
                     f"puzzles like the ones it will solve (--calibration FILE), or use --quantize int8 (dynamic)")
    return lines


def source_sha(source) -> str | None:
    """sha256 of the checkpoint file exported (lets `bench` reuse a bundle only for the same weights)."""
    return sha256_of(Path(source)) if source and Path(source).is_file() else None


def _parity(stage: Path, model, precision: str, log, parity_puzzles: int = 8, accuracy_puzzles: int = 100,
            parity_steps: int | None = None) -> dict:
    """Run the staged bundle with its runtime against PyTorch fp32; fail fp32 bundles out of tolerance."""
    c = model.config
    t0 = time.perf_counter()
    task = model.metadata.get("task")
    row = lookup(task)
    puzzles = row.sample(parity_puzzles, c.seq_len, c.vocab_size, seed=1)
    acc = row.sample(accuracy_puzzles, c.seq_len, c.vocab_size, seed=2) if task and accuracy_puzzles else None
    parity = check_parity(stage, model, puzzles, acc, steps=parity_steps)
    ok = parity["max_abs_diff"]["logits"] <= FP32_LOGITS_TOL
    parity.update(ran=True, fp32_logits_tolerance=FP32_LOGITS_TOL, passed=bool(ok) if precision == "fp32" else None)
    log(f"  parity     {time.perf_counter() - t0:6.1f} s  max|diff| logits {parity['max_abs_diff']['logits']:.2e} "
        f"y {parity['max_abs_diff']['y']:.2e} q {parity['max_abs_diff']['q_halt']:.2e}; answers agree "
        f"{parity['answer_agreement']:.0%}, halting steps agree {parity['halting_step_agreement']:.0%}")
    if "task_accuracy" in parity:
        ta = parity["task_accuracy"]
        log(f"  accuracy   {ta['puzzles']} puzzles, q_halt: PyTorch fp32 {ta['pytorch_fp32']:.1%} "
            f"({ta['mean_steps_pytorch_fp32']:.2f} steps), bundle {ta['bundle']:.1%} ({ta['mean_steps_bundle']:.2f} steps)")
    if precision == "fp32" and not ok:
        raise ExportError(f"fp32 parity failed: max |diff| of logits {parity['max_abs_diff']['logits']:.2e} "
                          f"> {FP32_LOGITS_TOL:g}; nothing was written")
    return parity


def _sweep_stale_stages(out: Path) -> None:
    """Remove staging folders of `out` left by exports that were killed (SIGKILL, SIGTERM, a lost
    session): their name carries the pid that made them, and that process is gone."""
    import re
    ours = re.compile(rf"^\.{re.escape(out.name)}\.(\d+)\.([a-z0-9_]{{8}}|old)$")   # mkdtemp's suffix, or a replaced bundle
    for d in out.parent.glob(f".{out.name}.*.*"):
        match = ours.match(d.name)
        if not (match and d.is_dir() and not d.is_symlink()):
            continue
        pid = match.group(1)
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:   # alive, someone else's
            pass


def is_our_bundle(path: Path) -> bool:
    """A folder we may replace: a bundle whose manifest keeps the contract and lists every file in it
    (the user's own files beside a bundle are not ours to delete)."""
    try:
        m = read_manifest(path, verify=False)
    except BundleError:
        return False
    return all(p.name in m["files"] or p.name == MANIFEST for p in path.iterdir())


LISTED_VIEWS = 16      # views a bundle lists by default (an app may run up to this many without re-exporting)


def views_block(task, seq_len: int, count: int = 1, decide=None, listed: int | None = None) -> dict | None:
    """A manifest's `views`: the default count and policy, the task's first views as data (plain
    permutations; a task whose views are no permutations lists the identity only) and, where the task
    has one, its rule for when two answers are the same (`same`, runtime/same.py)."""
    from trm_edge.data.task import View
    from trm_edge.runtime.decide import decision, recommended
    t = lookup(task)
    views = t.views(max(count, min(listed or LISTED_VIEWS, t.view_count(seq_len))), seq_len)   # count > group: refused
    plain = [v for v in views if type(v) is View]
    if count > len(plain):
        raise ExportError(f"the {t.name or 'raw tokens'} task has {len(plain)} view(s) a bundle can list; "
                          f"export with --views {len(plain)} or fewer")
    rows = t.recommended_rows()
    chosen = decision(decide) if decide is not None else recommended(count, rows) or decision("vote")
    block = {"count": count, "policy": chosen.to_manifest(),
             "recommended": [dict(r) for r in rows],
             "list": [v.to_manifest() for v in plain]}
    same = t.same_answer(seq_len)
    return block if same is None else {**block, "same": same}


def export_bundle(model, target: str, out, precision: str = "fp32", batch: int | None = None,
                  threshold: float = 0.5, log=print, parity_puzzles: int = 8,
                  accuracy_puzzles: int = 100, parity_steps: int | None = None, views: int = 1,
                  decide=None, task_rows: dict | None = None, calibration: dict | None = None) -> tuple[Path, dict]:
    """task_rows: which rows of the puzzle table to ship (export/task_rows.py plan(): ARC tasks' views),
    listed in the manifest's task_rows; without it the whole table ships if it has at most
    MAX_SHIPPED_TABLE_ROWS rows, else none. calibration: for a STATIC precision, where its calibration
    puzzles come from (export/calibration.py calibration_set's count, seed, file); default: the task's
    sampler, DEFAULT_COUNT puzzles, every supervision step."""
    mod = exporter(target)
    if precision not in TARGETS[target].precisions:
        raise ExportError(f"{target} offers precisions {', '.join(TARGETS[target].precisions)}, not {precision!r}")
    check_options(model.config.halt_max_steps, "q_halt", threshold)
    views_meta = views_block(getattr(model, "metadata", {}).get("task"), model.config.seq_len, views, decide)
    if task_rows is not None and not model.config.puzzle_emb_ndim:
        raise ExportError("this model has no puzzle table; drop --identifiers and --tasks")
    if task_rows is not None and len(task_rows["rows"]) > MAX_TASK_ROWS:
        raise ExportError(f"{len(task_rows['rows']):,} table rows is more than a bundle ships ({MAX_TASK_ROWS:,}); "
                          f"choose fewer tasks or --views")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 4096):
        raise ExportError(f"batch must be an integer from 1 to 4096 or None (dynamic), got {batch!r}")
    cal = None
    if precision in STATIC:   # before any folder: a bad calibration file is one line and nothing written
        from trm_edge.export.calibration import calibration_set
        method = (calibration or {}).get("method", TARGETS[target].calibrations[0])   # the row's default
        if method not in TARGETS[target].calibrations:
            offered = [t for t, row in TARGETS.items() if method in row.calibrations]
            raise ExportError(f"{target} sets activation ranges by {', '.join(TARGETS[target].calibrations)}, not "
                              f"{method}: drop --calibration-method" +
                              (f", or export for {', '.join(offered)}" if offered else ""))
        t0 = time.perf_counter()
        cal = calibration_set(model, **(calibration or {}))
        log(f"  calibrate  {time.perf_counter() - t0:6.1f} s  {cal.provenance['count']} {cal.provenance['task']} puzzles "
            f"({cal.provenance['source']}) x {cal.provenance['steps']} steps")
    elif calibration:
        raise ExportError(f"a calibration set is for {', '.join(STATIC)}; drop it for {precision}")
    out = claim(out, "bundle", is_our_bundle)
    created = make(out.parent, "bundle")   # the folders a failed export removes again (one-line OutputError)
    _sweep_stale_stages(out)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}."))
    c = model.config
    doing = "export"
    try:
        t0 = time.perf_counter()
        step = make_step(model, mod.SPELLING)
        made = mod.export(step, stage, precision, batch, **({"calibration": cal} if cal is not None else {}))

        init = {"y_init": step.y_init, "z_init": step.z_init}
        if c.puzzle_emb_ndim and task_rows is not None:
            init["puzzle_emb_table"] = table_as(model.puzzle_emb.detach()[task_rows["rows"]].numpy(),
                                                task_rows.get("dtype", "float32"))
        elif c.puzzle_emb_ndim and c.num_puzzle_identifiers <= MAX_SHIPPED_TABLE_ROWS:
            init["puzzle_emb_table"] = model.puzzle_emb.detach().numpy().astype(np.float32)
        np.savez(stage / INIT, **init)
        init_bin = write_init_bin(stage, init)

        inputs, outputs = step_io(c.to_dict(), mod.TOKEN_DTYPE, made.batch)
        source = model.metadata.get("source")
        manifest = {
            "format_version": FORMAT_VERSION, "target": target, "precision": precision, "model_file": made.model_file,
            "batch": made.batch, "max_batch": made.batch or made.max_batch, "files": {}, "trm_config": c.to_dict(),
            "task": with_encoding(model.metadata.get("task"), c.seq_len), "inputs": inputs, "outputs": outputs,
            "io_names": {t["name"]: made.io_names.get(t["name"], t["name"]) for t in inputs + outputs},
            "halting": {**QHalt(threshold).to_manifest(), "max_steps": c.halt_max_steps},
            "views": views_meta,
            **({} if task_rows is None else {"task_rows": {k: task_rows[k] for k in ("source_rows", "dtype", "tasks")}}),
            **({} if made.quantization is None else {"quantization": made.quantization}),
            "init_bin": init_bin,
            "spelling": mod.SPELLING,
            "tools": {"trm_edge": trm_edge.__version__, "torch": torch.__version__, "python": platform.python_version(),
                      **mod.versions()},
            "source": Path(source).name if source else None, "source_sha256": source_sha(source),
        }
        if made.finish is not None:
            doing = "manifest embedding"
            made.finish(manifest)
        log(f"  export     {target} {precision}: {time.perf_counter() - t0:6.1f} s  "
            f"{size_of(stage / made.model_file) / 2**20:7.2f} MB  {made.model_file}")
        write_manifest(stage, record_files(stage, manifest))

        t0 = time.perf_counter()
        offline = mod.offline_check(stage / made.model_file, manifest)
        if offline is None:
            doing = "parity run"
            with _rows_as_shipped(model, task_rows):
                parity = _parity(stage, model, precision, log, parity_puzzles, accuracy_puzzles, parity_steps)
        else:   # the format cannot run on this machine: what could be verified, said so
            doing = "verification"
            parity = offline
            log(f"  verify     {time.perf_counter() - t0:6.1f} s  {parity['reason']}: io match {parity['io_match']}, "
                f"{sum(parity['op_counts'].values())} ops")
            if not parity["passed"]:
                raise ExportError(f"{target} bundle failed verification: {'; '.join(parity['problems'])}")
        if precision in STATIC and "task_accuracy" in parity:
            parity["accuracy_guard"] = accuracy_guard(parity["task_accuracy"], made.quantization)
            if not parity["accuracy_guard"]["passed"]:
                for line in guard_report(parity["accuracy_guard"]):
                    log(line)
        manifest["parity"] = parity
        write_manifest(stage, manifest)
        validate_manifest(manifest, f"the {target} manifest written")     # every exporter keeps the contract
        if out.exists():
            if any(out.iterdir()) and not is_our_bundle(out):   # changed while we exported: leave it alone
                raise ExportError(f"{out} now holds files that are not a bundle of ours; nothing was written")
        replace_folder(stage, out)
        return out, manifest
    except Exception as e:
        shutil.rmtree(stage, ignore_errors=True)
        unmake(created)
        if isinstance(e, TRMEdgeError) or os.environ.get("TRM_EDGE_DEBUG"):
            raise
        raise _stage_error(target, doing, e) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        unmake(created)
        raise
