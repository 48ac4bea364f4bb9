"""ONNX bundles: export both variants, parity with PyTorch fp32 through onnxruntime, the manifest
contract, clear errors for damaged bundles, and a torch-free environment that runs a bundle."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'trm-edge[onnx]')")

from trm_edge.errors import PuzzleError                      # noqa: E402
from trm_edge.export import bundle as export_mod             # noqa: E402
from trm_edge.export.bundle import ExportError, export_bundle  # noqa: E402
from trm_edge.runtime.bundle import Bundle                    # noqa: E402
from trm_edge.runtime.manifest import BundleError            # noqa: E402



@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    from conftest import Golden                    # tests/fixtures/reference_trm/, in the repo
    root = tmp_path_factory.mktemp("bundles")
    out = {}
    for name, precision in (("trm_att_tiny", "fp32"), ("trm_mlpt_sudoku_tiny", "fp32"), ("trm_mlpt_sudoku_tiny", "int8")):
        g = Golden(name)
        path, manifest = export_bundle(g.model(), "onnx", root / f"{name}-{precision}", precision, log=lambda *a: None)
        out[name, precision] = (g, path, manifest)
    return out


@pytest.mark.parametrize("name", ["trm_att_tiny", "trm_mlpt_sudoku_tiny"])
def test_fp32_bundle_matches_pytorch_and_reference(bundles, name):
    g, path, manifest = bundles[name, "fp32"]
    assert manifest["parity"]["passed"] is True
    assert manifest["parity"]["answer_agreement"] == 1.0
    b = Bundle(path, threads=1)
    S = g["eval_logits"].shape[0]
    sol = b.solve(g["inputs"], puzzle_ids=g["puzzle_identifiers"], halting="fixed", record=True)
    for s, rec in enumerate(sol.trace):            # the golden outputs of the official code, via ONNX Runtime
        assert np.abs(rec.logits - g["eval_logits"][s]).max() <= {"trm_att_tiny": 1e-4, "trm_mlpt_sudoku_tiny": 1e-2}[name]
    assert (sol.predictions == g["eval_preds"][S - 1]).mean() >= 0.999


def test_int8_bundle_is_smaller_and_runs(bundles):
    _, fp32, m32 = bundles["trm_mlpt_sudoku_tiny", "fp32"]
    _, int8, m8 = bundles["trm_mlpt_sudoku_tiny", "int8"]
    assert m8["files"]["step.onnx"]["bytes"] < 0.35 * m32["files"]["step.onnx"]["bytes"]
    assert m8["parity"]["passed"] is None          # judged by task accuracy, not by a tolerance
    sol = Bundle(int8).solve(np.ones((2, 81), dtype=np.int64))
    assert sol.predictions.shape == (2, 81)


def test_manifest_contract(bundles):
    import onnx
    _, path, m = bundles["trm_att_tiny", "fp32"]
    on_disk = json.loads((path / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(m))
    for key in ("format_version", "target", "precision", "model_file", "files", "trm_config", "inputs", "outputs",
                "halting", "tools", "parity", "io_names"):
        assert key in m, key
    assert [t["name"] for t in m["inputs"]] == ["tokens", "puzzle_emb", "y", "z"]
    assert [t["name"] for t in m["outputs"]] == ["y_next", "z_next", "logits", "q_halt"]
    assert m["inputs"][2]["shape"] == ["batch", 20, 64] and m["outputs"][2]["shape"] == ["batch", 16, 12]
    assert set(m["files"]) == {"step.onnx", "init.npz", "init.bin"}
    model = onnx.load(str(path / "step.onnx"))
    assert [i.name for i in model.graph.input] == ["tokens", "puzzle_emb", "y", "z"]
    embedded = json.loads({p.key: p.value for p in model.metadata_props}["trm_edge.manifest"])
    # the manifest rides in the model file as written before parity ran on that very file
    assert embedded == json.loads(json.dumps({k: v for k, v in m.items() if k not in ("files", "parity")}))
    with np.load(path / "init.npz") as init:
        assert init["y_init"].shape == (64,) and init["puzzle_emb_table"].shape == (6, 64)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_damaged_bundles_give_one_line_errors(bundles, tmp_path):
    _, path, _ = bundles["trm_att_tiny", "fp32"]
    cases = {}
    b = _copy(path, tmp_path / "flipped")
    data = bytearray((b / "step.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (b / "step.onnx").write_bytes(bytes(data))
    cases[b] = "does not match its sha256"
    b = _copy(path, tmp_path / "truncated")
    (b / "step.onnx").write_bytes((b / "step.onnx").read_bytes()[:5000])
    cases[b] = "corrupted or truncated"
    b = _copy(path, tmp_path / "missing")
    (b / "init.npz").unlink()
    cases[b] = "init.npz is missing"
    b = _copy(path, tmp_path / "nomanifest")
    (b / "manifest.json").unlink()
    cases[b] = "has no manifest.json"
    b = _copy(path, tmp_path / "badjson")
    (b / "manifest.json").write_text("{not json")
    cases[b] = "not valid JSON"
    for bundle, message in cases.items():
        with pytest.raises(BundleError) as e:
            Bundle(bundle)
        assert message in str(e.value) and "\n" not in str(e.value), bundle.name
    # a truncated model whose manifest was re-signed still fails cleanly, in the runtime's words
    from trm_edge.runtime.manifest import record_files, write_manifest
    b = tmp_path / "truncated"
    m = json.loads((b / "manifest.json").read_text())
    write_manifest(b, record_files(b, m))
    with pytest.raises(BundleError, match="onnxruntime cannot load"):
        Bundle(b)


def test_wrong_inputs(bundles):
    _, path, _ = bundles["trm_att_tiny", "fp32"]
    b = Bundle(path)
    with pytest.raises(PuzzleError, match="has 15 tokens, the model takes 16"):
        b.solve(np.zeros((1, 15), dtype=np.int64))
    with pytest.raises(PuzzleError, match="outside the vocabulary"):
        b.solve(np.full((1, 16), 12))
    with pytest.raises(PuzzleError, match="outside the bundle's table"):
        b.solve(np.zeros((1, 16), dtype=np.int64), puzzle_ids=[9])


def test_failed_fp32_parity_leaves_nothing(tiny_sudoku_checkpoint, tmp_path, monkeypatch):
    # the pipeline's cleanup, not a model's numerics: the tiny model (one quick export) instead of the
    # two golden ones (two full exports each minutes under load, already made for `bundles`)
    monkeypatch.setattr(export_mod, "FP32_LOGITS_TOL", -1.0)
    with pytest.raises(ExportError, match="parity failed"):
        export_bundle(tiny_sudoku_checkpoint, "onnx", tmp_path / "out" / "b", "fp32", log=lambda *a: None,
                      accuracy_puzzles=0)
    assert not (tmp_path / "out").exists()     # nor the parent folder the export created for it


def test_toolchain_failure_is_one_line_and_leaves_nothing(tiny_sudoku_model, tmp_path, monkeypatch):
    import trm_edge.export.onnx as onnx_exporter

    def broken(*a, **k):
        raise RuntimeError("converter exploded\n  at frame 1\n  at frame 2")
    monkeypatch.setattr(onnx_exporter, "export", broken)
    monkeypatch.delenv("TRM_EDGE_DEBUG", raising=False)
    with pytest.raises(ExportError) as e:
        export_bundle(tiny_sudoku_model, "onnx", tmp_path / "b", log=lambda *a: None)
    assert str(e.value).startswith("onnx export failed: RuntimeError: converter exploded (set TRM_EDGE_DEBUG=1")
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []


def test_cli_export_and_run(tmp_path, capsys):
    from conftest import FIXTURES
    from trm_edge.cli import main
    ckpt = FIXTURES / "trm_mlpt_sudoku_tiny" / "state_dict.pt"   # in the repo: never skipped
    assert main(["export", "--target", "onnx", "--model", str(ckpt), "--batch", "2", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "parity" in out and "trm-edge run" in out
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["batch"] == 2 and m["inputs"][0]["shape"] == [2, 81]
    puzzles = tmp_path / "p.txt"
    puzzles.write_text("\n".join(",".join(["1"] * 81) for _ in range(3)))   # 3 rows through a batch-2 model
    assert main(["run", str(tmp_path / "b"), "--puzzle-file", str(puzzles), "--json"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["export", "--target", "onnx", "--model", str(ckpt), "--quantize", "fp16", "--out",
                 str(tmp_path / "c")]) == 2
    assert "offers precisions" in capsys.readouterr().err


def test_staging_left_by_a_killed_export_is_swept(tiny_sudoku_model, tmp_path, monkeypatch):
    import trm_edge.export.onnx as onnx_exporter
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                           # a pid whose process is gone
    killed = tmp_path / f".b.{dead.pid}.x1abcdef"         # what a SIGKILLed export leaves (mkdtemp's suffix)
    user = tmp_path / f".b.{dead.pid}.my-notes"           # looks alike, but mkdtemp never made it: kept
    user.mkdir()
    killed.mkdir()
    (killed / "step.onnx").write_bytes(b"half")
    running = tmp_path / f".b.{os.getpid()}.x2"           # an export still at work: left alone
    running.mkdir()
    other = tmp_path / ".c.1.x3"                          # another bundle's: not ours to judge
    other.mkdir()

    def broken(*a, **k):
        raise RuntimeError("stop here")
    monkeypatch.setattr(onnx_exporter, "export", broken)
    with pytest.raises(ExportError):
        export_bundle(tiny_sudoku_model, "onnx", tmp_path / "b", log=lambda *a: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, other.name, user.name])
