"""Keep the export toolchains quiet: only our stage lines reach the terminal.

    with quiet(verbose) as say:
        export_bundle(model, target, out, log=say)

Solving uses it too: every bundle backend is imported and opened inside quiet(verbose)
(trm_edge/runtime/bundle.py open_backend), and so is the PyTorch eager step (trm_edge/solver.py), so
`run`, `solve`, `eval`, Bundle(...) and trm_edge.open(...) print only our lines; the steps themselves
run unwrapped (a runtime that prints at its first step, as LiteRT does, does that work while loading).

Torch's exporters, onnxscript, ExecuTorch, torchao, coremltools and LiteRT print start-up chatter,
deprecation warnings, progress bars and C++ log lines (`Failed to load ... torchao/_C_mxfp8...so`,
`W... torch/utils/_pytree.py:630] ... register_constant() ... deprecated`, `[cpuinfo_utils.cpp:71]
Reading file ...`, `WARNING: All log messages before absl::InitializeLog() ...`, `I0000 ... port.cc]
oneDNN custom operations are on ...`, `Converting PyTorch Frontend ==> MIL Ops: ...`). A user reads
that as a failure. Inside `quiet()`, unless `verbose` is true or TRM_EDGE_DEBUG is set (to anything
non-empty, the test the CLI uses):

- Python warnings are ignored (`warnings.catch_warnings()` + `simplefilter("ignore")`, restored).
- Python logging is muted: the third-party loggers that exist (torch, torch.onnx, torch._dynamo,
  torch._export, onnxscript, onnx_ir, onnxruntime, absl, tensorflow, executorch, torchao,
  coremltools, litert_torch, ai_edge_*, jax ...) are set above CRITICAL, absl's own handler too,
  and `logging.disable(CRITICAL)` covers loggers the toolchains create or re-level while they are
  imported inside the block (no logger is created here: absl needs to create its own). Levels and
  the disable threshold are restored on the way out.
- Environment variables the native libraries read at start-up are set when the user has not set
  them, and removed again afterwards: TF_CPP_MIN_LOG_LEVEL=2 (read by ai_edge_litert,
  litert_converter and jaxlib: drops INFO/WARNING such as the oneDNN banner, keeps ERRORs for the
  failure tail below) and TORCH_CPP_LOG_LEVEL=ERROR (c10). Nothing installed reads GLOG_minloglevel
  or an ABSL_* variable (checked in the wheels' binaries), so those are not set.
- File descriptors 1 and 2 are pointed at one temporary file with os.dup2 (C and C++ libraries write
  there directly), and sys.stdout / sys.stderr at a text stream on the same file (for hosts whose
  Python streams are not fds 1 and 2, such as click's CliRunner or pytest). Python's streams and C's
  stdio buffers are flushed before each swap; fds, streams and everything above are restored
  exactly, in a `finally`, also when the block raises (the exception propagates unchanged).

`say(text)` writes one line to the ORIGINAL stdout (a dup of fd 1 taken before redirecting, or the
original sys.stdout object when that is not fd 1), so the stage lines still show as they happen.

Nothing captured is lost when it explains a failure: on the way out `say.tail` holds the last 50
lines that were captured (progress-bar redraws collapsed to their last state) and `say.failed`
says whether the block raised. The exception's own message is untouched, so a one-line error stays
one line; a caller can print `say.tail` (`say.dump()`) or suggest `--verbose` / TRM_EDGE_DEBUG=1,
which runs the block unfiltered. With verbose on, `say` is a plain print and `tail` stays empty.
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import io
import logging
import os
import sys
import tempfile
import warnings

TAIL_LINES = 50
MUTED = logging.CRITICAL + 1

# logger names (and their children) of the toolchains an export may import
THIRD_PARTY = ("torch", "torchao", "torchvision", "onnx", "onnxscript", "onnx_ir", "onnxruntime", "absl",
               "tensorflow", "tf", "executorch", "coremltools", "litert_torch", "litert_converter",
               "litert", "ai_edge_torch", "ai_edge_litert", "ai_edge_quantizer", "jax", "jaxlib",
               "transformers", "huggingface_hub", "sympy", "numexpr", "matplotlib", "PIL", "h5py",
               "filelock", "urllib3", "fsspec")

# set inside a verbose block: a quiet() nested in it (a Bundle opened by export's parity) lets all through
_VERBOSE: contextvars.ContextVar[bool] = contextvars.ContextVar("trm_edge_quiet_verbose", default=False)

# environment variables the native libraries read when they start logging: name -> quiet value
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TORCH_CPP_LOG_LEVEL": "ERROR"}


def debug_requested() -> bool:
    """TRM_EDGE_DEBUG set to anything non-empty (the CLI's own test for showing tracebacks)."""
    return bool(os.environ.get("TRM_EDGE_DEBUG"))


class Say:
    """The callable `quiet()` yields: say(text) writes text and a newline to the original stdout."""

    def __init__(self, write=None):
        self._write = write
        self.tail: list[str] = []
        self.failed = False

    def __call__(self, text="") -> None:
        if self._write is None:     # verbose, or after the block: the ordinary stdout
            print(text, flush=True)
        else:
            self._write(f"{text}\n")

    def dump(self, stream=None) -> None:
        """Write the captured tail (if any) to `stream` (default sys.stderr)."""
        stream = stream or sys.stderr
        for line in self.tail:
            stream.write(line + "\n")
        stream.flush()


def _is_fd(stream, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return False


def _flush_all() -> None:
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if s is not None:
                s.flush()
        except (AttributeError, ValueError, OSError):
            pass
    try:    # C stdio buffers (fully buffered when fd 1 is a file): flush them before the fd swaps
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


def _third_party(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in THIRD_PARTY)


def _read_tail(f, n: int = TAIL_LINES, max_bytes: int = 1 << 16) -> list[str]:
    try:
        f.flush()
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - max_bytes))
        data = f.read().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return []
    lines = [ln.rstrip("\r").split("\r")[-1].rstrip() for ln in data.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    if size > max_bytes and lines:
        lines = lines[1:]            # the first line may have been cut
    return lines[-n:]


@contextlib.contextmanager
def _muted_python():
    """Warnings ignored; third-party loggers and absl's handler above CRITICAL; logging disabled."""
    saved_levels = {}
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger) and _third_party(name):
            saved_levels[lg] = lg.level
            lg.setLevel(MUTED)
    absl_handler, absl_level = None, None
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is not None:
        try:
            absl_handler = absl_logging.get_absl_handler()
            absl_level = absl_handler.level
            absl_handler.setLevel(MUTED)
        except Exception:   # an absl without the handler API: the fds are still captured
            absl_handler = None
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        if absl_handler is not None:
            absl_handler.setLevel(absl_level)
        for lg, level in saved_levels.items():
            lg.setLevel(level)


@contextlib.contextmanager
def _quiet_env():
    added = {k: v for k, v in QUIET_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k, v in added.items():
            if os.environ.get(k) == v:
                del os.environ[k]


@contextlib.contextmanager
def quiet(verbose: bool = False):
    """Run a block with the toolchains' output captured; yields `say` (see the module docstring). Inside
    a verbose block every quiet() is verbose too (`export --verbose` opens its bundle for parity)."""
    if verbose or debug_requested() or _VERBOSE.get():
        token = _VERBOSE.set(True)
        try:
            yield Say()
        finally:
            _VERBOSE.reset(token)
        return
    say = Say()
    with _quiet_env(), _muted_python(), tempfile.TemporaryFile(prefix="trm-edge-quiet-") as cap:
        _flush_all()
        orig_out, orig_err = sys.stdout, sys.stderr
        saved1, saved2 = os.dup(1), os.dup(2)
        real_out = None
        if _is_fd(orig_out, 1) or orig_out is None:   # the terminal (or a pipe): write to fd 1 as it was
            real_out = open(os.dup(saved1), "w", encoding=getattr(orig_out, "encoding", None) or "utf-8",
                            errors="replace", buffering=1)

            def write(s):
                real_out.write(s)
                real_out.flush()
        else:                                         # a Python-level stdout (CliRunner, pytest): keep it

            def write(s):
                orig_out.write(s)
                orig_out.flush()
        py_cap = open(os.dup(cap.fileno()), "w", encoding="utf-8", errors="replace", buffering=1)
        try:
            os.dup2(cap.fileno(), 1)
            os.dup2(cap.fileno(), 2)
            sys.stdout, sys.stderr = py_cap, py_cap
            say._write = write
            yield say
        except BaseException:
            say.failed = True
            raise
        finally:
            say._write = None
            _flush_all()
            sys.stdout, sys.stderr = orig_out, orig_err
            os.dup2(saved1, 1)
            os.dup2(saved2, 2)
            os.close(saved1)
            os.close(saved2)
            for f in (py_cap, real_out):
                if f is not None:
                    with contextlib.suppress(OSError, ValueError):
                        f.close()
            say.tail = _read_tail(cap)
