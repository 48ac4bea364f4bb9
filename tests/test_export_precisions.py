"""Every target at every precision it offers (trm_edge.targets.MATRIX): the export succeeds, the
manifest says what was made, the bundle runs from its manifest with its real runtime (or, for Core ML
off macOS, its spec is verified), and it keeps the accuracy and halting of PyTorch fp32. The model is
the trained 4x4 Sudoku TRM (tests/trained.py), so losing accuracy fails; each bundle is exported once."""
from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
from trained import MAX_STEPS, assert_close_to_fp32, assert_trained_fp32, build_heldout, score

from trm_edge.runtime.bundle import Bundle
from trm_edge.runtime.manifest import BundleError
from trm_edge.targets import MATRIX, TARGETS

IDS = [f"{t}-{p}" for t, p in MATRIX]


def runs_here(target: str) -> bool:
    return TARGETS[target].runs_on in ("any", sys.platform)


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    return build_heldout(tmp_path_factory.mktemp("heldout") / "data")


@pytest.fixture(scope="module")
def fp32_reference(heldout):
    """PyTorch fp32 on the held-out puzzles: what every bundle is held to."""
    from trained import trained_model_path
    ref = score(trained_model_path(), heldout)
    assert_trained_fp32(ref)
    return ref


@pytest.fixture(scope="module", params=MATRIX, ids=IDS)
def exported(request, trained_bundles):
    """(target, precision, out folder, bundle path, manifest), made once per row per session (shared
    with test_bench and test_eval: conftest.trained_bundles)."""
    target, precision = request.param
    if importlib.util.find_spec(TARGETS[target].probe) is None:
        pytest.skip(f"the {target} extra is not installed (pip install 'trm-edge[{TARGETS[target].extra}]')")
    path, manifest = trained_bundles(target, precision)
    return target, precision, path.parent, path, manifest


def test_every_precision_exports_and_runs(exported):
    target, precision, out, path, manifest = exported
    on_disk = json.loads((path / "manifest.json").read_text())
    assert on_disk["target"] == target and on_disk["precision"] == precision
    assert set(on_disk["files"]) == {manifest["model_file"], "init.npz", "init.bin"}
    raw = np.fromfile(path / "init.bin", dtype="<f4")       # native readers' copy of init.npz
    with np.load(path / "init.npz") as init:
        for a in on_disk["init_bin"]["arrays"]:
            start = a["offset"] // 4
            np.testing.assert_array_equal(raw[start:start + int(np.prod(a["shape"]))].reshape(a["shape"]), init[a["name"]])
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]   # nothing staged is left behind
    parity = manifest["parity"]
    if not runs_here(target):
        assert parity["ran"] is False and parity["io_match"] is True and parity["passed"] is True
        with pytest.raises(BundleError, match="macOS"):
            Bundle(path)
        return
    assert parity["ran"] is True
    assert parity["passed"] is (True if precision == "fp32" else None)     # quantized: judged by accuracy
    sol = Bundle(path, threads=1).solve(np.ones((5, 16), dtype=np.int64))   # more rows than a fixed batch of 1
    assert sol.predictions.shape == (5, 16) and (sol.steps >= 1).all() and (sol.steps <= MAX_STEPS).all()
    if target == "executorch":     # the manifest rides in the program as a constant method
        from executorch.runtime import Runtime

        from trm_edge.export.executorch import MANIFEST_METHOD
        program = Runtime.get().load_program(path / "step.pte")
        assert set(program.method_names) == {"forward", MANIFEST_METHOD}
        embedded = json.loads(program.load_method(MANIFEST_METHOD).execute([])[0])
        assert embedded["trm_config"] == manifest["trm_config"] and embedded["task"] == manifest["task"]


def test_parity_report_keeps_fp32_accuracy(exported):
    """The export's own report (100 generated puzzles, both run here) holds the bundle to fp32."""
    target, precision, _, _, manifest = exported
    if not runs_here(target):
        pytest.skip(f"{target} bundles run only on {TARGETS[target].runs_on}")
    acc = manifest["parity"]["task_accuracy"]
    assert acc["puzzles"] == 100 and acc["halting"] == "q_halt"
    ref = {"accuracy": acc["pytorch_fp32"], "mean_steps": acc["mean_steps_pytorch_fp32"]}
    assert_trained_fp32(ref)
    assert_close_to_fp32({"accuracy": acc["bundle"], "mean_steps": acc["mean_steps_bundle"]}, ref, precision)


def test_bundle_keeps_fp32_accuracy_on_heldout(exported, heldout, fp32_reference):
    """`eval` of the bundle (its runtime) on held-out puzzles against the checkpoint in PyTorch fp32."""
    target, precision, _, path, _ = exported
    if not runs_here(target):
        pytest.skip(f"{target} bundles run only on {TARGETS[target].runs_on}")
    got = score(path, heldout)
    print(f"\n{target} {precision}: {got} vs fp32 {fp32_reference}")     # the measurement, for tests/models/README.md
    assert_close_to_fp32(got, fp32_reference, precision)


def _damage_onnx(bundle, out, noise: float):
    """A copy of an ONNX bundle with Gaussian noise (`noise` x each matrix's std) added to every weight
    matrix, its manifest hashes recomputed so that it loads: a quantizer gone wrong, in effect."""
    import shutil

    import onnx
    from onnx import numpy_helper

    from trm_edge.runtime.manifest import read_manifest, record_files, write_manifest
    shutil.copytree(bundle, out)
    model = onnx.load(str(out / "step.onnx"))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim >= 2 and w.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(w + rng.normal(0, noise * w.std(), w.shape).astype(np.float32), init.name))
    onnx.save(model, str(out / "step.onnx"))
    write_manifest(out, record_files(out, read_manifest(out, verify=False)))
    return out


def test_damaged_weights_fail_the_accuracy_check(exported, heldout, fp32_reference, tmp_path):
    """The check above can fail: an ONNX fp32 bundle with noisy weights loads, runs and is caught."""
    target, precision, _, path, _ = exported
    if (target, precision) != ("onnx", "fp32"):
        pytest.skip("one damaged bundle (onnx fp32) is enough")
    got = score(_damage_onnx(path, tmp_path / "damaged", noise=0.5), heldout)
    with pytest.raises(AssertionError, match="fp32 bundle solves"):
        assert_close_to_fp32(got, fp32_reference, precision)
