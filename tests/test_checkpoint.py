"""Checkpoint import: reference files, pretrain.py checkpoints, our safetensors; clear errors."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
import yaml

from trm_edge.checkpoint import load_checkpoint, save_checkpoint, to_reference_keys
from trm_edge.errors import CheckpointError, ConfigError


def _as_pretrain_dir(golden, tmp_path, prefix="_orig_mod.model.", with_dataset=True):
    """The fixture rewritten the way pretrain.py writes it: step_N, prefixed keys, bf16 inits, all_config.yaml."""
    sd = torch.load(golden.state_dict_path, weights_only=True)
    sd = {prefix + k: (v.to(torch.bfloat16) if k.endswith(("H_init", "L_init")) else v) for k, v in sd.items()}
    d = tmp_path / "ckpt"
    d.mkdir()
    torch.save(sd, d / "step_1000")
    torch.save({}, d / "step_20")   # an older step: the newest must be taken
    arch = {k: v for k, v in golden.config.items()
            if k not in ("batch_size", "seq_len", "vocab_size", "num_puzzle_identifiers")}
    cfg = {"arch": {"name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1",
                    "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}, **arch},
           "data_paths": ["data/set"], "global_batch_size": 768, "lr": 1e-4}
    (d / "all_config.yaml").write_text(yaml.safe_dump(cfg))
    if with_dataset:
        meta = d / "data" / "set" / "train"
        meta.mkdir(parents=True)
        (meta / "dataset.json").write_text(json.dumps({k: golden.config[k] for k in
                                                       ("seq_len", "vocab_size", "num_puzzle_identifiers")}))
    return d


@pytest.mark.parametrize("prefix", ["_orig_mod.model.", "model."])
def test_pretrain_checkpoint_matches_bf16_rounded_plain_model(golden, tmp_path, prefix):
    d = _as_pretrain_dir(golden, tmp_path, prefix)
    from_dir = load_checkpoint(d)                       # config from all_config.yaml + dataset.json
    from_file = load_checkpoint(d / "step_1000", d / "all_config.yaml")
    plain = golden.model()
    with torch.no_grad():
        plain.y_init.copy_(plain.y_init.bfloat16().float())
        plain.z_init.copy_(plain.z_init.bfloat16().float())
    assert from_dir.y_init.dtype == torch.float32
    ref = plain.rollout(golden["inputs"], golden["puzzle_identifiers"], steps=2)
    for m in (from_dir, from_file):
        out = m.rollout(golden["inputs"], golden["puzzle_identifiers"], steps=2)
        for k in ref:
            np.testing.assert_array_equal(out[k], ref[k])


def test_all_config_without_dataset_says_what_is_missing(golden, tmp_path):
    d = _as_pretrain_dir(golden, tmp_path, with_dataset=False)
    if golden.config["mlp_t"]:          # MLP-t: seq_len follows from the token-mixing weights
        assert load_checkpoint(d).config.seq_len == golden.config["seq_len"]
    else:
        with pytest.raises(ConfigError, match="seq_len"):
            load_checkpoint(d)


def test_missing_config_is_named(golden, tmp_path):
    f = tmp_path / "step_5"
    f.write_bytes(golden.state_dict_path.read_bytes())   # no config beside it
    with pytest.raises(ConfigError) as e:
        load_checkpoint(f)
    msg = str(e.value)
    assert "H_cycles" in msg and "L_cycles" in msg and "\n" not in msg


def test_config_inferred_from_shapes(golden):
    given = {k: golden.config[k] for k in ("H_cycles", "L_cycles", "halt_max_steps", "expansion",
                                            "num_heads", "pos_encodings", "seq_len")}
    m = load_checkpoint(golden.state_dict_path, given)
    for k in ("vocab_size", "hidden_size", "puzzle_emb_ndim", "num_puzzle_identifiers", "L_layers", "mlp_t"):
        assert getattr(m.config, k) == golden.config[k], k


def test_mismatched_checkpoint_names_the_keys(golden, tmp_path):
    sd = torch.load(golden.state_dict_path, weights_only=True)
    sd.pop("inner.lm_head.weight")
    sd["inner.bogus"] = torch.zeros(1)
    sd["inner.q_head.bias"] = torch.zeros(3)
    f = tmp_path / "bad.pt"
    torch.save(sd, f)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(f, golden.config)
    msg = str(e.value)
    assert "inner.lm_head.weight" in msg and "inner.bogus" in msg and "inner.q_head.bias [3] vs [2]" in msg
    assert "\n" not in msg


def test_unsafe_pickle_is_refused(tmp_path):
    f = tmp_path / "evil.pt"
    f.write_bytes(pickle.dumps({"x": object()}))
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(f, {"seq_len": 4, "vocab_size": 4})


def test_own_format_round_trip(golden, tmp_path):
    m = golden.model()
    p = save_checkpoint(m, tmp_path / "m.safetensors", task={"name": "sudoku", "size": 9})
    assert not list(tmp_path.glob("*.tmp"))
    m2 = load_checkpoint(p)                       # config from the file's metadata
    assert m2.config == m.config
    assert m2.metadata["task"] == {"name": "sudoku", "size": 9}
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert load_checkpoint(tmp_path).config == m.config      # a directory with one .safetensors


def test_truncated_safetensors(golden, tmp_path):
    p = save_checkpoint(golden.model(), tmp_path / "m.safetensors")
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(p)


def test_reference_keys_round_trip(golden):
    sd = torch.load(golden.state_dict_path, weights_only=True)
    ours = golden.model().state_dict()
    assert set(to_reference_keys(ours)) == set(sd)
