"""trm-edge installed as people install it (issue 27), never through PYTHONPATH or the source folder:

- `python -m build` makes a wheel and an sdist holding what the package needs (its modules, the bundle
  schema, the shipped model and its default bundle) and nothing else (no tests, caches, bundles).
- The wheel with the torch extra, installed (not editable) into a fresh venv and run from another
  folder, solves the quickstart's puzzle with the shipped model.
- The runtime-only wheel plus ONE runtime is what a board or an app server has: `pip list` shows no
  torch; it solves through the shipped bundle and an exported one (onnxruntime; on numpy<2 with
  `tflite-runtime`, what a Raspberry Pi has); a verb needing torch says which extra, in one line.
- A wheel missing its model (simulated by deleting it from the install) says so in one line.

Each venv is made once per session and shared by the tests below (this file is one xdist unit)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import venv
import zipfile
import tarfile
from pathlib import Path

import pytest

from trm_edge.export.bundle import export_bundle

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = "54.916..21.8...4..3..248..1412....9.9..732.46673.9....2...8.3.4.3.45.9..8..329..."
ANSWER = "547916832128573469369248571412865793985732146673194285291687354736451928854329617"
BOARDS = {   # target -> (the extra a board installs, the exporter module needed here to make its bundle)
    "onnx": ("onnxruntime", "onnxruntime"),
    "tflite": ("tflite-runtime", "litert_torch"),
}


def _clean_env() -> dict:
    """This environment (pip's settings, proxies) without the checkout or this venv: no PYTHONPATH,
    no VIRTUAL_ENV, and a PATH of the system's folders only."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "TRM_EDGE_DEBUG")}
    return env | {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def _run(cmd, cwd=None, timeout=900, env=None):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=env or _clean_env())


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> dict:
    """The wheel and sdist `python -m build` makes from this checkout (once per session)."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("python -m build needs the build package (pip install 'trm-edge[dev]')")
    out = tmp_path_factory.mktemp("dist")
    r = _run([sys.executable, "-m", "build", "--outdir", out, REPO], env={**os.environ})
    if r.returncode and "Could not find a version" in r.stdout + r.stderr:
        pytest.skip(f"python -m build could not fetch setuptools from the registry: {r.stderr[-300:]}")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


def _venv(root: Path, requirement: str) -> Path:
    """A fresh venv under root with `requirement` installed; its bin folder."""
    venv.create(root, with_pip=True)
    py = root / "bin" / "python"
    r = _run([py, "-m", "pip", "install", "-q", requirement])
    if r.returncode:
        pytest.skip(f"could not install {requirement} from the registry: {r.stderr.strip()[-300:]}")
    return root / "bin"


@pytest.fixture(scope="session")
def full_env(dist, tmp_path_factory) -> Path:
    return _venv(tmp_path_factory.mktemp("full") / "venv", f"{dist['wheel']}[torch]")


@pytest.fixture(scope="session")
def runtime_env(dist, tmp_path_factory) -> Path:
    return _venv(tmp_path_factory.mktemp("runtime") / "venv", f"{dist['wheel']}[onnxruntime]")


def _site(bin_dir: Path) -> Path:
    return next((bin_dir.parent / "lib").glob("python3*/site-packages"))


def _packages(bin_dir: Path) -> dict:
    r = _run([bin_dir / "python", "-m", "pip", "list", "--format", "json"])
    assert r.returncode == 0, r.stderr
    return {p["name"].lower(): p["version"] for p in json.loads(r.stdout)}


def test_wheel_and_sdist_hold_what_they_need_and_nothing_else(dist):
    wheel = set(zipfile.ZipFile(dist["wheel"]).namelist())
    code = {n for n in wheel if not n.startswith("trm_edge-")}
    for needed in ("trm_edge/cli.py", "trm_edge/extras.py", "trm_edge/runtime/bundle.py",
                   "trm_edge/runtime/bundle.schema.json", "trm_edge/models/sudoku.safetensors",
                   *(f"trm_edge/models/sudoku-onnx-int8/{f}" for f in ("manifest.json", "step.onnx", "init.npz", "init.bin"))):
        assert needed in code, needed
    assert all(n.startswith("trm_edge/") for n in code), sorted(n for n in code if not n.startswith("trm_edge/"))
    assert not [n for n in code if "__pycache__" in n or n.endswith((".pyc", ".tmp")) or "/tests/" in n]
    tracked = set(_run(["git", "-C", REPO, "ls-files", "--cached", "--others", "--exclude-standard", "trm_edge"]).stdout.split())
    assert code == tracked, (sorted(code - tracked), sorted(tracked - code))       # every file of the package, no other
    meta = zipfile.ZipFile(dist["wheel"]).read(next(n for n in wheel if n.endswith("METADATA"))).decode()
    base = [line for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert base and not [line for line in base if "torch" in line or "safetensors" in line], base   # torch-free base
    with tarfile.open(dist["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "trm_edge/models/sudoku.safetensors"} <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "bundles/", ".venv", "export/", "android_demo/"))
                or "__pycache__" in n]


def test_the_wheel_runs_the_quickstart_from_another_folder(full_env, tmp_path):
    r = _run([full_env / "trm-edge", "solve", "--puzzle", QUICKSTART, "--json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.splitlines()[0])
    assert row["answer"] == ANSWER and row["solved"] is True and row["backend"] == "pytorch-eager fp32"
    assert r.stderr == ""
    r = _run([full_env / "trm-edge", "info", "--json"], cwd=tmp_path)      # the model found inside the install
    assert r.returncode == 0 and json.loads(r.stdout)["parameters"] == 694_274, r.stderr
    assert not (tmp_path / "models").exists() and str(REPO) not in r.stdout


def test_the_runtime_only_install_has_no_torch_and_solves_with_the_shipped_bundle(runtime_env, tmp_path):
    pkgs = _packages(runtime_env)
    assert "trm-edge" in pkgs and "onnxruntime" in pkgs
    assert not [p for p in pkgs if p.startswith("torch") or p in ("safetensors", "executorch")], sorted(pkgs)
    r = _run([runtime_env / "trm-edge", "run", "--puzzle", QUICKSTART, "--json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.splitlines()[0])
    assert row["answer"] == ANSWER and row["solved"] is True and row["backend"] == "onnx int8"
    assert row["views"] == 8 and row["policy"] == {"policy": "consensus", "agree": 2, "wave": 2}   # the manifest's
    r = _run([runtime_env / "trm-edge", "info", str(_site(runtime_env) / "trm_edge/models/sudoku-onnx-int8")])
    assert r.returncode == 0 and "onnx / int8" in r.stdout, r.stderr


@pytest.mark.parametrize("argv, extra", [
    (["solve", "--puzzle", QUICKSTART], "torch"),
    (["info"], "torch"),
    (["export", "--target", "onnx"], "onnx"),
    (["export", "--target", "tflite"], "tflite"),
    (["bench"], "torch"),
    (["train", "config.yaml"], "train"),
])
def test_a_verb_whose_extra_is_missing_says_which_in_one_line(runtime_env, tmp_path, argv, extra):
    r = _run([runtime_env / "trm-edge", *argv], cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"pip install 'trm-edge[{extra}]'" in lines[0], lines
    assert "Traceback" not in r.stderr and list(tmp_path.iterdir()) == []


def test_views_above_the_manifest_s_list_is_one_line(runtime_env, tmp_path):
    r = _run([runtime_env / "trm-edge", "run", "--puzzle", QUICKSTART, "--views", "17"], cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "error: this bundle lists 16 views, not 17; ask for fewer or re-export with --views 17"], r.stderr


@pytest.mark.parametrize("target", list(BOARDS))
def test_a_board_runs_an_exported_bundle_with_one_runtime(dist, tiny_sudoku_checkpoint, tmp_path, target):
    """What a board has: the runtime-only wheel and one runtime (tflite-runtime on numpy<2), no torch."""
    extra, exporter = BOARDS[target]
    if importlib.util.find_spec(exporter) is None:
        pytest.skip(f"exporting here needs the {target} extra (pip install 'trm-edge[{target}]')")
    path, _ = export_bundle(tiny_sudoku_checkpoint, target, tmp_path / "bundle", log=lambda *a: None)
    bin_dir = _venv(tmp_path / "board", f"{dist['wheel']}[{extra}]")
    assert not [p for p in _packages(bin_dir) if p.startswith("torch")]
    code = (
        "import sys, numpy as np\n"
        "from trm_edge.runtime.bundle import Bundle\n"
        f"b = Bundle({str(path)!r})\n"
        "sol = b.solve(np.array([[1, 3, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 4, 1]] * 3))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(type(b.step).__module__, np.__version__, sol.steps.tolist(), sol.predictions.shape)\n")
    r = _run([bin_dir / "python", "-c", code], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "(3, 16)" in r.stdout and r.stdout.split()[0] == f"trm_edge.runtime.{target}_backend"
    if target == "tflite":
        assert r.stdout.split()[1].startswith("1.")      # tflite_runtime on numpy 1.x
        # tflite-runtime 2.14 computes dynamic-range int8 wrongly (runtime/tflite_backend.py): refused, one line
        int8, _ = export_bundle(tiny_sudoku_checkpoint, target, tmp_path / "int8", "int8", log=lambda *a: None)
        r = _run([bin_dir / "trm-edge", "run", int8, "--puzzle", "1,3,1,1,1,1,1,2,2,1,1,1,1,1,4,1"], cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "tflite-runtime computes int8 (dynamic-range) LiteRT bundles wrongly" in r.stderr
    r = _run([bin_dir / "python", "-c", "import torch"])
    assert r.returncode != 0                             # really no torch there


def test_an_install_missing_its_model_or_bundle_says_so_in_one_line(full_env, runtime_env, tmp_path):
    """Last in this file: it deletes the shipped files from the installs (a damaged or trimmed wheel)."""
    (_site(full_env) / "trm_edge/models/sudoku.safetensors").unlink()
    r = _run([full_env / "trm-edge", "solve", "--puzzle", QUICKSTART], cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "shipped model" in r.stderr and "missing from this installation" in r.stderr and "--model" in r.stderr
    for f in (_site(runtime_env) / "trm_edge/models/sudoku-onnx-int8").iterdir():
        f.unlink()
    r = _run([runtime_env / "trm-edge", "run", "--puzzle", QUICKSTART], cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "shipped bundle" in r.stderr and "missing from this installation" in r.stderr
