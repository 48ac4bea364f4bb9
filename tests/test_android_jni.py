"""android_demo's JNI layer (app/src/main/cpp/trm_jni.cpp) built for this host against the executorch
package and driven from a desktop JVM through the same JVM signatures the Kotlin app declares: the
whole app but its Android UI runs here. Compared with the Python runtime on the shipped model."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from native_build import REPO, executorch_root, sudoku_text, why_no_native

APP = REPO / "android_demo" / "app" / "src" / "main"
JAVA = REPO / "tests" / "jni"


def _why_not() -> str | None:
    if why_no_native():
        return why_no_native()
    if not (shutil.which("javac") and shutil.which("java")):
        return "the JNI test needs a JDK: apt-get install openjdk-17-jdk-headless"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


@pytest.fixture(scope="module")
def jvm(tmp_path_factory):
    """libtrm_jni.so from the app's own CMakeLists.txt, and the Java driver compiled; returns a runner.

    This build (~30 CPU-s) compiles the runner library again, as position-independent code under the
    app's CMakeLists.txt: that file is what the app builds with, so it is built here as it is, not
    swapped for the runner's objects from build.sh. Most of this module's setup is elsewhere: the
    session's one ExecuTorch export of the shipped model and the Python answers (conftest.py), shared
    with the native runner, hostile-bundle and device-bench tests; they land here because this file
    sorts first."""
    build = tmp_path_factory.mktemp("jni")
    for cmd in (["cmake", "-S", str(APP / "cpp"), "-B", str(build), f"-DEXECUTORCH_ROOT={executorch_root()}",
                 "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build), "-j", "2"],
                ["javac", "-d", str(build / "classes"), *map(str, sorted(JAVA.rglob("*.java")))]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            pytest.fail(f"{cmd[0]} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")

    def run(*args: str) -> list[str]:
        r = subprocess.run(["java", f"-Djava.library.path={build}", "-cp", str(build / "classes"), "JniCheck",
                            *map(str, args)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()
    return run


KOTLIN_TO_JVM = {"Long": "long", "Int": "int", "Double": "double", "Float": "float", "Boolean": "boolean",
                 "String": "String", "StepListener": "StepListener", "Unit": "void"}


def _kotlin_natives(text: str) -> dict[str, tuple]:
    out = {}
    for name, params, ret in re.findall(r"@JvmStatic external fun (\w+)\(([^)]*)\)(?:\s*:\s*(\w+))?", text):
        types = [KOTLIN_TO_JVM[p.split(":")[1].strip().rstrip("?")] for p in params.split(",") if p.strip()]
        out[name] = (KOTLIN_TO_JVM[ret or "Unit"], tuple(types))
    return out


def _java_natives(text: str) -> dict[str, tuple]:
    out = {}
    for ret, name, params in re.findall(r"static native (\w+) (\w+)\(([^)]*)\)", text):
        out[name] = (ret, tuple(p.split()[0] for p in params.split(",") if p.strip()))
    return out


def test_kotlin_and_the_test_driver_declare_the_same_natives():
    kotlin = (APP / "java" / "org" / "trmedge" / "demo" / "TrmNative.kt").read_text()
    java = (JAVA / "org" / "trmedge" / "demo" / "TrmNative.java").read_text()
    assert _kotlin_natives(kotlin) == _java_natives(java) and len(_java_natives(java)) == 7
    kt_listener = re.search(r"fun onStep\(([^)]*)\): Boolean", kotlin).group(1)
    java_listener = re.search(r"boolean onStep\(([^)]*)\)", (JAVA / "org/trmedge/demo/StepListener.java").read_text())
    assert [KOTLIN_TO_JVM[p.split(":")[1].strip()] for p in kt_listener.split(",")] == \
        [p.split()[0] for p in java_listener.group(1).split(",")]
    # and the C++ side defines exactly these
    cpp = (APP / "cpp" / "trm_jni.cpp").read_text()
    assert set(re.findall(r"Java_org_trmedge_demo_TrmNative_(\w+)\(", cpp)) == set(_java_natives(java))
    assert '"onStep", "(ILjava/lang/String;FD)Z"' in cpp


def test_jni_solves_like_python(jvm, shipped_et_bundle, shipped_puzzles, shipped_expected, tmp_path):
    f = tmp_path / "puzzles.txt"
    f.write_text("\n".join(sudoku_text(t) for t in shipped_puzzles) + "\n")
    lines = jvm("solve", shipped_et_bundle, f, "q_halt")
    assert json.loads(lines[0]) == {"grid": 9}
    got = [json.loads(line) for line in lines[1:]]
    assert len(got) == len(shipped_expected) >= 100
    for i, (g, w) in enumerate(zip(got, shipped_expected)):
        assert g["answer"] == sudoku_text(w["answer"]), f"puzzle {i}"
        assert [s["step"] for s in g["trace"]] == list(range(1, w["steps"] + 1)), f"puzzle {i}"
        assert g["trace"][-1]["answer"] == g["answer"]
        p = 1 / (1 + np.exp(-np.asarray(w["q_halt"], dtype=np.float64)))
        np.testing.assert_allclose([s["p"] for s in g["trace"]], p, atol=1e-5, err_msg=f"puzzle {i}")
        assert all(s["ms"] > 0 for s in g["trace"])


def test_listener_stops_the_loop(jvm, shipped_et_bundle, shipped_puzzles):
    lines = jvm("stop", shipped_et_bundle, sudoku_text(shipped_puzzles[0]), 2)
    trace = json.loads(lines[1])["trace"]
    assert [s["step"] for s in trace] == [1, 2]     # fixed halting would run 16


def test_jni_views_decide_like_python(jvm, shipped_et_bundle, tmp_path):
    """solveViews: K = 8 views of hard puzzles with early consensus (m = 2, waves of 2): the answer, the
    steps per view and the chosen view that trm_edge.runtime gives on the same bundle."""
    from trm_edge.data import sudoku
    from trm_edge.runtime.bundle import Bundle
    from trm_edge.runtime.decide import Consensus
    hard = sudoku.to_tokens(sudoku.generate(4, 9, seed=405, difficulty="hard")["puzzles"])
    want = Bundle(shipped_et_bundle).solve(hard, views=8, decide=Consensus(agree=2, wave=2))
    f = tmp_path / "hard.txt"
    f.write_text("\n".join(sudoku_text(t) for t in hard) + "\n")
    got = [json.loads(line) for line in jvm("views", shipped_et_bundle, f, 8, "consensus", 2, 2, 0)]
    assert len(got) == len(hard)
    for i, g in enumerate(got):
        assert g["answer"] == sudoku_text(want.predictions[i]) and g["views"] == 8, f"puzzle {i}"
        assert g["view_steps"] == want.view_steps[i].tolist() and g["chosen_view"] == int(want.chosen[i]), f"puzzle {i}"


def test_jni_views_without_a_policy_run_the_recommended_one(jvm, shipped_et_bundle, tmp_path):
    """solveViews with K = 4 and no policy ("" and 0s, as the app calls it): the manifest's views.recommended
    row for 4 views decides, as trm_edge.runtime's Bundle.solve(views=4) decides."""
    from trm_edge.data import sudoku
    from trm_edge.runtime.bundle import Bundle
    from trm_edge.runtime.decide import recommended
    rows = json.loads((shipped_et_bundle / "manifest.json").read_text())["views"]["recommended"]
    hard = sudoku.to_tokens(sudoku.generate(3, 9, seed=406, difficulty="hard")["puzzles"])
    f = tmp_path / "hard.txt"
    f.write_text("\n".join(sudoku_text(t) for t in hard) + "\n")
    got = [json.loads(line) for line in jvm("views", shipped_et_bundle, f, 4, "")]
    assert len(got) == len(hard)
    b = Bundle(shipped_et_bundle)
    for i, g in enumerate(got):
        want = b.solve(hard[i:i + 1], views=4)
        assert g["policy"] == want.decision.to_manifest() == recommended(4, rows).to_manifest() != {"policy": "vote"}
        assert g["answer"] == sudoku_text(want.predictions[0]) and g["views"] == 4, f"puzzle {i}"
        assert g["view_steps"] == want.view_steps[0].tolist() and g["chosen_view"] == int(want.chosen[0]), f"puzzle {i}"


def test_jni_solves_arc_like_python(jvm, tmp_path_factory):
    """solveArc on the ARC bundle of tests/test_native_arc.py (built once per process): the JSON of Python's
    Bundle.solve_arc on two tasks (one with two test inputs) under the full vote ("" and 0s), and under
    consensus (2 agree, waves of 2) on one; an unknown task id as an IllegalArgumentException."""
    from test_native_arc import KEYS, arc_setup

    from trm_edge.runtime.bundle import Bundle
    from trm_edge.runtime.decide import Consensus
    arc = arc_setup(tmp_path_factory)
    pairs = [str(x) for tid in ("0692e18c", "12997ef3") for x in (arc["files"][tid], tid)]
    lines = jvm("arc", arc["bundle"], 0, "", 0, 0, *pairs, arc["files"]["0692e18c"], "ffffffff")
    assert len(lines) == 3
    for line, tid in zip(lines, ("0692e18c", "12997ef3")):
        got = json.loads(line)
        assert {k: got.get(k) for k in KEYS} == {k: arc["want"][tid].get(k) for k in KEYS}, tid
    assert lines[2].startswith("java.lang.IllegalArgumentException: task 'ffffffff' is not in this bundle")
    got = json.loads(jvm("arc", arc["bundle"], 0, "consensus", 2, 2, arc["files"]["0692e18c"], "0692e18c")[0])
    want = Bundle(arc["bundle"]).solve_arc(arc["tasks"]["0692e18c"], "0692e18c", decide=Consensus(agree=2, wave=2))
    assert {k: got.get(k) for k in KEYS} == {k: want.get(k) for k in KEYS}


@pytest.mark.parametrize("case, message", [
    ("no bundle", "no manifest.json"),
    ("short puzzle", "puzzle has 3 cells"),
    ("bad halting", "halting is q_halt or fixed, got 'never'"),
])
def test_errors_are_exceptions_with_one_line(jvm, shipped_et_bundle, tmp_path, case, message):
    bundle = tmp_path if case == "no bundle" else shipped_et_bundle
    args = {"short puzzle": ["123"], "bad halting": ["." * 81, "never"]}.get(case, ["." * 81])
    out = jvm("error", bundle, *args)
    assert len(out) == 1 and out[0].startswith("java.lang.IllegalArgumentException: ") and message in out[0], out
