"""Output folders a verb may write: never a user's folder of other things, never anything we did not write.

Every verb with `--out` asks `claim(out, kind, ours)` before it writes: the path must be a folder
that is absent, empty, or already one of ours (`ours(path)` says so, e.g. a bundle whose files are
all listed in its manifest). Anything else is refused with one line naming the problem and the fix.
`make(path, kind)` then creates the folder, turning the OS's refusal (read-only file system, no
space, a name too long) into the same kind of one-line error: we run as root in containers, where
`os.access` says yes to everything, so the folder is only known to be writable once written.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

from trm_edge.errors import TRMEdgeError


class OutputError(TRMEdgeError):
    pass


def show(path) -> str:
    """A path for a one-line message: as typed, or quoted when it holds control characters or is very long."""
    s = str(path)
    if s.isprintable() and len(s) <= 200:
        return s
    r = repr(s)
    return r if len(r) <= 200 else r[:150] + "..." + r[-40:]


def reason(e: BaseException) -> str:
    """An OSError (or any exception) as a short phrase on one line."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(e).__name__)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def claim(out, kind: str, ours: Callable[[Path], bool] | None = None, option: str = "--out") -> Path:
    """`out` as a Path we may write a `kind` into, or an OutputError (nothing is created here)."""
    if out is None or str(out).strip() == "":
        raise OutputError(f"{option} is empty; give a folder for the {kind}")
    if "\0" in str(out):
        raise OutputError(f"{option} {show(out)} holds a NUL character; give a folder path for the {kind}")
    try:
        return _claim(out, kind, ours, option)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise OutputError(f"{option} {show(out)}: the name is too long for the file system; "
                              f"choose a shorter folder path") from None
        raise OutputError(f"{option} {show(out)} cannot be used: {reason(e)}; choose another folder") from None


def _claim(out, kind, ours, option) -> Path:
    path = Path(out).expanduser()
    if path.exists() or path.is_symlink():
        if path.is_symlink() and not path.exists():
            raise OutputError(f"{option} {show(out)} is a broken symlink; give a folder for the {kind}")
        if not path.is_dir():
            raise OutputError(f"{option} {show(out)} is a file, not a folder; give a folder for the {kind}")
        if any(path.iterdir()) and not (ours and ours(path)):
            raise OutputError(f"{option} {show(out)} is a folder that holds files and is not a {kind} of trm-edge; "
                              f"nothing was written or deleted: choose a new or empty folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {show(out)} is not writable by this user; choose another folder")
        return path
    base = _nearest_existing(path.absolute().parent)
    if not base.is_dir():
        raise OutputError(f"{option} {show(out)} lies under {show(base)}, which is a file; choose a folder path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {show(out)} cannot be created: {show(base)} is not writable by this user; "
                          f"choose another folder")
    return path


def make(path, kind: str, option: str = "--out") -> list[Path]:
    """Create the claimed folder `path` (and missing parents); return the folders this call created,
    deepest first, so that a failed run can remove exactly those (`unmake`). OSError -> OutputError."""
    path = Path(path)
    missing = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        unmake(missing)
        raise OutputError(f"{option} {show(path)} cannot be created: {reason(e)}; choose another folder "
                          f"for the {kind}") from None
    return missing


def unmake(created: list[Path]) -> None:
    """Remove the folders `make` created, deepest first, where they are empty (never anything else)."""
    for p in created:
        try:
            p.rmdir()
        except OSError:
            break
