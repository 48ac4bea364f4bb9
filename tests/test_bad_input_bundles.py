"""Hostile bundles and bad runtime input through the Python runtime and `trm-edge run`: every case is
refused with the package's error (the CLI: exit 2, one line), opens nothing outside the bundle (an
audit hook watches every file Python opens), leaves the folder as it was, and never hangs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from bad_input import assert_outside_untouched, one_line, snapshot, watched
from hostile_bundles import SECRET, for_runtime, fresh_copy, manifest, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trm_edge.cli import main
from trm_edge.errors import TRMEdgeError
from trm_edge.runtime.bundle import Bundle
from trm_edge.runtime.manifest import BundleError, read_manifest

PUZZLE = "1.3..4.1..1.4.2."            # 4x4, the tiny bundle's task
TOKENS = np.array([[2, 1, 4, 1, 1, 5, 1, 2, 1, 1, 2, 1, 5, 1, 3, 1]])

# ---------------------------------------------------------------- the catalogue, through the API and the CLI

PY_CASES = for_runtime("python")


@pytest.fixture
def hostile(tiny_onnx_bundle, tmp_path, request):
    case = request.param
    bundle, outside = fresh_copy(tiny_onnx_bundle, tmp_path)
    case.apply(bundle, outside)
    return bundle, outside


@pytest.mark.parametrize("hostile", PY_CASES, indirect=True, ids=[c.id for c in PY_CASES])
def test_runtime_refuses_hostile_bundle(hostile, tmp_path):
    bundle, outside = hostile
    before = snapshot(tmp_path)
    with watched() as opened:
        with pytest.raises(TRMEdgeError) as e:
            Bundle(bundle).solve(TOKENS, max_steps=2)
    one_line(str(e.value))
    assert_outside_untouched(opened, outside)
    assert snapshot(tmp_path) == before


CLI_CASES = PY_CASES[::3]      # a third of them again through the command line (the rest share its code path)


@pytest.mark.parametrize("hostile", CLI_CASES, indirect=True, ids=[c.id for c in CLI_CASES])
def test_run_refuses_hostile_bundle(hostile, tmp_path, capsys):
    bundle, outside = hostile
    before = snapshot(tmp_path)
    with watched() as opened:
        code = main(["run", str(bundle), "--puzzle", PUZZLE])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and "internal error" not in err and not out, (code, out, err)
    one_line(err)
    assert_outside_untouched(opened, outside)
    assert snapshot(tmp_path) == before


def test_good_copy_runs(tiny_onnx_bundle, tmp_path, capsys):
    """The control: an untouched copy opens and solves (so the cases above fail for their change alone)."""
    bundle, outside = fresh_copy(tiny_onnx_bundle, tmp_path)
    with watched() as opened:
        sol = Bundle(bundle).solve(TOKENS)
    assert sol.predictions.shape == (1, 16) and 1 <= sol.steps[0] <= 6
    assert_outside_untouched(opened, outside)
    assert main(["run", str(bundle), "--puzzle", PUZZLE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] >= 1


def test_user_symlink_to_bundle_folder_is_fine(tiny_onnx_bundle, tmp_path):
    """The folder itself may be a user's symlink (their choice); only files the manifest names are held to the rules."""
    link = tmp_path / "link"
    link.symlink_to(tiny_onnx_bundle, target_is_directory=True)
    assert Bundle(link).solve(TOKENS).predictions.shape == (1, 16)


# ---------------------------------------------------------------- bad arguments to a good bundle

@pytest.fixture(scope="module")
def good(tiny_onnx_bundle):
    return Bundle(tiny_onnx_bundle)


BAD_SOLVE = {
    "empty-batch": dict(tokens=np.zeros((0, 16), np.int64)),
    "ragged": dict(tokens=[[1] * 16, [1] * 15]),
    "strings": dict(tokens=[["a"] * 16]),
    "floats": dict(tokens=TOKENS.astype(np.float64) + 0.5),
    "bools": dict(tokens=np.ones((1, 16), bool)),
    "too-short": dict(tokens=TOKENS[:, :15]),
    "too-long": dict(tokens=np.ones((1, 17), np.int64)),
    "3d": dict(tokens=TOKENS[None]),
    "token-negative": dict(tokens=-TOKENS),
    "token-too-big": dict(tokens=TOKENS * 100),
    "token-huge": dict(tokens=[[10**20] * 16]),
    "max-steps-zero": dict(max_steps=0),
    "max-steps-float": dict(max_steps=2.5),
    "max-steps-string": dict(max_steps="4"),
    "max-steps-huge": dict(max_steps=10**9),
    "max-steps-bool": dict(max_steps=True),
    "threshold-zero": dict(threshold=0),
    "threshold-one": dict(threshold=1),
    "threshold-two": dict(threshold=2),
    "threshold-negative": dict(threshold=-1),
    "threshold-nan": dict(threshold=float("nan")),
    "threshold-inf": dict(threshold=math.inf),
    "threshold-string": dict(threshold="0.5"),
    "halting-bogus": dict(halting="sometimes"),
    "halting-int": dict(halting=1),
    "puzzle-id-out-of-table": dict(puzzle_ids=[10**6]),
    "puzzle-id-huge": dict(puzzle_ids=[10**20]),
    "puzzle-id-negative": dict(puzzle_ids=[-1]),
    "puzzle-id-float": dict(puzzle_ids=[1.5]),
    "puzzle-id-string": dict(puzzle_ids=["0"]),
    "puzzle-ids-too-many": dict(puzzle_ids=[0, 0]),
    "puzzle-emb-wrong-shape": dict(puzzle_emb=np.zeros((1, 5), np.float32)),
    "puzzle-emb-nan": dict(puzzle_emb=np.full((1, 32), np.nan, np.float32)),
    "puzzle-emb-strings": dict(puzzle_emb=[["x"] * 32]),
}


@pytest.mark.parametrize("name", list(BAD_SOLVE))
def test_bundle_solve_refuses_bad_arguments(good, name):
    kw = dict(BAD_SOLVE[name])
    tokens = kw.pop("tokens", TOKENS)
    with watched():
        with pytest.raises(TRMEdgeError) as e:
            good.solve(tokens, **kw)
    one_line(str(e.value))


@pytest.mark.parametrize("path", [None, 123, "", 1.5, ["a"]])
def test_bundle_refuses_bad_path(path):
    with pytest.raises(TRMEdgeError) as e:
        Bundle(path)
    one_line(str(e.value))


@pytest.mark.parametrize("threads", [0, -1, 2.5, "2", True])
def test_bundle_refuses_bad_threads(tiny_onnx_bundle, threads):
    with pytest.raises(TRMEdgeError):
        Bundle(tiny_onnx_bundle, threads=threads)


def test_runtime_solve_checks_states(good):
    from trm_edge.runtime import solve
    for y_init in (np.zeros(7, np.float32), np.zeros((3, 5, 5), np.float32), np.full(32, np.nan, np.float32), "x"):
        with pytest.raises(TRMEdgeError) as e:
            solve(good.step, TOKENS, good.puzzle_emb([0]), y_init, good.z_init)
        one_line(str(e.value))


def test_non_finite_outputs_are_reported(good):
    """NaN weights give NaN logits: an error, never a grid of `?`."""
    from trm_edge.runtime import solve

    def nan_step(tokens, pe, y, z):
        out = good.step(tokens, pe, y, z)
        return out[0], out[1], np.full_like(out[2], np.nan), out[3]
    nan_step.positions = good.step.positions
    with pytest.raises(TRMEdgeError, match="NaN"):
        solve(nan_step, TOKENS, good.puzzle_emb([0]), good.y_init, good.z_init)


def test_backend_failure_is_one_line(good):
    from trm_edge.runtime import solve

    def broken(tokens, pe, y, z):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT\nline two\nline three")
    broken.positions = good.step.positions
    with pytest.raises(TRMEdgeError) as e:
        solve(broken, TOKENS, good.puzzle_emb([0]), good.y_init, good.z_init)
    one_line(str(e.value))
    assert "INVALID_ARGUMENT" in str(e.value)


def test_zero_is_not_the_default(good):
    """threshold=0 / max_steps=0 are errors, not `or default`; None means the manifest's value."""
    assert good.solve(TOKENS, threshold=None, max_steps=None).steps[0] >= 1
    for kw in ({"threshold": 0}, {"threshold": 0.0}, {"max_steps": 0}):
        with pytest.raises(TRMEdgeError):
            good.solve(TOKENS, **kw)


# ---------------------------------------------------------------- property-based: any manifest edit

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) |
                    st.text(max_size=12), lambda inner: st.lists(inner, max_size=3) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def _paths(m, prefix=()):
    """Every key path of a manifest (dict keys and list indices)."""
    items = m.items() if isinstance(m, dict) else enumerate(m) if isinstance(m, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from _paths(v, prefix + (k,))


@pytest.fixture(scope="module")
def manifest_paths(tiny_onnx_bundle):
    return sorted(_paths(manifest(tiny_onnx_bundle)), key=str)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_manifest_edit_is_read_or_refused(tiny_onnx_bundle, manifest_paths, tmp_path_factory, data):
    """Replace any value (or drop any key) with any JSON: read_manifest returns a manifest that keeps the
    contract, or raises BundleError with one line; never another exception, never a hang."""
    where = tmp_path_factory.mktemp("h")
    bundle, outside = fresh_copy(tiny_onnx_bundle, where)
    m = manifest(bundle)
    path = data.draw(st.sampled_from(manifest_paths))
    d = m
    for k in path[:-1]:
        d = d[k]
    if data.draw(st.booleans()) and isinstance(d, dict):
        del d[path[-1]]
    else:
        d[path[-1]] = data.draw(JSON)
    write(bundle, m)
    with watched() as opened:
        try:
            got = read_manifest(bundle)
        except BundleError as e:
            one_line(str(e))
        else:
            assert got["halting"]["max_steps"] <= 1024 and 0 < got["halting"]["threshold"] < 1
    assert_outside_untouched(opened, outside)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_manifest_bytes_are_refused(tiny_onnx_bundle, tmp_path_factory, raw):
    bundle, outside = fresh_copy(tiny_onnx_bundle, tmp_path_factory.mktemp("b"))
    (bundle / "manifest.json").write_bytes(raw)
    with pytest.raises(BundleError) as e:
        read_manifest(bundle)
    one_line(str(e.value))


def test_secret_sentinel_exists(tiny_onnx_bundle, tmp_path):
    """The sentinel the cases point at is really there (so 'not opened' means something)."""
    _, outside = fresh_copy(tiny_onnx_bundle, tmp_path)
    assert (outside / SECRET).read_text().startswith("nothing")


def test_another_bundles_model_file_is_refused_at_load(tiny_onnx_bundle, tmp_path):
    """A model file of another model (D=16, not 32) with its hash recomputed: refused when the bundle
    opens, naming the tensor that does not fit, not at the first step with the runtime's own words."""
    import torch
    from hostile_bundles import rehash

    from trm_edge.checkpoint import load_checkpoint, save_checkpoint
    from trm_edge.export.bundle import export_bundle
    from trm_edge.model import TRM, TRMConfig
    torch.manual_seed(1)
    other = TRM(TRMConfig(seq_len=16, vocab_size=6, hidden_size=16, expansion=2, H_cycles=1, L_cycles=1,
                          halt_max_steps=2, mlp_t=True, pos_encodings="none")).eval()
    ck = load_checkpoint(save_checkpoint(other, tmp_path / "o.safetensors", task={"name": "sudoku", "size": 4}))
    theirs, _ = export_bundle(ck, "onnx", tmp_path / "other", log=lambda *a: None, accuracy_puzzles=0)
    bundle, outside = fresh_copy(tiny_onnx_bundle, tmp_path / "h")
    (bundle / "step.onnx").write_bytes((theirs / "step.onnx").read_bytes())
    rehash(bundle, "step.onnx")
    with pytest.raises(BundleError, match="belongs to another bundle") as e:
        Bundle(bundle)
    one_line(str(e.value))
