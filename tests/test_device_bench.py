"""benchmarks/device/run.py: the adb and ssh commands it builds (no phone or board here), and a real
run through its `--local` transport with the native runner, appending rows to a bench.json."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from native_build import REPO, why_no_native

spec = importlib.util.spec_from_file_location("device_run", REPO / "benchmarks" / "device" / "run.py")
run = sys.modules["device_run"] = importlib.util.module_from_spec(spec)   # dataclasses look it up
spec.loader.exec_module(run)

RUNNER, BUNDLE, PUZZLES = Path("/b/runner"), Path("/b/sudoku-executorch-int8"), Path("/tmp/x/puzzles.txt")


def test_adb_commands():
    copy, runs = run.plan(run.Device("adb", "R58M"), RUNNER, BUNDLE, PUZZLES, "/data/local/tmp/trm-edge", [1, 4], 50)
    assert copy == [
        ["adb", "-s", "R58M", "shell", "mkdir -p /data/local/tmp/trm-edge"],
        ["adb", "-s", "R58M", "push", "/b/runner", "/data/local/tmp/trm-edge/"],
        ["adb", "-s", "R58M", "push", "/b/sudoku-executorch-int8", "/data/local/tmp/trm-edge/"],
        ["adb", "-s", "R58M", "push", "/tmp/x/puzzles.txt", "/data/local/tmp/trm-edge/"]]
    assert runs[1] == ["adb", "-s", "R58M", "shell",
                       "LD_LIBRARY_PATH=/data/local/tmp/trm-edge/runner/lib /data/local/tmp/trm-edge/runner/bin/trm-runner "
                       "/data/local/tmp/trm-edge/sudoku-executorch-int8 --puzzle-file /data/local/tmp/trm-edge/puzzles.txt "
                       "--bench 50 --threads 4"]
    assert run.plan(run.Device("adb"), RUNNER, BUNDLE, PUZZLES, "/d", [1], 5)[0][0] == ["adb", "shell", "mkdir -p /d"]


def test_ssh_commands_quote_what_the_remote_shell_reads():
    copy, runs = run.plan(run.Device("ssh", "pi@board", port=2222), RUNNER, BUNDLE, PUZZLES, "bench dir", [2], 20)
    assert copy[0] == ["ssh", "-p", "2222", "-o", "BatchMode=yes", "pi@board", "mkdir -p 'bench dir'"]
    assert copy[1] == ["scp", "-q", "-r", "-P", "2222", "-o", "BatchMode=yes", "/b/runner", "pi@board:bench dir/"]
    assert runs == [["ssh", "-p", "2222", "-o", "BatchMode=yes", "pi@board",
                     "LD_LIBRARY_PATH='bench dir/runner/lib' 'bench dir/runner/bin/trm-runner' "
                     "'bench dir/sudoku-executorch-int8' --puzzle-file 'bench dir/puzzles.txt' --bench 20 --threads 2"]]


def test_local_commands_with_a_wrapper():
    qemu = ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu")
    _, runs = run.plan(run.Device("local", wrapper=qemu), RUNNER, BUNDLE, PUZZLES, "/tmp/d", [1], 3)
    assert runs == [["sh", "-c", "LD_LIBRARY_PATH=/tmp/d/runner/lib qemu-aarch64 -L /usr/aarch64-linux-gnu "
                                 "/tmp/d/runner/bin/trm-runner /tmp/d/sudoku-executorch-int8 --puzzle-file "
                                 "/tmp/d/puzzles.txt --bench 3 --threads 1"]]


def test_bad_arguments_say_what_to_do(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run.main(["--adb", "--runner", str(tmp_path), "--bundle", str(tmp_path)])
    assert e.value.code == 2 and "bin/trm-runner is missing: install a build first" in capsys.readouterr().err
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "trm-runner").write_text("")
    with pytest.raises(SystemExit):
        run.main(["--adb", "--runner", str(tmp_path), "--bundle", str(tmp_path / "none")])
    assert "no bundle folder at" in capsys.readouterr().err


@pytest.mark.skipif(why_no_native() is not None, reason=str(why_no_native()))
def test_local_run_appends_rows(native_runner, shipped_et_bundle, tmp_path, capsys):
    prefix = tmp_path / "runner"
    subprocess.run(["cmake", "--install", str(native_runner), "--prefix", str(prefix)], check=True, capture_output=True)
    out = tmp_path / "results"
    args = ["--local", "--runner", str(prefix), "--bundle", str(shipped_et_bundle), "--threads", "1,2",
            "--steps", "3", "--puzzles", "2", "--out", str(out), "--remote-dir", str(tmp_path / "device")]
    assert run.main(args) == 0
    assert run.main(args[:5] + ["--threads", "1"] + args[7:]) == 0
    rows = json.loads((out / "bench.json").read_text())["rows"]
    assert [(r["runner"], r["threads"]) for r in rows] == [("native", 1), ("native", 2), ("native", 1)]
    for r in rows:
        assert r["device"] == "x86_64" and r["extra"]["transport"] == "local" and r["extra"]["step_reps"] == 3
        assert r["extra"]["bundle_name"] == "sudoku-executorch-fp32" and r["extra"]["device_model"].startswith("Linux")
        assert 0 < r["ms_step_p50"] <= r["ms_step_p90"] and r["ms_puzzle_q_halt"] > 0
    assert "| executorch | fp32 | native @ x86_64 | 2 | ok |" in (out / "bench.md").read_text()
    assert "appended 1 row(s)" in capsys.readouterr().out
