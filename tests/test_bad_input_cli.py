"""Bad input through the verbs that solve, export and benchmark (`solve`, `run`, `export`, `bench`, `eval`
options): exit code 2, one line `error: ...`, no traceback, nothing written or deleted. Each case runs
in-process (`trm_edge.cli.main`) in an empty working folder, so a stray `bundles/` or `bench/` shows."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bad_input import one_line
from bad_input import refused as refused_in
from test_bad_input_bundles import PUZZLE

from trm_edge.checkpoint import save_checkpoint
from trm_edge.cli import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from conftest import make_tiny_sudoku_model
    d = tmp_path_factory.mktemp("ckpt")
    return str(save_checkpoint(make_tiny_sudoku_model(), d / "tiny.safetensors", task={"name": "sudoku", "size": 4}))


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An empty working folder holding a user's folder with a file, a plain file and a puzzle file."""
    w = tmp_path / "work"
    (w / "mine").mkdir(parents=True)
    (w / "mine" / "thesis.tex").write_text("years of work\n")
    (w / "afile").write_text("not a folder\n")
    (w / "p.txt").write_text(PUZZLE + "\n")
    (w / "empty.txt").write_text("# no puzzle here\n")
    (w / "maze.txt").write_text("#####/#S  #/# ###/#  G#/#####\n")
    (w / "blob.bin").write_bytes(bytes(range(256)))
    monkeypatch.chdir(w)
    return w


def refused(argv, work, capsys) -> str:
    err = refused_in(argv, work, capsys)
    assert (work / "mine" / "thesis.tex").read_text() == "years of work\n"
    return err


RUN = {   # `trm-edge run BUNDLE ...` options
    "threshold-1": ["--threshold", "1"],
    "threshold-2": ["--threshold", "2"],
    "threshold-negative": ["--threshold", "-1"],
    "threshold-0": ["--threshold", "0"],
    "threshold-nan": ["--threshold", "nan"],
    "threshold-inf": ["--threshold", "inf"],
    "threshold-word": ["--threshold", "half"],
    "puzzle-id-huge": ["--puzzle-id", str(10**20)],
    "puzzle-id-negative": ["--puzzle-id", "-1"],
    "puzzle-id-float": ["--puzzle-id", "1.5"],
    "puzzle-id-outside-table": ["--puzzle-id", "5000"],
    "max-steps-0": ["--max-steps", "0"],
    "max-steps-huge": ["--max-steps", str(10**9)],
    "threads-0": ["--threads", "0"],
    "threads-huge": ["--threads", str(10**6)],
    "halting-bogus": ["--halting", "sometimes"],
    "two-puzzle-sources": ["--puzzle-file", "p.txt"],
}


@pytest.mark.parametrize("name", list(RUN))
def test_run_refuses_bad_options(tiny_onnx_bundle, work, capsys, name):
    refused(["run", tiny_onnx_bundle, "--puzzle", PUZZLE, *RUN[name]], work, capsys)


@pytest.mark.parametrize("bundle", ["nowhere", "afile", "mine", ""])
def test_run_refuses_what_is_no_bundle(work, capsys, bundle):
    refused(["run", bundle, "--puzzle", PUZZLE], work, capsys)


SOLVE = {k: v for k, v in RUN.items() if k not in ("puzzle-id-outside-table",)}
SOLVE["task-bogus"] = ["--task", "chess"]
SOLVE["config-missing"] = ["--config", "nowhere.json"]


@pytest.mark.parametrize("name", list(SOLVE))
def test_solve_refuses_bad_options(ckpt, work, capsys, name):
    refused(["solve", "--model", ckpt, "--puzzle", PUZZLE, *SOLVE[name]], work, capsys)


@pytest.mark.parametrize("model", ["nowhere.safetensors", "afile", "mine", "p.txt"])
def test_solve_refuses_what_is_no_checkpoint(work, capsys, model):
    refused(["solve", "--model", model, "--puzzle", PUZZLE], work, capsys)


EXPORT = {
    "threshold-2": ["--threshold", "2"],
    "threshold-nan": ["--threshold", "nan"],
    "threshold-0": ["--threshold", "0"],
    "batch-0": ["--batch", "0"],
    "batch-negative": ["--batch", "-1"],
    "batch-word": ["--batch", "many"],
    "batch-arabic-indic": ["--batch", "\u0663"],
    "batch-huge": ["--batch", str(10**9)],
    "quantize-bogus": ["--quantize", "int3"],
    "quantize-other-target": ["--quantize", "fp16"],
    "precision-a-target-lacks": ["--target", "onnx", "--quantize", "int8-weights"],
    "calibration-for-dynamic": ["--quantize", "int8", "--calibration", "p.txt"],
    "calibration-missing": ["--quantize", "int8-static", "--calibration", "nowhere.txt"],
    "calibration-empty": ["--quantize", "int8-static", "--calibration", "empty.txt"],
    "calibration-other-task": ["--quantize", "int8-static", "--calibration", "maze.txt"],
    "calibration-binary": ["--quantize", "int8-static", "--calibration", "blob.bin"],
    "calibration-count-and-file": ["--quantize", "int8-static", "--calibration", "p.txt", "--calibration-count", "9"],
    "calibration-count-0": ["--quantize", "int8-static", "--calibration-count", "0"],
    "keep-fp32-empty": ["--quantize", "int8-static", "--keep-fp32", ","],
    "calibration-method-for-dynamic": ["--quantize", "int8", "--calibration-method", "percentile"],
    "calibration-method-bogus": ["--quantize", "int8-static", "--calibration-method", "entropy"],
    "calibration-method-a-target-lacks": ["--target", "executorch", "--quantize", "int8-static",
                                          "--calibration-method", "percentile"],
    "calibration-percentile-without-method": ["--quantize", "int8-static", "--calibration-percentile", "99.9"],
    "calibration-percentile-100": ["--quantize", "int8-static", "--calibration-method", "percentile",
                                   "--calibration-percentile", "100"],
    "calibration-percentile-nan": ["--quantize", "int8-static", "--calibration-method", "percentile",
                                   "--calibration-percentile", "nan"],
    "keep-fp32-no-such-layer": ["--quantize", "int8-static", "--keep-fp32", "attention_of_nothing"],
    "target-bogus": ["--target", "tensorrt"],
    "out-user-folder": ["--out", "mine"],
    "out-file": ["--out", "afile"],
    "out-empty": ["--out", ""],
    "out-under-file": ["--out", "afile/bundle"],
}


@pytest.mark.parametrize("name", list(EXPORT))
def test_export_refuses(ckpt, work, capsys, name):
    argv = EXPORT[name]
    target = [] if "--target" in argv else ["--target", "onnx"]
    refused(["export", *target, "--model", ckpt, *argv], work, capsys)


def test_export_refuses_a_bundle_holding_user_files(ckpt, tiny_onnx_bundle, work, capsys):
    """A folder that is a bundle plus the user's own file is not ours to replace."""
    import shutil
    shutil.copytree(tiny_onnx_bundle, work / "b")
    (work / "b" / "notes.txt").write_text("mine\n")
    refused(["export", "--target", "onnx", "--model", ckpt, "--out", "b"], work, capsys)


def test_export_replaces_its_own_bundle(ckpt, tiny_onnx_bundle, work, capsys):
    import shutil
    shutil.copytree(tiny_onnx_bundle, work / "b")
    old = json.loads((work / "b" / "manifest.json").read_text())
    assert main(["export", "--target", "onnx", "--model", ckpt, "--out", "b", "--threshold", "0.7"]) == 0
    capsys.readouterr()
    new = json.loads((work / "b" / "manifest.json").read_text())
    assert new["halting"]["threshold"] == 0.7 != old["halting"]["threshold"]
    assert sorted(p.name for p in work.iterdir()) == ["afile", "b", "blob.bin", "empty.txt", "maze.txt", "mine",
                                                      "p.txt"]   # no staging left


BENCH = {
    "precision-no-target-offers": ["--targets", "onnx", "--quantize", "fp16"],
    "target-without-precision": ["--targets", "onnx,coreml", "--quantize", "fp16"],
    "targets-bogus": ["--targets", "onnx,tensorrt"],
    "targets-empty": ["--targets", ","],
    "quantize-bogus": ["--quantize", "int3"],
    "threshold-nan": ["--threshold", "nan"],
    "threshold-1": ["--threshold", "1"],
    "step-seconds-negative": ["--step-seconds", "-1"],
    "step-seconds-0": ["--step-seconds", "0"],
    "step-seconds-nan": ["--step-seconds", "nan"],
    "threads-0": ["--threads", "0"],
    "threads-word": ["--threads", "two"],
    "threads-empty": ["--threads", ""],
    "puzzles-0": ["--puzzles", "0"],
    "batch-0": ["--batch", "0"],
    "out-user-folder": ["--targets", "onnx", "--out", "mine"],
    "out-file": ["--targets", "onnx", "--out", "afile"],
    "bundles-file": ["--targets", "onnx", "--bundles", "afile"],
    "model-missing": ["--model", "nowhere.safetensors"],
}


@pytest.mark.parametrize("name", list(BENCH))
def test_bench_refuses(ckpt, work, capsys, name):
    argv = BENCH[name]
    model = [] if "--model" in argv else ["--model", ckpt]
    refused(["bench", *model, *argv], work, capsys)


EVAL = {
    "puzzles-0": ["--puzzles", "0"],
    "puzzles-negative": ["--puzzles", "-5"],
    "thresholds-nan": ["--thresholds", "nan"],
    "thresholds-2": ["--thresholds", "0.5,2"],
    "thresholds-word": ["--thresholds", "half"],
    "thresholds-empty": ["--thresholds", ""],
    "max-steps-huge": ["--max-steps", str(10**9)],
    "model-missing": ["--model", "nowhere.safetensors"],
}


@pytest.mark.parametrize("name", list(EVAL))
def test_eval_refuses_bad_options(ckpt, work, capsys, name):
    argv = EVAL[name]
    model = [] if "--model" in argv else ["--model", ckpt]
    refused(["eval", *model, "--data", "mine", *argv], work, capsys)


def test_internal_errors_are_one_line(work, capsys, monkeypatch):
    """A bug of ours still ends in one line (exit 3), never a traceback; TRM_EDGE_DEBUG=1 raises it."""
    import trm_edge.cli as cli

    def boom(*a, **k):
        raise KeyError("surprise\nsecond line")
    monkeypatch.setattr(cli, "_one_source", boom)
    assert main(["run", "x", "--puzzle", PUZZLE]) == 3
    err = capsys.readouterr().err
    one_line(err)
    assert "internal error KeyError" in err
    monkeypatch.setenv("TRM_EDGE_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["run", "x", "--puzzle", PUZZLE])
    assert os.environ["TRM_EDGE_DEBUG"] == "1"


def test_run_reports_whether_answers_keep_the_rules(tiny_onnx_bundle, work, capsys):
    """Every answer says whether it keeps the task's rules (the tiny random model mostly does not)."""
    assert main(["run", str(tiny_onnx_bundle), "--puzzle", PUZZLE, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["solved"] in (True, False)
    assert main(["run", str(tiny_onnx_bundle), "--puzzle", PUZZLE]) == 0
    assert "solved: " in capsys.readouterr().out


def test_shipped_model_solves_and_says_so(work, capsys):
    """The shipped model on an easy 9x9 puzzle: solved, and the CLI says yes."""
    easy = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
    assert main(["solve", "--puzzle", easy, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["solved"] is True
    assert Path(work).exists()


PUZZLES = {   # puzzle text for `run` and `solve` on the 4x4 model
    "row-repeats-a-digit": "11..............",
    "column-repeats-a-digit": "1...1...........",
    "all-ones": "1" * 16,
    "empty": "." * 16,
    "superscript-digit": "\u00b2" + PUZZLE[1:],
    "fullwidth-digit": "\uff11" + PUZZLE[1:],
    "arabic-indic-digit": "\u0661" + PUZZLE[1:],
    "twenty-digit-token": ",".join(["1" * 20] + ["1"] * 15),
    "float-token": ",".join(["1.5"] + ["1"] * 15),
    "too-short": PUZZLE[:-1],
    "too-long": PUZZLE + "1",
    "letters": "abcd" * 4,
    "blank-text": "   ",
}


@pytest.mark.parametrize("name", list(PUZZLES))
@pytest.mark.parametrize("verb", ["run", "solve"])
def test_bad_puzzle_text(ckpt, tiny_onnx_bundle, work, capsys, verb, name):
    source = [verb, str(tiny_onnx_bundle)] if verb == "run" else [verb, "--model", ckpt]
    refused([*source, "--puzzle", PUZZLES[name]], work, capsys)


PUZZLE_FILES = {
    "binary": bytes(range(256)),
    "utf16": (PUZZLE + "\n").encode("utf-16"),
    "latin1": ("# caf\u00e9\n" + PUZZLE + "\n").encode("latin-1"),
    "only-comments": b"# nothing here\n\n",
    "empty": b"",
    "one-bad-line": (PUZZLE + "\n11..............\n").encode(),
}


@pytest.mark.parametrize("name", list(PUZZLE_FILES))
def test_run_refuses_bad_puzzle_files(tiny_onnx_bundle, work, capsys, name):
    (work / "bad.txt").write_bytes(PUZZLE_FILES[name])
    refused(["run", str(tiny_onnx_bundle), "--puzzle-file", "bad.txt"], work, capsys)


@pytest.mark.parametrize("argv", [["maze", "--givens", "30", "40"], ["arc", "--train", "5"], ["arc", "--size", "9"],
                                  ["sudoku", "--augmentations", "5"], ["sudoku", "--min-path", "10"],
                                  ["maze", "--version", "arc-agi-2"]], ids=lambda a: "-".join(a[:2]))
def test_data_build_refuses_options_of_another_task(work, capsys, argv):
    refused(["data", "build", argv[0], "--out", "d", *argv[1:]], work, capsys)
