"""`trm-edge web BUNDLE`: the browser demo (export/web/) with an ONNX bundle, served on localhost with the
headers wasm threads need, or written as a self-contained folder to put on any static host (`--out`).

The page, its runtime (export/web/trm.js) and onnxruntime-web's files (export/web/node_modules, from
`npm ci --prefix export/web`) live in a clone of the repository, not in the wheel. What is served:

    /                 the page (index.html, app.js, trm.js, sudoku.js, style.css, sw.js)
    /ort/<file>       onnxruntime-web's wasm and WebGPU builds (ORT_FILES), from node_modules
    /bundle/<file>    the bundle: manifest.json and the files it lists, nothing else

Every answer carries Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy:
require-corp, so the page is cross-origin isolated and onnxruntime-web may run wasm threads. Standard
library only (no torch, no onnxruntime): the bundle is checked by trm_edge.runtime.manifest.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from trm_edge.atomic import replace_folder
from trm_edge.errors import TRMEdgeError

WEB = Path(__file__).resolve().parents[1] / "export" / "web"
PAGE_FILES = ("index.html", "app.js", "trm.js", "sudoku.js", "style.css", "sw.js")
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",          # wasm
             "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")  # WebGPU
HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
           "Cross-Origin-Resource-Policy": "same-origin"}
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".json": "application/json", ".wasm": "application/wasm", ".png": "image/png"}
MARKER = "trm-edge-web.json"      # in a folder --out wrote: what it holds (so a later --out may replace it)
NPM_FIX = "npm ci --prefix export/web"


class WebError(TRMEdgeError):
    pass


def web_dir() -> Path:
    """export/web of this clone (TRM_EDGE_WEB overrides), with the page's files, or a one-line WebError."""
    d = Path(os.environ.get("TRM_EDGE_WEB", WEB))
    missing = [f for f in PAGE_FILES if not (d / f).is_file()]
    if missing:
        raise WebError(f"the web page's files are not at {d} (no {missing[0]}): trm-edge web runs from a clone of "
                       f"trm-edge, which holds export/web/ (or set TRM_EDGE_WEB to that folder)")
    return d


def ort_dir(web: Path) -> Path:
    """onnxruntime-web's dist folder under web/node_modules, holding every file the page loads."""
    d = web / "node_modules" / "onnxruntime-web" / "dist"
    missing = [f for f in ORT_FILES if not (d / f).is_file()]
    if missing:
        raise WebError(f"onnxruntime-web's files are missing ({d / missing[0]}); install them: {NPM_FIX}")
    return d


def check_bundle(path) -> dict:
    """The bundle's manifest if a browser can run it: the contract's rules with every sha256 checked, an
    ONNX model, init.bin present; else a one-line error naming the fix."""
    from trm_edge.runtime.manifest import read_manifest
    m = read_manifest(path)
    if m["target"] != "onnx":
        raise WebError(f"{path} is a {m['target']} bundle; the browser runs ONNX bundles: export one with "
                       f"`trm-edge export --target onnx`")
    if not m.get("init_bin"):
        raise WebError(f"{path} has no init.bin, which the browser reads; re-export it with this trm-edge")
    return m


def routes(bundle: Path, manifest: dict, web: Path, ort: Path) -> dict[str, Path]:
    """URL path -> file: the page, onnxruntime-web's files and the bundle's; nothing else is served."""
    r = {f"/{f}": web / f for f in PAGE_FILES}
    r["/"] = web / "index.html"
    r |= {f"/ort/{f}": ort / f for f in ORT_FILES}
    r |= {f"/bundle/{f}": bundle / f for f in ["manifest.json", *manifest["files"]]}
    return r


class Handler(BaseHTTPRequestHandler):
    files: dict[str, Path] = {}
    quiet = True
    server_version = "trm-edge-web"

    def _send(self, body: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        f = self.files.get(path)
        if f is None or not f.is_file():
            self.send_error(404, "not part of this page or its bundle")
            return
        size = f.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", TYPES.get(f.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "no-cache")
        for k, v in HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            with open(f, "rb") as fh:
                shutil.copyfileobj(fh, self.wfile, 1 << 20)

    def do_GET(self):      # noqa: N802 (http.server's names)
        try:
            self._send(True)
        except (BrokenPipeError, ConnectionResetError):     # the browser went away mid-file
            pass

    def do_HEAD(self):     # noqa: N802
        self._send(False)

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")


def server(bundle, port: int = 8000, host: str = "127.0.0.1", verbose: bool = False) -> ThreadingHTTPServer:
    """A server (not yet serving) of the page with `bundle`, on host:port (0: a free port)."""
    bundle = Path(bundle)
    m = check_bundle(bundle)
    web = web_dir()
    files = routes(bundle, m, web, ort_dir(web))
    handler = type("BundleHandler", (Handler,), {"files": files, "quiet": not verbose})
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise WebError(f"cannot listen on {host}:{port} ({e.strerror or e}); give another --port "
                       f"(0 picks a free one)") from None


def _ours(path: Path) -> bool:
    """A folder an earlier `--out` wrote: its marker lists every file in it."""
    try:
        listed = set(json.loads((path / MARKER).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    have = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    return have <= listed | {MARKER}


def write_folder(bundle, out) -> Path:
    """The page, onnxruntime-web and the bundle in one folder to host anywhere (a static host, an app's
    assets): written beside `out` and moved into place, so a half-written folder is never seen."""
    from trm_edge.outdir import claim, make, reason, unmake
    bundle = Path(bundle)
    m = check_bundle(bundle)
    web = web_dir()
    files = routes(bundle, m, web, ort_dir(web))
    out = claim(out, "web folder", _ours)
    created = make(out.parent, "web folder")
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", dir=out.parent))
    try:
        written = []
        for url, src in files.items():
            if url == "/":
                continue
            rel = url.lstrip("/")
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, stage / rel)
            written.append(rel)
        # static hosts that read a _headers file (Netlify, Cloudflare Pages) send these: wasm threads
        headers = "/*\n" + "".join(f"  {k}: {v}\n" for k, v in HEADERS.items())
        (stage / "_headers").write_text(headers)
        written.append("_headers")
        (stage / MARKER).write_text(json.dumps({"written_by": "trm-edge web --out", "bundle": m["files"][m["model_file"]],
                                                "files": sorted(written)}, indent=1))
        for p in stage.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        stage.chmod(0o755)
        replace_folder(stage, out)
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        unmake(created)
        raise WebError(f"--out {out} could not be written: {reason(e)}; choose another folder") from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        unmake(created)
        raise
    return out
