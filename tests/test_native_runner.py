"""The native ExecuTorch runner (export/executorch/runner/): built here for x86-64, cross-compiled
for ARM64 and run under qemu, and compared with the Python runtime on the shipped model's bundle.

One bundle export (~2.5 min) and one build per architecture per session. The Python reference is
`Bundle.solve` called per puzzle, i.e. at batch 1 as the runner runs: the same shapes on both sides.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from native_build import build_runner, python_solutions, sudoku_text, why_no_arm, why_no_native

FIXED_PUZZLES = 3       # puzzles also compared over all 16 steps with fixed halting
# qemu emulates every vector instruction, so ARM64 runs as a phone's core (-cpu cortex-a76: NEON and
# dot-product kernels, ~15 s per step of the shipped model here; qemu's default `max` CPU offers SVE and
# SME, which XNNPACK then picks and qemu emulates ~13x slower: 216 s for one step), and the fewest steps that still test what it is
# for: two puzzles whose Python step counts are known and differ, one of them more than 1 step (the
# state carried between steps, and halting on q_halt at two different steps), one read as a Sudoku
# string and one as tokens, on one thread. The x86-64 test above covers 100 puzzles, fixed halting
# and the default thread pool; what only ARM64 can show (its build, its XNNPACK kernels, answers and
# q_halt to 1e-4 of Python) still fails here on a real defect.
ARM_THREADS = 1
QEMU = ["qemu-aarch64", "-cpu", "cortex-a76", "-L", "/usr/aarch64-linux-gnu"]

pytestmark = pytest.mark.skipif(why_no_native() is not None, reason=str(why_no_native()))


@pytest.fixture(scope="session")
def arm(tmp_path_factory) -> Path:
    why = why_no_arm()
    if why:
        pytest.skip(why)
    return build_runner("aarch64", tmp_path_factory.mktemp("runner-aarch64"))


def _puzzle_file(path: Path, puzzles: np.ndarray) -> Path:
    """Every other puzzle as a Sudoku string, the others as token lists: both forms get read."""
    lines = [sudoku_text(t) if i % 2 == 0 else ",".join(map(str, t)) for i, t in enumerate(puzzles)]
    path.write_text("# generated puzzles, seed 4\n" + "\n".join(lines) + "\n")
    return path


def _solve(cmd: list[str], timeout: float) -> list[dict]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def _compare(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g["answer"] == w["answer"], f"puzzle {i}: answers differ"
        assert g["steps"] == w["steps"], f"puzzle {i}: {g['steps']} steps natively, {w['steps']} in Python"
        assert len(g["q_halt"]) == g["steps"]
        np.testing.assert_allclose(g["q_halt"], w["q_halt"], rtol=0, atol=1e-4, err_msg=f"puzzle {i}")


def test_x86_64_matches_python(native_runner, shipped_et_bundle, shipped_puzzles, shipped_expected, tmp_path):
    assert len(shipped_puzzles) >= 100
    f = _puzzle_file(tmp_path / "puzzles.txt", shipped_puzzles)
    _compare(_solve([str(native_runner / "trm-runner"), str(shipped_et_bundle), "--puzzle-file", str(f), "--json"], 600), shipped_expected)
    assert len({e["steps"] for e in shipped_expected}) > 1, "every puzzle halted after the same step: halting is untested"

    fixed = python_solutions(shipped_et_bundle, shipped_puzzles[:FIXED_PUZZLES], halting="fixed")
    cmd = [str(native_runner / "trm-runner"), str(shipped_et_bundle), "--json", "--halting", "fixed"]
    for t in shipped_puzzles[:FIXED_PUZZLES]:
        cmd += ["--tokens", ",".join(map(str, t))]
    _compare(_solve(cmd, 600), fixed)


VIEWS_PUZZLES = 6       # hard puzzles in the suite; benchmarks/views_native.py runs >= 100


@pytest.fixture(scope="module")
def hard_puzzles() -> np.ndarray:
    """Hard 9x9 puzzles (minimal, not solvable by singles), another seed than any training data."""
    from trm_edge.data import sudoku
    return sudoku.to_tokens(sudoku.generate(VIEWS_PUZZLES, 9, seed=404, difficulty="hard")["puzzles"])


@pytest.fixture(scope="module")
def hard_record(shipped_et_bundle, hard_puzzles):
    """One recorded fixed run of the 8 views of every hard puzzle in trm_edge.runtime (every view's
    predictions and q_halt after every step): each policy's Python decisions are replayed on it with
    the live loop's own code (tests/test_views.py checks replay == live)."""
    from trm_edge.pareto import record
    from trm_edge.runtime.bundle import Bundle
    b = Bundle(shipped_et_bundle)
    return record(b, hard_puzzles, None, 8, b.max_steps, batch=64, progress=False)


@pytest.mark.parametrize("policy", [["--policy", "vote"], ["--policy", "consensus"], ["--policy", "best_q"],
                                    ["--policy", "consensus", "--agree", "2", "--wave", "2"],
                                    ["--policy", "vote", "--budget", "20"]])
def test_views_make_the_decisions_python_makes(native_runner, shipped_et_bundle, hard_puzzles, hard_record, tmp_path,
                                               policy):
    """K = 8 views of hard puzzles, natively and in Python (trm_edge.runtime on the same bundle): the same
    answer, steps per view, finished views and chosen view for every puzzle, under every policy."""
    from trm_edge.cli import _decision
    from trm_edge.runtime.loop import replay
    opts = dict(zip(policy[::2], policy[1::2]))
    d = _decision(opts["--policy"], *(int(opts[k]) if k in opts else None for k in ("--agree", "--wave", "--budget")),
                  False)
    want = replay(hard_record["predictions"].astype(np.int64), hard_record["q_halt"], hard_puzzles,
                  hard_record["views"], decide=d)
    f = _puzzle_file(tmp_path / "hard.txt", hard_puzzles)
    got = _solve([str(native_runner / "trm-runner"), str(shipped_et_bundle), "--puzzle-file", str(f), "--json",
                  "--views", "8", *policy], 900)
    assert len(got) == len(hard_puzzles)
    for i, g in enumerate(got):
        assert g["view_steps"] == want.view_steps[i].tolist(), f"puzzle {i}: steps per view differ"
        assert g["finished"] == want.finished[i].tolist(), f"puzzle {i}"
        assert g["chosen_view"] == int(want.chosen[i]), f"puzzle {i}: chosen view differs"
        assert g["answer"] == want.predictions[i].tolist() and g["steps"] == int(want.steps[i])
    if opts["--policy"] == "vote":
        assert len({tuple(v) for v in want.view_steps.tolist()}) > 1       # views halt at different steps


def test_views_without_a_policy_run_the_recommended_one(native_runner, shipped_et_bundle, hard_puzzles, tmp_path):
    """`--views 4` with no policy option runs the manifest's views.recommended row for 4 views (export copies
    decide.RECOMMENDED there), deciding as trm_edge.runtime's `Bundle.solve(tokens, views=4)` does, per puzzle;
    and costs fewer view-steps than `--policy vote`, the bundle's own views.policy, so a runner that ignored
    the table would fail here."""
    from trm_edge.runtime.bundle import Bundle
    from trm_edge.runtime.decide import recommended
    v = json.loads((shipped_et_bundle / "manifest.json").read_text())["views"]
    policy = recommended(4, v["recommended"]).to_manifest()
    assert v["count"] == 1 and v["policy"] == {"policy": "vote"} and policy != v["policy"]
    f = _puzzle_file(tmp_path / "hard.txt", hard_puzzles)
    cmd = [str(native_runner / "trm-runner"), str(shipped_et_bundle), "--puzzle-file", str(f), "--json", "--views", "4"]
    got, vote = _solve(cmd, 300), _solve(cmd + ["--policy", "vote"], 300)
    assert len(got) == len(vote) == len(hard_puzzles)
    b = Bundle(shipped_et_bundle)
    for i, g in enumerate(got):
        want = b.solve(hard_puzzles[i:i + 1], views=4)          # batch 1, as the runner
        assert want.decision.to_manifest() == policy and g["policy"] == policy and vote[i]["policy"] == v["policy"]
        assert g["view_steps"] == want.view_steps[0].tolist(), f"puzzle {i}: steps per view differ"
        assert g["finished"] == want.finished[0].tolist(), f"puzzle {i}"
        assert g["chosen_view"] == int(want.chosen[0]), f"puzzle {i}: chosen view differs"
        assert g["answer"] == want.predictions[0].tolist() and g["steps"] == int(want.steps[0]), f"puzzle {i}"
    assert sum(g["steps"] for g in got) < sum(g["steps"] for g in vote), "no cheaper than the full vote"


def arm_puzzles(expected: list[dict]) -> list[int]:
    """The puzzle that halts soonest, and the soonest-halting one among those that take more steps
    than it and more than 1: the cheapest pair with two different step counts, one carrying state."""
    steps = [e["steps"] for e in expected]
    first = min(range(len(steps)), key=lambda i: (steps[i], i))
    later = [i for i in range(len(steps)) if steps[i] > max(steps[first], 1)]
    assert later, f"every puzzle halts after {steps[first]} step(s): ARM64 would not test the state carried"
    return [first, min(later, key=lambda i: (steps[i], i))]


@pytest.mark.skipif(why_no_arm() is not None, reason=str(why_no_arm()))
def test_arm64_under_qemu_matches_python(arm, shipped_et_bundle, shipped_puzzles, shipped_expected, tmp_path):
    idx = arm_puzzles(shipped_expected)
    want = [shipped_expected[i] for i in idx]
    assert want[0]["steps"] != want[1]["steps"] and max(w["steps"] for w in want) > 1
    f = _puzzle_file(tmp_path / "puzzles.txt", shipped_puzzles[idx])
    got = _solve(QEMU + [str(arm / "trm-runner"), str(shipped_et_bundle), "--puzzle-file", str(f), "--json",
                         "--threads", str(ARM_THREADS)], 1800)
    _compare(got, want)


def test_text_output_and_bench_row(native_runner, shipped_et_bundle, shipped_puzzles, shipped_expected, tmp_path):
    from trm_edge.bench import Row
    r = subprocess.run([str(native_runner / "trm-runner"), str(shipped_et_bundle), "--puzzle", sudoku_text(shipped_puzzles[0])],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"answer  {sudoku_text(shipped_expected[0]['answer'])}\n" in r.stdout
    assert f"steps   {shipped_expected[0]['steps']}\n" in r.stdout

    f = _puzzle_file(tmp_path / "three.txt", shipped_puzzles[:3])
    r = subprocess.run([str(native_runner / "trm-runner"), str(shipped_et_bundle), "--puzzle-file", str(f), "--bench", "5"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert list(row) == [f.name for f in fields(Row)]
    Row(**row)
    assert (row["target"], row["precision"], row["status"], row["runner"]) == ("executorch", "fp32", "ok", "native")
    assert row["device"] == platform.machine() and row["threads"] >= 1 and row["bundle"] == str(shipped_et_bundle)
    assert 0 < row["ms_step_p50"] <= row["ms_step_p90"]
    assert 0 < row["ms_puzzle_q_halt"] < row["ms_puzzle_fixed"]
    assert row["extra"]["step_reps"] == 5
    assert row["mean_steps"] == pytest.approx(np.mean([e["steps"] for e in shipped_expected[:3]]))


def test_sha256_matches_hashlib(native_runner, tmp_path):
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, (1 << 20) + 7):
        p = tmp_path / f"f{n}"
        p.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        r = subprocess.run([str(native_runner / "trm-sha256"), str(p)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.split()[0] == hashlib.sha256(p.read_bytes()).hexdigest(), n


# --------------------------------------------------------------------------- bad bundles, bad shipped_puzzles

def _edit_manifest(d: Path, change) -> None:
    m = json.loads((d / "manifest.json").read_text())
    change(m)
    (d / "manifest.json").write_text(json.dumps(m))


def _rehash(m: dict, d: Path, name: str) -> None:
    data = (d / name).read_bytes()
    m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _truncate(d: Path, name: str = "step.pte") -> None:
    data = (d / name).read_bytes()
    (d / name).write_bytes(data[: len(data) // 2])


def _flip_byte(d: Path) -> None:
    data = bytearray((d / "step.pte").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "step.pte").write_bytes(bytes(data))


def _narrow_hidden(m: dict) -> None:
    """A manifest consistent in itself (trm_config, io shapes, init.bin layout) that the .pte contradicts."""
    m["trm_config"]["hidden_size"] = 64
    for spec in m["inputs"] + m["outputs"]:
        if spec["name"] in ("y", "z", "y_next", "z_next"):
            spec["shape"][2] = 64
    for a in m["init_bin"]["arrays"]:
        if a["name"] in ("y_init", "z_init"):
            a["shape"] = [64]


def _tokens_int32(m: dict) -> None:
    m["inputs"][0]["dtype"] = "int32"


BAD_BUNDLES = {
    "missing file": (lambda d: (d / "init.bin").unlink(), "init.bin is missing"),
    "sha mismatch": (_flip_byte, "does not match its sha256"),
    "truncated pte": (_truncate, "truncated"),
    "truncated pte, hashes updated": (lambda d: (_truncate(d), _edit_manifest(d, lambda m: _rehash(m, d, "step.pte"))),
                                      "ExecuTorch cannot load step.pte"),
    "wrong shape in manifest": (lambda d: _edit_manifest(d, lambda m: m["inputs"][2]["shape"].__setitem__(2, 64)),
                                "input y has shape [batch, 97, 64]"),
    "manifest shapes vs the pte": (lambda d: _edit_manifest(d, _narrow_hidden),
                                   "the manifest's input y has shape [batch, 97, 64], step.pte's forward has"),
    "manifest dtype vs the pte": (lambda d: _edit_manifest(d, _tokens_int32), "tokens is int32"),
    "max_batch beyond the pte": (lambda d: _edit_manifest(d, lambda m: m.update(max_batch=65)),
                                 "forward takes at most 64 rows"),
    "bad json": (lambda d: (d / "manifest.json").write_text('{"format_version": 1,'), "is not valid JSON"),
    "no manifest": (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
    "no init_bin": (lambda d: _edit_manifest(d, lambda m: m.pop("init_bin")), "has no init_bin"),
    "another target": (lambda d: _edit_manifest(d, lambda m: m.update(target="onnx")), "is a onnx bundle"),
}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundle_fails_with_one_line(native_runner, shipped_et_bundle, tmp_path, case):
    breaks, message = BAD_BUNDLES[case]
    d = tmp_path / "bundle"
    shutil.copytree(shipped_et_bundle, d)
    breaks(d)
    r = subprocess.run([str(native_runner / "trm-runner"), str(d), "--puzzle", "." * 81], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith("trm-runner: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr
    assert r.stdout == ""


def _recommend(*rows):
    """views.recommended := rows of (from_views, policy object)."""
    def change(m):
        m["views"]["recommended"] = [{"from_views": k, "policy": p} for k, p in rows]
    return change


BAD_VIEWS = {
    "recommended policy unknown": (_recommend((2, {"policy": "sometimes"})),
                                   'views.recommended[0].policy is "sometimes", a policy this runner does not implement',
                                   "views.recommended[0].policy 'sometimes' is none this runtime has"),
    "recommended out of order": (_recommend((4, {"policy": "vote"}), (2, {"policy": "best_q"})),
                                 "views.recommended must be in increasing from_views, each once",
                                 "views.recommended must be in increasing from_views, each once"),
    "recommended twice": (_recommend((2, {"policy": "vote"}), (2, {"policy": "best_q"})),
                          "views.recommended must be in increasing from_views, each once",
                          "views.recommended must be in increasing from_views, each once"),
    "recommended from 1 view": (_recommend((1, {"policy": "vote"})), "views.recommended[0].from_views is 1, outside 2..1024",
                                "is less than the minimum of 2"),
    "views key unknown": (lambda m: m["views"].update(recommend=[]), 'views has the key "recommend"',
                          "Additional properties are not allowed"),
    "same rule unknown": (lambda m: m["views"].update(same={"rule": "colour"}),
                          'views.same.rule is "colour", a rule this runner does not implement',
                          "views.same.rule must be one of cells, path"),
    "same token outside": (lambda m: m["views"].update(same={"rule": "path", "open": 2, "path": 11, "ends": [3, 4]}),
                           "views.same.path is 11, outside 0..10", "views.same.path must be a token of 0..10, got 11"),
    "same key unknown": (lambda m: m["views"].update(same={"rule": "cells", "open": 2}),
                         'views.same has the key "open", which its rule does not take', "views.same has an unknown key 'open'"),
}


@pytest.mark.parametrize("case", list(BAD_VIEWS))
def test_bad_views_refused_as_python_refuses(native_runner, shipped_et_bundle, tmp_path, case):
    """Rule 7 with views.recommended: the runner refuses at open, in one line, what trm_edge.runtime refuses."""
    from trm_edge.runtime.manifest import BundleError, read_manifest
    change, message, python_message = BAD_VIEWS[case]
    d = tmp_path / "bundle"
    shutil.copytree(shipped_et_bundle, d)
    _edit_manifest(d, change)
    r = subprocess.run([str(native_runner / "trm-runner"), str(d), "--puzzle", "." * 81, "--views", "4"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stderr)
    assert r.stderr.startswith("trm-runner: ") and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    with pytest.raises(BundleError, match=re.escape(python_message)):
        read_manifest(d)


@pytest.mark.parametrize("args, message", [
    (["--puzzle", "123"], "puzzle has 3 cells"),
    (["--puzzle", "x" * 81], "cell 1 is 'x'"),
    (["--tokens", ",".join(["1"] * 80 + ["11"])], "token 11 at position 80 is outside the vocabulary 0..10"),
    (["--tokens", "1,2,three"], "tokens must be integers"),
    (["--puzzle", "." * 81, "--halting", "sometimes"], "--halting is q_halt or fixed"),
    (["--puzzle", "." * 81, "--threshold", "1.5"], "--threshold is a probability"),
    (["--puzzle", "." * 81, "--puzzle-id", "7"], "puzzle id 7 is outside the bundle's table"),
    ([], "no puzzle given"),
])
def test_bad_puzzle_or_argument_fails_with_one_line(native_runner, shipped_et_bundle, args, message):
    r = subprocess.run([str(native_runner / "trm-runner"), str(shipped_et_bundle), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


STATIC_PUZZLES = 3       # qemu runs ARM64's int8 kernels slowly: 8 puzzles x all steps took 133 s in the suite
STATIC_FIXED_STEPS = 3


@pytest.mark.skipif(why_no_arm() is not None, reason=str(why_no_arm()))
def test_static_int8_bundle_on_arm64_under_qemu_matches_python(arm, trained_bundles):
    """W8A8 (int8-static) as a phone's NPU-less CPU runs it: the trained 4x4 model's static ExecuTorch bundle in
    the ARM64 runner (XNNPACK's int8 kernels for ARM) gives Python's answers and halting steps; q_halt within
    the int8 graph's rounding (its output scale). Timing under emulation means nothing and is not taken."""
    from trm_edge.data import sample_puzzles
    path, _ = trained_bundles("executorch", "int8-static")
    puzzles = np.asarray(sample_puzzles({"name": "sudoku", "size": 4}, 16, 6, STATIC_PUZZLES, seed=11), dtype=np.int64)
    for halting in ("q_halt", "fixed"):
        steps = {"max_steps": STATIC_FIXED_STEPS} if halting == "fixed" else {}
        want = python_solutions(path, puzzles, halting=halting, **steps)
        cmd = QEMU + [str(arm / "trm-runner"), str(path), "--json", "--threads", "1", "--halting", halting,
                      *(["--max-steps", str(STATIC_FIXED_STEPS)] if steps else [])]
        for t in puzzles:
            cmd += ["--tokens", ",".join(map(str, t))]
        got = _solve(cmd, 900)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert g["answer"] == w["answer"] and g["steps"] == w["steps"], f"puzzle {i} ({halting})"
            np.testing.assert_allclose(g["q_halt"], w["q_halt"], rtol=0, atol=0.1, err_msg=f"puzzle {i}")
