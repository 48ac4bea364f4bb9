"""The seams: halting policies replayed with the code that runs them live, one Solver for checkpoints
and bundles, the manifest naming its policy, the layering (runtime/ never reaches torch, the model,
training or exporters; no module imports another's private names), and the defects fixed with them."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import trm_edge
from trm_edge.cli import main
from trm_edge.data import sample_puzzles
from trm_edge.errors import TRMEdgeError
from trm_edge.runtime import POLICIES, Fixed, QHalt, policy
from trm_edge.runtime.bundle import Bundle
from trm_edge.targets import TARGETS

PACKAGE = Path(trm_edge.__file__).parent
SHIPPED = PACKAGE / "models" / "sudoku.safetensors"
MINIMAL = "...8.1..........435............7.8........1...2..3....6......75..34........2..6.."   # 17 givens


@pytest.fixture(scope="module")
def shipped():
    return trm_edge.open(SHIPPED, threads=1)


def test_replay_makes_the_live_decisions(shipped):
    """q_halt at several thresholds, live (compaction) vs replayed on one fixed record: the same steps
    and the same answers, on the shipped model over puzzles whose steps differ."""
    puzzles = np.concatenate([sample_puzzles({"name": "sudoku"}, 81, 11, 8, seed=9), shipped.codec().parse(MINIMAL)[None]])
    S = 6      # of the model's 16: enough for the thresholds below to stop at different steps
    record = shipped.solve(puzzles, halting="fixed", record=True, max_steps=S)
    q = np.stack([r.q_halt for r in record.trace])
    preds = np.stack([r.logits.argmax(-1) for r in record.trace])
    seen = set()
    for t in (0.3, 0.9, 0.999):
        live = shipped.solve(puzzles, halting=QHalt(t), max_steps=S)
        steps = QHalt(t).replay(q)
        assert (live.steps == steps).all(), t
        assert (live.predictions == preds[steps - 1, np.arange(len(puzzles))]).all(), t
        seen.update(live.steps.tolist())
    assert len(seen) > 1, "puzzles that all halt at one step prove little"
    assert (Fixed().replay(q) == S).all()


def test_policies_by_name():
    assert set(POLICIES) == {"fixed", "q_halt"}
    assert isinstance(policy("q_halt", 0.7), QHalt) and policy("q_halt", 0.7).threshold == 0.7
    for bad in ("Q_HALT", "vote", None, 3):
        with pytest.raises(TRMEdgeError, match="halting must be one of fixed, q_halt"):
            policy(bad)
    with pytest.raises(TRMEdgeError, match="strictly between 0 and 1"):
        QHalt(1.0)


def test_one_solver_for_a_checkpoint_and_its_bundle(tiny_onnx_bundle):
    b = trm_edge.open(tiny_onnx_bundle)
    assert isinstance(b, Bundle) and b.backend == "onnx fp32"
    source = json.loads((tiny_onnx_bundle / "manifest.json").read_text())["source"]
    assert source == "tiny.safetensors"                       # a file name, never the exporting machine's path
    ckpt = trm_edge.open(tiny_onnx_bundle.parent / source)
    assert ckpt.backend == "pytorch-eager fp32"
    for attr in ("task", "config", "seq_len", "vocab_size", "max_steps"):
        assert getattr(ckpt, attr) == getattr(b, attr), attr
    assert ckpt.halting == b.halting
    tokens = sample_puzzles(b.task, b.seq_len, b.vocab_size, 8, seed=2)
    want, got = ckpt.solve(tokens, halting="fixed"), b.solve(tokens, halting="fixed")
    assert (want.predictions == got.predictions).all() and (want.steps == got.steps).all()
    with pytest.raises(TRMEdgeError, match="give a checkpoint file or a bundle folder"):
        trm_edge.open("")


def test_the_manifest_names_its_policy(tiny_onnx_bundle, tmp_path):
    from hostile_bundles import manifest, write
    bundle = tmp_path / "b"
    shutil.copytree(tiny_onnx_bundle, bundle)
    m = manifest(bundle)
    assert m["halting"]["policy"] == "q_halt"
    m["halting"] = {"policy": "fixed", "max_steps": 3, "threshold": 0.5}
    write(bundle, m)
    sol = Bundle(bundle).solve(sample_puzzles(m["task"], 16, 6, 4, seed=1))
    assert (sol.steps == 3).all()
    m["halting"] = {"policy": "vote", "max_steps": 3, "threshold": 0.5}
    write(bundle, m)
    with pytest.raises(TRMEdgeError, match="fixed, q_halt"):
        Bundle(bundle).solve(sample_puzzles(m["task"], 16, 6, 4, seed=1))


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_exporter_keeps_the_protocol(target):
    import importlib

    from trm_edge.export.protocol import Exporter
    row = TARGETS[target]
    pytest.importorskip(row.probe, reason=f"the {target} extra is not installed")
    assert isinstance(importlib.import_module(row.exporter), Exporter)
    module, cls = row.backend.split(":")
    assert callable(getattr(importlib.import_module(module), cls))


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def test_no_module_imports_another_modules_private_names():
    found = []
    for f in PACKAGE.rglob("*.py"):
        for module, names in _imports(f):
            if module.startswith("trm_edge"):
                found += [f"{f.relative_to(PACKAGE)}: {module}.{n}" for n in names if n.startswith("_")]
    assert not found, found


def test_the_runtime_reaches_nothing_above_it():
    """runtime/ (numpy + one backend on a board) never imports torch, the model, training or exporters;
    the PyTorch eager backend is the one module that is torch by design."""
    above = ("torch", "trm_edge.model", "trm_edge.step", "trm_edge.train", "trm_edge.export", "trm_edge.checkpoint",
             "trm_edge.solver", "trm_edge.cli", "trm_edge.bench", "trm_edge.evaluate")
    found = []
    for f in (PACKAGE / "runtime").glob("*.py"):
        if f.name in ("torch_eager.py", "executorch_backend.py"):   # the pip ExecuTorch runtime links torch itself
            continue
        found += [f"{f.name}: {m}" for m, _ in _imports(f) if m == "torch" or m.startswith(above)]
    assert not found, found


def _cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_answers_are_the_compact_notation(capsys):
    code, out, err = _cli(["solve", "--puzzle", MINIMAL, "--json", "--threads", "1"], capsys)
    assert code == 0, err
    row = json.loads(out)
    assert len(row["answer"]) == 81 and row["answer"].isdigit()
    assert all(a == p for a, p in zip(row["answer"], MINIMAL) if p != ".")     # the givens are kept
    assert row["answer_grid"].count("\n") == 10                                  # the pretty form, too
    assert row["backend"] == "pytorch-eager fp32"


def test_info_takes_model_as_every_verb_does(capsys):
    a = _cli(["info", str(SHIPPED), "--json"], capsys)
    b = _cli(["info", "--model", str(SHIPPED), "--json"], capsys)
    c = _cli(["info", "--json"], capsys)          # the shipped model by default, as solve
    assert a[0] == b[0] == c[0] == 0 and json.loads(a[1]) == json.loads(b[1]) == json.loads(c[1])
    code, _, err = _cli(["info", str(SHIPPED), "--model", str(SHIPPED) + "x"], capsys)
    assert code == 2 and err.count("\n") == 1 and "give the checkpoint once" in err


@pytest.mark.parametrize("argv,why", [
    (["run", "B", "--threshold", "nan"], "probability"),
    (["eval", "--data", "D", "--thresholds", "0.5,,0.7"], "separated by commas"),
    (["eval", "--data", "D", "--thresholds", "0.5,1.5"], "probability"),
    (["bench", "--threads", "0,2"], "1<=x<=1024"),
    (["bench", "--targets", "onnx,webgpu"], "webgpu"),
    (["export", "--target", "onnx", "--batch", "0"], "1<=x<=4096"),
    (["export", "--target", "onnx", "--quantize", "fp16"], "onnx offers precisions fp32, int8"),
    (["train", "C", "--max-minutes", "-1"], "number strictly above 0"),
    (["data", "build", "sudoku", "--out", "o", "--train", "-5"], "0<=x"),
])
def test_numbers_are_checked_one_way_for_every_verb(argv, why, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and why in err, err
    assert not any(tmp_path.iterdir())


def test_eval_json_is_written_atomically(tmp_path, monkeypatch):
    """A failure while moving the finished file into place leaves neither eval.json nor a temporary file."""
    from trm_edge import atomic
    from trm_edge.evaluate import _write

    def full(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(TRMEdgeError, match="cannot write the evaluation"):
        _write(tmp_path, {"x": 1}, fixed=False)
    assert list(tmp_path.iterdir()) == []


def test_python_reads_the_encoding_rules_as_the_runner_does():
    """Rule 6 for task.encoding (what the schema cannot say), in Python: every case the C++ runner
    refuses beyond the schema is refused here too, and the encodings the tasks write pass."""
    from test_native_encoding import BAD_TASKS

    from trm_edge.data import TASKS, with_encoding
    from trm_edge.runtime.manifest import encoding_errors
    for case, (task, _, by_schema) in BAD_TASKS.items():
        if not by_schema:
            assert encoding_errors(task, 6), case
    for name, (L, V) in {"sudoku": (81, 11), "maze": (900, 6), "arc": (900, 12), "tokens": (9, 4)}.items():
        assert name in TASKS and encoding_errors(with_encoding({"name": name}, L), V) == []


def test_target_and_policy_must_be_rows_of_the_tables(tiny_onnx_bundle, tmp_path):
    from hostile_bundles import manifest, write
    for key, value in (("target", "tensorrt"), ("policy", "sometimes")):
        bundle = tmp_path / key
        shutil.copytree(tiny_onnx_bundle, bundle)
        m = manifest(bundle)
        (m if key == "target" else m["halting"])[key] = value
        write(bundle, m)
        with pytest.raises(TRMEdgeError, match=f"{value!r} is none this runtime"):
            Bundle(bundle)


# ---------------------------------------------------------------- views in the manifest (issue 14)

def test_the_manifest_lists_the_tasks_views(tiny_onnx_bundle, tmp_path):
    from hostile_bundles import manifest, write
    from trm_edge.data import lookup
    m = manifest(tiny_onnx_bundle)
    assert m["views"]["count"] == 1 and m["views"]["policy"] == {"policy": "vote"}
    assert len(m["views"]["list"]) == 16 and m["views"]["list"][0]["cells"] is None
    b = Bundle(tiny_onnx_bundle)
    assert [v.key for v in b.task_views(16)] == [v.key for v in lookup(b.task).views(16, 16)]
    with pytest.raises(TRMEdgeError, match="lists 16 views, not 17"):
        b.task_views(17)
    # the manifest's default views and policy are what solve() runs
    bundle = tmp_path / "four"
    shutil.copytree(tiny_onnx_bundle, bundle)
    m["views"].update(count=4, policy={"policy": "consensus", "wave": 2})
    write(bundle, m)
    puzzles = sample_puzzles({"name": "sudoku", "size": 4}, 16, 6, 5, seed=2)
    sol = Bundle(bundle).solve(puzzles)
    assert sol.views == 4 and sol.decision.to_manifest() == {"policy": "consensus", "wave": 2}
    assert Bundle(bundle).solve(puzzles, views=1).views == 1


@pytest.mark.parametrize("edit,message", [
    (lambda v: v.update(count=17), "views.count 17 is more than the 16 views listed"),
    (lambda v: v["list"][0].update(cells=list(range(16))), "views.list[0] must be the identity"),
    (lambda v: v["list"][1].update(cells=[0] * 16), "views.list[1].cells is not a permutation of 0..15"),
    (lambda v: v["list"][2].update(tokens=[0, 1, 2, 3, 4, 9]), "views.list[2].tokens is not a permutation of 0..5"),
    (lambda v: v["list"].__setitem__(3, dict(v["list"][1])), "views.list[3] repeats an earlier view"),
    (lambda v: v.update(policy={"policy": "sometimes"}), "views.policy 'sometimes' is none this runtime has"),
    (lambda v: v.update(policy={"policy": "vote", "agree": 0}), "agree"),
])
def test_bad_views_in_a_manifest_are_refused_in_one_line(tiny_onnx_bundle, tmp_path, edit, message):
    from hostile_bundles import manifest, write
    bundle = tmp_path / "b"
    shutil.copytree(tiny_onnx_bundle, bundle)
    m = manifest(bundle)
    edit(m["views"])
    write(bundle, m)
    with pytest.raises(TRMEdgeError) as e:
        Bundle(bundle)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("argv,why", [
    (["--views", "0"], "'--views': 0 is not in the range 1<=x<=1024"),
    (["--views", "17"], "this bundle lists 16 views, not 17"),
    (["--policy", "sometimes"], "'sometimes' is not one of 'vote', 'best_q', 'consensus'"),
    (["--policy", "best_q", "--agree", "2"], "--agree belongs to --policy consensus"),
])
def test_bad_view_options_are_one_line(tiny_onnx_bundle, capsys, argv, why):
    assert main(["run", str(tiny_onnx_bundle), "--puzzle", "1...........3..2", *argv]) == 2
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1


def test_run_json_reports_views(tiny_onnx_bundle, capsys):
    from trm_edge.data import codec
    text = codec({"name": "sudoku", "size": 4}, 16).compact(sample_puzzles({"name": "sudoku", "size": 4}, 16, 6, 1)[0])
    assert main(["run", str(tiny_onnx_bundle), "--puzzle", text, "--views", "4", "--policy", "consensus", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["views"] == 4 and len(row["view_steps"]) == 4 and row["total_view_steps"] == sum(row["view_steps"])
    assert row["decided_by"] == "model" and len(row["answer"]) == 16 and row["policy"] == {"policy": "consensus"}
