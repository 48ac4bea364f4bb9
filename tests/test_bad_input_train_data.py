"""Bad input to `trm-edge data build` and `trm-edge train` (issue 12): a catalogue run through the CLI
in-process. Each case must end with exit code 2, exactly one stderr line `error: ...`, no traceback,
and nothing left behind: the working folder (a user's folder with a sentinel, a file, the configs)
is byte-identical before and after. The good paths (a tiny build, a tiny run, resuming) still work."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from bad_input import snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trm_edge.cli import main
from trm_edge.data.build import build_sudoku

TINY = {"model": {"hidden_size": 16, "expansion": 2, "L_layers": 1, "H_cycles": 1, "L_cycles": 1,
                  "halt_max_steps": 2, "puzzle_emb_ndim": 16, "puzzle_emb_len": 1, "mlp_t": True,
                  "pos_encodings": "none"},
        "task": {"name": "sudoku", "size": 4}, "global_batch_size": 4, "steps": 2, "lr": 1e-3,
        "lr_warmup_steps": 1, "checkpoint_every": 1, "threads": 1, "seed": 0, "ema_warmup": True}
SENTINEL = b"the user's notes: keep me\n"


# ----------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def data4(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data4") / "sudoku4"
    build_sudoku(d, size=4, train=12, test=4, seed=0, progress=False)
    return d


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    """A working folder (also the cwd): a user's folder with a sentinel, a plain file."""
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_bytes(SENTINEL)
    (tmp_path / "afile.txt").write_bytes(b"just a file\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path




def expect_refusal(argv, root: Path, capsys, after_progress: bool = False) -> str:
    """Run the CLI; assert exit 2, one `error:` line, no traceback, and an unchanged `root`.
    after_progress: a failure mid-run, after the progress bar: the error is the last line, alone."""
    before = snapshot(root)
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert code == 2, (code, out[-500:], err[-500:])
    if after_progress:
        lines = [line for line in lines if line.startswith("error")] if lines[-1].startswith("error: ") else lines
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert snapshot(root) == before, "the call left something behind or changed a file"
    assert (root / "user" / "notes.txt").read_bytes() == SENTINEL
    return lines[0]


def write_config(ws: Path, data_dir: Path, name: str = "cfg.yaml", raw: str | bytes | None = None, drop=(), **over) -> Path:
    p = ws / name
    if raw is not None:
        p.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
        return p
    cfg = {**TINY, "data": str(data_dir), "out": str(ws / "run"), **over}
    for k in drop:
        cfg.pop(k, None)
    p.write_text(yaml.safe_dump(cfg))
    return p


# ----------------------------------------------------------------------------- data build

S = ["data", "build", "sudoku", "--size", "4", "--train", "2", "--test", "1"]
M = ["data", "build", "maze", "--size", "5", "--train", "2", "--test", "1"]
A = ["data", "build", "arc"]

BUILD = {   # id: (argv with {out} for a fresh folder in the workspace, expected words in the message)
    "sudoku-size-5": (["data", "build", "sudoku", "--size", "5", "--out", "{out}"], "--size"),
    "sudoku-size-100": (["data", "build", "sudoku", "--size", "100", "--out", "{out}"], "--size"),
    "sudoku-size-neg9": (["data", "build", "sudoku", "--size", "-9", "--out", "{out}"], "--size"),
    "sudoku-size-1": (["data", "build", "sudoku", "--size", "1", "--out", "{out}"], "--size"),
    "sudoku-size-text": (["data", "build", "sudoku", "--size", "four", "--out", "{out}"], "size"),
    "sudoku-givens-90-10": (S + ["--givens", "90", "10", "--out", "{out}"], "--givens"),
    "sudoku-givens-10-90": (S + ["--givens", "10", "90", "--out", "{out}"], "--givens"),
    "sudoku-givens-reversed": (S + ["--givens", "9", "5", "--out", "{out}"], "reversed"),
    "sudoku-givens-too-few": (S + ["--givens", "2", "8", "--out", "{out}"], "--givens"),
    "sudoku-givens-negative": (S + ["--givens", "-3", "5", "--out", "{out}"], "--givens"),
    "sudoku-givens-zero": (S + ["--givens", "0", "0", "--out", "{out}"], "--givens"),
    "sudoku-givens-no-blank": (S + ["--givens", "16", "16", "--out", "{out}"], "blank"),
    "sudoku-givens-one-number": (S + ["--givens", "5", "--out", "{out}"], "givens"),
    "sudoku9-givens-too-few": (["data", "build", "sudoku", "--train", "1", "--test", "1", "--givens", "10", "30",
                                "--out", "{out}"], "17"),
    "sudoku-seed-neg": (S + ["--seed", "-1", "--out", "{out}"], "--seed"),
    "sudoku-seed-huge": (S + ["--seed", str(2**64), "--out", "{out}"], "--seed"),
    "sudoku-train-neg": (["data", "build", "sudoku", "--size", "4", "--train", "-1", "--test", "1", "--out", "{out}"], "--train"),
    "sudoku-test-neg": (["data", "build", "sudoku", "--size", "4", "--train", "1", "--test", "-5", "--out", "{out}"], "--test"),
    "sudoku-train-huge": (["data", "build", "sudoku", "--size", "4", "--train", str(10**12), "--out", "{out}"], "--train"),
    "sudoku-both-zero": (["data", "build", "sudoku", "--size", "4", "--train", "0", "--test", "0", "--out", "{out}"], "empty"),
    "sudoku-train-text": (["data", "build", "sudoku", "--train", "many", "--out", "{out}"], "train"),
    "sudoku-out-empty": (S + ["--out", ""], "--out"),
    "sudoku-out-blank": (S + ["--out", "   "], "--out"),
    "sudoku-out-under-file": (S + ["--out", "afile.txt/ds"], "file"),
    "sudoku-out-is-file": (S + ["--out", "afile.txt"], "file"),
    "sudoku-out-user-folder": (S + ["--out", "user"], "not a dataset"),
    "sudoku-out-unwritable-sys": (S + ["--out", "/sys/trm-edge-test/ds"], "--out"),
    "sudoku-out-unwritable-proc": (S + ["--out", "/proc/trm-edge-test"], "--out"),
    "sudoku-out-name-too-long": (S + ["--out", "x" * 300], "long"),
    "sudoku-out-newline-under-file": (S + ["--out", "afile.txt/a\nb"], "file"),
    "sudoku-out-broken-symlink": (S + ["--out", "dangling"], "symlink"),
    "maze-size-1": (["data", "build", "maze", "--size", "1", "--out", "{out}"], "--size"),
    "maze-size-65": (["data", "build", "maze", "--size", "65", "--out", "{out}"], "--size"),
    "maze-size-neg": (["data", "build", "maze", "--size", "-3", "--out", "{out}"], "--size"),
    "maze-min-path-neg": (M + ["--min-path", "-1", "--out", "{out}"], "--min-path"),
    "maze-min-path-too-long": (M + ["--min-path", "24", "--out", "{out}"], "--min-path"),
    "maze-min-path-huge": (M + ["--min-path", str(10**6), "--out", "{out}"], "--min-path"),
    "maze-min-path-impossible": (["data", "build", "maze", "--size", "4", "--train", "2", "--test", "2",
                                  "--min-path", "14", "--out", "{out}"], "min_path"),
    "maze-train-fails-after-test": (["data", "build", "maze", "--size", "4", "--train", "2", "--test", "0",
                                     "--min-path", "14", "--out", "{out}"], "min_path"),
    "maze-train-neg": (["data", "build", "maze", "--size", "5", "--train", "-2", "--out", "{out}"], "--train"),
    "maze-seed-neg": (M + ["--seed", "-1", "--out", "{out}"], "--seed"),
    "maze-out-user-folder": (M + ["--out", "user"], "not a dataset"),
    "maze-out-under-file": (M + ["--out", "afile.txt/x/y"], "file"),
    "arc-augmentations-neg": (A + ["--augmentations", "-1", "--out", "{out}"], "--augmentations"),
    "arc-augmentations-huge": (A + ["--augmentations", str(10**9), "--out", "{out}"], "--augmentations"),
    "arc-seed-neg": (A + ["--seed", "-1", "--out", "{out}"], "--seed"),
    "arc-version-bogus": (A + ["--version", "arc-agi-9", "--out", "{out}"], "version"),
    "arc-out-user-folder": (A + ["--out", "user"], "not a dataset"),
    "arc-out-under-file": (A + ["--out", "afile.txt/arc"], "file"),
    "task-bogus": (["data", "build", "chess", "--out", "{out}"], "chess"),
}


MIDWAY = {"maze-min-path-impossible", "maze-train-fails-after-test"}   # fail while generating, after a progress bar


@pytest.mark.parametrize("case", sorted(BUILD))
def test_data_build_refuses(case, ws, capsys):
    argv, words = BUILD[case]
    if case == "sudoku-out-broken-symlink":
        (ws / "dangling").symlink_to(ws / "nowhere")
    line = expect_refusal([a.replace("{out}", str(ws / "ds")) for a in argv], ws, capsys,
                          after_progress=case in MIDWAY)
    assert words.lower() in line.lower(), line


@pytest.mark.parametrize("task", ["sudoku", "maze"])
def test_data_build_size_zero(task, ws, capsys):
    expect_refusal(["data", "build", task, "--size", "0", "--train", "1", "--test", "0", "--out", ws / "ds"], ws, capsys)


def test_data_build_out_nul(ws, capsys):
    expect_refusal(S + ["--out", "a\0b"], ws, capsys)


def test_data_build_failing_midway_leaves_nothing(ws, capsys, monkeypatch):
    """A build that fails (or is interrupted) after the test split is written leaves no folder, and a
    rebuild of an existing dataset that fails leaves the old one as it was."""
    from trm_edge.data import sudoku
    from trm_edge.errors import PuzzleError
    real, calls = sudoku.generate, []

    def failing(count, *a, **k):
        calls.append(count)
        if len(calls) % 2 == 0:   # the second split (train)
            raise exc
        return real(count, *a, **k)

    monkeypatch.setattr(sudoku, "generate", failing)
    exc = PuzzleError("simulated failure while generating train")
    expect_refusal(S + ["--out", ws / "new" / "ds"], ws, capsys, after_progress=True)
    exc = KeyboardInterrupt()
    before = snapshot(ws)
    try:
        code = main(S + ["--out", str(ws / "ds")])
    except KeyboardInterrupt:
        code = 130
    assert code in (1, 130) and snapshot(ws) == before   # click reports an interrupt as "aborted"

    monkeypatch.setattr(sudoku, "generate", real)
    assert main(S + ["--out", str(ws / "ds")]) == 0
    (ws / "ds" / "README.txt").write_text("the user's note beside our dataset\n")
    monkeypatch.setattr(sudoku, "generate", failing)
    exc = PuzzleError("simulated failure")
    calls.clear()
    expect_refusal(S + ["--seed", "5", "--out", ws / "ds"], ws, capsys, after_progress=True)


def test_data_build_good(ws, capsys):
    out = ws / "ds"
    assert main(S + ["--out", str(out)]) == 0
    meta = json.loads((out / "train" / "dataset.json").read_text())
    assert meta["seq_len"] == 16 and meta["task"]["size"] == 4
    assert sorted(p.name for p in out.iterdir()) == ["test", "train"]
    assert (out / "train").stat().st_mode & 0o055, "the split folders are readable by others (umask)"
    first = snapshot(out)
    (out / "notes.txt").write_bytes(SENTINEL)      # a user's file beside our dataset survives a rebuild
    assert main(S + ["--seed", "3", "--out", str(out)]) == 0
    assert (out / "notes.txt").read_bytes() == SENTINEL
    assert snapshot(out) != first and sorted(p.name for p in out.iterdir()) == ["notes.txt", "test", "train"]
    (ws / "empty").mkdir()                          # an existing empty folder is fine
    assert main(S + ["--out", str(ws / "empty")]) == 0
    assert (ws / "empty" / "test" / "dataset.json").is_file()
    assert main(M + ["--out", str(ws / "a" / "b" / "maze")]) == 0   # missing parents are made
    assert json.loads((ws / "a" / "b" / "maze" / "test" / "dataset.json").read_text())["task"]["size"] == 5
    assert not [p for p in ws.rglob(".trm-edge-build.*")], "no staging folder is left"


# ----------------------------------------------------------------------------- train

def _bad_dataset(ws: Path, data4: Path, kind: str) -> Path:
    d = ws / "bad-data"
    shutil.copytree(data4, d)
    meta_file = d / "train" / "dataset.json"
    meta = json.loads(meta_file.read_text())
    if kind == "not-json":
        meta_file.write_bytes(b"\x00\xffnot json{")
    elif kind == "list":
        meta_file.write_text("[1, 2, 3]")
    elif kind == "empty-object":
        meta_file.write_text("{}")
    elif kind == "no-sets":
        meta.pop("sets")
        meta_file.write_text(json.dumps(meta))
    elif kind == "sets-escape":
        meta_file.write_text(json.dumps({**meta, "sets": ["../../x"]}))
    elif kind == "sets-string":
        meta_file.write_text(json.dumps({**meta, "sets": "all"}))
    elif kind == "seq-len-string":
        meta_file.write_text(json.dumps({**meta, "seq_len": "16"}))
    elif kind == "seq-len-wrong":
        meta_file.write_text(json.dumps({**meta, "seq_len": 81, "task": None}))
    elif kind == "vocab-small":
        meta_file.write_text(json.dumps({**meta, "vocab_size": 3}))
    elif kind == "npy-missing":
        (d / "train" / "all__labels.npy").unlink()
    elif kind == "npy-garbage":
        (d / "train" / "all__inputs.npy").write_bytes(os.urandom(300))
    elif kind == "npy-pickle":
        np.save(d / "train" / "all__inputs.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "npy-float":
        x = np.load(d / "train" / "all__inputs.npy")
        np.save(d / "train" / "all__inputs.npy", x.astype(np.float32))
    elif kind == "token-out-of-vocab":
        x = np.load(d / "train" / "all__inputs.npy")
        x[0, 0] = 99
        np.save(d / "train" / "all__inputs.npy", x)
    elif kind == "ids-out-of-table":
        np.save(d / "train" / "all__puzzle_identifiers.npy",
                np.full_like(np.load(d / "train" / "all__puzzle_identifiers.npy"), 7))
    elif kind == "dataset-json-is-folder":
        meta_file.unlink()
        meta_file.mkdir()
    elif kind == "no-train-split":
        shutil.rmtree(d / "train")
    elif kind == "empty-train":
        shutil.rmtree(d)
        build_sudoku(d, size=4, train=0, test=2, seed=0, progress=False)
    elif kind == "task-other":
        meta_file.write_text(json.dumps({**meta, "task": {"name": "maze", "size": 4}}))
    else:
        raise AssertionError(kind)
    return d


RAW = {   # id: config file bytes
    "yaml-list": "- 1\n- 2\n",
    "yaml-scalar-number": "42\n",
    "yaml-scalar-string": "hello world\n",
    "yaml-binary": b"\x00\x01\x02\xff\xfe\xfdPK\x03\x04" * 20,
    "yaml-utf16": "model: {}\ndata: x\n".encode("utf-16"),
    "yaml-latin1": "model: {}\ndata: caf\xe9\n".encode("latin-1"),
    "yaml-empty": "",
    "yaml-syntax": "model: [1, 2\ndata: x\n",
    "yaml-bad-indent": "model:\n  a: 1\n b: 2\n",
    "yaml-non-string-key": "1: 2\nmodel: {}\n",
    "yaml-complex-key": "? [a, b]\n: 1\n",
    "yaml-python-tag": "model: !!python/object/apply:os.system ['true']\ndata: x\n",
    "yaml-nul-char": "model: {}\x00\n",
    "yaml-deep": "[" * 5000 + "]" * 5000,
    "yaml-only-comment": "# nothing here\n",
}

FIELDS = {   # id: overrides of the tiny config (None: drop the key)
    "lr-negative": {"lr": -1},
    "lr-nan": {"lr": float("nan")},
    "lr-inf": {"lr": float("inf")},
    "lr-text": {"lr": "fast"},
    "lr-zero": {"lr": 0},
    "steps-zero": {"steps": 0},
    "steps-negative": {"steps": -5},
    "steps-fraction": {"steps": 2.5},
    "steps-bool": {"steps": True},
    "epochs-negative": {"steps": None, "epochs": -1},
    "epochs-zero-steps": {"steps": None, "epochs": 1e-9},
    "neither-steps-nor-epochs": {"steps": None},
    "batch-zero": {"global_batch_size": 0},
    "batch-negative": {"global_batch_size": -8},
    "batch-huge": {"global_batch_size": 10**9},
    "checkpoint-every-zero": {"checkpoint_every": 0},
    "eval-every-negative": {"eval_every": -1},
    "eval-puzzles-zero": {"eval_puzzles": 0},
    "model-string": {"model": "big"},
    "model-list": {"model": [1, 2]},
    "model-null": {"model": None},
    "model-hidden-string": {"model": {**TINY["model"], "hidden_size": "128x"}},
    "model-hidden-fraction": {"model": {**TINY["model"], "hidden_size": 128.5}},
    "model-hidden-zero": {"model": {**TINY["model"], "hidden_size": 0}},
    "model-heads-zero": {"model": {**TINY["model"], "mlp_t": False, "num_heads": 0}},
    "model-heads-indivisible": {"model": {**TINY["model"], "mlp_t": False, "num_heads": 5, "pos_encodings": "rope"}},
    "model-rope-odd-head": {"model": {**TINY["model"], "mlp_t": False, "hidden_size": 12, "num_heads": 4,
                                      "puzzle_emb_ndim": 12, "pos_encodings": "rope"}},
    "model-unknown-key": {"model": {**TINY["model"], "hiden_size": 16}},
    "model-pos-bogus": {"model": {**TINY["model"], "pos_encodings": "sinusoid"}},
    "model-mlp-t-string": {"model": {**TINY["model"], "mlp_t": "yes please"}},
    "model-expansion-nan": {"model": {**TINY["model"], "expansion": float("nan")}},
    "model-cycles-huge": {"model": {**TINY["model"], "L_cycles": 10**9}},
    "model-emb-too-wide": {"model": {**TINY["model"], "puzzle_emb_ndim": 64, "puzzle_emb_len": 1}},
    "threads-negative": {"threads": -1},
    "threads-zero": {"threads": 0},
    "autocast-bogus": {"autocast": "bogus"},
    "attention-bogus": {"attention": "flash"},
    "ema-rate-2": {"ema_rate": 2.0},
    "ema-text": {"ema": "maybe"},
    "beta2-one": {"beta2": 1.0},
    "weight-decay-negative": {"weight_decay": -0.1},
    "curriculum-start-big": {"curriculum_start": 1.5},
    "curriculum-steps-negative": {"curriculum_steps": -4},
    "seed-negative": {"seed": -1},
    "max-minutes-negative": {"max_minutes": -1},
    "task-string": {"task": "sudoku"},
    "task-unknown": {"task": {"name": "chess"}},
    "task-size-mismatch": {"task": {"name": "sudoku", "size": 9}},
    "task-size-text": {"task": {"name": "sudoku", "size": "four"}},
    "unknown-key": {"stepz": 3},
    "notes-not-json": {"notes": {"when": __import__("datetime").date(2024, 1, 1)}},
    "notes-list": {"notes": [1, 2]},
    "data-missing": {"data": "no/such/dataset"},
    "data-empty": {"data": ""},
    "data-number": {"data": 5},
    "out-under-file": {"out": "afile.txt/run"},
    "out-is-file": {"out": "afile.txt"},
    "out-user-folder": {"out": "user"},
    "out-unwritable": {"out": "/sys/trm-edge-test/run"},
    "out-empty": {"out": ""},
}

DATA = ["not-json", "list", "empty-object", "no-sets", "sets-escape", "sets-string", "seq-len-string",
        "seq-len-wrong", "vocab-small", "npy-missing", "npy-garbage", "npy-pickle", "npy-float",
        "token-out-of-vocab", "ids-out-of-table", "dataset-json-is-folder", "no-train-split", "empty-train",
        "task-other"]

CLI = {   # id: extra train options
    "cli-steps-negative": ["--steps", "-3"],
    "cli-steps-zero": ["--steps", "0"],
    "cli-max-minutes-nan": ["--max-minutes", "nan"],
    "cli-max-minutes-inf": ["--max-minutes", "-inf"],
    "cli-out-empty": ["--out", ""],
    "cli-out-under-file": ["--out", "afile.txt/run"],
    "cli-out-user": ["--out", "user"],
    "cli-out-nul": ["--out", "r\0un"],
    "cli-data-empty": ["--data", ""],
    "cli-data-file": ["--data", "afile.txt"],
}


@pytest.mark.parametrize("case", sorted(RAW))
def test_train_refuses_config_file(case, ws, data4, capsys):
    cfg = write_config(ws, data4, raw=RAW[case])
    expect_refusal(["train", cfg], ws, capsys)


@pytest.mark.parametrize("path", ["missing.yaml", "user", "/dev/null/x.yaml", "x" * 300 + ".yaml"])
def test_train_refuses_config_path(path, ws, capsys):
    expect_refusal(["train", path], ws, capsys)


@pytest.mark.parametrize("case", sorted(FIELDS))
def test_train_refuses_field(case, ws, data4, capsys):
    over = FIELDS[case]
    drop = [k for k, v in over.items() if v is None and k != "model"]
    cfg = write_config(ws, data4, drop=drop, **{k: v for k, v in over.items() if k not in drop})
    line = expect_refusal(["train", cfg], ws, capsys)
    key = list(over)[-1]          # the message names the key at fault
    assert key.split("_")[-1] in line, line


@pytest.mark.parametrize("kind", DATA)
def test_train_refuses_dataset(kind, ws, data4, capsys):
    d = _bad_dataset(ws, data4, kind)
    cfg = write_config(ws, d)
    expect_refusal(["train", cfg], ws, capsys)


@pytest.mark.parametrize("case", sorted(CLI))
def test_train_refuses_option(case, ws, data4, capsys):
    cfg = write_config(ws, data4)
    expect_refusal(["train", cfg, *CLI[case]], ws, capsys)


def test_train_refuses_damaged_checkpoint(ws, data4, capsys):
    run = ws / "run"
    run.mkdir()
    (run / "train_state.pt").write_bytes(b"not a checkpoint")
    line = expect_refusal(["train", write_config(ws, data4)], ws, capsys)
    assert "resume" in line


def test_train_refuses_checkpoint_of_another_model(ws, data4, capsys):
    assert main(["train", str(write_config(ws, data4, steps=1))]) == 0
    other = {**TINY["model"], "hidden_size": 32, "puzzle_emb_ndim": 32}
    line = expect_refusal(["train", write_config(ws, data4, name="other.yaml", model=other, steps=3)], ws, capsys)
    assert "resume" in line and "new --out" in line


def test_failed_run_leaves_no_folder(ws, data4, capsys, monkeypatch):
    """A run that fails before its first checkpoint (here the disk fills up) removes what it made."""
    import errno

    from trm_edge.train import loop

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(ws / "run" / "train_state.pt"))

    monkeypatch.setattr(loop, "_save_state", full)
    line = expect_refusal(["train", write_config(ws, data4, out=str(ws / "deep" / "run"))], ws, capsys, True)
    assert "No space left" in line
    (ws / "empty").mkdir()
    expect_refusal(["train", write_config(ws, data4, name="b.yaml", out=str(ws / "empty"))], ws, capsys, True)


def test_train_python_api_validates(ws, data4):
    from trm_edge.errors import ConfigError
    from trm_edge.train.config import TrainConfig
    from trm_edge.train.loop import train
    for over in ({"lr": -1.0}, {"global_batch_size": 0}, {"model": "big"}, {"steps": -1}, {"ema_rate": 2.0}):
        cfg = TrainConfig(**{**TINY, "data": str(data4), "out": str(ws / "run"), **over})
        with pytest.raises(ConfigError) as e:
            train(cfg, progress=False)
        assert "\n" not in str(e.value)
    assert not (ws / "run").exists()


def test_train_good_and_resume(ws, data4, capsys):
    cfg = write_config(ws, data4)
    assert main(["train", str(cfg)]) == 0
    assert f"model: {ws / 'run' / 'model.safetensors'}" in capsys.readouterr().out
    assert (ws / "run" / "model.safetensors").is_file()
    (ws / "run" / "eval.json").write_text("{}")           # what `eval --out run` adds does not make it foreign
    assert main(["train", str(cfg), "--steps", "3"]) == 0   # the same command resumes, here with more steps
    out, err = capsys.readouterr()
    assert "resumed" in out + err
    log = [json.loads(line) for line in (ws / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert main(["train", str(write_config(ws, data4, name="e.yaml", steps=None, epochs=1, out="epochs"))]) == 0
    assert (ws / "epochs" / "model.safetensors").is_file()


# ----------------------------------------------------------------------------- properties

PROPS = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _refused(argv, ws, capsys):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), (code, err[-300:])
    assert "Traceback" not in out + err
    assert (ws / "user" / "notes.txt").read_bytes() == SENTINEL


@PROPS
@given(blob=st.one_of(st.binary(max_size=300),
                      st.text(alphabet=st.sampled_from(list("model:data-[]{},'\"!&*#?|> \n\t01.e-x")), max_size=200)))
def test_any_bytes_as_config(blob, ws, capsys):
    """Arbitrary bytes or YAML-ish text as a config file: exit 2 and one line, never a traceback."""
    p = ws / "any.yaml"
    p.write_bytes(blob if isinstance(blob, bytes) else blob.encode())
    before = snapshot(ws)
    _refused(["train", p], ws, capsys)
    assert snapshot(ws) == before


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                   st.text(max_size=10), st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
KEYS = st.sampled_from(sorted(set(TINY) | {"epochs", "max_minutes", "lr_min_ratio", "beta1", "beta2", "weight_decay",
                                           "puzzle_emb_lr", "ema", "ema_rate", "augment", "curriculum_start",
                                           "autocast", "attention", "eval_every", "compile", "notes", "out",
                                           "task"}))


@PROPS
@given(over=st.dictionaries(KEYS, VALUES, min_size=1, max_size=4),
       model=st.dictionaries(st.sampled_from(["hidden_size", "num_heads", "expansion", "H_cycles", "mlp_t",
                                              "pos_encodings", "puzzle_emb_len", "rope_theta"]), VALUES, max_size=3))
def test_any_config_values(over, model, ws, capsys):
    """Random values for the config's keys (the data folder is missing, so nothing can train): one line."""
    cfg = {**TINY, **over, "model": {**TINY["model"], **model}, "data": str(ws / "no-such-data")}
    p = ws / "any.yaml"
    try:
        p.write_text(yaml.safe_dump(cfg))
    except Exception:
        return
    before = snapshot(ws)
    _refused(["train", p], ws, capsys)
    assert snapshot(ws) == before


@PROPS
@given(task=st.sampled_from(["sudoku", "maze"]), size=st.integers(-100, 100),
       counts=st.tuples(st.integers(-10, 10**10), st.integers(-10, 10**10)),
       givens=st.one_of(st.none(), st.tuples(st.integers(-100, 100), st.integers(-100, 100))),
       min_path=st.one_of(st.none(), st.integers(-10**6, 10**6)), seed=st.integers(-10**20, 10**20))
def test_any_build_parameters(task, size, counts, givens, min_path, seed, ws, capsys):
    """Random build parameters into a user's folder: refused for the parameters or for the folder, one line,
    the folder untouched (valid parameters never start generating before the folder is checked)."""
    argv = ["data", "build", task, "--out", "user", "--size", size, "--train", counts[0], "--test", counts[1],
            "--seed", seed]
    if givens is not None:
        argv += ["--givens", *givens]
    if min_path is not None:
        argv += ["--min-path", min_path]
    before = snapshot(ws)
    _refused(argv, ws, capsys)
    assert snapshot(ws) == before
