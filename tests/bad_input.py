"""What every bad-input test asserts, in one place: the package's error in one line, nothing left behind,
nothing opened outside a bundle, no hang. Used by tests/test_bad_input_*.py and test_native_hostile.py."""
from __future__ import annotations

import hashlib
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from trm_edge.cli import main


def snapshot(root: Path) -> dict:
    """Every entry under root, no symlink followed: folders, files by sha256 of their bytes, links by target."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs:
            out[os.path.relpath(os.path.join(dirpath, n), root) + "/"] = "dir"
        for n in files:
            p = os.path.join(dirpath, n)
            if os.path.islink(p):
                out[os.path.relpath(p, root)] = "link:" + os.readlink(p)
            elif os.path.isfile(p):
                out[os.path.relpath(p, root)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            else:   # a FIFO or device: never read
                out[os.path.relpath(p, root)] = f"special:{os.lstat(p).st_mode}"
    return out


def one_line(msg) -> str:
    """A message (or an exception's) that is one printable line, with no traceback in it."""
    msg = str(msg).strip()
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    assert not any(ord(ch) < 32 for ch in msg), f"control characters in {msg!r}"
    return msg


def refused(argv, root: Path, capsys) -> str:
    """`trm-edge ARGV` in-process: exit 2, one stderr line `error: ...` (not an internal error), and
    `root` exactly as it was. Returns the line."""
    before = snapshot(root)
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (code, out[-500:], err[-500:])
    assert err.startswith("error: ") and "internal error" not in err, err
    one_line(err)
    assert snapshot(root) == before, "the call left something behind or changed a file"
    return err.strip()


# ---------------------------------------------------------------- what Python opens

_OPENED: list[str] | None = None


def _audit(event, args):
    if _OPENED is not None and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)     # once per process: audit hooks cannot be removed


@contextmanager
def watched(seconds: int = 30):
    """Every path Python opens inside the block; a hang becomes a TimeoutError after `seconds`."""
    global _OPENED
    _OPENED = opened = []

    def hang(*_):
        raise TimeoutError(f"hung for {seconds} s")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield opened
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        _OPENED = None


def assert_outside_untouched(opened, outside: Path) -> None:
    out = os.path.realpath(outside)
    leaked = [p for p in opened if os.path.realpath(p).startswith(out + os.sep) or p.startswith("/dev/")]
    assert not leaked, f"opened outside the bundle: {leaked}"
