"""One way to write a file for the whole package: to a temporary name beside it, then moved over it,
so a reader (or a killed process) never sees a half-written file. Standard library only."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def atomic_write(path, write, mode: int = 0o644) -> Path:
    """Call write(tmp_path), then move tmp over path; on any failure the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)           # mkstemp makes 0600 files; what we write is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path, value, indent: int | None = 1) -> Path:
    return write_text(path, json.dumps(value, indent=indent))


def replace_folder(stage, out) -> None:
    """Move the finished folder `stage` to `out`, replacing an earlier `out` (moved aside first, then removed):
    `out` is never half-written."""
    stage, out = Path(stage), Path(out)
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        out.replace(old)
        stage.replace(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        stage.replace(out)
