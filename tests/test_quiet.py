"""quiet(): a real toolchain step run inside it (in a subprocess, so its imports and native start-up
happen inside the block) prints only our `say` lines; with verbose=True the toolchains' own output
shows; fds 1 and 2 work again after the block, also after an exception, which propagates."""
from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from trm_edge.quiet import QUIET_ENV, quiet

ROOT = Path(__file__).resolve().parents[1]

# The child: builds the tiny model (tests/conftest.py's make_tiny_sudoku_model), then runs one
# toolchain step inside quiet(); after the block it writes to fd 1, fd 2 and print(). The steps call
# the toolchains as trm_edge/export/*.py do, not through them, so the test does not follow their API.
CHILD = r'''
import os, sys
from pathlib import Path
sys.path.insert(0, "tests")
from conftest import make_tiny_sudoku_model
from trm_edge.quiet import QUIET_ENV, quiet

mode, target, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
model = make_tiny_sudoku_model()


def onnx_export(say):
    import torch
    from trm_edge.step import example_inputs, make_step
    step = make_step(model, "reference").eval()
    args = example_inputs(step, 2, torch.int64)
    B = torch.export.Dim("batch", min=1, max=64)
    prog = torch.onnx.export(step, args, dynamo=True, input_names=list(step.input_names),
                             output_names=list(step.output_names), opset_version=18,
                             dynamic_shapes={n: {0: B} for n in step.input_names})
    prog.save(str(out / "step.onnx"))
    say("  export     onnx fp32: step.onnx")
    import onnxruntime as ort
    sess = ort.InferenceSession(str(out / "step.onnx"), providers=["CPUExecutionProvider"])
    sess.run(None, {n: a.numpy() for n, a in zip(step.input_names, args)})
    say("  parity     onnxruntime ran the step")


def tflite_export(say):
    import torch
    import litert_torch
    from trm_edge.step import example_inputs, make_step
    step = make_step(model, "xnnpack").eval()
    with torch.no_grad():
        litert_torch.convert(step, example_inputs(step, 1, torch.int32)).export(str(out / "step.tflite"))
    say("  export     tflite fp32: step.tflite")
    from ai_edge_litert.interpreter import Interpreter
    Interpreter(model_path=str(out / "step.tflite"), num_threads=1).get_signature_runner()
    say("  parity     LiteRT interpreter loaded the step")


def failing(say):
    import torchao   # noqa: F401  prints "Failed to load ... _C_mxfp8 ..." through its logger
    say("  export     about to fail")
    os.write(2, b"native: the reason it failed\n")
    raise RuntimeError("the toolchain step failed")


work = {"onnx": onnx_export, "tflite": tflite_export, "fail": failing}[target]
try:
    with quiet(verbose=(mode == "verbose")) as say:
        work(say)
except RuntimeError as e:
    print(f"CAUGHT {e} failed={say.failed}")
    print("TAIL " + " | ".join(say.tail))
os.write(1, b"AFTER fd1\n")
os.write(2, b"AFTER fd2\n")
print("AFTER print", flush=True)
'''


def _child(tmp_path, mode: str, target: str, **env):
    # the child starts from a neutral logging environment, whatever this process or its user set
    e = {k: v for k, v in os.environ.items() if k not in ("TRM_EDGE_DEBUG", *QUIET_ENV)} | env
    r = subprocess.run([sys.executable, "-c", CHILD, mode, target, str(tmp_path / "out")], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.splitlines(), r.stderr.splitlines()


OURS_ONNX = ["  export     onnx fp32: step.onnx", "  parity     onnxruntime ran the step"]


def test_onnx_export_inside_quiet_shows_only_our_lines(tmp_path):
    out, err = _child(tmp_path, "quiet", "onnx")
    assert out == OURS_ONNX + ["AFTER fd1", "AFTER print"]
    assert err == ["AFTER fd2"]


def test_onnx_export_verbose_shows_the_toolchain_output(tmp_path):
    out, err = _child(tmp_path, "verbose", "onnx")
    assert [ln for ln in out if ln in OURS_ONNX] == OURS_ONNX
    noise = [ln for ln in out + err if ln not in OURS_ONNX and not ln.startswith("AFTER")]
    assert any("[torch.onnx]" in ln for ln in noise), noise     # torch.onnx's progress lines


def test_trm_edge_debug_turns_quiet_off(tmp_path):
    out, err = _child(tmp_path, "quiet", "onnx", TRM_EDGE_DEBUG="1")
    assert any("[torch.onnx]" in ln for ln in out + err)


@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is None, reason="litert-torch is not installed")
def test_tflite_export_inside_quiet_shows_only_our_lines(tmp_path):
    ours = ["  export     tflite fp32: step.tflite", "  parity     LiteRT interpreter loaded the step"]
    out, err = _child(tmp_path, "quiet", "tflite")
    assert out == ours + ["AFTER fd1", "AFTER print"]
    assert err == ["AFTER fd2"]
    out, err = _child(tmp_path, "verbose", "tflite")
    noise = [ln for ln in out + err if ln not in ours and not ln.startswith("AFTER")]
    assert any("absl::InitializeLog" in ln or "oneDNN" in ln for ln in noise), noise   # native C++ logging
    assert any("Failed to load" in ln and "torchao" in ln for ln in noise), noise      # torchao's logger


def test_a_failure_inside_quiet_propagates_restores_fds_and_keeps_the_tail(tmp_path):
    out, err = _child(tmp_path, "quiet", "fail")
    assert out[0] == "  export     about to fail"
    assert out[1] == "CAUGHT the toolchain step failed failed=True"
    assert out[2].startswith("TAIL ") and "native: the reason it failed" in out[2]
    assert out[3:] == ["AFTER fd1", "AFTER print"]
    assert err == ["AFTER fd2"]


# in this process (pytest's own capture): what quiet() swaps is put back exactly ------------------

def test_fds_streams_logging_warnings_and_env_are_restored_after_an_exception(capfd):
    before = (os.fstat(1).st_ino, os.fstat(2).st_ino, sys.stdout, sys.stderr, logging.root.manager.disable,
              logging.getLogger("torch").level, list(warnings.filters), os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
    with pytest.raises(KeyError, match="boom"):
        with quiet() as say:
            say("ours")
            os.write(1, b"fd1 noise\n")
            os.write(2, b"fd2 noise\n")
            print("print noise")
            warnings.warn("a warning")
            logging.getLogger("torch").error("a torch log")
            raise KeyError("boom")
    after = (os.fstat(1).st_ino, os.fstat(2).st_ino, sys.stdout, sys.stderr, logging.root.manager.disable,
             logging.getLogger("torch").level, list(warnings.filters), os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
    assert after == before
    assert say.failed and say.tail == ["fd1 noise", "fd2 noise", "print noise"]
    os.write(1, b"fd1 after\n")
    got = capfd.readouterr()
    assert got.out == "ours\nfd1 after\n" and got.err == ""


def test_the_user_s_own_settings_win_and_verbose_changes_nothing(monkeypatch, capfd):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with quiet() as say:
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" and os.environ["TORCH_CPP_LOG_LEVEL"] == "ERROR"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" and "TORCH_CPP_LOG_LEVEL" not in os.environ
    with quiet(verbose=True) as say:
        say("ours")
        os.write(2, b"shown\n")
        assert "TORCH_CPP_LOG_LEVEL" not in os.environ
    got = capfd.readouterr()
    assert got.out == "ours\n" and got.err == "shown\n" and say.tail == []
