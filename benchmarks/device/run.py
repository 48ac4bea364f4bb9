"""Benchmark an ExecuTorch bundle with the native runner on a phone (adb), a board (ssh), or here.

    python benchmarks/device/run.py --adb [--serial S] --runner DIR --bundle BUNDLE [--threads 1,4]
    python benchmarks/device/run.py --ssh pi@raspberrypi.local --runner DIR --bundle BUNDLE
    python benchmarks/device/run.py --local --runner DIR --bundle BUNDLE [--wrapper "qemu-aarch64 -L ..."]

DIR is an installed runner (`cmake --install BUILD --prefix DIR`: DIR/bin/trm-runner, DIR/lib/*.so;
README.md says how to build one per device). The script copies DIR, the bundle and a puzzle file to
REMOTE_DIR, runs `trm-runner --bench STEPS --threads T` once per thread count, and appends each JSON
row (schema trm-edge-bench/1) to OUT/bench.json, rewriting OUT/bench.md. `--dry-run` prints the
commands instead.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REMOTE = {"adb": "/data/local/tmp/trm-edge", "ssh": "trm-edge-bench", "local": None}


@dataclass
class Device:
    transport: str                   # "adb" | "ssh" | "local"
    host: str = ""                   # adb serial (optional) or ssh destination
    port: int | None = None          # ssh
    wrapper: tuple[str, ...] = ()    # local: a command the runner runs under (qemu-aarch64 -L ...)

    def shell(self, command: str) -> list[str]:
        """argv that runs one shell command line on the device."""
        if self.transport == "adb":
            return ["adb", *(["-s", self.host] if self.host else []), "shell", command]
        if self.transport == "ssh":
            return ["ssh", *(["-p", str(self.port)] if self.port else []), "-o", "BatchMode=yes", self.host, command]
        return ["sh", "-c", command]

    def push(self, local: Path, remote: str) -> list[str]:
        """argv that copies a file or folder to `remote` (a folder is copied to remote/<its name>)."""
        if self.transport == "adb":
            return ["adb", *(["-s", self.host] if self.host else []), "push", str(local), remote]
        if self.transport == "ssh":
            return ["scp", "-q", "-r", *(["-P", str(self.port)] if self.port else []), "-o", "BatchMode=yes",
                    str(local), f"{self.host}:{remote}"]
        return ["cp", "-r", str(local), remote]


def plan(device: Device, runner: Path, bundle: Path, puzzles: Path, remote: str, threads: list[int],
         steps: int) -> tuple[list[list[str]], list[list[str]]]:
    """(copy commands, one bench command per thread count)."""
    q = shlex.quote
    copy = [device.shell(f"mkdir -p {q(remote)}"),
            device.push(runner, f"{remote}/"), device.push(bundle, f"{remote}/"), device.push(puzzles, f"{remote}/")]
    r, b, p = (f"{remote}/{x.name}" for x in (runner, bundle, puzzles))
    runs = []
    for t in threads:
        argv = [*device.wrapper, f"{r}/bin/trm-runner", b, "--puzzle-file", p, "--bench", str(steps), "--threads", str(t)]
        runs.append(device.shell(f"LD_LIBRARY_PATH={q(r + '/lib')} " + " ".join(map(q, argv))))
    return copy, runs


def describe(device: Device) -> dict:
    """What the device says it is (model name, kernel), for the rows' extra."""
    cmd = {"adb": "echo $(getprop ro.product.manufacturer) $(getprop ro.product.model) / Android $(getprop ro.build.version.release)",
           "ssh": "cat /proc/device-tree/model 2>/dev/null || uname -srm",
           "local": "uname -srm"}[device.transport]
    r = subprocess.run(device.shell(cmd), capture_output=True, text=True, timeout=60)
    return {"device_model": r.stdout.strip().replace("\x00", "")} if r.returncode == 0 else {}


def write_puzzles(manifest: dict, n: int, path: Path) -> Path:
    """n puzzles of the bundle's task (generated, as `trm-edge bench` does) as token lists, one per line."""
    from trm_edge.data import sample_puzzles
    m = manifest
    c = m["trm_config"]
    tokens = sample_puzzles(m.get("task"), c["seq_len"], c["vocab_size"], n, seed=3)
    path.write_text("".join(",".join(map(str, t)) + "\n" for t in tokens))
    return path


def fail(message: str) -> None:
    print(f"device bench: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--adb", action="store_true", help="an Android device over adb")
    where.add_argument("--ssh", metavar="USER@HOST", help="a board over ssh/scp (key-based login)")
    where.add_argument("--local", action="store_true", help="this machine (optionally under --wrapper)")
    ap.add_argument("--serial", default="", help="adb: the device's serial (adb devices)")
    ap.add_argument("--port", type=int, help="ssh: port")
    ap.add_argument("--wrapper", default="", help='local: run the runner under this, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"')
    ap.add_argument("--runner", type=Path, required=True, help="installed runner folder (bin/trm-runner, lib/)")
    ap.add_argument("--bundle", type=Path, required=True, help="an ExecuTorch bundle folder")
    ap.add_argument("--puzzles", type=int, default=20, help="puzzles timed with q_halt halting [20]")
    ap.add_argument("--steps", type=int, default=50, help="steps timed at batch 1 [50]")
    ap.add_argument("--threads", default="1", help="thread counts, comma-separated [1]")
    ap.add_argument("--remote-dir", help="where the files go on the device (adb: /data/local/tmp/trm-edge; "
                                         "ssh: ~/trm-edge-bench; local: a temporary folder)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/device"), help="bench.json to append to")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = ap.parse_args(argv)

    if not (a.runner / "bin" / "trm-runner").is_file():
        fail(f"{a.runner}/bin/trm-runner is missing: install a build first (cmake --install BUILD --prefix {a.runner})")
    from trm_edge.runtime.manifest import BundleError, read_manifest
    try:
        manifest = read_manifest(a.bundle)    # every file present and matching its sha256 before it travels
    except BundleError as e:
        fail(str(e))
    try:
        threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        fail(f"--threads takes comma-separated integers, got {a.threads!r}")
    transport = "adb" if a.adb else "ssh" if a.ssh else "local"
    device = Device(transport, a.serial if a.adb else a.ssh or "", a.port, tuple(shlex.split(a.wrapper)))

    with tempfile.TemporaryDirectory() as tmp:
        remote = a.remote_dir or DEFAULT_REMOTE[transport] or str(Path(tmp) / "device")
        puzzles = write_puzzles(manifest, a.puzzles, Path(tmp) / "puzzles.txt")
        copy, runs = plan(device, a.runner.resolve(), a.bundle.resolve(), puzzles, remote, threads, a.steps)
        if a.dry_run:
            print("\n".join(shlex.join(c) for c in copy + runs))
            return 0
        for cmd in copy:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if r.returncode:
                fail(f"{shlex.join(cmd[:4])}... failed: {(r.stderr or r.stdout).strip().splitlines()[-1:] or r.returncode}")
        about = describe(device)
        rows = []
        for t, cmd in zip(threads, runs):
            print(f"{transport} {device.host or 'local'}: {a.bundle.name}, {t} threads ...", file=sys.stderr)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if r.returncode:
                fail(f"trm-runner on the device failed ({r.returncode}): {r.stderr.strip()}")
            row = json.loads(r.stdout.strip().splitlines()[-1])
            row["extra"].update(about, transport=transport, host=device.host or "local", bundle_name=a.bundle.name)
            rows.append(row)

    from trm_edge.bench import RowError, append_rows
    try:
        append_rows(a.out, rows)
    except RowError as e:
        fail(str(e))
    for row in rows:
        print(f"{row['device']} {row['extra'].get('device_model', '')}: {row['precision']}, {row['threads']} threads: "
              f"{row['ms_step_p50']:.2f} ms/step p50, {row['ms_puzzle_q_halt']:.1f} ms/puzzle q_halt")
    print(f"appended {len(rows)} row(s) to {a.out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
