"""Shared test fixtures.

The golden outputs of the official TRM are DATA and live in the repo (tests/fixtures/reference_trm/, with
the README that says how they were made), so a fresh clone runs every golden/parity test. The official
CODE (dataset builders, ARC evaluator) is never copied into the project: tests that must run it read it
from ../shared/fixtures/official_trm/ beside the clone (TRM_EDGE_SHARED overrides ../shared) through the
`official_trm` fixture, which skips, saying why, where it is absent."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("TRM_EDGE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
OFFICIAL_TRM = SHARED / "fixtures" / "official_trm"          # official code: never copied in
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reference_trm"   # golden data: in the repo
FIXTURE_NAMES = ["trm_att_tiny", "trm_mlpt_sudoku_tiny"]


class Golden:
    def __init__(self, name: str):
        self.name, self.dir = name, FIXTURES / name
        self.config = json.loads((self.dir / "config.json").read_text())
        self.arrays = dict(np.load(self.dir / "golden.npz"))
        self.state_dict_path = self.dir / "state_dict.pt"

    def __getitem__(self, key):
        return self.arrays[key]

    def model(self):
        from trm_edge.checkpoint import load_checkpoint
        return load_checkpoint(self.state_dict_path, self.config)


# The suite runs on 2 workers (pytest-xdist, `-n 2` in pyproject.toml) and each test file stays on one
# worker, so its module fixtures (one export per bundle) are made once; the native tests are one unit,
# so the session's one ExecuTorch export of the shipped model and the runner builds are made once too.
# `-n 0` runs everything in this process.
NATIVE_FILES = {"test_android_jni", "test_device_bench", "test_native_encoding", "test_native_hostile",
                "test_native_runner", "test_native_arc"}
TRAINED_FILES = {"test_bench", "test_eval", "test_export_precisions"}    # share the trained model's bundles


def unit(nodeid: str) -> str:
    """The scheduling unit of a test: its file, "native" for the files sharing the native fixtures, or
    "trained" for those sharing the trained model's bundles."""
    stem = Path(nodeid.split("::", 1)[0]).stem
    return "native" if stem in NATIVE_FILES else "trained" if stem in TRAINED_FILES else stem


if importlib.util.find_spec("xdist") is not None:
    def pytest_xdist_make_scheduler(config, log):
        from xdist.scheduler import LoadScopeScheduling

        class ByUnit(LoadScopeScheduling):     # xdist's loadgroup marks do not reach pytest 9.2's node ids
            def _split_scope(self, nodeid: str) -> str:
                return unit(nodeid)
        return ByUnit(config, log)


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A test that sets torch's thread count (the golden fixtures, a backend opened with threads=1)
    must not leave the rest of the session on one thread."""
    import sys
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(params=FIXTURE_NAMES)
def golden(request):
    """One golden fixture. They ship with the repo, so a missing file is an error, not a skip."""
    import torch
    torch.set_num_threads(1)   # the fixtures were made single-threaded
    return Golden(request.param)


@pytest.fixture(scope="session")
def official_trm() -> Path:
    """The official TinyRecursiveModels code (dataset builders, ARC evaluator, ARC JSON) in
    ../shared/fixtures/official_trm/; skips, saying why, where it is absent. Run it, never copy it."""
    if not (OFFICIAL_TRM / "dataset" / "common.py").is_file():
        pytest.skip(f"the official TRM code is not at {OFFICIAL_TRM} (put shared/ beside the clone, or set "
                    "TRM_EDGE_SHARED to it); it is not copied into the project")
    return OFFICIAL_TRM


def make_tiny_sudoku_model():
    """A small random MLP-t 4x4-Sudoku TRM (seed 0)."""
    import torch

    from trm_edge.model import TRM, TRMConfig
    torch.manual_seed(0)
    cfg = TRMConfig(seq_len=16, vocab_size=6, hidden_size=32, expansion=2, H_cycles=1, L_cycles=2,
                    halt_max_steps=6, puzzle_emb_ndim=32, puzzle_emb_len=2, mlp_t=True, pos_encodings="none")
    return _with_random_heads(TRM(cfg))


def _with_random_heads(m):
    """A fresh TRM with a q head and puzzle table that are not all zero (so halting and rows vary), in eval mode."""
    import torch
    with torch.no_grad():
        m.q_head.weight.normal_(0, 0.5)
        m.q_head.bias.zero_()
        m.puzzle_emb.normal_()
    return m.eval()


def make_tiny_arc_model(n_rows: int, seq_len: int = 900):
    """A small random ARC-shaped TRM (attention + RoPE, vocabulary 12, hidden 32) with an n_rows puzzle table (seed 0)."""
    import torch

    from trm_edge.model import TRM, TRMConfig
    torch.manual_seed(0)
    cfg = TRMConfig(seq_len=seq_len, vocab_size=12, hidden_size=32, num_heads=2, expansion=2, H_cycles=1, L_cycles=1,
                    L_layers=1, halt_max_steps=4, puzzle_emb_ndim=32, puzzle_emb_len=1, pos_encodings="rope",
                    num_puzzle_identifiers=n_rows)
    return _with_random_heads(TRM(cfg))


@pytest.fixture
def tiny_sudoku_model():
    """A small random MLP-t Sudoku TRM with a task, saved in our format."""
    return make_tiny_sudoku_model()


@pytest.fixture(scope="session")
def trained_bundles(tmp_path_factory):
    """trained_bundles(target, precision) -> (path, manifest): the trained 4x4 model's bundle, exported
    once per session where first asked for, named as `trm-edge bench` names its bundles
    (sudoku4-<target>-<precision> under trained_bundles.root), so a bench pointed there reuses them."""
    from trained import load_trained

    from trm_edge.bench import reusable
    from trm_edge.export.bundle import export_bundle
    from trm_edge.runtime.manifest import read_manifest
    root = tmp_path_factory.mktemp("trained-bundles")
    made = {}

    def get(target: str, precision: str = "fp32"):
        if (target, precision) not in made:
            model, path = load_trained(), root / f"sudoku4-{target}-{precision}"
            if reusable(path, model, target, precision):            # a bench made it
                made[target, precision] = path, read_manifest(path)
            else:
                made[target, precision] = export_bundle(model, target, path, precision, log=lambda *a: None)
        return made[target, precision]
    get.root = root
    return get


@pytest.fixture(scope="session")
def tiny_onnx_bundle(tmp_path_factory) -> Path:
    """The tiny model (4x4 Sudoku task) exported once per session to an ONNX fp32 bundle: hostile-bundle
    cases copy it and break the copy."""
    from trm_edge.checkpoint import load_checkpoint, save_checkpoint
    from trm_edge.export.bundle import export_bundle
    d = tmp_path_factory.mktemp("tiny-onnx")
    ckpt = load_checkpoint(save_checkpoint(make_tiny_sudoku_model(), d / "tiny.safetensors", task={"name": "sudoku", "size": 4}))
    path, _ = export_bundle(ckpt, "onnx", d / "bundle", log=lambda *a: None, accuracy_puzzles=0)
    return path


@pytest.fixture
def tiny_sudoku_checkpoint(tiny_sudoku_model, tmp_path):
    """The tiny model saved with its task (4x4 Sudoku), loaded back: what `trm-edge export --model` sees."""
    from trm_edge.checkpoint import load_checkpoint, save_checkpoint
    path = save_checkpoint(tiny_sudoku_model, tmp_path / "tiny.safetensors", task={"name": "sudoku", "size": 4})
    return load_checkpoint(path)


# ---------------------------------------------------------------- native code (tests/native_build.py)

@pytest.fixture(scope="session")
def native_runner(tmp_path_factory) -> Path:
    """export/executorch/runner built for this x86-64 host (trm-runner, trm-sha256 inside)."""
    from native_build import build_runner, why_no_native
    if why_no_native():
        pytest.skip(why_no_native())
    return build_runner("x86_64", tmp_path_factory.mktemp("runner-x86_64"))


@pytest.fixture(scope="session")
def shipped_et_bundle(tmp_path_factory) -> Path:
    """The shipped model (trm_edge/models/sudoku.safetensors) exported once per session to an ExecuTorch fp32
    bundle, for every native test (runner, JNI, hostile bundles, device bench). The lowering is most of
    it (~2.5 min idle; the hostile cases read its dynamic batch). The export still fails on fp32 parity (8 puzzles, 4 steps); it skips the
    100-puzzle task-accuracy run (PyTorch and ExecuTorch, for the manifest's task_accuracy, which no
    native test reads): the native tests compare 100 puzzles with Python themselves."""
    from native_build import MODEL

    from trm_edge.checkpoint import load_checkpoint
    from trm_edge.export.bundle import export_bundle
    out = tmp_path_factory.mktemp("native-bundle") / "sudoku-executorch-fp32"
    export_bundle(load_checkpoint(str(MODEL)), "executorch", out, "fp32", log=lambda *a: None, accuracy_puzzles=0,
                  parity_steps=4)
    return out


@pytest.fixture(scope="session")
def shipped_puzzles() -> np.ndarray:
    """100 generated 9x9 Sudoku puzzles (seed 4) as tokens."""
    from trm_edge.data import sample_puzzles
    return np.asarray(sample_puzzles({"name": "sudoku", "size": 9}, 81, 11, 100, seed=4), dtype=np.int64)


@pytest.fixture(scope="session")
def shipped_expected(shipped_et_bundle, shipped_puzzles) -> list[dict]:
    """The Python runtime's answers, steps and q_halt on `shipped_puzzles` (q_halt halting)."""
    from native_build import python_solutions
    return python_solutions(shipped_et_bundle, shipped_puzzles)
