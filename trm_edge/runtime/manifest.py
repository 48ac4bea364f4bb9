"""The bundle manifest: the contract between exporters, the Python runtime and native runners.

A bundle is a directory:

    manifest.json   the contract, written once as JSON Schema: bundle.schema.json beside this file
                    (the same file is export/bundle.schema.json for native readers)
    <model_file>    the step graph for one target (step.onnx, step.pte, step.mlpackage, step.tflite)
    init.npz        y_init, z_init [D] float32 (and puzzle_emb_table [rows, ndim] when the table is small)
    init.bin        the same arrays as raw little-endian float32, for native readers (an ARC table exported
                    with --table-dtype float16: that array as float16, in init.npz as well)

The rules every runtime applies before it opens anything (export/README.md lists them, numbered):
 1. manifest.json is a regular file (no symlink) of at most 16 MiB, UTF-8 JSON, valid against the schema.
 2. Every name the manifest gives (keys of `files`, `model_file`, `init_bin.file`) is a plain name
    inside the bundle: no folder part, no `..`, no absolute path, no leading dot (the schema's pattern).
 3. The model file and every init file the runtime opens are listed in `files` with sha256 and bytes.
 4. A listed file is a regular file in the bundle folder, not a symlink (a Core ML .mlpackage is a
    folder holding only regular files and folders, no symlinks); its size is compared before hashing.
 5. Its sha256 matches.
 6. `inputs`/`outputs` are exactly what `trm_config` gives (names, order, shapes, dtypes), and
    `init_bin`'s arrays lie inside init.bin (float32, float16 only for puzzle_emb_table) with the shapes
    `trm_config` gives.

This module needs the standard library and jsonschema alone: anything that can read JSON can run a bundle.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from functools import lru_cache
from pathlib import Path

from trm_edge.errors import TRMEdgeError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INIT = "init.npz"
INIT_BIN = "init.bin"     # the same arrays, raw little-endian float32, for native readers (see manifest "init_bin")
ITEMSIZE = {"float32": 4, "float16": 2}   # init_bin's dtypes: float32, or float16 for a puzzle_emb_table
SCHEMA_FILE = Path(__file__).with_name("bundle.schema.json")
MAX_MANIFEST_BYTES = 16 << 20
MAX_STEPS = 1024          # the schema's bound on halting.max_steps (the reference uses 16)


class BundleError(TRMEdgeError):
    pass


# ---------------------------------------------------------------- files: hashing, sizes, safe opening

def _open_regular(path: Path) -> int:
    """A read-only descriptor of a regular file that is no symlink, or a BundleError (never blocks on a FIFO)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise BundleError(f"cannot open {path}: {e.strerror}; re-copy the bundle") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BundleError(f"{path} is not a regular file; a bundle holds regular files only")
    return fd


def _tree(path: Path) -> list[Path]:
    """A file, or a folder's files (sorted): regular files and folders only, no symlinks anywhere."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise BundleError(f"{path} is a symlink; a bundle holds regular files only (copy the file itself)")
    if stat.S_ISREG(st.st_mode):
        return [path]
    if not stat.S_ISDIR(st.st_mode):
        raise BundleError(f"{path} is not a regular file; a bundle holds regular files only")
    out = []
    for p in sorted(path.iterdir()):
        out += _tree(p)
    return out


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory's files (sorted relative paths and their bytes)."""
    h = hashlib.sha256()
    path = Path(path)
    is_dir = path.is_dir() and not path.is_symlink()
    for p in _tree(path):
        if is_dir:
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
        with os.fdopen(_open_regular(p), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size_of(path: Path) -> int:
    return sum(os.lstat(p).st_size for p in _tree(Path(path)))


def record_files(bundle: Path, manifest: dict) -> dict:
    """Fill manifest["files"] with the sha256 and size of every file in the bundle but the manifest."""
    bundle = Path(bundle)
    manifest["files"] = {p.name: {"sha256": sha256_of(p), "bytes": size_of(p)}
                         for p in sorted(bundle.iterdir()) if p.name != MANIFEST and not p.name.startswith(".")}
    return manifest


def write_manifest(bundle: Path, manifest: dict) -> Path:
    from trm_edge.atomic import write_json
    return write_json(Path(bundle) / MANIFEST, manifest)


def bundle_file(bundle: Path, manifest: dict, name: str, role: str, verify: bool = True) -> Path:
    """The path of a file the runtime is about to open, after rules 2-5 (module doc): listed, plain,
    regular, the size as listed, and (verify) the sha256 as listed."""
    info = manifest["files"].get(name)
    if not isinstance(info, dict):
        raise BundleError(f"{bundle}: the manifest lists no sha256 for {name} ({role}); re-export the bundle")
    check_file(bundle, name, info, verify)
    return bundle / name


def check_file(bundle: Path, name: str, info: dict, verify: bool = True) -> None:
    f = bundle / name
    if not (f.exists() or f.is_symlink()):
        raise BundleError(f"{bundle}: {name} is missing (the manifest lists it); copy the whole bundle")
    size = size_of(f)          # refuses symlinks and anything but regular files and folders, reads nothing
    if size != info["bytes"]:
        raise BundleError(f"{bundle}: {name} has {size} bytes, the manifest lists {info['bytes']} (corrupted or "
                          f"truncated); re-export or re-copy it")
    if verify and sha256_of(f) != info["sha256"]:
        raise BundleError(f"{bundle}: {name} does not match its sha256 in the manifest (corrupted or altered); "
                          f"re-export or re-copy it")


# ---------------------------------------------------------------- the contract

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")   # the schema's file_name, matched whole (no "\n" after $)


@lru_cache(maxsize=1)
def _validator():
    """The schema's validator, with the contract's integers: written without a fraction (16, not 16.0)."""
    import jsonschema
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    strict = cls.TYPE_CHECKER.redefine("integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(cls, type_checker=strict)(schema)


def _where(error) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "the manifest"


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_errors(manifest) -> list[str]:
    """What breaks the schema, one line each (most specific first); empty when the manifest is valid."""
    import jsonschema
    errors = sorted(_validator().iter_errors(manifest), key=jsonschema.exceptions.relevance)
    out = []
    for e in errors:
        leaf = e
        while leaf.context:        # anyOf/oneOf: the branch of the value's own type says most
            closer = [c for c in leaf.context if c.validator not in ("type", "const", "enum")]
            leaf = jsonschema.exceptions.best_match(closer or leaf.context)
        msg, r = leaf.message, repr(leaf.instance)
        if len(r) > 40:
            msg = msg.replace(r, f"the {type(leaf.instance).__name__}"
                                 + (f" of {len(leaf.instance)} items" if isinstance(leaf.instance, (list, dict)) else ""))
        msg = msg if len(msg) <= 160 else msg[:157] + "..."
        out.append(f"{_where(leaf)}: {msg}".replace("\n", " "))
    return out


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


def init_shapes(config: dict) -> dict:
    """The shapes init arrays may have: y_init/z_init [D] or [P+L, D]; puzzle_emb_table [rows, ndim]."""
    D, N = config["hidden_size"], config["seq_len"] + (config["puzzle_emb_len"] if config["puzzle_emb_ndim"] else 0)
    return {"y_init": ([D], [N, D]), "z_init": ([D], [N, D]), "puzzle_emb_table": ("rows", config["puzzle_emb_ndim"])}


def init_shape_ok(name: str, shape, config: dict) -> bool:
    want = init_shapes(config)[name]
    if name == "puzzle_emb_table":
        return config["puzzle_emb_ndim"] > 0 and len(shape) == 2 and shape[0] >= 1 and shape[1] == want[1]
    return list(shape) in want


def encoding_errors(task: dict | None, vocab_size: int) -> list[str]:
    """Rule 6 for task.encoding (export/README.md, "The task encoding"): what the schema cannot say."""
    enc = (task or {}).get("encoding")
    if not isinstance(enc, dict):
        return []
    errs = []
    cells = enc.get("cells")
    if cells is not None:
        chars = [c for c in cells if c is not None]
        twice = sorted({c for c in chars if chars.count(c) > 1})
        if twice:
            errs.append(f"task.encoding.cells names {twice[0]!r} twice")
        if len(cells) > vocab_size:
            errs.append(f"task.encoding.cells lists {len(cells)} tokens, the vocabulary has {vocab_size}")
        for a, b in (enc.get("aliases") or {}).items():
            if b not in chars:
                errs.append(f"task.encoding.aliases reads {a!r} as {b!r}, which is no cell")
            if a in chars:
                errs.append(f"task.encoding.aliases: {a!r} is a cell itself")
        clash = [c for c in enc.get("skip", "") if c in chars or c in (enc.get("aliases") or {})]
        if clash:
            errs.append(f"task.encoding.skip holds {clash[0]!r}, which is a cell or an alias")
    for key in ("pad", "eos"):
        if key in enc and enc[key] >= vocab_size:
            errs.append(f"task.encoding.{key} {enc[key]} is outside the vocabulary 0..{vocab_size - 1}")
    if any(c >= vocab_size for c in enc.get("colours", ())):
        errs.append(f"task.encoding.colours lie outside the vocabulary 0..{vocab_size - 1}")
    return errs


def contract_errors(m: dict) -> list[str]:
    """The rules a schema cannot state (module doc, rules 3 and 6) on a schema-valid manifest: also
    that the target is a row of the targets table and the halting policy one this runtime has."""
    from trm_edge.runtime.halting import POLICIES
    from trm_edge.targets import TARGETS
    errs = []
    if m["target"] not in TARGETS:
        errs.append(f"target {m['target']!r} is none this runtime knows ({', '.join(TARGETS)})")
    if m["halting"]["policy"] not in POLICIES:
        errs.append(f"halting.policy {m['halting']['policy']!r} is none this runtime has ({', '.join(POLICIES)})")
    listed = m["files"]
    names = [*listed, m["model_file"]] + ([m["init_bin"]["file"]] if m.get("init_bin") else [])
    bad = [n for n in names if not NAME.fullmatch(n)]
    if bad:
        return [f"{bad[0]!r} is not a plain file name inside the bundle"]
    if m["model_file"] not in listed:
        errs.append(f"model_file {m['model_file']} is not listed in files (no sha256 to check it against)")
    if INIT not in listed:
        errs.append(f"{INIT} is not listed in files (no sha256 to check it against)")
    init_bin = m.get("init_bin")
    if init_bin and init_bin["file"] not in listed:
        errs.append(f"init_bin.file {init_bin['file']} is not listed in files")
    c = m["trm_config"]
    if c["puzzle_emb_ndim"] and c["puzzle_emb_len"] * c["hidden_size"] < c["puzzle_emb_ndim"]:
        errs.append("trm_config: puzzle_emb_ndim does not fit puzzle_emb_len x hidden_size")
    token_dtype = m["inputs"][0]["dtype"] if m["inputs"][0]["dtype"] in ("int32", "int64") else "int64"
    want_in, want_out = step_io(c, token_dtype, m["batch"])
    spec = lambda t: f"{t['name']} {t['shape']} {t['dtype']}".replace("'", "")
    for what, got, want in (("inputs", m["inputs"], want_in), ("outputs", m["outputs"], want_out)):
        if got != want:
            i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            g = spec(got[i]) if i < len(got) else "missing"
            w = spec(want[i]) if i < len(want) else "nothing more"
            errs.append(f"{what}[{i}] is {g}, trm_config and batch give {w}")
    names = {t["name"] for t in want_in + want_out}
    if set(m["io_names"]) != names:
        errs.append(f"io_names must name exactly {', '.join(sorted(names))}")
    if m["batch"] is not None and m.get("max_batch") not in (None, m["batch"]):
        errs.append(f"max_batch {m['max_batch']} differs from the fixed batch {m['batch']}")
    if init_bin:
        seen = set()
        size = listed.get(init_bin["file"], {}).get("bytes", 0)
        for a in init_bin["arrays"]:
            dtype = a.get("dtype", init_bin["dtype"])
            n = math.prod(a["shape"]) * ITEMSIZE[dtype]
            if dtype != "float32" and a["name"] != "puzzle_emb_table":
                errs.append(f"init_bin.{a['name']} is {dtype}; only puzzle_emb_table may be (y_init and z_init are float32)")
            if a["name"] in seen:
                errs.append(f"init_bin lists {a['name']} twice")
            seen.add(a["name"])
            if not init_shape_ok(a["name"], a["shape"], c):
                errs.append(f"init_bin.{a['name']} has shape {a['shape']}, which trm_config does not give")
            if a["offset"] + n > size:
                errs.append(f"init_bin.{a['name']} ends at byte {a['offset'] + n}, past the end of "
                            f"{init_bin['file']} ({size} bytes)")
        if not {"y_init", "z_init"} <= seen:
            errs.append("init_bin lacks y_init or z_init")
    return (errs + encoding_errors(m.get("task"), c["vocab_size"]) + views_errors(m.get("views"), c)
            + task_rows_errors(m))


VIEW_NAME = re.compile(r"[^|]+(\|\|\|t[0-7]\|\|\|[0-9]{10})?", re.ASCII)


def task_rows_errors(m: dict) -> list[str]:
    """Rule 8: task_rows. Its dtype is init_bin's puzzle_emb_table's; task ids distinct; every view's name is
    its task's (the id, or the id with a dihedral t0-t7 and a permutation of the colours 0-9); its row inside
    the shipped table (init_bin's puzzle_emb_table), not the blank row 0; no row twice."""
    tr = m.get("task_rows")
    if tr is None:
        return []
    from trm_edge.data.arc import Augmentation
    init_bin = m.get("init_bin") or {}
    entry = next((a for a in init_bin.get("arrays", []) if a["name"] == "puzzle_emb_table"), None)
    if entry is None:
        return ["task_rows is given but the bundle ships no puzzle_emb_table; re-export with --identifiers"]
    table, dtype = entry["shape"][0], entry.get("dtype", init_bin["dtype"])
    errs, ids, rows = [], set(), set()
    if tr["dtype"] != dtype:
        errs.append(f"task_rows.dtype is {tr['dtype']} but init_bin's puzzle_emb_table is {dtype}; re-export the bundle")
    for t in tr["tasks"]:
        if t["id"] in ids:
            errs.append(f"task_rows names task {t['id']!r} twice")
        ids.add(t["id"])
        for v in t["views"]:
            task_id = None
            if VIEW_NAME.fullmatch(v["name"]):       # exactly id, or id|||t<0-7>|||<10 ASCII digits>, as the runner
                try:
                    task_id, _ = Augmentation.from_reference_name(v["name"])
                except ValueError:               # digits that are no permutation of 0-9
                    pass
            if task_id != t["id"]:
                errs.append(f"task_rows: view {v['name'][:80]!r} is not a view of task {t['id']!r} "
                            f"(task, or task|||t<0-7>|||<a permutation of 0-9>)")
            if v["row"] >= table or v["row"] in rows:
                errs.append(f"task_rows: row {v['row']} of task {t['id']!r} is outside the shipped table "
                            f"(1..{table - 1}) or given twice")
            rows.add(v["row"])
            if len(errs) > 3:
                return errs
    return errs


def views_errors(v: dict | None, c: dict) -> list[str]:
    """Rule 7: a manifest's views. count <= len(list); view 0 the identity; every cells a permutation of
    0..seq_len-1 and every tokens of 0..vocab_size-1; no two views alike; a policy this runtime has (also
    in every row of `recommended`, whose from_views increase); a `same` rule this runtime has."""
    from trm_edge.runtime.decide import DECISIONS
    from trm_edge.runtime.same import rule_errors
    if v is None:
        return []
    errs = rule_errors(v.get("same"), c["vocab_size"])
    if v["policy"]["policy"] not in DECISIONS:
        errs.append(f"views.policy {v['policy']['policy']!r} is none this runtime has ({', '.join(DECISIONS)})")
    if v["count"] > len(v["list"]):
        errs.append(f"views.count {v['count']} is more than the {len(v['list'])} views listed")
    rec = v.get("recommended") or []
    for i, row in enumerate(rec):
        if row["policy"]["policy"] not in DECISIONS:
            errs.append(f"views.recommended[{i}].policy {row['policy']['policy']!r} is none this runtime has "
                        f"({', '.join(DECISIONS)})")
    if [r["from_views"] for r in rec] != sorted({r["from_views"] for r in rec}):
        errs.append("views.recommended must be in increasing from_views, each once")
    first = v["list"][0]
    if first.get("cells") is not None or first.get("tokens") is not None:
        errs.append("views.list[0] must be the identity (cells and tokens null)")
    seen = set()
    for i, view in enumerate(v["list"]):
        for field, n in (("cells", c["seq_len"]), ("tokens", c["vocab_size"])):
            a = view.get(field)
            if a is not None and sorted(a) != list(range(n)):
                errs.append(f"views.list[{i}].{field} is not a permutation of 0..{n - 1}")
        key = (tuple(view.get("cells") or ()), tuple(view.get("tokens") or ()))
        if key in seen:
            errs.append(f"views.list[{i}] repeats an earlier view")
        seen.add(key)
        if len(errs) > 3:
            break
    return errs


def validate_manifest(m, where="manifest.json") -> dict:
    """The manifest, if it keeps the contract (schema + rules 3 and 6); a one-line BundleError if not."""
    if not isinstance(m, dict):
        raise BundleError(f"{where} holds a JSON {type(m).__name__ if m is not None else 'null'}, not an object; "
                          f"re-export the bundle")
    if m.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{where}: format_version {_short(m.get('format_version'))}, this runtime reads "
                          f"{FORMAT_VERSION}; re-export the bundle with this trm-edge")
    errs = schema_errors(m) or contract_errors(m)
    if errs:
        more = f" (and {len(errs) - 1} more problem{'s' * (len(errs) > 2)})" if len(errs) > 1 else ""
        raise BundleError(f"{where} breaks the bundle contract: {errs[0]}{more}; re-export the bundle")
    return m


def read_manifest(bundle, verify: bool = True) -> dict:
    """manifest.json of a bundle, checked: the contract (schema and rules), every listed file present,
    regular, of its size and (verify) unchanged. Nothing outside the bundle folder is opened."""
    if "\0" in str(bundle):
        raise BundleError(f"{str(bundle)!r} holds a NUL character; give a bundle folder path")
    bundle = Path(bundle)
    if not bundle.exists():
        raise BundleError(f"there is no bundle folder at {bundle}; give a bundle folder, as `trm-edge export` writes")
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is not a folder; give a bundle folder, as `trm-edge export` writes")
    p = bundle / MANIFEST
    if not (p.exists() or p.is_symlink()):
        raise BundleError(f"{bundle} is not a bundle: it has no {MANIFEST} (export one with `trm-edge export`)")
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{p} is not a regular file (a symlink or a device); copy the bundle's own manifest.json")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{p} has {st.st_size} bytes, more than a manifest's {MAX_MANIFEST_BYTES}; re-export the bundle")
    with os.fdopen(_open_regular(p), "rb") as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    try:
        m = json.loads(raw.decode("utf-8"), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except UnicodeDecodeError:
        raise BundleError(f"{p} is not UTF-8 text; re-export the bundle") from None
    except (json.JSONDecodeError, ValueError, RecursionError) as e:
        msg = f"{e.msg} at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else f"bad value {e}"
        raise BundleError(f"{p} is not valid JSON ({msg}); re-export the bundle") from None
    validate_manifest(m, str(p))
    for name, info in m["files"].items():
        check_file(bundle, name, info, verify)
    return m
