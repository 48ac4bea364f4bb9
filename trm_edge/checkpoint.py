"""Checkpoints in, a TRM out: the reference's files and our own.

Reads
  - a bare reference state_dict (`inner.*` keys),
  - a `pretrain.py` checkpoint `step_N` (keys prefixed `_orig_mod.model.` or `model.`, H_init/L_init
    in bf16), or a run folder holding one (the newest `step_N`) beside its `all_config.yaml` (the
    dataset's `train/dataset.json`, named by its `data_paths`, is looked for beside the folder, up to
    three folders above it, and in the current folder),
  - the ARC Prize verification layout: such a folder that also holds copies of the reference's
    `trm.py` / `losses.py` (never imported or run here: only tensors are read, with weights_only),
    its files possibly named as `wget URL?download=true` saves them,
  - a bare state dict saved with torch.save (`.pt`/`.pth`/`.bin`, e.g. an EMA model's), given the
    config, or the only such file of a folder, or one held under 'model'/'state_dict',
  - our own format: one `.safetensors` file whose metadata carries the config (and the task).
Torch files are loaded with `weights_only=True`. A file of another architecture (an HRM, the
official repo's other variants, a PyTorch Lightning checkpoint of another model, an unrelated state
dict, an EMA helper's parameters-only dict) is refused in one line saying what it is. Everything
else that does not fit raises a CheckpointError/ConfigError with one line naming the keys and the fix.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from trm_edge.atomic import atomic_write  # noqa: F401 (one atomic writer for the package)
from trm_edge.errors import CheckpointError, ConfigError
from trm_edge.model import TRM, TRMConfig

FORMAT = "trm-edge/1"

# reference key <-> our key; {i} is a block index
_KEY_PAIRS = [
    ("inner.H_init", "y_init"),
    ("inner.L_init", "z_init"),
    ("inner.embed_tokens.embedding_weight", "token_emb.weight"),
    ("inner.embed_pos.embedding_weight", "pos_emb.weight"),
    ("inner.puzzle_emb.weights", "puzzle_emb"),
    ("inner.lm_head.weight", "lm_head.weight"),
    ("inner.q_head.weight", "q_head.weight"),
    ("inner.q_head.bias", "q_head.bias"),
    ("inner.L_level.layers.{i}.self_attn.qkv_proj.weight", "net.blocks.{i}.attn.qkv.weight"),
    ("inner.L_level.layers.{i}.self_attn.o_proj.weight", "net.blocks.{i}.attn.out.weight"),
    ("inner.L_level.layers.{i}.mlp_t.gate_up_proj.weight", "net.blocks.{i}.token_mlp.gate_up.weight"),
    ("inner.L_level.layers.{i}.mlp_t.down_proj.weight", "net.blocks.{i}.token_mlp.down.weight"),
    ("inner.L_level.layers.{i}.mlp.gate_up_proj.weight", "net.blocks.{i}.mlp.gate_up.weight"),
    ("inner.L_level.layers.{i}.mlp.down_proj.weight", "net.blocks.{i}.mlp.down.weight"),
]
_WRAPPER_PREFIXES = ("_orig_mod.", "model.")   # torch.compile wrapper, ACTLossHead


def _rename(key: str, src: int) -> str | None:
    for pair in _KEY_PAIRS:
        pattern = "^" + re.escape(pair[src]).replace(r"\{i\}", r"(\d+)") + "$"
        m = re.match(pattern, key)
        if m:
            return pair[1 - src].replace("{i}", m.group(1)) if m.groups() else pair[1 - src]
    return None


def from_reference_keys(state: dict) -> dict:
    """Strip pretrain.py's wrapper prefixes and rename `inner.*` keys to ours (unknown keys kept as they are)."""
    out = {}
    for key, value in state.items():
        while not key.startswith("inner.") and key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[_rename(key, 0) or key] = value
    return out


def to_reference_keys(state: dict) -> dict:
    """Our keys -> the reference's `inner.*` keys (for checkpoints the official code should load)."""
    return {_rename(k, 1) or k: v for k, v in state.items()}


# -----------------------------------------------------------------------------
# Reading files

_WGET_TAIL = "?download=true"     # `wget https://huggingface.co/.../step_N?download=true` keeps it in the name
_STEP_NAME = re.compile(r"step_(\d+)(?:" + re.escape(_WGET_TAIL) + ")?")
_CONFIG_NAMES = ("config.json", "all_config.yaml", "all_config.yaml" + _WGET_TAIL)
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def _plain_name(name: str) -> str:
    """A file name without the `?download=true` tail wget leaves on Hugging Face downloads."""
    return name[:-len(_WGET_TAIL)] if name.endswith(_WGET_TAIL) else name


def _newest_step_file(d: Path) -> Path | None:
    """pretrain.py's newest `step_N` (not its `step_N_all_preds.R` prediction dumps)."""
    steps = [(int(m.group(1)), p) for p in d.iterdir() for m in [_STEP_NAME.fullmatch(p.name)] if m and p.is_file()]
    return max(steps, key=lambda t: t[0])[1] if steps else None


def _weights_in(d: Path) -> Path:
    """The weights file of a folder: model.safetensors, a .safetensors, the newest step_N, or its only
    .pt/.pth/.bin file. Other files (all_config.yaml, the reference's trm.py / losses.py that the ARC
    Prize verification folders carry, the dataset) are never read as weights, and .py files never run."""
    for candidate in [d / "model.safetensors", *sorted(d.glob("*.safetensors")), _newest_step_file(d)]:
        if candidate is not None and candidate.is_file():
            return candidate
    torch_files = sorted(p for p in d.iterdir() if _plain_name(p.name).endswith(_TORCH_SUFFIXES) and p.is_file())
    if len(torch_files) == 1:
        return torch_files[0]
    if torch_files:
        names = ", ".join(p.name for p in torch_files[:4]) + (", ..." if len(torch_files) > 4 else "")
        raise CheckpointError(f"directory {d} holds {len(torch_files)} weights files ({names}) and no step_N; "
                              f"pass the one to load")
    raise CheckpointError(f"directory {d} holds no model.safetensors, *.safetensors, step_N or .pt/.pth/.bin "
                          f"file; pass the checkpoint file itself")


def _resolve(path: Path) -> tuple[Path, Path | None]:
    """The weights file, and a config file found beside it (or None)."""
    from trm_edge.outdir import show
    try:
        exists = path.exists()
    except (OSError, ValueError) as e:   # a NUL in the name, a name too long, a loop of symlinks
        raise CheckpointError(f"cannot look at checkpoint path {str(path)[:200]!r} ({_first_line(e)}); "
                              f"pass a .safetensors file, a step_N file or its directory") from None
    if not exists:
        raise CheckpointError(f"no checkpoint at {show(path)}; pass a .safetensors file, a step_N file or its directory")
    if not (path.is_file() or path.is_dir()):
        raise CheckpointError(f"{show(path)} is not a regular file or a directory; pass a .safetensors file, "
                              f"a step_N file or its directory")
    d = path if path.is_dir() else path.parent
    try:
        beside = next((d / n for n in _CONFIG_NAMES if (d / n).is_file()), None)
        return (path if path.is_file() else _weights_in(d)), beside
    except OSError as e:
        raise CheckpointError(f"cannot read the directory {path} ({_first_line(e)}); check its permissions") from None


def _first_line(e: BaseException, limit: int = 160) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:limit]


def _is_safetensors(f: Path) -> bool:
    """The file starts like safetensors (an 8-byte header length, then a JSON object)."""
    try:
        with open(f, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def _read_tensors(f: Path) -> tuple[dict, dict]:
    """state dict and metadata (ours carries config/task in the safetensors header)."""
    if f.suffix == ".safetensors" or _is_safetensors(f):
        from safetensors import safe_open
        try:
            with safe_open(str(f), framework="pt") as sf:
                meta = dict(sf.metadata() or {})
                return {k: sf.get_tensor(k) for k in sf.keys()}, meta
        except Exception as e:   # SafetensorError, OSError, ValueError, RuntimeError: a bad or cut file
            raise CheckpointError(f"cannot read {f} as safetensors ({_first_line(e)}); is the file truncated? "
                                  f"copy it again or re-save it with save_checkpoint") from None
    try:
        obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:   # pickle errors come in many types; all mean the same to the user
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = lines[0] if lines else type(e).__name__
        at = next((i for i, ln in enumerate(lines) if "Unpickler error" in ln), None)
        if at is not None:      # torch's long weights_only notice: keep only the reason it gives
            rest = lines[at].split("Unpickler error:", 1)[-1].strip()
            why = rest or (lines[at + 1] if at + 1 < len(lines) else why)
        if re.search(r"\b(pytorch_)?lightning\.", why):   # a Lightning module pickled with its classes
            raise CheckpointError(f"{f} is a PyTorch Lightning checkpoint that pickles Lightning objects ({why[:120]}), "
                                  f"not a TRM checkpoint that loads with weights_only; if it holds a TRM and you trust "
                                  f"the file, save its state_dict alone (torch.save(ckpt['state_dict'], 'trm.pt')) "
                                  f"and load that") from None
        raise CheckpointError(f"cannot read {f}: it is neither .safetensors nor a torch checkpoint that loads "
                              f"with weights_only=True ({why[:160]})") from None
    if isinstance(obj, dict) and "pytorch-lightning_version" in obj:
        obj = _from_lightning(f, obj)
    elif isinstance(obj, dict) and not _is_state_dict(obj):   # {"model": state_dict, "optimizer": ...}
        obj = next((obj[k] for k in _STATE_KEYS if isinstance(obj.get(k), dict)), obj)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{f} is not a state_dict (a dict of names to tensors) but a {type(obj).__name__}; "
                              f"save model.state_dict() instead")
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{f} is a dict but no state_dict: its entry {_short(k)} is a {type(v).__name__}, "
                                  f"not a tensor named by a string; save model.state_dict() instead")
    return obj, {}


_STATE_KEYS = ("model", "state_dict", "model_state_dict")   # where training scripts keep the weights


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in obj.items())


def _from_lightning(f: Path, ckpt: dict) -> dict:
    """A PyTorch Lightning checkpoint's state_dict when it holds a TRM, else a one-line refusal."""
    sd = ckpt.get("state_dict")
    if _is_state_dict(sd) and _looks_like_trm(from_reference_keys(sd)):
        return sd
    version = ckpt.get("pytorch-lightning_version")
    version = version[:20] if isinstance(version, str) else _short(version)
    what = (f"its state_dict holds {len(sd)} tensors such as {_examples(sd)}" if _is_state_dict(sd)
            else "no state_dict of tensors")
    raise CheckpointError(f"{f} is a PyTorch Lightning checkpoint (pytorch-lightning_version {version}; "
                          f"{what}), not a TRM checkpoint: trm-edge reads the official TRM code's step_N files and "
                          f"state dicts and its own .safetensors")


def _examples(keys, n: int = 3) -> str:
    keys = list(keys)
    return ", ".join(repr(k) for k in keys[:n]) + (", ..." if len(keys) > n else "")


# -----------------------------------------------------------------------------
# Which architecture a state dict holds

_TRM_CLASS = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
# the official repo's other models (config/arch/*.yaml): not the TRM, whatever their keys
_OTHER_ARCHS = {
    "hrm": "an HRM checkpoint (Hierarchical Reasoning Model)",
    "trm_singlez": "a checkpoint of the single-z TRM variant (trm_singlez)",
    "trm_hier6": "a checkpoint of the six-level TRM variant (trm_hier6)",
    "transformers_baseline": "a checkpoint of the official repo's Transformer baseline (Model_ACTV2)",
}
_ONLY_TRM = f"trm-edge loads the TRM ({_TRM_CLASS}) only"


def _looks_like_trm(sd: dict) -> bool:
    """The weights every TRM has (in our names), present."""
    return (all(k in sd for k in ("token_emb.weight", "lm_head.weight", "q_head.weight"))
            and any(k.startswith("net.blocks.") for k in sd))


def _is_trm_key(k: str) -> bool:
    return _rename(k, 1) is not None


def _check_architecture(f: Path, raw: dict, sd: dict, arch: str | None) -> None:
    """A one-line CheckpointError when the file holds another model than a TRM (`sd`: `raw` renamed to
    our keys; `arch`: the arch.name of its all_config.yaml, if any)."""
    inner = {re.sub(r"^.*?\binner\.", "inner.", k) for k in raw if "inner." in k}
    named = f"; its all_config.yaml names {arch}" if arch and arch != _TRM_CLASS else ""
    module = arch.split("@")[0].rsplit(".", 1)[-1] if arch else None
    if any(k.startswith("inner.H_level.") for k in inner):
        if any(k.startswith("inner.L_level.") for k in inner):
            what, why = _OTHER_ARCHS["hrm"], "inner.H_level.* blocks beside inner.L_level.*, where a TRM has one network"
        else:
            what, why = _OTHER_ARCHS["transformers_baseline"], "inner.H_level.* blocks and no inner.L_level"
        raise CheckpointError(f"{f} is {what}, not a TRM checkpoint (it has {why}{named}); {_ONLY_TRM}")
    if any(re.fullmatch(r"inner\.L\d+_init", k) for k in inner):
        raise CheckpointError(f"{f} is {_OTHER_ARCHS['trm_hier6']}, not a TRM checkpoint (it has inner.L1_init ... "
                              f"buffers{named}); {_ONLY_TRM}")
    if _looks_like_trm(sd) and "y_init" not in sd and "z_init" in sd:
        raise CheckpointError(f"{f} is {_OTHER_ARCHS['trm_singlez']}, not a TRM checkpoint (it has inner.L_init "
                              f"without inner.H_init{named}); {_ONLY_TRM}")
    if module in _OTHER_ARCHS:
        raise CheckpointError(f"{f} is {_OTHER_ARCHS[module]}, not a TRM checkpoint (its all_config.yaml names "
                              f"{arch}); {_ONLY_TRM}")
    if not any(_is_trm_key(k) for k in sd):
        raise CheckpointError(f"{f} holds {len(sd)} tensors and none is a TRM weight (such as {_examples(raw)}{named}): "
                              f"it is not a TRM checkpoint (neither the official code's inner.* names, bare or under "
                              f"_orig_mod.model., nor trm-edge's); pass a TRM checkpoint")
    if _looks_like_trm(sd) and "y_init" not in sd and "z_init" not in sd and "puzzle_emb" not in sd:
        raise CheckpointError(f"{f} holds a TRM's trained parameters but none of its buffers (inner.H_init / "
                              f"inner.L_init, the initial y and z drawn at random per run, nor the puzzle table "
                              f"inner.puzzle_emb.weights): it is an EMA helper's own dict (EMAHelper.state_dict(), "
                              f"parameters only), which cannot run alone; load the step_N file pretrain.py saved "
                              f"(with ema: True it holds the EMA weights) or save ema_helper.ema_copy(model).state_dict()")


def _json_meta(f: Path, meta: dict, key: str, want=None):
    """One JSON value of the safetensors metadata, or a CheckpointError."""
    try:
        value = json.loads(meta[key])
    except (ValueError, TypeError, RecursionError) as e:
        raise CheckpointError(f"{f}: its metadata '{key}' is not JSON ({_first_line(e, 80)}); "
                              f"re-save the model with save_checkpoint") from None
    if want is not None and not isinstance(value, want):
        raise CheckpointError(f"{f}: its metadata '{key}' is a {type(value).__name__}, not a JSON object; "
                              f"re-save the model with save_checkpoint")
    return value


def read_config_file(p: str | os.PathLike) -> dict:
    """config.json (the reference model dict, or ours) or pretrain.py's all_config.yaml."""
    return _read_config(p)[0]


_DATASET_LEVELS = 3   # pretrain.py's run folders sit at checkpoints/<project>/<run>/ below the data/ it read


def _read_config(p: str | os.PathLike) -> tuple[dict, dict]:
    """The model fields of a config file, and what an all_config.yaml says besides: {'arch': arch.name,
    'data_paths': [...], 'dataset': the train/dataset.json read, or None}."""
    p = Path(p)
    try:
        is_file = p.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        raise ConfigError(f"no config file at {p}; pass a config.json or all_config.yaml")
    try:
        if Path(_plain_name(p.name)).suffix in (".yaml", ".yml"):
            import yaml
            d = yaml.safe_load(p.read_text(encoding="utf-8"))
        else:
            d = json.loads(p.read_text(encoding="utf-8"))
    except Exception as e:
        raise ConfigError(f"cannot parse config {p}: {_first_line(e, 120)}; fix the file or pass another config") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config {p} is a {type(d).__name__}, not a mapping of keys to values; "
                          f"fix the file or pass another config")
    info = {"arch": None, "data_paths": [], "dataset": None}
    if "arch" in d:   # all_config.yaml: the model fields are arch's extras; seq_len/vocab come from the dataset
        if not isinstance(d["arch"], dict):
            raise ConfigError(f"config {p}: 'arch' is a {type(d['arch']).__name__}, not a mapping; "
                              f"pass pretrain.py's all_config.yaml as it wrote it")
        name = d["arch"].get("name")
        info["arch"] = name if isinstance(name, str) else None
        arch = {k: v for k, v in d["arch"].items() if k not in ("name", "loss")}
        data_paths = d.get("data_paths") or []
        if isinstance(data_paths, str):
            data_paths = [data_paths]
        if not isinstance(data_paths, list):
            raise ConfigError(f"config {p}: 'data_paths' is a {type(data_paths).__name__}, not a list of folders")
        info["data_paths"] = [x for x in data_paths if isinstance(x, str)]
        here = p.absolute().parent
        bases = list(dict.fromkeys([here, *list(here.parents)[:_DATASET_LEVELS], Path.cwd()]))
        for data_path in info["data_paths"]:
            for base in bases:
                meta = base / data_path / "train" / "dataset.json"
                try:
                    if not meta.is_file():
                        continue
                    m = json.loads(meta.read_text(encoding="utf-8"))
                except (OSError, ValueError, RecursionError) as e:
                    raise ConfigError(f"cannot read {meta} (named by {p}'s data_paths): {_first_line(e, 80)}; "
                                      f"fix it or pass a config with seq_len and vocab_size") from None
                if isinstance(m, dict):
                    info["dataset"] = info["dataset"] or meta
                    for k in ("seq_len", "vocab_size", "num_puzzle_identifiers"):
                        if k in m:
                            arch.setdefault(k, m[k])
        d = arch
    return d, info


def _infer_from_shapes(sd: dict) -> dict:
    """What the tensors say about the config."""
    got = {}
    if "token_emb.weight" in sd:
        got["vocab_size"], got["hidden_size"] = sd["token_emb.weight"].shape
    if "puzzle_emb" in sd:
        got["num_puzzle_identifiers"], got["puzzle_emb_ndim"] = sd["puzzle_emb"].shape
    else:
        got["puzzle_emb_ndim"] = 0
    blocks = {int(m.group(1)) for k in sd for m in [re.match(r"net\.blocks\.(\d+)\.", k)] if m}
    if blocks:
        got["L_layers"] = max(blocks) + 1
    got["mlp_t"] = any(".token_mlp." in k for k in sd)
    if "pos_emb.weight" in sd:
        got["pos_encodings"] = "learned"
    elif got["mlp_t"]:
        got["pos_encodings"] = "none"
    return got


# needed to build the network, and not recoverable from tensor shapes
_NOT_IN_SHAPES = ("H_cycles", "L_cycles", "halt_max_steps", "expansion")


def _build_config(given: dict, sd: dict, source: str, hint: str = "") -> TRMConfig:
    inferred = _infer_from_shapes(sd)
    if not isinstance(given, dict):
        raise ConfigError(f"the config for {source} is a {type(given).__name__}, not a mapping of keys to values; "
                          f"pass a dict, a TRMConfig or a config file")
    d = {**inferred, **given}
    try:
        d.update(TRMConfig.check_values(d))   # types and bounds first, before any arithmetic below
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    if d.get("mlp_t") and "seq_len" not in d and "net.blocks.0.token_mlp.down.weight" in sd:
        P = d.get("puzzle_emb_len", 16) if d.get("puzzle_emb_ndim") else 0
        if d.get("puzzle_emb_ndim") and P == 0 and d.get("hidden_size"):   # 0: as many as the row needs
            P = -(d["puzzle_emb_ndim"] // -d["hidden_size"])
        d["seq_len"] = sd["net.blocks.0.token_mlp.down.weight"].shape[0] - P
    needed = list(_NOT_IN_SHAPES) + ["seq_len", "vocab_size"]
    if not d.get("mlp_t"):
        needed += ["num_heads", "pos_encodings"]
    missing = [k for k in needed if k not in d]
    if missing:
        raise ConfigError(f"{source} does not say {', '.join(missing)} and its tensors cannot tell; "
                          f"{hint or 'pass a config (all_config.yaml, config.json or a dict) that has them'}")
    try:
        return TRMConfig.from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _config_arg(config) -> tuple[dict | None, dict]:
    """The config given (None: none) and, for an all_config.yaml, what it says besides (see _read_config)."""
    none = {"arch": None, "data_paths": [], "dataset": None}
    if config is None or isinstance(config, dict):
        return config, none
    if isinstance(config, TRMConfig):
        return config.to_dict(), none
    if isinstance(config, (str, os.PathLike)) and str(config):
        return _read_config(config)
    raise ConfigError(f"config={_short(config)} is neither a dict, a TRMConfig nor a path to a config file; "
                      f"pass one of those (or nothing, for checkpoints that carry their config)")


def _short(v) -> str:
    r = repr(v).replace("\n", " ")
    return r if len(r) <= 40 else r[:37] + "..."


def _all_finite(t: torch.Tensor) -> bool:
    flat = t.reshape(-1)
    return all(bool(torch.isfinite(part).all()) for part in flat.split(1 << 24))


def load_checkpoint(path, config=None) -> TRM:
    """A float32 TRM in eval mode from any supported checkpoint; `model.metadata` holds what the file said."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise CheckpointError(f"load_checkpoint takes the path of a checkpoint, got {_short(path)}; "
                              f"pass a .safetensors file, a step_N file or its directory")
    f, beside = _resolve(Path(path))
    given, info = _config_arg(config)
    raw, meta = _read_tensors(f)
    if not raw:
        raise CheckpointError(f"{f} holds no tensors; pass a checkpoint with the model's weights")
    reference_names = any(k.startswith("inner.") or ".inner." in k for k in raw)
    if given is None and "config" in meta:
        given = _json_meta(f, meta, "config")
    if given is None and beside is not None:
        given, info = _read_config(beside)
    renamed = from_reference_keys(raw)
    _check_architecture(f, raw, renamed, info["arch"])
    sd = {k: v.float() if v.is_floating_point() else v for k, v in renamed.items()}
    hint = ""
    if info["data_paths"] and info["dataset"] is None:
        hint = (f"seq_len and vocab_size come from the dataset its all_config.yaml names "
                f"({', '.join(map(repr, info['data_paths'][:2]))}): put that folder (with train/dataset.json) "
                f"beside the run folder or up to {_DATASET_LEVELS} folders above it, or run from the folder that "
                f"holds it, or pass a full config (config.json with seq_len) with --config")
    cfg = _build_config(given or {}, sd, str(path), hint)

    try:
        model = TRM(cfg)
    except (RuntimeError, MemoryError) as e:
        raise ConfigError(f"cannot build the network for {f} ({_first_line(e, 80)}); check the config's sizes") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    misshaped = [f"{k} {list(sd[k].shape)} vs {list(v.shape)}" for k, v in expected.items()
                 if k in sd and sd[k].shape != v.shape]
    if reference_names:   # name keys the way the file does
        missing, extra = sorted(to_reference_keys(dict.fromkeys(missing))), sorted(to_reference_keys(dict.fromkeys(extra)))
        misshaped = [" ".join([_rename(m.split()[0], 1) or m.split()[0], *m.split()[1:]]) for m in misshaped]
    if missing or extra or misshaped:
        parts = [f"{name} {items}" for name, items in
                 (("missing keys", missing), ("unexpected keys", extra), ("misshaped (file vs config)", misshaped)) if items]
        raise CheckpointError(f"{f} does not fit the config: " + "; ".join(parts))
    named = (lambda k: _rename(k, 1) or k) if reference_names else (lambda k: k)
    not_float = [k for k, v in sd.items() if not v.is_floating_point()]
    if not_float:
        raise CheckpointError(f"{f}: tensors {[named(k) for k in not_float[:4]]} are {sd[not_float[0]].dtype}, "
                              f"not floating point; a TRM's weights are floats: re-save the model")
    not_finite = [named(k) for k, v in sd.items() if not _all_finite(v)]
    if not_finite:
        raise CheckpointError(f"{f}: tensors {not_finite[:4]} hold NaN or infinity (a diverged training run?); "
                              f"use an earlier checkpoint")
    model.load_state_dict(sd)
    model.eval()
    extras = {}
    if "task" in meta:
        extras["task"] = _json_meta(f, meta, "task", (dict, type(None)))
        name = (extras["task"] or {}).get("name")
        if extras["task"] is not None and not isinstance(name, str):
            raise CheckpointError(f"{f}: its metadata 'task' names no task ('name' is {_short(name)}); "
                                  f"re-save with save_checkpoint(..., task={{'name': 'sudoku', 'size': 9}})")
    if "training" in meta:
        extras["training"] = _json_meta(f, meta, "training")
    model.metadata = {"source": str(f), **extras}
    return model


# -----------------------------------------------------------------------------
# Writing our format

def save_checkpoint(model: TRM, path, task: dict | None = None, training: dict | None = None) -> Path:
    """One .safetensors file: the state dict (float32) with the config (and task, training notes) as metadata."""
    from safetensors.torch import save_file
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: our checkpoints end in .safetensors")
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(model.config.to_dict())}
    if task is not None:
        meta["task"] = json.dumps(task)
    if training is not None:
        meta["training"] = json.dumps(training)
    atomic_write(path, lambda tmp: save_file(sd, tmp, metadata=meta))
    return path
