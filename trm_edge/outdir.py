"""Output folders a verb may write: never a user's folder of other things, never anything we did not write.

Every verb with `--out` asks `claim(out, kind, ours)` before it writes: the path must be a folder
that is absent, empty, or already one of ours (`ours(path)` says so, e.g. a bundle whose files are
all listed in its manifest). Anything else is refused with one line naming the problem and the fix.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from trm_edge.errors import TRMEdgeError


class OutputError(TRMEdgeError):
    pass


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def claim(out, kind: str, ours: Callable[[Path], bool] | None = None, option: str = "--out") -> Path:
    """`out` as a Path we may write a `kind` into, or an OutputError (nothing is created here)."""
    if out is None or str(out).strip() == "":
        raise OutputError(f"{option} is empty; give a folder for the {kind}")
    path = Path(out).expanduser()
    if path.exists() or path.is_symlink():
        if path.is_symlink() and not path.exists():
            raise OutputError(f"{option} {out} is a broken symlink; give a folder for the {kind}")
        if not path.is_dir():
            raise OutputError(f"{option} {out} is a file, not a folder; give a folder for the {kind}")
        if any(path.iterdir()) and not (ours and ours(path)):
            raise OutputError(f"{option} {out} is a folder that holds files and is not a {kind} of trm-edge; "
                              f"nothing was written or deleted: choose a new or empty folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {out} is not writable by this user; choose another folder")
        return path
    base = _nearest_existing(path.absolute().parent)
    if not base.is_dir():
        raise OutputError(f"{option} {out} lies under {base}, which is a file; choose a folder path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {out} cannot be created: {base} is not writable by this user; choose another folder")
    return path
