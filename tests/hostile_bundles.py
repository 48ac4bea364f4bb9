"""Hostile bundles: one catalogue of broken, tampered and escaping bundles, shared by every runtime's tests
(the Python runtime in tests/test_bad_input_bundles.py, the C++ runner in tests/test_native_hostile.py).

A case mutates a fresh copy of a good bundle in place: `case.apply(bundle, outside)`. `outside` is a
folder beside the bundle holding sentinels (a copy of the model file, of init.npz, init.bin and the
manifest, and a plain secret file); a runtime must refuse every case with one line, and open nothing
under `outside`. `case.runtimes` names the runtimes a case applies to: "python" (reads init.npz and
the model file) and "native" (the C++ runner: init.bin and the model file; executorch bundles only).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

BOTH = ("python", "native")
HEADER_BYTE = {".onnx": 0, ".pte": 4, ".tflite": 4, ".mlpackage": 0}   # a byte each format's loader checks
SECRET = "secret.txt"


@dataclass(frozen=True)
class Case:
    id: str
    apply: Callable[[Path, Path], None]
    runtimes: tuple = BOTH

    def __repr__(self) -> str:
        return self.id


def fresh_copy(good: Path, where: Path) -> tuple[Path, Path]:
    """A copy of the good bundle at where/bundle and the sentinel folder where/outside."""
    bundle, outside = where / "bundle", where / "outside"
    shutil.copytree(good, bundle, symlinks=True)
    outside.mkdir()
    m = manifest(bundle)
    for name in (m["model_file"], "init.npz", "init.bin", "manifest.json"):
        src = bundle / name
        if src.is_dir():
            shutil.copytree(src, outside / name)
        elif src.exists():
            shutil.copy(src, outside / name)
    (outside / SECRET).write_text("nothing in a bundle may read this\n")
    return bundle, outside


# ---------------------------------------------------------------- helpers for the cases

def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def write(bundle: Path, m) -> None:
    (bundle / "manifest.json").write_text(json.dumps(m))


def edit(fn: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    """A case that changes the manifest: fn(m) edits it in place (or returns a replacement)."""
    def apply(bundle: Path, outside: Path) -> None:
        m = manifest(bundle)
        out = fn(m)
        write(bundle, m if out is None else out)
    return apply


def edit_out(fn: Callable[[dict, Path], object]) -> Callable[[Path, Path], None]:
    """Like edit, but fn also gets the outside folder (for names that point there)."""
    def apply(bundle: Path, outside: Path) -> None:
        m = manifest(bundle)
        out = fn(m, outside)
        write(bundle, m if out is None else out)
    return apply


def raw(data: bytes) -> Callable[[Path, Path], None]:
    def apply(bundle: Path, outside: Path) -> None:
        (bundle / "manifest.json").write_bytes(data)
    return apply


def rehash(bundle: Path, name: str) -> None:
    """Record a changed file's size and sha256 in the manifest (the tamperer's move)."""
    import hashlib
    m = manifest(bundle)
    data = (bundle / name).read_bytes()
    m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    write(bundle, m)


def _outside_entry(m: dict, outside: Path, name: str) -> dict:
    import hashlib
    data = (outside / name).read_bytes() if (outside / name).is_file() else b""
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _set(path: str, value):
    """Set m[a][b]... = value, `path` like 'halting.max_steps' or 'inputs.0.dtype'."""
    def fn(m):
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        d = m
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit(fn)


def _drop(path: str):
    def fn(m):
        keys = path.split(".")
        d = m
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return edit(fn)


def _model(m) -> str:
    return m["model_file"]


def _flip(name_of: Callable[[dict], str], at: float | int = 0.5, fix_hash: bool = False):
    def apply(bundle: Path, outside: Path) -> None:
        name = name_of(manifest(bundle))
        p = bundle / name
        if p.is_dir():   # a Core ML package: flip a byte of its largest file
            p = max((f for f in p.rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
        data = bytearray(p.read_bytes())
        i = int(len(data) * at) if isinstance(at, float) else at
        data[i] ^= 0xFF
        p.write_bytes(bytes(data))
        if fix_hash:
            rehash(bundle, name)
    return apply


def _truncate(name_of, keep: float = 0.5, fix_hash: bool = False):
    def apply(bundle: Path, outside: Path) -> None:
        name = name_of(manifest(bundle))
        p = bundle / name
        p.write_bytes(p.read_bytes()[: int(p.stat().st_size * keep)])
        if fix_hash:
            rehash(bundle, name)
    return apply


def _replace_file(name_of, content: Callable[[Path], bytes], fix_hash: bool = True):
    def apply(bundle: Path, outside: Path) -> None:
        name = name_of(manifest(bundle))
        p = bundle / name
        data = content(p)
        if p.is_dir():
            shutil.rmtree(p)
        p.write_bytes(data)
        if fix_hash:
            rehash(bundle, name)
    return apply


def _symlink(name_of, target: Callable[[Path, Path], Path]):
    """Replace a bundle file by a symlink (to an outside copy with the same bytes: the hash still matches)."""
    def apply(bundle: Path, outside: Path) -> None:
        name = name_of(manifest(bundle))
        p = bundle / name
        to = target(bundle, outside)
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
        p.symlink_to(to)
    return apply


def _fifo(name_of):
    def apply(bundle: Path, outside: Path) -> None:
        name = name_of(manifest(bundle))
        p = bundle / name
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
        os.mkfifo(p)
    return apply


def _npz(**arrays):
    def content(p: Path) -> bytes:
        import io
        buf = io.BytesIO()
        np.savez(buf, **{k: v(p) if callable(v) else v for k, v in arrays.items()})
        return buf.getvalue()
    return content


def _orig_init(name: str):
    def get(p: Path):
        return np.load(p.parent.parent / "outside" / "init.npz")[name] if (p.parent.parent / "outside" / "init.npz").exists() \
            else np.load(p)[name]
    return get


def _add_listed(name: str, entry: Callable[[dict, Path], dict] | None = None):
    def fn(m, outside):
        m["files"][name] = entry(m, outside) if entry else {"sha256": "0" * 64, "bytes": 0}
    return edit_out(fn)


def _io_field(which: str, fn):
    return edit(lambda m: fn(m[which]) and None)


def _model_dotdot(m: dict, outside: Path) -> None:
    """model_file and its files entry pointing at the outside copy (same bytes, same hash)."""
    name = m["model_file"]
    m["model_file"] = f"../outside/{name}"
    m["files"][f"../outside/{name}"] = m["files"][name]


def _newline_name(m: dict) -> None:
    """A name that ends in a newline: Python's re matches `$` before it, the schema's pattern (ECMA 262) does not."""
    name = m["model_file"]
    m["model_file"] = name + "\n"
    m["files"][name + "\n"] = m["files"].pop(name)


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _init_bin_array(name: str, key: str, value):
    def fn(m):
        for a in m["init_bin"]["arrays"]:
            if a["name"] == name:
                a[key] = value
    return edit(fn)


# ---------------------------------------------------------------- the catalogue

CASES: list[Case] = [
    # -- names that leave the folder (rule 2)
    Case("files-key-dotdot", _add_listed("../outside/secret.txt", lambda m, o: _outside_entry(m, o, SECRET))),
    Case("files-key-dotdot-deep", _add_listed("../../../../../../etc/passwd")),
    Case("files-key-absolute", edit_out(lambda m, o: m["files"].__setitem__(str(o / SECRET), _outside_entry(m, o, SECRET)))),
    Case("files-key-dev-zero", _add_listed("/dev/zero", lambda m, o: {"sha256": "0" * 64, "bytes": 1 << 40})),
    Case("files-key-subfolder", _add_listed("sub/step.bin")),
    Case("files-key-dot", _add_listed(".")),
    Case("files-key-dotdot-bare", _add_listed("..")),
    Case("files-key-hidden", _add_listed(".hidden")),
    Case("files-key-manifest", _add_listed("manifest.json")),
    Case("files-key-backslash", _add_listed("..\\outside\\secret.txt")),
    Case("files-key-nul", _add_listed("step\u0000.bin")),
    Case("files-key-non-ascii", _add_listed("st\u00e9p.bin")),
    Case("files-key-empty", _add_listed("")),
    Case("files-key-long", _add_listed("a" * 300)),
    Case("files-key-trailing-newline", _add_listed("extra.bin\n")),
    Case("model-file-trailing-newline", edit(_newline_name)),
    Case("model-file-dotdot", edit_out(_model_dotdot)),
    Case("model-file-absolute", edit_out(lambda m, o: m.__setitem__("model_file", str(o / m["model_file"])))),
    Case("model-file-absolute-unlisted", edit_out(lambda m, o: (m["files"].pop(m["model_file"]),
                                                                m.__setitem__("model_file", str(o / m["model_file"])))
                                                  and None)),
    Case("model-file-dev-zero", _set("model_file", "/dev/zero")),
    Case("model-file-empty", _set("model_file", "")),
    Case("model-file-int", _set("model_file", 7)),
    Case("model-file-list", _set("model_file", ["step.onnx"])),
    Case("model-file-manifest", _set("model_file", "manifest.json")),
    Case("model-file-unlisted", edit(lambda m: m["files"].pop(m["model_file"]) and None)),
    Case("model-file-missing", lambda b, o: _rm(b / manifest(b)["model_file"])),
    Case("init-bin-file-dotdot", _set("init_bin.file", "../outside/init.bin")),
    Case("init-bin-file-absolute", edit_out(lambda m, o: m["init_bin"].__setitem__("file", str(o / "init.bin")))),
    Case("init-bin-unlisted", edit(lambda m: m["files"].pop("init.bin") and None)),
    Case("init-npz-unlisted", edit(lambda m: m["files"].pop("init.npz") and None)),
    Case("init-npz-missing", lambda b, o: (b / "init.npz").unlink()),
    Case("init-bin-missing", lambda b, o: (b / "init.bin").unlink()),
    # -- symlinks and special files (rule 4): the hash of an outside copy still matches
    Case("model-symlink-outside", _symlink(_model, lambda b, o: o / manifest(b)["model_file"])),
    Case("model-symlink-inside", _symlink(_model, lambda b, o: _copy_inside(b, manifest(b)["model_file"]))),
    Case("model-symlink-dev-zero", _symlink(_model, lambda b, o: Path("/dev/zero"))),
    Case("init-npz-symlink-outside", _symlink(lambda m: "init.npz", lambda b, o: o / "init.npz")),
    Case("init-bin-symlink-outside", _symlink(lambda m: "init.bin", lambda b, o: o / "init.bin")),
    Case("init-bin-symlink-inside", _symlink(lambda m: "init.bin", lambda b, o: _copy_inside(b, "init.bin"))),
    Case("init-bin-symlink-dev-zero", _symlink(lambda m: "init.bin", lambda b, o: Path("/dev/zero"))),
    Case("init-npz-symlink-dev-zero", _symlink(lambda m: "init.npz", lambda b, o: Path("/dev/zero"))),
    Case("manifest-symlink-outside", lambda b, o: ((b / "manifest.json").unlink(),
                                                   (b / "manifest.json").symlink_to(o / "manifest.json"))),
    Case("manifest-symlink-dev-zero", lambda b, o: ((b / "manifest.json").unlink(),
                                                    (b / "manifest.json").symlink_to("/dev/zero"))),
    Case("manifest-fifo", lambda b, o: ((b / "manifest.json").unlink(), os.mkfifo(b / "manifest.json"))),
    Case("manifest-folder", lambda b, o: ((b / "manifest.json").unlink(), (b / "manifest.json").mkdir())),
    Case("init-bin-fifo", _fifo(lambda m: "init.bin")),
    Case("init-npz-fifo", _fifo(lambda m: "init.npz")),
    Case("model-fifo", _fifo(_model)),
    Case("init-bin-folder", lambda b, o: ((b / "init.bin").unlink(), (b / "init.bin").mkdir())),
    # -- integrity (rules 3-5)
    Case("files-empty", _set("files", {})),
    Case("files-only-model", edit(lambda m: m.__setitem__("files", {m["model_file"]: m["files"][m["model_file"]]}))),
    Case("files-list", _set("files", [])),
    Case("files-null", _set("files", None)),
    Case("files-entry-string", edit(lambda m: m["files"].__setitem__(m["model_file"], "abc"))),
    Case("files-entry-no-sha", edit(lambda m: m["files"][m["model_file"]].pop("sha256") and None)),
    Case("files-entry-no-bytes", edit(lambda m: m["files"][m["model_file"]].pop("bytes") and None)),
    Case("files-sha-upper", edit(lambda m: m["files"][m["model_file"]].__setitem__(
        "sha256", m["files"][m["model_file"]]["sha256"].upper()))),
    Case("files-sha-short", edit(lambda m: m["files"][m["model_file"]].__setitem__("sha256", "abc"))),
    Case("files-sha-int", edit(lambda m: m["files"][m["model_file"]].__setitem__("sha256", 12))),
    Case("files-bytes-negative", edit(lambda m: m["files"][m["model_file"]].__setitem__("bytes", -1))),
    Case("files-bytes-string", edit(lambda m: m["files"][m["model_file"]].__setitem__("bytes", "100"))),
    Case("files-bytes-float", edit(lambda m: m["files"][m["model_file"]].__setitem__("bytes", 10.5))),
    Case("files-bytes-huge", edit(lambda m: m["files"][m["model_file"]].__setitem__("bytes", 10**30))),
    Case("files-bytes-wrong", edit(lambda m: m["files"][m["model_file"]].__setitem__(
        "bytes", m["files"][m["model_file"]]["bytes"] + 1))),
    Case("files-extra-missing", _add_listed("extra.bin")),
    Case("model-byte-flipped", _flip(_model)),
    Case("model-byte-flipped-header", _flip(_model, at=2)),
    Case("model-truncated", _truncate(_model)),
    Case("model-grown", lambda b, o: (b / manifest(b)["model_file"]).open("ab").write(b"\0" * 16)),
    Case("init-npz-byte-flipped", _flip(lambda m: "init.npz")),
    Case("init-bin-byte-flipped", _flip(lambda m: "init.bin")),
    Case("init-bin-truncated", _truncate(lambda m: "init.bin")),
    # -- mismatched artifacts with the hashes recomputed (rule 6 and the backend's own checks)
    Case("model-random-bytes-rehashed", _replace_file(_model, lambda p: np.random.default_rng(0).bytes(4096))),
    Case("model-empty-rehashed", _replace_file(_model, lambda p: b"")),
    Case("model-truncated-rehashed", _truncate(_model, 0.3, fix_hash=True)),
    Case("model-header-flipped-rehashed", lambda b, o: _flip(_model, at=HEADER_BYTE[Path(manifest(b)["model_file"]).suffix],
                                                             fix_hash=True)(b, o)),
    Case("init-npz-wrong-shapes-rehashed", _replace_file(lambda m: "init.npz", _npz(
        y_init=np.zeros(3, np.float32), z_init=np.zeros(3, np.float32))), runtimes=("python",)),
    Case("init-npz-strings-rehashed", _replace_file(lambda m: "init.npz", _npz(
        y_init=np.array(["a", "b"]), z_init=np.array(["c"]))), runtimes=("python",)),
    Case("init-npz-float64-rehashed", _replace_file(lambda m: "init.npz", _npz(
        y_init=lambda p: _orig_init("y_init")(p).astype(np.float64),
        z_init=lambda p: _orig_init("z_init")(p).astype(np.float64))), runtimes=("python",)),
    Case("init-npz-nan-rehashed", _replace_file(lambda m: "init.npz", _npz(
        y_init=lambda p: np.full_like(_orig_init("y_init")(p), np.nan),
        z_init=lambda p: _orig_init("z_init")(p))), runtimes=("python",)),
    Case("init-npz-no-z-rehashed", _replace_file(lambda m: "init.npz", _npz(
        y_init=lambda p: _orig_init("y_init")(p))), runtimes=("python",)),
    Case("init-npz-pickle-rehashed", _replace_file(lambda m: "init.npz", _npz(
        y_init=np.array([{"a": 1}], dtype=object), z_init=np.array([{"b": 2}], dtype=object))), runtimes=("python",)),
    Case("init-npz-not-zip-rehashed", _replace_file(lambda m: "init.npz", lambda p: b"PK\x03\x04 not really a zip"),
         runtimes=("python",)),
    Case("init-bin-truncated-rehashed", _truncate(lambda m: "init.bin", 0.5, fix_hash=True)),
    Case("init-bin-nan-rehashed", _replace_file(lambda m: "init.bin", lambda p: np.full(
        p.stat().st_size // 4, np.nan, "<f4").tobytes()), runtimes=("native",)),
    # -- the manifest as a file (rule 1)
    Case("manifest-latin1", raw('{"format_version": 1, "target": "caf\u00e9"}'.encode("latin-1"))),
    Case("manifest-utf16", lambda b, o: (b / "manifest.json").write_bytes((b / "manifest.json").read_text().encode("utf-16"))),
    Case("manifest-binary", raw(bytes(range(256)) * 4)),
    Case("manifest-empty", raw(b"")),
    Case("manifest-truncated", lambda b, o: (b / "manifest.json").write_bytes((b / "manifest.json").read_bytes()[:200])),
    Case("manifest-list", raw(b"[1, 2]")),
    Case("manifest-string", raw(b'"manifest"')),
    Case("manifest-null", raw(b"null")),
    Case("manifest-number", raw(b"1")),
    Case("manifest-deep", raw(_deep(100_000))),
    Case("manifest-huge", lambda b, o: (b / "manifest.json").write_bytes(b" " * (17 << 20) + b"{}")),
    Case("manifest-nan-threshold", lambda b, o: (b / "manifest.json").write_text(
        (b / "manifest.json").read_text().replace('"threshold": 0.5', '"threshold": NaN'))),
    Case("manifest-missing", lambda b, o: (b / "manifest.json").unlink()),
    Case("manifest-bom", lambda b, o: (b / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (b / "manifest.json").read_bytes())),
    Case("manifest-number-overflow", lambda b, o: (b / "manifest.json").write_text(
        (b / "manifest.json").read_text().replace('"threshold": 0.5', '"threshold": 1e400'))),
    # -- the manifest's content (the schema)
    Case("format-version-2", _set("format_version", 2)),
    Case("format-version-string", _set("format_version", "1")),
    Case("format-version-missing", _drop("format_version")),
    Case("target-list", _set("target", ["executorch"])),
    Case("target-unknown", _set("target", "tensorrt")),
    Case("target-missing", _drop("target")),
    Case("precision-bogus", _set("precision", "int3")),
    Case("precision-int", _set("precision", 8)),
    Case("batch-4-on-dynamic", _set("batch", 4)),
    Case("batch-negative", _set("batch", -1)),
    Case("batch-zero", _set("batch", 0)),
    Case("batch-string", _set("batch", "1")),
    Case("batch-huge", _set("batch", 10**9)),
    Case("batch-missing", _drop("batch")),
    Case("max-batch-zero", _set("max_batch", 0)),
    Case("max-batch-string", _set("max_batch", "64")),
    Case("trm-config-missing", _drop("trm_config")),
    Case("trm-config-list", _set("trm_config", [1, 2])),
    Case("trm-config-no-seq-len", _drop("trm_config.seq_len")),
    Case("trm-config-no-hidden", _drop("trm_config.hidden_size")),
    Case("trm-config-seq-len-string", _set("trm_config.seq_len", "81")),
    Case("trm-config-seq-len-float", _set("trm_config.seq_len", 81.5)),
    Case("trm-config-seq-len-huge", _set("trm_config.seq_len", 10**9)),
    Case("trm-config-seq-len-zero", _set("trm_config.seq_len", 0)),
    Case("trm-config-vocab-other", edit(lambda m: m["trm_config"].__setitem__("vocab_size", m["trm_config"]["vocab_size"] + 1))),
    Case("trm-config-hidden-other", edit(lambda m: m["trm_config"].__setitem__("hidden_size", m["trm_config"]["hidden_size"] * 2))),
    Case("trm-config-hidden-negative", _set("trm_config.hidden_size", -128)),
    Case("trm-config-ndim-string", _set("trm_config.puzzle_emb_ndim", "0")),
    Case("halting-empty", _set("halting", {})),
    Case("halting-list", _set("halting", [])),
    Case("halting-missing", _drop("halting")),
    Case("halting-policy-bogus", _set("halting.policy", "sometimes")),
    Case("halting-policy-int", _set("halting.policy", 1)),
    Case("halting-max-steps-zero", _set("halting.max_steps", 0)),
    Case("halting-max-steps-negative", _set("halting.max_steps", -3)),
    Case("halting-max-steps-huge", _set("halting.max_steps", 10**9)),
    Case("halting-max-steps-float", _set("halting.max_steps", 2.5)),
    Case("halting-max-steps-string", _set("halting.max_steps", "16")),
    Case("halting-max-steps-integral-float", _set("halting.max_steps", 16.0)),
    Case("trm-config-seq-len-integral-float", edit(lambda m: m["trm_config"].__setitem__(
        "seq_len", float(m["trm_config"]["seq_len"])))),
    Case("files-bytes-integral-float", edit(lambda m: m["files"][m["model_file"]].__setitem__(
        "bytes", float(m["files"][m["model_file"]]["bytes"])))),
    Case("halting-threshold-2", _set("halting.threshold", 2)),
    Case("halting-threshold-0", _set("halting.threshold", 0)),
    Case("halting-threshold-1", _set("halting.threshold", 1)),
    Case("halting-threshold-negative", _set("halting.threshold", -1)),
    Case("halting-threshold-string", _set("halting.threshold", "0.5")),
    Case("halting-threshold-null", _set("halting.threshold", None)),
    Case("halting-threshold-huge", _set("halting.threshold", 1e308)),
    Case("inputs-empty", _set("inputs", [])),
    Case("inputs-reversed", _io_field("inputs", lambda t: t.reverse())),
    Case("inputs-unknown-name", _set("inputs.0.name", "pixels")),
    Case("inputs-unknown-dtype", _set("inputs.0.dtype", "complex128")),
    Case("inputs-float-tokens", _set("inputs.0.dtype", "float32")),
    Case("inputs-shape-wrong", _set("inputs.0.shape", ["batch", 7])),
    Case("inputs-shape-negative", _set("inputs.0.shape", ["batch", -81])),
    Case("inputs-shape-string", _set("inputs.0.shape", "batch,81")),
    Case("inputs-entry-string", _set("inputs.0", "tokens")),
    Case("inputs-missing-one", _io_field("inputs", lambda t: t.pop())),
    Case("inputs-duplicated", _io_field("inputs", lambda t: t.append(t[0]))),
    Case("outputs-empty", _set("outputs", [])),
    Case("outputs-reversed", _io_field("outputs", lambda t: t.reverse())),
    Case("outputs-unknown-name", _set("outputs.3.name", "halt")),
    Case("outputs-dtype-int", _set("outputs.2.dtype", "int64")),
    Case("outputs-shape-wrong", _set("outputs.3.shape", ["batch", 2])),
    Case("io-names-missing", _drop("io_names")),
    Case("io-names-list", _set("io_names", ["tokens"])),
    Case("io-names-unknown-key", edit(lambda m: m["io_names"].__setitem__("pixels", "x"))),
    Case("io-names-value-int", edit(lambda m: m["io_names"].__setitem__("tokens", 3))),
    Case("io-names-incomplete", edit(lambda m: m["io_names"].pop("tokens") and None)),
    Case("init-bin-offset-past-end", _init_bin_array("z_init", "offset", 10**9)),
    Case("init-bin-offset-negative", _init_bin_array("z_init", "offset", -4)),
    Case("init-bin-shape-wrong", _init_bin_array("y_init", "shape", [3])),
    Case("init-bin-shape-huge", _init_bin_array("y_init", "shape", [1 << 40])),
    Case("init-bin-dtype-f16", _set("init_bin.dtype", "float16")),
    Case("init-bin-big-endian", _set("init_bin.byte_order", "big")),
    Case("init-bin-arrays-empty", _set("init_bin.arrays", [])),
    Case("init-bin-no-z", edit(lambda m: m["init_bin"].__setitem__(
        "arrays", [a for a in m["init_bin"]["arrays"] if a["name"] != "z_init"]))),
    Case("init-bin-twice", edit(lambda m: m["init_bin"]["arrays"].append(dict(m["init_bin"]["arrays"][0])))),
    Case("init-bin-string", _set("init_bin", "init.bin")),
    Case("task-bogus", _set("task", {"name": "chess"})),
    Case("task-list", _set("task", ["sudoku"])),
    Case("task-size-string", _set("task", {"name": "sudoku", "size": "9"})),
]


def _rm(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p)
    else:
        p.unlink()


def _copy_inside(bundle: Path, name: str) -> Path:
    """A copy of a bundle file under another (unlisted) name inside the bundle, for an inside symlink."""
    src = bundle / name
    dst = bundle / f"copy-of-{name}"
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return Path(dst.name)


def for_runtime(runtime: str) -> list[Case]:
    return [c for c in CASES if runtime in c.runtimes]


assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
