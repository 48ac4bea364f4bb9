"""The checkpoint layouts people have, made by the official code, load; other architectures are refused.

Every public TRM checkpoint is an ARC, Maze or Sudoku-Extreme run of the official code
(SamsungSAILMontreal/TinyRecursiveModels @ e7b68717). tests/fixtures/official_checkpoints/ holds small
random-weight checkpoints written BY THAT CODE (its README says how) and the outputs the official
model computed from each file:
  - the official run folder: `step_N` (`_orig_mod.model.inner.*`, bf16 H_init/L_init) beside the
    `all_config.yaml` pretrain.py dumped, the dataset it names (`data/<name>/train/dataset.json`,
    `identifiers.json`) three folders up, as pretrain.py lays them out; an ARC-style run (attention +
    RoPE, a 5-row puzzle table) and an MLP-t Sudoku-style run;
  - a re-upload's bare `.pt`: torch.save of the EMA model's state dict (EMAHelper.ema_copy), config
    given with --config; the EMA helper's own dict (parameters only) is refused, saying why;
  - the ARC Prize verification layout (huggingface.co/arcprize/trm_arc_prize_verification:
    `arc_v1_public/` = all_config.yaml, losses.py, step_518071, trm.py), built in the test's tmp dir
    from the fixture files, with the step file also named as `wget ...?download=true` saves it or as
    one .pt/.pth/.bin file. Its trm.py / losses.py are STAND-INS written by this test (the official
    files are never copied into the project): if anything imported or ran them they would leave a
    marker file, and the test checks there is none. With TRM_REFERENCE_DIR set to a checkout of the
    official code, its real trm.py / losses.py are copied in instead. trm-edge reads tensors only
    (torch.load with weights_only) and never imports or executes a checkpoint folder's .py files;
  - other architectures (the official repo's HRM, its other variants, a PyTorch Lightning checkpoint
    of another model, an unrelated state dict): one line saying what the file is, exit 2 from the CLI.
Each loading layout goes through load_checkpoint and through `trm-edge info`, and gives the official
outputs: float32 against the official model run with forward_dtype float32 on the same file (bit-exact
here; EXACT_TOL leaves room for another CPU's rounding) and against the run as trained, in bfloat16
(BF16_TOL: bfloat16 rounding, measured below).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input import one_line, refused

from trm_edge.checkpoint import load_checkpoint
from trm_edge.cli import main
from trm_edge.errors import CheckpointError, ConfigError

FIX = Path(__file__).resolve().parent / "fixtures" / "official_checkpoints"
ARC_RUN = FIX / "arc" / "checkpoints" / "Arc-tiny-aug-1-ACT-torch" / "arc_tiny"
ARC_DATA = FIX / "arc" / "data" / "arc-tiny-aug-1"
SUDOKU_RUN = FIX / "sudoku" / "checkpoints" / "Sudoku-4x4-tiny-ACT-torch" / "mlp_t_sudoku"
HRM_RUN = FIX / "sudoku" / "checkpoints" / "Sudoku-4x4-tiny-ACT-torch" / "hrm_tiny"
EMA_MODEL = FIX / "arc_reupload" / "model_ema.pt"
EMA_SHADOW = FIX / "arc_reupload" / "ema_shadow.pt"
FACTS = json.loads((FIX / "expected" / "facts.json").read_text())

EXACT_TOL = 1e-5     # float32 vs the official float32 run of the same file: measured 0.0 here
BF16_TOL = {         # vs the official bfloat16 run (forward_dtype as trained), max |diff| of logits / q
    "arc_step_3": 0.1,       # measured 0.026
    "arc_model_ema": 0.1,    # measured 0.019
    "sudoku_step_2": 0.5,    # measured 0.204 (MLP-t mixes all positions: rounding grows faster)
}
OUTPUTS = [("logits", "logits"), ("q_halt", "q_halt_logits"), ("q_continue", "q_continue_logits")]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is several times faster on a shared CPU (and made the expected outputs);
    conftest restores the count after each test."""
    torch.set_num_threads(1)


def assert_official_outputs(model, name: str) -> None:
    """One ACT step from the initial state on the recorded batch: the official outputs."""
    e = dict(np.load(FIX / "expected" / f"{name}.npz"))
    out = model.rollout(e["inputs"], e["puzzle_identifiers"], steps=1)
    for ours, ref in OUTPUTS:
        diff = np.abs(out[ours][0] - e[f"{ref}_float32"]).max()
        assert diff <= EXACT_TOL, f"{name} {ours}: max |diff| {diff:.2e} vs the official float32 run"
        diff = np.abs(out[ours][0] - e[f"{ref}_bfloat16"]).max()
        assert diff <= BF16_TOL[name], f"{name} {ours}: max |diff| {diff:.2e} vs the official bfloat16 run"
    preds = out["logits"][0].argmax(-1)
    np.testing.assert_array_equal(preds, e["preds_float32"])
    assert (preds == e["preds_bfloat16"]).mean() >= 0.95


def info_json(args, capsys) -> dict:
    capsys.readouterr()
    code = main(["info", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def assert_info(facts: dict, run: str, **config) -> None:
    assert facts["parameters"] == FACTS[run]["num_params"]     # what pretrain.py logs as num_params
    for k, v in config.items():
        assert facts["config"][k] == v, k


ARC_CONFIG = dict(seq_len=64, vocab_size=12, hidden_size=16, num_heads=2, L_layers=2, H_cycles=3, L_cycles=4,
                  puzzle_emb_ndim=16, puzzle_emb_len=16, num_puzzle_identifiers=5, pos_encodings="rope", mlp_t=False)
SUDOKU_CONFIG = dict(seq_len=16, vocab_size=6, hidden_size=16, L_layers=1, H_cycles=3, L_cycles=6,
                     puzzle_emb_ndim=16, puzzle_emb_len=4, num_puzzle_identifiers=1, pos_encodings="none", mlp_t=True)


# -----------------------------------------------------------------------------
# The official run folder

@pytest.mark.parametrize("run, name, config, key", [
    (ARC_RUN, "arc_step_3", ARC_CONFIG, "arc_run"),
    (SUDOKU_RUN, "sudoku_step_2", SUDOKU_CONFIG, "sudoku_run"),
], ids=["arc", "sudoku_mlp_t"])
def test_official_run_folder(run, name, config, key, capsys):
    step = next(run.glob("step_*"))
    raw = torch.load(step, weights_only=True)
    assert all(k.startswith("_orig_mod.model.inner.") for k in raw)        # as pretrain.py saved it
    assert raw["_orig_mod.model.inner.H_init"].dtype == torch.bfloat16
    for m in (load_checkpoint(run), load_checkpoint(step), load_checkpoint(step, run / "all_config.yaml")):
        for k, v in config.items():
            assert getattr(m.config, k) == v, k
        assert m.y_init.dtype == torch.float32
        np.testing.assert_array_equal(m.y_init.numpy(), raw["_orig_mod.model.inner.H_init"].float().numpy())
        assert_official_outputs(m, name)
    assert_info(info_json([run], capsys), key, **config)


def test_run_folder_elsewhere_finds_its_dataset_from_the_current_folder(tmp_path, monkeypatch, capsys):
    """pretrain.py's data_paths are relative to the folder it ran in: a run folder copied away still
    finds the dataset when trm-edge runs from that folder."""
    run = shutil.copytree(ARC_RUN, tmp_path / "elsewhere" / "arc_tiny")
    monkeypatch.chdir(FIX / "arc")
    assert_official_outputs(load_checkpoint(run), "arc_step_3")
    assert_info(info_json([run], capsys), "arc_run", **ARC_CONFIG)


def test_run_folder_without_its_dataset_says_where_it_looked(tmp_path, monkeypatch, capsys):
    run = shutil.copytree(ARC_RUN, tmp_path / "lonely" / "arc_tiny")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        load_checkpoint(run)
    msg = one_line(e.value)
    assert "seq_len" in msg and "data/arc-tiny-aug-1" in msg and "--config" in msg
    refused(["info", run], tmp_path, capsys)
    # a full config given with --config is enough
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({**ARC_CONFIG, "expansion": 4, "halt_max_steps": 16}))
    assert_official_outputs(load_checkpoint(run, cfg), "arc_step_3")


# -----------------------------------------------------------------------------
# A re-upload's bare EMA state dict

def test_bare_ema_state_dict_with_its_config(capsys):
    raw = torch.load(EMA_MODEL, weights_only=True)
    assert "_orig_mod.model.inner.L_level.layers.0.self_attn.qkv_proj.weight" in raw      # fused q, k, v
    assert "_orig_mod.model.inner.L_level.layers.1.mlp.gate_up_proj.weight" in raw        # fused gate, up
    m = load_checkpoint(EMA_MODEL, ARC_RUN / "all_config.yaml")
    assert_official_outputs(m, "arc_model_ema")
    # it is its own weights (two training steps after step_3), not the run's
    step = dict(np.load(FIX / "expected" / "arc_step_3.npz"))
    assert np.abs(m.rollout(step["inputs"], step["puzzle_identifiers"], steps=1)["logits"][0]
                  - step["logits_float32"]).max() > 1e-3
    assert_info(info_json([EMA_MODEL, "--config", ARC_RUN / "all_config.yaml"], capsys), "arc_run", **ARC_CONFIG)


def test_bare_ema_state_dict_inside_a_training_dict(tmp_path):
    """{'model': ..., 'optimizer': ..., 'step': ...} and {'state_dict': ...} hold the same weights."""
    raw = torch.load(EMA_MODEL, weights_only=True)
    for key in ("model", "state_dict", "model_state_dict"):
        f = tmp_path / f"{key}.pt"
        torch.save({key: raw, "step": 5, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}}, f)
        assert_official_outputs(load_checkpoint(f, ARC_RUN / "all_config.yaml"), "arc_model_ema")


def test_ema_helper_dict_is_refused_saying_why(capsys):
    """EMAHelper.state_dict() is named_parameters() only: no H_init / L_init, no puzzle table."""
    raw = torch.load(EMA_SHADOW, weights_only=True)
    assert not any(k.endswith(("H_init", "L_init", "puzzle_emb.weights")) for k in raw)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(EMA_SHADOW, ARC_RUN / "all_config.yaml")
    msg = one_line(e.value)
    assert "EMA helper" in msg and "inner.H_init" in msg and "step_N" in msg
    line = refused(["info", EMA_SHADOW, "--config", ARC_RUN / "all_config.yaml"], FIX, capsys)
    assert "EMA helper" in line


# -----------------------------------------------------------------------------
# The ARC Prize verification layout

STAND_IN = '''"""STAND-IN for the official TinyRecursiveModels {name}, written by tests/test_checkpoint_layouts.py.

The ARC Prize verification folders carry a copy of the reference's trm.py and losses.py beside the
checkpoint. trm-edge must never import or execute them: if anything does, this file leaves a marker.
"""
import pathlib

pathlib.Path(__file__).with_name("{name}.EXECUTED").write_text("trm-edge imported or ran this file")
raise SystemExit("trm-edge must not import or run a checkpoint folder's .py files")
'''


def _reference_code(folder: Path) -> None:
    """trm.py and losses.py beside the checkpoint: the real ones from TRM_REFERENCE_DIR, else stand-ins."""
    ref = os.environ.get("TRM_REFERENCE_DIR")
    for name, rel in (("trm.py", "models/recursive_reasoning/trm.py"), ("losses.py", "models/losses.py")):
        if ref and (Path(ref) / rel).is_file():
            shutil.copy(Path(ref) / rel, folder / name)
        else:
            (folder / name).write_text(STAND_IN.format(name=name))


@pytest.mark.parametrize("weights, config", [
    ("step_3", "all_config.yaml"),                                    # as the Hugging Face repo names them
    ("step_3?download=true", "all_config.yaml?download=true"),        # as `wget URL?download=true` saves them
    ("model.pt", "all_config.yaml"),                                  # one weights file, other names
    ("model.pth", "all_config.yaml"),
    ("pytorch_model.bin", "all_config.yaml"),
], ids=["step_N", "wget_names", "pt", "pth", "bin"])
def test_arc_prize_verification_folder(weights, config, tmp_path, monkeypatch, capsys):
    root = tmp_path / "TinyRecursiveModels"               # the user's checkout: data/ built there
    shutil.copytree(ARC_DATA, root / "data" / ARC_DATA.name)
    folder = root / "ckpt" / "arc_v1_public"
    folder.mkdir(parents=True)
    shutil.copy(ARC_RUN / "step_3", folder / weights)
    shutil.copy(ARC_RUN / "all_config.yaml", folder / config)
    _reference_code(folder)
    monkeypatch.chdir(tmp_path)
    modules = set(sys.modules)
    m = load_checkpoint(folder)
    assert Path(m.metadata["source"]).name == weights
    assert_official_outputs(m, "arc_step_3")
    assert_info(info_json([folder], capsys), "arc_run", **ARC_CONFIG)
    new = {n for n in set(sys.modules) - modules
           if str(tmp_path) in str(getattr(sys.modules[n], "__file__", "") or "")}
    assert not new, f"imported from the checkpoint folder: {new}"
    assert not list(folder.glob("*.EXECUTED"))


def test_folder_with_several_weights_files_asks_for_one(tmp_path, capsys):
    shutil.copy(EMA_MODEL, tmp_path / "a.pt")
    shutil.copy(EMA_MODEL, tmp_path / "b.pt")
    shutil.copy(ARC_RUN / "all_config.yaml", tmp_path / "all_config.yaml")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path)
    assert "a.pt, b.pt" in one_line(e.value)
    refused(["info", tmp_path], tmp_path, capsys)


# -----------------------------------------------------------------------------
# Other architectures: one line saying what the file is

def _lightning_checkpoint(state_dict: dict) -> dict:
    """What PyTorch Lightning 2.x's trainer.save_checkpoint writes (its keys; plain values)."""
    return {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.5.1", "state_dict": state_dict,
            "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4}}}},
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {"best_model_score": torch.tensor(0.3)}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}],
            "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": {"lr": 1e-3, "hidden": 8}}


UNRELATED = {"conv1.weight": torch.zeros(4, 3, 3, 3), "bn1.running_mean": torch.zeros(4),
             "fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}


@pytest.mark.parametrize("case", ["hrm_folder", "hrm_file", "hrm_file_trm_config", "lightning", "unrelated",
                                  "lightning_pickled_classes"])
def test_other_architecture_is_one_line(case, tmp_path, monkeypatch, capsys):
    config = None
    if case == "hrm_folder":
        path, says = HRM_RUN, "HRM checkpoint"
    elif case == "hrm_file":
        path, says = tmp_path / "step_1", "HRM checkpoint"
        shutil.copy(HRM_RUN / "step_1", path)                   # no config beside it
    elif case == "hrm_file_trm_config":
        path, config, says = HRM_RUN / "step_1", SUDOKU_RUN / "all_config.yaml", "HRM checkpoint"
    elif case == "lightning":
        path, says = tmp_path / "epoch=3-step=120.ckpt", "PyTorch Lightning checkpoint"
        torch.save(_lightning_checkpoint(UNRELATED), path)
    elif case == "unrelated":
        path, says = tmp_path / "resnet.pth", "none is a TRM weight"
        torch.save(UNRELATED, path)
    else:                   # hyper_parameters kept as Lightning's AttributeDict: weights_only cannot load it
        module = types.ModuleType("lightning.fabric.utilities.data")

        class AttributeDict(dict):
            pass
        AttributeDict.__module__, AttributeDict.__qualname__ = module.__name__, "AttributeDict"
        module.AttributeDict = AttributeDict
        for name in ("lightning", "lightning.fabric", "lightning.fabric.utilities"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        monkeypatch.setitem(sys.modules, module.__name__, module)
        path, says = tmp_path / "last.ckpt", "PyTorch Lightning checkpoint"
        torch.save({**_lightning_checkpoint(UNRELATED), "hyper_parameters": AttributeDict(lr=1e-3)}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, config)
    msg = one_line(e.value)
    assert says in msg and "not a TRM checkpoint" in msg, msg
    line = refused(["info", path] + (["--config", config] if config else []), tmp_path, capsys)
    assert says in line


def test_lightning_checkpoint_holding_a_trm_loads(tmp_path):
    """A Lightning module whose `model` is the official TRM: its state_dict is a TRM's."""
    raw = torch.load(ARC_RUN / "step_3", weights_only=True)
    sd = {"model." + k[len("_orig_mod.model."):]: v for k, v in raw.items()}
    f = tmp_path / "last.ckpt"
    torch.save(_lightning_checkpoint(sd), f)
    assert_official_outputs(load_checkpoint(f, ARC_RUN / "all_config.yaml"), "arc_step_3")


@pytest.mark.parametrize("variant, says", [
    ("trm_singlez", "single-z TRM variant"),
    ("trm_hier6", "six-level TRM variant"),
    ("transformers_baseline", "Transformer baseline"),
])
def test_the_official_repos_other_variants_are_named(variant, says, tmp_path):
    """The official repo's other models, as their keys differ from the TRM's (see its config/arch/)."""
    raw = torch.load(ARC_RUN / "step_3", weights_only=True)
    p = "_orig_mod.model.inner."
    if variant == "trm_singlez":
        raw.pop(p + "H_init")
    elif variant == "trm_hier6":
        raw.update({f"{p}L{i}_init": raw[p + "L_init"] for i in range(1, 7)})
        raw.pop(p + "L_init")
    else:
        raw = {k.replace(".L_level.", ".H_level."): v for k, v in raw.items() if k != p + "L_init"}
    f = tmp_path / "step_9"
    torch.save(raw, f)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(f, ARC_RUN / "all_config.yaml")
    msg = one_line(e.value)
    assert says in msg and "not a TRM checkpoint" in msg, msg


def test_all_config_naming_another_architecture_is_refused(tmp_path):
    """The run folder's all_config.yaml names the model class: one of the repo's other models is refused
    even where its keys would fit."""
    run = shutil.copytree(ARC_RUN, tmp_path / "run")
    cfg = run / "all_config.yaml"
    cfg.write_text(cfg.read_text().replace("recursive_reasoning.trm@", "recursive_reasoning.trm_singlez@"))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(run, cfg)
    msg = one_line(e.value)
    assert "recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1" in msg and "not a TRM" in msg
