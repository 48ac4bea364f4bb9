"""quiet(): a real toolchain step run inside it (in a subprocess, so its imports and native start-up
happen inside the block) prints only our `say` lines; with verbose=True the toolchains' own output
shows; fds 1 and 2 work again after the block, also after an exception, which propagates. Solving is
quiet too: `trm-edge run` of every backend's bundle (and `solve`) prints only our lines unless --verbose."""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
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


# Quiet when solving, too: `trm-edge run` (and `solve`) in a fresh process, so the runtime's import and
# native start-up happen in it, prints only our lines; `--verbose` lets the runtime's own output through.
# Every backend is opened inside quiet() by runtime/bundle.py (open_backend); LiteRT, which prints its
# XNNPACK line at its first allocation, allocates while loading, so the steps themselves run unwrapped.

PUZZLE = "12..34....43..21"     # the tiny model's task: 4x4 Sudoku
XNNPACK_LINE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
# the child blocks ai_edge_litert so the LiteRT backend takes its tflite_runtime branch
NO_LITERT = "import sys; sys.modules['ai_edge_litert'] = sys.modules['ai_edge_litert.interpreter'] = None\n"
# ... and, where tflite_runtime is not installed, offers LiteRT's interpreter under its name
LITERT_AS_TFLITE_RUNTIME = ("import sys, types, ai_edge_litert.interpreter as i\n"
                            "sys.modules['tflite_runtime'] = types.ModuleType('tflite_runtime')\n"
                            "sys.modules['tflite_runtime.interpreter'] = i\n" + NO_LITERT)
CLI = "import sys\nfrom trm_edge.cli import main\nsys.exit(main(sys.argv[1:]))\n"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """tiny_bundle(target) -> the tiny model's fp32 bundle for `target`, exported once per module where
    first asked for (no 100-puzzle accuracy run)."""
    from conftest import make_tiny_sudoku_model

    from trm_edge.checkpoint import load_checkpoint, save_checkpoint
    from trm_edge.export.bundle import export_bundle
    root = tmp_path_factory.mktemp("quiet-run")
    ckpt, made = [], {}

    def get(target: str) -> Path:
        if not ckpt:
            ckpt.append(load_checkpoint(save_checkpoint(make_tiny_sudoku_model(), root / "tiny.safetensors",
                                                        task={"name": "sudoku", "size": 4})))
        if target not in made:
            with quiet():
                made[target], _ = export_bundle(ckpt[0], target, root / target, log=lambda *a: None,
                                                accuracy_puzzles=0, parity_puzzles=2, parity_steps=2)
        return made[target]
    get.checkpoint = root / "tiny.safetensors"
    return get


def _cli_child(args, preamble: str = "", **env) -> tuple[list[str], str, int]:
    e = {k: v for k, v in os.environ.items() if k not in ("TRM_EDGE_DEBUG", *QUIET_ENV)} | env
    r = subprocess.run([sys.executable, "-c", preamble + CLI, *map(str, args)], cwd=ROOT, env=e,
                       capture_output=True, text=True, timeout=300)
    return r.stdout.splitlines(), r.stderr, r.returncode


def _only_our_lines(out: list[str], backend: str) -> None:
    """One 4x4 grid, its 'solved:' line, a blank line and the timing line: nothing else."""
    cell = r"[1-4.?]"
    assert len(out) == 8, out
    for ln in out[:2] + out[3:5]:
        assert re.fullmatch(rf"{cell} {cell} \| {cell} {cell}", ln), out
    assert out[2] == "----+----", out
    assert out[5].startswith("solved: ") and out[6] == "", out
    assert re.match(rf"1 puzzle\(s\) in [\d.]+ ms with {re.escape(backend)} \(", out[7]), out


def _run_quiet_and_verbose(bundle: Path, backend: str, preamble: str = "") -> str:
    """`trm-edge run` quiet (our lines, empty stderr), then --verbose (our lines still); the verbose stderr."""
    out, err, rc = _cli_child(["run", bundle, "--puzzle", PUZZLE], preamble)
    assert rc == 0, err[-3000:]
    _only_our_lines(out, backend)
    assert err == ""
    out, err, rc = _cli_child(["run", bundle, "--puzzle", PUZZLE, "--verbose"], preamble)
    assert rc == 0, err[-3000:]
    _only_our_lines(out, backend)
    return err


def test_run_onnx_is_quiet(tiny_bundle, tmp_path):
    """onnxruntime prints nothing at its defaults; a model it warns about at load (an initializer no node
    uses: `[W:onnxruntime:...] Removing initializer ...`) shows the warning only with --verbose."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    from hostile_bundles import rehash
    from onnx import numpy_helper
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle("onnx"), bundle)
    model = onnx.load(str(bundle / "step.onnx"))
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), "unused_weight"))
    onnx.save(model, str(bundle / "step.onnx"))
    rehash(bundle, "step.onnx")
    err = _run_quiet_and_verbose(bundle, "onnx fp32")
    assert "Removing initializer 'unused_weight'" in err, err


def test_run_executorch_is_quiet(tiny_bundle):
    """The wheel's import and XNNPACK's start-up print torchao, pytree and cpuinfo lines."""
    pytest.importorskip("executorch", reason="executorch is not installed")
    err = _run_quiet_and_verbose(tiny_bundle("executorch"), "executorch fp32")
    assert any(w in err for w in ("cpuinfo", "torchao", "pytree")), err


def test_run_litert_is_quiet(tiny_bundle):
    """ai_edge_litert prints its XNNPACK line at the first allocation (the first step, unless loading does it)."""
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
    pytest.importorskip("litert_torch", reason="litert-torch (the tflite exporter) is not installed")
    err = _run_quiet_and_verbose(tiny_bundle("tflite"), "tflite fp32")
    assert XNNPACK_LINE in err, err


def test_run_tflite_runtime_fallback_is_quiet(tiny_bundle):
    """The backend's tflite_runtime branch (boards), with ai_edge_litert blocked. tflite_runtime 2.14's
    signature runner prints nothing, so only quiet is asserted."""
    pytest.importorskip("tflite_runtime", reason="tflite-runtime is not installed (it needs numpy<2: boards have it)")
    pytest.importorskip("litert_torch", reason="litert-torch (the tflite exporter) is not installed")
    _run_quiet_and_verbose(tiny_bundle("tflite"), "tflite fp32", NO_LITERT)


def test_run_the_tflite_runtime_branch_is_quiet_with_litert_s_interpreter(tiny_bundle):
    """The same branch where tflite_runtime is not installed: LiteRT's interpreter under its name, so the
    branch is exercised here, XNNPACK line included."""
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
    pytest.importorskip("litert_torch", reason="litert-torch (the tflite exporter) is not installed")
    err = _run_quiet_and_verbose(tiny_bundle("tflite"), "tflite fp32", LITERT_AS_TFLITE_RUNTIME)
    assert XNNPACK_LINE in err, err


def test_solve_is_quiet(tiny_bundle):
    """`trm-edge solve` (PyTorch eager) too: our lines, nothing on stderr, with or without --verbose."""
    tiny_bundle("onnx")      # the checkpoint is written with the first bundle
    for extra in ([], ["--verbose"]):
        out, err, rc = _cli_child(["solve", "--model", tiny_bundle.checkpoint, "--puzzle", PUZZLE, *extra])
        assert rc == 0, err[-3000:]
        _only_our_lines(out, "pytorch-eager fp32")
        assert err == ""


def test_a_load_error_is_still_one_line(tiny_bundle, tmp_path):
    """A model file the runtime refuses (truncated, hashes fixed): ExecuTorch explains it in native lines
    (`[program.cpp:...] File size is too small ...`), which quiet keeps off; our error is one line."""
    pytest.importorskip("executorch", reason="executorch is not installed")
    from hostile_bundles import rehash
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle("executorch"), bundle)
    pte = bundle / "step.pte"
    pte.write_bytes(pte.read_bytes()[: pte.stat().st_size // 3])
    rehash(bundle, "step.pte")
    out, err, rc = _cli_child(["run", bundle, "--puzzle", PUZZLE])
    assert rc == 2 and out == []
    assert err.splitlines() == [ln for ln in err.splitlines() if ln.startswith("error: ExecuTorch cannot load ")] \
        and len(err.splitlines()) == 1, err
    out, err, rc = _cli_child(["run", bundle, "--puzzle", PUZZLE, "--verbose"])
    assert rc == 2 and err.splitlines()[-1].startswith("error: ExecuTorch cannot load ")
    assert "program.cpp" in err, err


def test_a_quiet_block_inside_a_verbose_one_is_verbose(capfd):
    """`export --verbose` opens its bundle for parity with Bundle(...), whose quiet() must not hide it."""
    with quiet(verbose=True):
        with quiet() as say:
            say("ours")
            os.write(2, b"runtime line\n")
    with quiet() as outer:
        with quiet() as say:
            os.write(2, b"hidden\n")
    got = capfd.readouterr()
    assert got.out == "ours\n" and got.err == "runtime line\n" and say.tail == ["hidden"] and outer.tail == []


def test_bench_exports_are_quiet(tmp_path):
    """`trm-edge bench` exports its bundles inside quiet(): LiteRT-Torch's conversion stages, torch's and
    torchao's warnings and C++ log lines do not reach the terminal; with TRM_EDGE_DEBUG they do."""
    pytest.importorskip("litert_torch", reason="the tflite extra is not installed")
    from conftest import make_tiny_sudoku_model

    from trm_edge.checkpoint import save_checkpoint
    ckpt = save_checkpoint(make_tiny_sudoku_model(), tmp_path / "tiny.safetensors", task={"name": "sudoku", "size": 4})
    toolchain = re.compile(r"LiteRT-Torch Convert|torchvision|WARNING:torchao|^[WIE]\d{4} ", re.M)
    args = ["bench", "--model", ckpt, "--targets", "tflite", "--quantize", "fp32", "--no-accuracy",
            "--no-curves", "--batch", "2", "--threads", "1", "--step-seconds", "0.05", "--min-reps", "2"]
    out, err, rc = _cli_child([*args, "--out", tmp_path / "b", "--bundles", tmp_path / "bundles"])
    assert rc == 0, err[-3000:]
    assert not toolchain.search("\n".join(out) + err), (out, err[-2000:])
    out, err, rc = _cli_child([*args, "--out", tmp_path / "v", "--bundles", tmp_path / "v-bundles"], TRM_EDGE_DEBUG="1")
    assert rc == 0 and toolchain.search("\n".join(out) + err), "the toolchain printed nothing: the test shows nothing"
