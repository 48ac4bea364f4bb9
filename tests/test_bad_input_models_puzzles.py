"""Bad input for checkpoints, configs, `eval` and puzzle text (issue 12): every case ends in the package's
own error with one line (API) or exit code 2 with one `error: ` line and no traceback (CLI), and leaves
nothing behind. Also: the tasks' rule checkers (contradiction, satisfies) on real puzzles, and
property-based cases for the puzzle readers."""
from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input import one_line, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from trm_edge.checkpoint import load_checkpoint, save_checkpoint
from trm_edge.cli import main
from trm_edge.data import codec, read_puzzle_file
from trm_edge.data.arc import ArcCodec
from trm_edge.data.dataset import PuzzleSet, metadata_for, read_split, write_split
from trm_edge.data.maze import MazeCodec
from trm_edge.data.sudoku import SudokuCodec, random_solution
from trm_edge.data.tokens import TokenCodec
from trm_edge.errors import CheckpointError, ConfigError, PuzzleError, TRMEdgeError
from trm_edge.evaluate import evaluate
from trm_edge.model import TRM, TRMConfig

CFG = dict(seq_len=16, vocab_size=6, hidden_size=16, expansion=2, H_cycles=1, L_cycles=1, halt_max_steps=3,
           puzzle_emb_ndim=16, puzzle_emb_len=1, mlp_t=True, pos_encodings="none")
SUDOKU_4 = "12..34....3....1"            # 4x4, no repeated givens
SOLVED_4 = "1243342121344312"


# ----------------------------------------------------------------------------------- helpers





def cli_error(argv, capsys) -> str:
    """main(argv) must exit 2 with exactly one stderr line `error: ...`, no traceback, no internal error."""
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def _model(cfg=CFG, seed=0) -> TRM:
    torch.manual_seed(seed)
    m = TRM(TRMConfig(**cfg))
    with torch.no_grad():
        m.q_head.weight.normal_(0, 0.3)
    return m.eval()


def _sudoku_split(root: Path, size=4, n=6, seed=0, **meta_over):
    rng = np.random.default_rng(seed)
    sols = np.stack([random_solution(size, rng) for _ in range(n)])
    puz = np.where(rng.random(sols.shape) < 0.5, 0, sols)
    pset = PuzzleSet.one_example_per_puzzle((puz + 1).reshape(n, -1), (sols + 1).reshape(n, -1))
    meta = metadata_for({"all": pset}, seq_len=size * size, vocab_size=size + 2)
    meta["task"] = {"name": "sudoku", "size": size}
    meta.update(meta_over)
    write_split(root, "test", {"all": pset}, meta)
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny 4x4 Sudoku checkpoint, its state dict, and a good 4x4 test split (shared, never written to)."""
    d = tmp_path_factory.mktemp("base")
    m = _model()
    ckpt = save_checkpoint(m, d / "tiny.safetensors", task={"name": "sudoku", "size": 4})
    data = _sudoku_split(d / "data")
    return {"ckpt": ckpt, "model": m, "sd": {k: v.contiguous() for k, v in m.state_dict().items()}, "data": data}


@pytest.fixture
def work(tmp_path):
    """A tmp folder whose contents must be the same after a failing call (checked at teardown)."""
    yield tmp_path


# ----------------------------------------------------------------------------------- checkpoints

def _st(sd, meta):
    def make(d: Path) -> Path:
        from safetensors.torch import save_file
        save_file(sd, str(d / "m.safetensors"), metadata=meta)
        return d / "m.safetensors"
    return make


def _meta_cfg(**over):
    return {"config": json.dumps({**CFG, **over}), "task": json.dumps({"name": "sudoku", "size": 4})}


def _bytes(name, data):
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return make


def _torch(obj, name="m.pt"):
    def make(d: Path) -> Path:
        torch.save(obj, d / name)
        return d / name
    return make


def _file_of(make_sd):
    return lambda base: make_sd(base)


def _checkpoint_cases():
    """(id, maker(base) -> maker(folder) -> path, config or None, error type)."""
    rnd = np.random.default_rng(1).bytes(4096)
    C = [
        ("random-bytes-safetensors", lambda b: _bytes("x.safetensors", rnd), None, CheckpointError),
        ("random-bytes-pt", lambda b: _bytes("x.pt", rnd), CFG, CheckpointError),
        ("random-bytes-no-suffix", lambda b: _bytes("step_7", rnd), CFG, CheckpointError),
        ("empty-file", lambda b: _bytes("x.pt", b""), CFG, CheckpointError),
        ("empty-safetensors", lambda b: _bytes("x.safetensors", b""), None, CheckpointError),
        ("truncated-safetensors", lambda b: _bytes("x.safetensors", b["ckpt"].read_bytes()[:2000]), None, CheckpointError),
        ("safetensors-header-only", lambda b: _bytes("x.safetensors", b["ckpt"].read_bytes()[:8]), None, CheckpointError),
        ("text-file", lambda b: _bytes("x.safetensors", b"hello world\n"), None, CheckpointError),
        ("meta-config-not-json", lambda b: _st(b["sd"], {"config": "{hidden_size: 16"}), None, CheckpointError),
        ("meta-config-list", lambda b: _st(b["sd"], {"config": "[1, 2]"}), None, ConfigError),
        ("meta-config-string", lambda b: _st(b["sd"], {"config": '"big"'}), None, ConfigError),
        ("hidden_size-string", lambda b: _st(b["sd"], _meta_cfg(hidden_size="16")), None, ConfigError),
        ("hidden_size-float", lambda b: _st(b["sd"], _meta_cfg(hidden_size=16.5)), None, ConfigError),
        ("num_heads-zero", lambda b: _st(b["sd"], _meta_cfg(num_heads=0)), None, ConfigError),
        ("num_heads-zero-attention", lambda b: _st(b["sd"], _meta_cfg(num_heads=0, mlp_t=False)), None, ConfigError),
        ("seq_len-1e9", lambda b: _st(b["sd"], _meta_cfg(seq_len=1e9)), None, ConfigError),
        ("seq_len-negative", lambda b: _st(b["sd"], _meta_cfg(seq_len=-16)), None, ConfigError),
        ("seq_len-huge-int", lambda b: _st(b["sd"], _meta_cfg(seq_len=10 ** 30)), None, ConfigError),
        ("vocab_size-bool", lambda b: _st(b["sd"], _meta_cfg(vocab_size=True)), None, ConfigError),
        ("vocab_size-null", lambda b: _st(b["sd"], _meta_cfg(vocab_size=None)), None, ConfigError),
        ("expansion-nan", lambda b: _st(b["sd"], _meta_cfg(expansion=float("nan"))), None, ConfigError),
        ("H_cycles-list", lambda b: _st(b["sd"], _meta_cfg(H_cycles=[1])), None, ConfigError),
        ("mlp_t-string", lambda b: _st(b["sd"], _meta_cfg(mlp_t="yes")), None, ConfigError),
        ("pos_encodings-bogus", lambda b: _st(b["sd"], _meta_cfg(pos_encodings="sinusoid")), None, ConfigError),
        ("unknown-config-key", lambda b: _st(b["sd"], _meta_cfg(hiden_size=16)), None, ConfigError),
        ("puzzle-table-absurd", lambda b: _st(b["sd"], _meta_cfg(num_puzzle_identifiers=10 ** 8, puzzle_emb_ndim=512,
                                                                 puzzle_emb_len=32)), None, ConfigError),
        ("halt_max_steps-1e9", lambda b: _st(b["sd"], _meta_cfg(halt_max_steps=10 ** 9)), None, ConfigError),
        ("meta-task-not-json", lambda b: _st(b["sd"], {**_meta_cfg(), "task": "{name"}), None, CheckpointError),
        ("meta-task-list", lambda b: _st(b["sd"], {**_meta_cfg(), "task": "[1]"}), None, CheckpointError),
        ("meta-task-no-name", lambda b: _st(b["sd"], {**_meta_cfg(), "task": '{"size": 4}'}), None, CheckpointError),
        ("meta-training-not-json", lambda b: _st(b["sd"], {**_meta_cfg(), "training": "{"}), None, CheckpointError),
        ("nan-weights", lambda b: _st({**b["sd"], "lm_head.weight": b["sd"]["lm_head.weight"] * float("nan")},
                                      _meta_cfg()), None, CheckpointError),
        ("int-weights", lambda b: _st({**b["sd"], "lm_head.weight": b["sd"]["lm_head.weight"].long()},
                                      _meta_cfg()), None, CheckpointError),
        ("missing-key", lambda b: _st({k: v for k, v in b["sd"].items() if k != "lm_head.weight"}, _meta_cfg()),
         None, CheckpointError),
        ("misshaped-key", lambda b: _st({**b["sd"], "q_head.bias": torch.zeros(3)}, _meta_cfg()), None, CheckpointError),
        ("config-does-not-fit-weights", lambda b: _st(b["sd"], _meta_cfg(hidden_size=32, puzzle_emb_ndim=32)),
         None, CheckpointError),
        ("pt-list", lambda b: _torch([1, 2, 3]), CFG, CheckpointError),
        ("pt-tensor", lambda b: _torch(torch.zeros(3)), CFG, CheckpointError),
        ("pt-dict-of-ints", lambda b: _torch({"a": 1}), CFG, CheckpointError),
        ("pt-int-keys", lambda b: _torch({1: torch.zeros(1)}), CFG, CheckpointError),
        ("pt-empty-dict", lambda b: _torch({}), CFG, CheckpointError),
        ("pt-model-wrapper-of-junk", lambda b: _torch({"model": {"x": "y"}}), CFG, CheckpointError),
        ("pt-unsafe-pickle", lambda b: _bytes("evil.pt", pickle.dumps({"x": print})), CFG, CheckpointError),
        ("pt-state-dict-without-config", lambda b: _torch(b["sd"], "step_5"), None, ConfigError),
        ("empty-directory", lambda b: (lambda d: (d / "ck").mkdir() or d / "ck"), None, CheckpointError),
        ("missing-path", lambda b: (lambda d: d / "nope.safetensors"), None, CheckpointError),
    ]
    return C


CHECKPOINT_CASES = _checkpoint_cases()


@pytest.mark.parametrize("name, maker, config, error", CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES])
def test_bad_checkpoint_api(base, work, name, maker, config, error):
    path = maker(base)(work)
    before = snapshot(work)
    with pytest.raises(error) as e:
        load_checkpoint(path, config)
    one_line(e.value)
    assert snapshot(work) == before


CLI_CHECKPOINT_CASES = [c for c in CHECKPOINT_CASES if c[2] is None]


@pytest.mark.parametrize("name, maker, config, error", CLI_CHECKPOINT_CASES, ids=[c[0] for c in CLI_CHECKPOINT_CASES])
def test_bad_checkpoint_cli_info(base, work, capsys, name, maker, config, error):
    path = maker(base)(work)
    before = snapshot(work)
    cli_error(["info", path], capsys)
    assert snapshot(work) == before


@pytest.mark.parametrize("name, maker, config, error", CLI_CHECKPOINT_CASES[:12], ids=[c[0] for c in CLI_CHECKPOINT_CASES[:12]])
def test_bad_checkpoint_cli_solve(base, work, capsys, name, maker, config, error):
    path = maker(base)(work)
    cli_error(["solve", "--model", path, "--puzzle", SUDOKU_4], capsys)


@pytest.mark.parametrize("path, config", [
    (None, None), (123, None), ("", None), ("   ", None), (b"x.safetensors", None), (["a"], None),
    ("a\0b.safetensors", None), ("/dev/null", None),
], ids=["None", "int", "empty", "spaces", "bytes", "list", "nul-in-name", "dev-null"])
def test_load_checkpoint_bad_path(path, config):
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, config)
    one_line(e.value)


@pytest.mark.parametrize("config", [[1, 2], 123, 1.5, b"cfg", object(), "", "/no/such/config.json"],
                         ids=["list", "int", "float", "bytes", "object", "empty", "missing-file"])
def test_load_checkpoint_bad_config_arg(base, config):
    with pytest.raises(ConfigError) as e:
        load_checkpoint(base["ckpt"], config)
    one_line(e.value)


@pytest.mark.parametrize("name, content", [
    ("config.json", b"{not json"), ("config.json", b"[1, 2]"), ("config.json", b"\xff\xfe\x00binary"),
    ("config.json", json.dumps({**CFG, "hidden_size": "16"}).encode()),
    ("config.json", json.dumps({**CFG, "num_heads": 0, "mlp_t": False}).encode()),
    ("all_config.yaml", b"- a\n- b\n"), ("all_config.yaml", b"just a scalar"), ("all_config.yaml", b"arch: 5\n"),
    ("all_config.yaml", b"\x00\x01\x02\x03"), ("all_config.yaml", b"arch: {hidden_size: 16}\ndata_paths: 7\n"),
], ids=["json-garbage", "json-list", "json-binary", "json-string-number", "json-heads-zero", "yaml-list",
        "yaml-scalar", "yaml-arch-int", "yaml-binary", "yaml-data-paths-int"])
def test_bad_config_file_api_and_cli(base, work, capsys, name, content):
    f = work / name
    f.write_bytes(content)
    torch.save(base["sd"], work / "m.pt")
    before = snapshot(work)
    with pytest.raises(ConfigError) as e:
        load_checkpoint(work / "m.pt", f)
    one_line(e.value)
    cli_error(["info", work / "m.pt", "--config", f], capsys)
    cli_error(["info", work / "m.pt"], capsys)        # the same file found beside the checkpoint
    assert snapshot(work) == before


@pytest.mark.parametrize("d", [
    [1, 2], "seq_len", None, {"vocab_size": 4}, {"seq_len": "81", "vocab_size": 11},
    {"seq_len": 81, "vocab_size": 11, "hidden_size": 128.5}, {"seq_len": 81, "vocab_size": 11, "num_heads": 0},
    {"seq_len": 1e9, "vocab_size": 11}, {"seq_len": 81, "vocab_size": 11, "L_layers": -1},
    {"seq_len": 81, "vocab_size": 11, "rms_norm_eps": 0}, {"seq_len": 81, "vocab_size": 11, "rope_theta": float("inf")},
    {"seq_len": 81, "vocab_size": 11, "forward_dtype": "int8"}, {"seq_len": 81, "vocab_size": 11, "hidden_size": 30},
    {"seq_len": 81, "vocab_size": 11, 5: 1}, {"seq_len": 81, "vocab_size": 11, "hidden_size": 24, "num_heads": 8},
    {"seq_len": 81, "vocab_size": 11, "expansion": 0.0001},
], ids=["list", "str", "None", "no-seq_len", "seq_len-str", "hidden-float", "heads-zero", "seq_len-1e9",
        "layers-negative", "eps-zero", "theta-inf", "dtype-bogus", "heads-do-not-divide", "int-key", "rope-odd-head",
        "expansion-tiny"])
def test_bad_config_dict(d):
    with pytest.raises(ConfigError) as e:
        TRMConfig.from_dict(d)
    one_line(e.value)


def test_config_accepts_whole_floats_and_loads_stay_exact(base):
    cfg = TRMConfig.from_dict({**CFG, "hidden_size": 16.0, "H_cycles": np.int64(1)})
    assert cfg == TRMConfig(**CFG) and type(cfg.hidden_size) is int
    m = load_checkpoint(base["ckpt"])
    for k, v in base["model"].state_dict().items():
        assert torch.equal(v, m.state_dict()[k]), k
    assert m.metadata["task"] == {"name": "sudoku", "size": 4}


def test_safetensors_under_another_name_still_loads(base, tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(base["ckpt"].read_bytes())
    assert load_checkpoint(f).config == base["model"].config


# ----------------------------------------------------------------------------------- datasets and eval

def _mutate(kind):
    """A maker(folder) -> dataset root: the good split, broken one way."""
    def make(d: Path) -> Path:
        root = _sudoku_split(d / "data")
        t = root / "test"
        meta = json.loads((t / "dataset.json").read_text())
        setm = lambda **kw: (t / "dataset.json").write_text(json.dumps({**meta, **kw}))
        arr = lambda name: np.load(t / f"all__{name}.npy")
        save = lambda name, a: np.save(t / f"all__{name}.npy", a)
        if kind == "no-split":
            import shutil
            shutil.rmtree(t)
        elif kind == "json-garbage":
            (t / "dataset.json").write_text("{sets: [all]")
        elif kind == "json-list":
            (t / "dataset.json").write_text("[1, 2, 3]")
        elif kind == "json-null":
            (t / "dataset.json").write_text("null")
        elif kind == "json-latin1":
            (t / "dataset.json").write_bytes(json.dumps(meta).encode()[:-1] + b', "n": "\xe9"}')
        elif kind == "json-dir":
            (t / "dataset.json").unlink()
            (t / "dataset.json").mkdir()
        elif kind == "lacks-sets":
            (t / "dataset.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "sets"}))
        elif kind == "lacks-seq_len":
            (t / "dataset.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "seq_len"}))
        elif kind == "lacks-num_puzzle_identifiers":
            (t / "dataset.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "num_puzzle_identifiers"}))
        elif kind == "mean-examples-nan":
            setm(mean_puzzle_examples=float("nan"))
        elif kind == "total-groups-float":
            setm(total_groups=1.5)
        elif kind == "sets-empty":
            setm(sets=[])
        elif kind == "sets-string":
            setm(sets="all")
        elif kind == "sets-escape":
            setm(sets=["../../x"])
        elif kind == "sets-int":
            setm(sets=[1])
        elif kind == "sets-unknown":
            setm(sets=["other"])
        elif kind == "seq_len-string":
            setm(seq_len="16")
        elif kind == "seq_len-wrong":
            setm(seq_len=81)
        elif kind == "vocab-negative":
            setm(vocab_size=-3)
        elif kind == "ignore-label-string":
            setm(ignore_label_id="0")
        elif kind == "task-list":
            setm(task=["sudoku"])
        elif kind == "inputs-random-bytes":
            (t / "all__inputs.npy").write_bytes(np.random.default_rng(0).bytes(512))
        elif kind == "inputs-pickled":
            np.save(t / "all__inputs.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        elif kind == "inputs-npz":
            a = arr("inputs")
            with open(t / "all__inputs.npy", "wb") as f:
                np.savez(f, a=a)
        elif kind == "inputs-truncated":
            (t / "all__inputs.npy").write_bytes((t / "all__inputs.npy").read_bytes()[:100])
        elif kind == "inputs-missing":
            (t / "all__inputs.npy").unlink()
        elif kind == "inputs-float":
            save("inputs", arr("inputs").astype(np.float32))
        elif kind == "inputs-1d":
            save("inputs", arr("inputs").reshape(-1))
        elif kind == "labels-shape":
            save("labels", arr("labels")[:, :4])
        elif kind == "puzzle-indices-wrong":
            save("puzzle_indices", np.array([0, 2, 1], np.int32))
        elif kind == "puzzle-indices-empty":
            save("puzzle_indices", np.zeros(0, np.int32))
        elif kind == "group-indices-2d":
            save("group_indices", arr("group_indices")[None])
        elif kind == "ids-outside-table":
            save("puzzle_identifiers", arr("puzzle_identifiers") + 7)
        elif kind == "extra-random-bytes":
            (t / "all__rating.npy").write_bytes(b"\x93NUMPY garbage")
        else:
            raise AssertionError(kind)
        return root
    return make


DATASET_CASES = ["no-split", "json-garbage", "json-list", "json-null", "json-latin1", "json-dir", "lacks-sets",
                 "lacks-seq_len", "lacks-num_puzzle_identifiers", "mean-examples-nan", "total-groups-float", "sets-empty", "sets-string", "sets-escape", "sets-int", "sets-unknown",
                 "seq_len-string", "seq_len-wrong", "vocab-negative", "ignore-label-string", "task-list",
                 "inputs-random-bytes", "inputs-pickled", "inputs-npz", "inputs-truncated", "inputs-missing",
                 "inputs-float", "inputs-1d", "labels-shape", "puzzle-indices-wrong", "puzzle-indices-empty",
                 "group-indices-2d", "ids-outside-table", "extra-random-bytes"]


@pytest.mark.parametrize("kind", DATASET_CASES)
def test_bad_dataset_read_split(work, kind):
    root = _mutate(kind)(work)
    before = snapshot(work)
    with pytest.raises(TRMEdgeError) as e:
        read_split(root, "test")
    one_line(e.value)
    with pytest.raises(TRMEdgeError):
        read_split(root, "test", mmap=True)
    assert snapshot(work) == before


@pytest.mark.parametrize("kind", DATASET_CASES[::2])
def test_bad_dataset_eval_cli(base, work, capsys, kind):
    root = _mutate(kind)(work)
    before = snapshot(work)
    cli_error(["eval", "--model", base["ckpt"], "--data", root, "--puzzles", 4, "--out", work / "ev"], capsys)
    assert snapshot(work) == before          # no eval folder made, the dataset untouched


def _mismatch(kind):
    def make(d: Path) -> Path:
        if kind == "9x9-data-4x4-model":
            return _sudoku_split(d / "data", size=9, n=3)
        if kind == "maze-data-sudoku-model":
            return _sudoku_split(d / "data", task={"name": "maze", "size": 4})
        root = _sudoku_split(d / "data")
        f = root / "test" / "all__inputs.npy"
        a = np.load(f)
        if kind == "token-outside-vocab":
            a[1, 3] = 99
        elif kind == "negative-token":
            a[0, 0] = -1
            a = a.astype(np.int64)
        elif kind == "empty-split":
            root = d / "empty"
            pset = PuzzleSet.one_example_per_puzzle(np.zeros((0, 16), np.int64), np.zeros((0, 16), np.int64))
            write_split(root, "test", {"all": pset}, metadata_for({"all": pset}, 16, 6))
            return root
        np.save(f, a)
        return root
    return make


MISMATCH = ["9x9-data-4x4-model", "maze-data-sudoku-model", "token-outside-vocab", "negative-token", "empty-split"]


@pytest.mark.parametrize("kind", MISMATCH)
def test_data_that_does_not_fit_the_model(base, work, capsys, kind):
    root = _mismatch(kind)(work)
    before = snapshot(work)
    with pytest.raises(TRMEdgeError) as e:
        evaluate(base["ckpt"], root, puzzles=4, progress=False, out=work / "ev")
    one_line(e.value)
    cli_error(["eval", "--model", base["ckpt"], "--data", root, "--out", work / "ev"], capsys)
    assert snapshot(work) == before


@pytest.mark.parametrize("options", [
    {"puzzles": 0}, {"puzzles": -5}, {"puzzles": 2.5}, {"puzzles": "10"}, {"puzzles": True}, {"puzzles": None},
    {"max_steps": 0}, {"max_steps": 10 ** 9}, {"max_steps": 2.5}, {"max_steps": "3"},
    {"thresholds": (float("nan"),)}, {"thresholds": (float("inf"),)}, {"thresholds": (0,)}, {"thresholds": (1,)},
    {"thresholds": (1.5,)}, {"thresholds": (-0.5,)}, {"thresholds": ()}, {"thresholds": "0.5"},
    {"thresholds": ("a",)}, {"thresholds": 0.5}, {"thresholds": (True,)},
    {"batch": 0}, {"batch": -1}, {"threads": 0}, {"threads": "2"},
], ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()))
def test_bad_eval_options(base, work, options):
    before = snapshot(work)
    with pytest.raises(TRMEdgeError) as e:
        evaluate(base["ckpt"], base["data"], progress=False, out=work / "ev", **options)
    one_line(e.value)
    assert snapshot(work) == before


@pytest.mark.parametrize("model", [None, 5, ""], ids=["None", "int", "empty"])
def test_eval_bad_model_argument(base, model):
    with pytest.raises(TRMEdgeError) as e:
        evaluate(model, base["data"], progress=False)
    one_line(e.value)


@pytest.mark.parametrize("argv", [
    ["--puzzles", "0"], ["--puzzles", "-5"], ["--puzzles", "many"], ["--max-steps", "0"],
    ["--thresholds", "nan"], ["--thresholds", "0.5,inf"], ["--thresholds", "1"], ["--thresholds", "0,0.5"],
    ["--thresholds", "a,b"], ["--threads", "0"],
], ids=lambda a: " ".join(a))
def test_bad_eval_options_cli(base, work, capsys, argv):
    before = snapshot(work)
    cli_error(["eval", "--model", base["ckpt"], "--data", base["data"], "--out", work / "ev", *argv], capsys)
    assert snapshot(work) == before


@pytest.mark.parametrize("via", ["api", "cli"])
def test_eval_never_writes_into_a_users_folder(base, work, capsys, via):
    user = work / "mine"
    user.mkdir()
    (user / "notes.txt").write_bytes(b"precious\x00bytes")
    before = snapshot(work)
    if via == "api":
        with pytest.raises(TRMEdgeError) as e:
            evaluate(base["ckpt"], base["data"], puzzles=2, progress=False, out=user)
        assert "nothing was written" in one_line(e.value)
    else:
        cli_error(["eval", "--model", base["ckpt"], "--data", base["data"], "--out", user], capsys)
    assert snapshot(work) == before
    assert (user / "notes.txt").read_bytes() == b"precious\x00bytes"


@pytest.mark.parametrize("kind", ["a-file", "under-a-file", "empty-string"])
def test_eval_out_that_is_no_folder(base, work, capsys, kind):
    (work / "f.txt").write_text("x")
    out = {"a-file": work / "f.txt", "under-a-file": work / "f.txt" / "ev", "empty-string": ""}[kind]
    before = snapshot(work)
    with pytest.raises(TRMEdgeError) as e:
        evaluate(base["ckpt"], base["data"], puzzles=2, progress=False, out=out)
    one_line(e.value)
    if kind != "empty-string":
        cli_error(["eval", "--model", base["ckpt"], "--data", base["data"], "--out", out], capsys)
    assert snapshot(work) == before


def test_eval_rewrites_its_own_folder_and_nothing_else(base, work):
    out = work / "ev"
    res = evaluate(base["ckpt"], base["data"], puzzles=4, thresholds=(0.5,), progress=False, out=out, fixed=False)
    assert sorted(p.name for p in out.iterdir()) == ["eval.json"]
    (out / "mine.txt").write_text("kept")                     # a folder of ours, with a user's file added
    again = evaluate(base["ckpt"], base["data"], puzzles=4, thresholds=(0.5,), progress=False, out=out, fixed=False)
    assert again["puzzles"] == res["puzzles"] == 4
    assert (out / "mine.txt").read_text() == "kept"
    assert sorted(p.name for p in out.iterdir()) == ["eval.json", "mine.txt"]


def test_eval_arc_without_its_files(work):
    """An ARC model on an ARC split that lacks identifiers.json / test_puzzles.json: one line, before solving."""
    cfg = dict(CFG, seq_len=900, vocab_size=12, puzzle_emb_ndim=0, mlp_t=False, num_heads=2, pos_encodings="rope")
    ckpt = save_checkpoint(_model(cfg), work / "arc.safetensors", task={"name": "arc", "version": "arc-agi-1"})
    pset = PuzzleSet.one_example_per_puzzle(np.full((2, 900), 2, np.int64), np.full((2, 900), 2, np.int64),
                                            test_index=np.zeros(2, np.int32))
    write_split(work / "arc", "test", {"all": pset}, metadata_for({"all": pset}, 900, 12))
    before = snapshot(work)
    with pytest.raises(TRMEdgeError, match="identifiers.json") as e:
        evaluate(ckpt, work / "arc", puzzles=2, progress=False)
    one_line(e.value)
    assert snapshot(work) == before


# ----------------------------------------------------------------------------------- puzzle text

SUDOKU_TEXT_CASES = [
    ("superscript-two", "12..34....3....²"), ("fullwidth-digit", "１2..34....3....1"),
    ("arabic-indic-digit", "٣2..34....3....1"), ("devanagari-digit", "१2..34....3....1"),
    ("digit-too-big", "12..34....3....5"), ("letter", "12..34....3....x"), ("empty", ""), ("only-spaces", "   "),
    ("too-short", "12..34"), ("too-long", SUDOKU_4 + "1"), ("float-cell", "1.5" + "." * 13),
    ("twenty-digits", "1" * 20), ("emoji", "12..34....3....🙂"), ("nul", "12..34....3....\x00"),
]


@pytest.mark.parametrize("name, text", SUDOKU_TEXT_CASES, ids=[c[0] for c in SUDOKU_TEXT_CASES])
def test_bad_sudoku_text(base, capsys, name, text):
    with pytest.raises(PuzzleError) as e:
        SudokuCodec(4).parse(text)
    one_line(e.value)
    if "\x00" not in text:                                    # argv cannot carry NUL
        cli_error(["solve", "--model", base["ckpt"], "--puzzle", text], capsys)


CONTRADICTIONS_4 = [
    ("row-repeat", "11..............", "row 1"), ("column-repeat", "2...2...........", "column 1"),
    ("box-repeat", "3....3..........", "box 1"), ("all-ones", "1" * 16, "twice"),
    ("repeated-rows", "1234" * 4, "twice"), ("no-givens", "." * 16, "no givens"),
]


@pytest.mark.parametrize("name, text, words", CONTRADICTIONS_4, ids=[c[0] for c in CONTRADICTIONS_4])
def test_contradictory_sudoku(base, work, capsys, name, text, words):
    c = SudokuCodec(4)
    msg = c.contradiction(c.parse(text))
    assert msg and words in msg and "\n" not in msg
    cli_error(["solve", "--model", base["ckpt"], "--puzzle", text], capsys)
    f = work / "p.txt"
    f.write_text(f"# fine first, then the bad one\n{SUDOKU_4}\n{text}\n")
    assert "puzzle 2" in cli_error(["solve", "--model", base["ckpt"], "--puzzle-file", f], capsys)


TOKEN_TEXT_CASES = [
    ("twenty-digit-token", "9" * 20 + ",1" * 15), ("five-thousand-digits", "9" * 5000 + ",1" * 15),
    ("negative", "-1" + ",1" * 15), ("float", "1.5" + ",1" * 15), ("fullwidth", "１" + ",1" * 15),
    ("superscript", "²" + ",1" * 15), ("outside-vocab", "99" + ",1" * 15), ("too-few", "1,2,3"),
    ("empty", ""), ("hex", "0x1" + ",1" * 15), ("plus-sign", "+1" + ",1" * 15),
]


@pytest.mark.parametrize("name, text", TOKEN_TEXT_CASES, ids=[c[0] for c in TOKEN_TEXT_CASES])
def test_bad_token_text(base, capsys, name, text):
    with pytest.raises(PuzzleError) as e:
        codec("tokens", 16, 6).parse(text)
    one_line(e.value)
    cli_error(["solve", "--model", base["ckpt"], "--task", "tokens", "--puzzle", text], capsys)


MAZE_TEXT_CASES = [
    ("no-start", "..../.##./.##./...G"), ("two-goals", "S..G/.##./.##./...G"), ("unknown-char", "S..x/.##./.##./...G"),
    ("fullwidth-hash", "S..＃/.##./.##./...G"), ("short-row", "S../.##./.##./...G"), ("three-rows", "S.../.##./...G"),
    ("empty", ""),
]


@pytest.mark.parametrize("name, text", MAZE_TEXT_CASES, ids=[c[0] for c in MAZE_TEXT_CASES])
def test_bad_maze_text(base, capsys, name, text):
    with pytest.raises(PuzzleError) as e:
        MazeCodec(4).parse(text)
    one_line(e.value)
    cli_error(["solve", "--model", base["ckpt"], "--task", "maze", "--puzzle", text], capsys)


def test_maze_with_its_path_given_is_refused(base, capsys):
    c = MazeCodec(4)
    msg = c.contradiction(c.parse("Sooo/.##o/.##o/...G"))
    assert "path" in msg and "\n" not in msg
    cli_error(["solve", "--model", base["ckpt"], "--task", "maze", "--puzzle", "Sooo/.##o/.##o/...G"], capsys)


ARC_TEXT_CASES = [
    ("superscript", "01²/234"), ("fullwidth", "0１/23"), ("deep-json", "[" * 5000 + "]" * 5000),
    ("huge-json-int", "[[" + "9" * 5000 + "]]"), ("json-float", "[[1.5]]"), ("json-bool", "[[true]]"),
    ("json-object", '[{"a": 1}]'), ("json-flat", "[1, 2]"), ("empty", ""), ("too-wide", "0" * 31),
]


@pytest.mark.parametrize("name, text", ARC_TEXT_CASES, ids=[c[0] for c in ARC_TEXT_CASES])
def test_bad_arc_text(name, text):
    with pytest.raises(PuzzleError) as e:
        ArcCodec().parse(text)
    one_line(e.value)


@pytest.mark.parametrize("cod", [SudokuCodec(4), MazeCodec(4), ArcCodec(), TokenCodec(16, 6)],
                         ids=["sudoku", "maze", "arc", "tokens"])
@pytest.mark.parametrize("text", [None, b"1234", 1234, ["1"]], ids=["None", "bytes", "int", "list"])
def test_parse_takes_only_text(cod, text):
    with pytest.raises(PuzzleError) as e:
        cod.parse(text)
    one_line(e.value)


@pytest.mark.parametrize("task, seq_len", [("sudoku", "16"), ("sudoku", 0), ("sudoku", True), ("sudoku", 17),
                                           ("chess", 16), ({"name": ["x"]}, 16), ("maze", 10), ("arc", 80)])   # 80: no square canvas
def test_bad_codec_arguments(task, seq_len):
    with pytest.raises(PuzzleError) as e:
        codec(task, seq_len)
    one_line(e.value)


# ----------------------------------------------------------------------------------- puzzle files

FILE_CASES = [
    ("binary-png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "UTF-8"),
    ("utf16-bom", "\ufeff12..34....3....1\n".encode("utf-16"), "UTF-16"),
    ("utf16-le-no-bom", "12..34....3....1\n".encode("utf-16-le"), "UTF-8"),
    ("utf16-be-bom", "12..34....3....1\n".encode("utf-16-be").join([b"\xfe\xff", b""]), "UTF-16"),
    ("latin1", "# café\n12..34....3....1\n".encode("latin-1"), "UTF-8"),
    ("control-chars", b"12..34\x01....3....1\n", "UTF-8"),
    ("empty", b"", "no puzzle"), ("only-comments", b"# one\n  # two\n\n   \n", "no puzzle"),
    ("only-blank-lines", b"\n\r\n\n", "no puzzle"),
]


@pytest.mark.parametrize("name, content, words", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_puzzle_file(base, work, capsys, name, content, words):
    f = work / "puzzles.txt"
    f.write_bytes(content)
    before = snapshot(work)
    with pytest.raises(PuzzleError) as e:
        read_puzzle_file(f)
    msg = one_line(e.value)
    assert str(f) in msg and words in msg
    if words == "UTF-8":
        assert "save it as UTF-8 text, one puzzle per line" in msg
    cli_error(["solve", "--model", base["ckpt"], "--puzzle-file", f], capsys)
    assert snapshot(work) == before


@pytest.mark.parametrize("kind", ["missing", "directory", "dev-zero", "None", "int"])
def test_puzzle_file_that_is_no_file(work, kind):
    (work / "d").mkdir()
    path = {"missing": work / "nope.txt", "directory": work / "d", "dev-zero": "/dev/zero", "None": None, "int": 3}[kind]
    with pytest.raises(PuzzleError) as e:
        read_puzzle_file(path)
    one_line(e.value)


def test_puzzle_file_reading_rules(work):
    f = work / "p.txt"
    f.write_bytes(b"\xef\xbb\xbf# a comment\r\n12..34....3....1\r\n\r\n  # indented comment\n  1 2 . .  \n")
    assert read_puzzle_file(f) == ["12..34....3....1", "  1 2 . .  "]
    f.write_bytes(b"#...\n#S.G\n")                      # maze rows that start with a wall
    assert read_puzzle_file(f, comment=None) == ["#...", "#S.G"]


# ----------------------------------------------------------------------------------- rules checkers

PUZZLE_9 = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION_9 = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def test_sudoku_9x9_rules():
    c = SudokuCodec(9)
    p, s = c.parse(PUZZLE_9), c.parse(SOLUTION_9)
    assert c.contradiction(p) is None
    assert c.satisfies(p, s) is True
    wrong = s.copy()
    wrong[2] = s[3]                                      # one blank cell changed: a row repeats a digit
    assert c.satisfies(p, wrong) is False
    swapped = s.copy()
    swapped[[0, 1]] = s[[1, 0]]                          # a given overwritten
    assert c.satisfies(p, swapped) is False
    assert c.satisfies(p, p) is False                    # blanks left
    assert c.satisfies(p, s[:80]) is False               # no grid at all
    assert c.satisfies(p, s.astype(float)) is False
    dup_row = "55" + PUZZLE_9[2:]
    msg = c.contradiction(c.parse(dup_row))
    assert "digit 5" in msg and "row 1" in msg and "column 1" in msg and "column 2" in msg
    dup_box = PUZZLE_9[:10] + "3" + PUZZLE_9[11:]        # a 3 at (row 2, column 2) beside the 3 at (1, 2)
    assert "3" in c.contradiction(c.parse(dup_box))
    assert "no givens" in c.contradiction(c.parse("." * 81))


@pytest.mark.parametrize("size", [4, 6, 9])
def test_sudoku_rules_on_generated_grids(size):
    rng = np.random.default_rng(size)
    c = SudokuCodec(size)
    sol = (random_solution(size, rng) + 1).reshape(-1)
    puz = np.where(rng.random(sol.shape) < 0.5, 1, sol)
    assert c.contradiction(puz) is None and c.satisfies(puz, sol) is True
    blank = int(np.flatnonzero(puz == 1)[0])
    changed = sol.copy()
    changed[blank] = sol[blank] % size + 2               # one cell, another digit
    assert c.satisfies(puz, changed) is False


def test_sudoku_contradiction_of_bad_tokens():
    c = SudokuCodec(4)
    assert "token 0" in c.contradiction(np.zeros(16, np.int64))
    with pytest.raises(PuzzleError):
        c.contradiction(np.ones(15, np.int64))


MAZE = "S..../.###./.###./.###./....G"


def test_maze_rules():
    c = MazeCodec(5)
    p = c.parse(MAZE)
    assert c.contradiction(p) is None
    for path in ("Soooo/.###o/.###o/.###o/....G", "S..../o###./o###./o###./ooooG"):   # both shortest paths
        assert c.satisfies(p, c.parse(path)) is True
    gap = c.parse("Soo.o/.###o/.###o/.###o/....G")
    assert c.satisfies(p, gap) is False                               # one cell changed: the path breaks
    assert c.satisfies(p, c.parse("Soooo/.###o/.###o/.###o/...oG")) is False   # an extra cell: not shortest
    walls_broken = c.parse("Soooo/.o##o/.###o/.###o/....G")
    assert c.satisfies(p, walls_broken) is False
    assert c.satisfies(p, p) is False                                 # no path marked
    assert c.satisfies(p, p[:10]) is False
    blocked = c.parse("S.#../.###./##.../.###./....G")
    assert c.contradiction(blocked) is None and c.satisfies(blocked, blocked) is True   # unreachable: no path
    two_s = p.copy()
    two_s[1] = 3
    assert "2 'S'" in c.contradiction(two_s)
    no_g = p.copy()
    no_g[-1] = 2
    assert "0 'G'" in c.contradiction(no_g)
    assert "token 9" in c.contradiction(np.where(p == 2, 9, p))


def test_arc_and_tokens_have_no_rule_checker():
    a = ArcCodec()
    t = a.parse("012/340")
    assert a.contradiction(t) is None and a.satisfies(t, t) is None
    k = TokenCodec(3)
    assert k.contradiction(k.parse("1,2,3")) is None and k.satisfies(k.parse("1,2,3"), k.parse("1,2,3")) is None


# ----------------------------------------------------------------------------------- properties

PROPERTY = settings(max_examples=100, deadline=None, database=None)   # no .hypothesis folder left in the checkout
SUDOKU_CHARS = "0123456789.²١１ |-+\n\t,x"


def _valid_or_puzzle_error(cod, text, vocab):
    try:
        t = cod.parse(text)
    except PuzzleError as e:
        one_line(e)
        return
    assert isinstance(t, np.ndarray) and t.dtype == np.int64 and t.shape == (cod.seq_len,)
    assert t.min() >= 0 and t.max() < vocab


@PROPERTY
@given(st.one_of(st.text(), st.text(alphabet=SUDOKU_CHARS, min_size=10, max_size=24)))
def test_property_sudoku_parse(text):
    _valid_or_puzzle_error(SudokuCodec(4), text, 6)
    try:
        SudokuCodec(4).contradiction(SudokuCodec(4).parse(text))
    except PuzzleError:
        pass


@PROPERTY
@given(st.one_of(st.text(), st.text(alphabet="0123456789, -.+１e\n", max_size=60)))
def test_property_token_parse(text):
    _valid_or_puzzle_error(TokenCodec(16, 6), text, 6)


@PROPERTY
@given(st.one_of(st.text(), st.text(alphabet="#. SGo/\nx", min_size=14, max_size=22)))
def test_property_maze_parse(text):
    _valid_or_puzzle_error(MazeCodec(4), text, 6)


@PROPERTY
@given(st.one_of(st.text(), st.text(alphabet="0123456789/[], \n.-", max_size=40)))
def test_property_arc_parse(text):
    _valid_or_puzzle_error(ArcCodec(), text, 12)


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@PROPERTY
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=80).map(lambda s: s.encode("utf-8")),
                      st.text(max_size=40).map(lambda s: s.encode("utf-16"))))
def test_property_puzzle_file(scratch, data):
    f = scratch / "p.txt"
    f.write_bytes(data)
    try:
        lines = read_puzzle_file(f)
    except PuzzleError as e:
        one_line(e)
        return
    assert lines and all(isinstance(ln, str) and ln.strip() and "\n" not in ln and "\r" not in ln for ln in lines)
