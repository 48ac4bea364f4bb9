"""The C++ runner (export/executorch/runner/) against the hostile-bundle catalogue (tests/hostile_bundles.py):
every case that applies to it ("native"), applied to a fresh copy of the shipped model's ExecuTorch bundle.

For each case `trm-runner BUNDLE --tokens ...` must exit 2 within TIMEOUT seconds (a hang fails), print
nothing on stdout and exactly one line on stderr (UTF-8, no control characters), and open nothing in the
sentinel folder beside the bundle: it runs under `strace -f -e trace=open,openat,openat2` and no path
under that folder may appear in the log (that one assertion is skipped, with the reason, where strace is
missing or cannot trace here). A good copy must solve under the same watch, so the test can fail.

The runner checks the bundle before any step, so each case takes a few hundredths of a second.
"""
from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from hostile_bundles import for_runtime, fresh_copy
from native_build import why_no_native

pytestmark = pytest.mark.skipif(why_no_native() is not None, reason=str(why_no_native()))

TIMEOUT = 20          # seconds; the runner refuses a hostile bundle in well under one
TOKENS = ",".join(["1"] * 81)   # an empty 9x9 Sudoku; a hostile bundle must fail before it is read


CASES = for_runtime("native")

# Rule 4 holds without hashing too: these must fail the same way with --no-verify.
NO_VERIFY = [c for c in CASES if any(k in c.id for k in ("symlink", "fifo", "folder", "missing", "truncated",
                                                           "grown", "bytes-wrong"))]


@pytest.fixture(scope="session")
def strace(tmp_path_factory) -> list[str] | None:
    """The strace command line that logs every open (None where strace cannot run here)."""
    if not shutil.which("strace"):
        return None
    log = tmp_path_factory.mktemp("strace") / "probe.log"
    for calls in ("open,openat,openat2", "open,openat"):   # openat2 is unknown to strace before 5.6
        cmd = ["strace", "-f", "-e", f"trace={calls}", "-o"]
        if subprocess.run([*cmd, str(log), "true"], capture_output=True, timeout=60).returncode == 0:
            return cmd
    return None


def _run(runner: Path, strace: list[str] | None, bundle: Path, log: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(runner / "trm-runner"), str(bundle), "--tokens", TOKENS, *args]
    try:
        return subprocess.run([*strace, str(log), *cmd] if strace else cmd, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"trm-runner did not finish within {TIMEOUT} s (a hang)")


def _assert_refused(r: subprocess.CompletedProcess) -> None:
    err = r.stderr.decode("utf-8")   # a UnicodeDecodeError fails the test: stderr must be UTF-8
    assert r.returncode == 2, (r.returncode, err)
    assert r.stdout == b"", r.stdout[:200]
    assert err.startswith("trm-runner: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert not [c for c in err[:-1] if unicodedata.category(c) == "Cc"], err


def _assert_nothing_opened_outside(strace, log: Path, outside: Path) -> None:
    if strace is None:
        pytest.skip("strace is missing or cannot trace here (apt-get install strace): "
                    "the refusal was checked, not what the runner opened")
    opened = [line for line in log.read_text(errors="replace").splitlines() if str(outside) in line]
    assert not opened, opened[:5]


def test_good_copy_solves_under_watch(native_runner, shipped_et_bundle, strace, tmp_path):
    bundle, outside = fresh_copy(shipped_et_bundle, tmp_path)
    log = tmp_path / "strace.log"
    r = _run(native_runner, strace, bundle, log)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert r.stdout.decode().startswith("answer  ") and r.stderr == b""
    if strace:
        assert str(bundle / "manifest.json") in log.read_text(), "strace logged no open of the manifest: the watch is blind"
    _assert_nothing_opened_outside(strace, log, outside)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_hostile_bundle_refused(native_runner, shipped_et_bundle, strace, tmp_path, case):
    bundle, outside = fresh_copy(shipped_et_bundle, tmp_path)
    case.apply(bundle, outside)
    log = tmp_path / "strace.log"
    _assert_refused(_run(native_runner, strace, bundle, log))
    _assert_nothing_opened_outside(strace, log, outside)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in NO_VERIFY])
def test_hostile_bundle_refused_without_verify(native_runner, shipped_et_bundle, strace, tmp_path, case):
    bundle, outside = fresh_copy(shipped_et_bundle, tmp_path)
    case.apply(bundle, outside)
    log = tmp_path / "strace.log"
    _assert_refused(_run(native_runner, strace, bundle, log, "--no-verify"))
    _assert_nothing_opened_outside(strace, log, outside)


@pytest.mark.parametrize("args", [["--max-steps", "1025"], ["--max-steps", "0"], ["--threshold", "nan"]])
def test_absurd_options_refused(native_runner, shipped_et_bundle, tmp_path, args):
    _assert_refused(_run(native_runner, None, shipped_et_bundle, tmp_path / "unused.log", *args))
