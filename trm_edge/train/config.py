"""Training configuration: a plain dataclass read from YAML (`models/*.yaml`).

`TrainConfig.validate()` checks every field (type and range) and is called by `from_yaml` and by
`train()`, so a bad value is one `ConfigError` line naming the key and the fix, before any folder
is made, whether the config came from a file or from Python.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from trm_edge.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
AUTOCAST = ("auto", "bf16", "fp32")
ATTENTION = ("sdpa", "math")        # trm_edge.model.attend's kernels
from trm_edge.data import TASKS  # noqa: E402  (the tasks table)


@dataclass
class TrainConfig:
    model: dict                          # TRMConfig fields; seq_len, vocab_size, table size come from the data
    data: str                            # dataset folder in the reference's format (train/ and test/)
    task: dict | None = None             # {"name": "sudoku", "size": 9}: augmentation, checker, metadata
    out: str = "runs/trm"                # checkpoints, metrics.jsonl, the exported model
    init: str | None = None              # start from this checkpoint's weights (fine-tuning); a resume ignores it
    widen: bool = False                  # init has half this hidden_size: its channels are doubled (train/widen.py)
    global_batch_size: int = 768
    steps: int | None = None             # total optimizer steps (or derive them from epochs)
    epochs: int | None = None
    max_minutes: float | None = None     # stop (after a checkpoint) when the wall clock says so
    lr: float = 1e-4
    lr_min_ratio: float = 1.0            # 1.0: constant after warm-up (the published runs)
    lr_warmup_steps: int = 2000
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    ema: bool = True
    ema_rate: float = 0.999
    ema_warmup: bool = False             # rate min(ema_rate, (1+t)/(10+t)): for short runs (not in the reference)
    augment: bool = False                # a fresh random symmetry per drawn example (Sudoku, Maze)
    curriculum_steps: int = 0            # easiest-first: the share of groups in play grows ...
    curriculum_start: float = 1.0        # ... from this fraction to 1 over curriculum_steps
    autocast: str = "auto"               # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    attention: str = "sdpa"              # sdpa (torch's fused kernel) | math (explicit matmuls: faster in bf16 with AMX)
    seed: int = 0
    checkpoint_every: int = 200          # steps
    eval_every: int = 0                  # steps; 0 = only at the end
    eval_puzzles: int = 200
    threads: int | None = None           # CPU threads per process
    compile: bool = False                # torch.compile the supervision step (~12% faster on this CPU)
    qat: bool = False                    # quantization-aware: every Linear sees static int8 rounding (train/qat.py)
    notes: dict = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path, **overrides) -> "TrainConfig":
        import yaml
        from trm_edge.outdir import show
        where = show(path)
        try:
            p = Path(path)
            is_file = p.is_file()
            size = p.stat().st_size if is_file else 0
        except (OSError, ValueError, TypeError):
            is_file = False
        if not is_file:
            raise ConfigError(f"no training config at {where}; give a YAML file (see models/*.yaml for examples)")
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{where} is {size:,} bytes, too big for a training config; give a YAML file "
                              f"like models/*.yaml")
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{where} is not UTF-8 text; give a YAML file like models/*.yaml") from None
        except OSError as e:
            raise ConfigError(f"cannot read {where}: {e.strerror or e}; check the path and permissions") from None
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot parse {where} as YAML: {_yaml_problem(e)}; fix the YAML "
                              f"(see models/*.yaml)") from None
        except (RecursionError, ValueError, TypeError, OverflowError) as e:
            raise ConfigError(f"cannot parse {where} as YAML ({type(e).__name__}); fix the YAML "
                              f"(see models/*.yaml)") from None
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise ConfigError(f"{where} holds a YAML {_kind(d)}, not a mapping of keys to values; "
                              f"write `key: value` lines (see models/*.yaml)")
        bad_keys = [k for k in d if not isinstance(k, str)]
        if bad_keys:
            raise ConfigError(f"{where}: key {_show(bad_keys[0])} is not a name; keys are names such as "
                              f"model, data, steps")
        d.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {_show(unknown)}; known keys are {sorted(known)}")
        for k in ("model", "data"):
            if k not in d:
                raise ConfigError(f"{where}: `{k}` is required")
        for f in fields(cls):   # YAML 1.1 reads 1e-4 as a string and 1.0e+3 as a float
            base = f.type.split(" ")[0]
            if d.get(f.name) is not None and base in ("float", "int"):
                d[f.name] = _number(d[f.name], base, f"{where}: {f.name}")
        cfg = cls(**d)
        return cfg.validate(where)

    def validate(self, where: str = "training config") -> "TrainConfig":
        """Check every field; normalise numbers to int/float. Raises ConfigError naming the key and the fix."""
        w = where

        def whole(name, lo, hi=None, optional=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ConfigError(f"{w}: {name} must be a whole number, got {_show(v)}")
            v = int(v)
            if v < lo or (hi is not None and v > hi):
                rng = f"a whole number of at least {lo}" if hi is None else f"a whole number from {lo} to {hi}"
                raise ConfigError(f"{w}: {name} {v} is out of range; give {rng}")
            setattr(self, name, v)

        def real(name, lo, hi=None, lo_open=False, hi_open=False, optional=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ConfigError(f"{w}: {name} must be a number, got {_show(v)}")
            v = float(v)
            below = v <= lo if lo_open else v < lo
            above = hi is not None and (v >= hi if hi_open else v > hi)
            if not math.isfinite(v) or below or above:
                a, b = ("(" if lo_open else "["), (")" if hi_open or hi is None else "]")
                rng = f"a number in {a}{lo}, {'inf' if hi is None else hi}{b}"
                raise ConfigError(f"{w}: {name} {v!r} is out of range; give {rng}")
            setattr(self, name, v)

        def flag(name):
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise ConfigError(f"{w}: {name} must be true or false, got {_show(v)}")

        for name in ("data", "out"):
            v = getattr(self, name)
            if isinstance(v, Path):
                v = str(v)
                setattr(self, name, v)
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"{w}: {name} must be a folder path, got {_show(v)}")
            if "\0" in v:
                raise ConfigError(f"{w}: {name} {_show(v)} holds a NUL character; give a folder path")
        if self.init is not None and (not isinstance(self.init, str) or not self.init.strip() or "\0" in self.init):
            raise ConfigError(f"{w}: init must be a checkpoint path, got {_show(self.init)}")
        _check_model(self.model, w)
        _check_task(self.task, w)
        whole("global_batch_size", 1, 1 << 20)
        whole("steps", 1, 10**12, optional=True)
        real("epochs", 0, lo_open=True, optional=True)
        if self.steps is None and self.epochs is None:
            raise ConfigError(f"{w}: give `steps` or `epochs`")
        real("max_minutes", 0, lo_open=True, optional=True)
        real("lr", 0, 10, lo_open=True)
        real("lr_min_ratio", 0, 1)
        whole("lr_warmup_steps", 0)
        real("beta1", 0, 1, hi_open=True)
        real("beta2", 0, 1, hi_open=True)
        real("weight_decay", 0)
        real("puzzle_emb_lr", 0, 10)
        real("puzzle_emb_weight_decay", 0)
        flag("ema")
        real("ema_rate", 0, 1, hi_open=True)
        flag("ema_warmup")
        flag("augment")
        whole("curriculum_steps", 0)
        real("curriculum_start", 0, 1)
        if self.autocast not in AUTOCAST:
            raise ConfigError(f"{w}: autocast {_show(self.autocast)} is not one of {', '.join(AUTOCAST)}")
        if self.attention not in ATTENTION:
            raise ConfigError(f"{w}: attention {_show(self.attention)} is not one of {', '.join(ATTENTION)}")
        whole("seed", 0, 2**63 - 1)
        whole("checkpoint_every", 1)
        whole("eval_every", 0)
        whole("eval_puzzles", 1)
        whole("threads", 1, 1024, optional=True)
        flag("compile")
        flag("qat")
        flag("widen")
        if self.widen and self.init is None:
            raise ConfigError(f"{w}: widen starts from a narrower checkpoint; give it as init")
        if not isinstance(self.notes, dict):
            raise ConfigError(f"{w}: notes must be a mapping, got {_show(self.notes)}")
        for f in fields(self):   # the config rides along in every checkpoint's metadata, as JSON
            try:
                json.dumps(getattr(self, f.name), allow_nan=False)
            except (TypeError, ValueError, RecursionError) as e:
                raise ConfigError(f"{w}: {f.name} cannot be stored as JSON ({_show(str(e))}); use plain numbers, "
                                  f"strings, lists and mappings") from None
        return self

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- helpers

def _show(v, limit: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def _kind(v) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(v), type(v).__name__)


def _yaml_problem(e) -> str:
    problem = getattr(e, "problem", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    mark = getattr(e, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{at}".split())


def _number(v, kind: str, what: str):
    """A YAML value as an int or float: numbers as they are, strings such as '1e-4' parsed; whole floats
    (1.0e+3) become ints where an int is wanted. Anything else is returned for validate() to refuse."""
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise ConfigError(f"{what} must be a number, got {_show(v)}") from None
    if kind == "int" and isinstance(v, float) and math.isfinite(v) and v == int(v):
        return int(v)
    if kind == "float" and isinstance(v, numbers.Integral):
        return float(v) if abs(v) < 1e300 else v
    return v


# TRMConfig fields a config may set (seq_len, vocab_size and num_puzzle_identifiers come from the data):
# name -> (type, low, high); None for no bound
MODEL_FIELDS = {
    "hidden_size": (int, 1, 16384), "num_heads": (int, 1, 1024), "expansion": (float, 0, 64),
    "L_layers": (int, 1, 256), "H_cycles": (int, 1, 256), "L_cycles": (int, 1, 256),
    "halt_max_steps": (int, 1, 1024), "halt_exploration_prob": (float, 0, 1),
    "puzzle_emb_ndim": (int, 0, 1 << 16), "puzzle_emb_len": (int, 0, 1024),
    "pos_encodings": (str, None, None), "mlp_t": (bool, None, None), "rms_norm_eps": (float, 0, 1),
    "rope_theta": (float, 0, 1e12), "forward_dtype": (str, None, None), "no_ACT_continue": (bool, None, None),
}
POSITIVE = ("expansion", "rms_norm_eps", "rope_theta")
FROM_DATA = ("seq_len", "vocab_size", "num_puzzle_identifiers")


def _check_model(model, w: str):
    from trm_edge.model import TRMConfig
    if not isinstance(model, dict):
        raise ConfigError(f"{w}: model must be a mapping of TRM settings such as {{hidden_size: 128, "
                          f"H_cycles: 3}}, got {_show(model)}")
    allowed = set(MODEL_FIELDS) | set(FROM_DATA) | set(TRMConfig.IGNORED)
    unknown = sorted(str(k) for k in model if k not in allowed)
    if unknown:
        raise ConfigError(f"{w}: unknown model keys {_show(unknown)}; known keys are {sorted(MODEL_FIELDS)}")
    for k, v in model.items():
        if k not in MODEL_FIELDS:
            continue
        kind, lo, hi = MODEL_FIELDS[k]
        if kind is bool or kind is str:
            if not isinstance(v, kind):
                raise ConfigError(f"{w}: model.{k} must be {'true or false' if kind is bool else 'a string'}, "
                                  f"got {_show(v)}")
            continue
        if isinstance(v, str) and kind is float:
            try:
                v = model[k] = float(v)
            except ValueError:
                pass
        ok = not isinstance(v, bool) and isinstance(v, numbers.Integral if kind is int else numbers.Real)
        if not ok:
            raise ConfigError(f"{w}: model.{k} must be a {'whole number' if kind is int else 'number'}, got {_show(v)}")
        positive = kind is float and k in POSITIVE
        if not math.isfinite(float(v)) or not lo <= v <= hi or (positive and v <= 0):
            rng = f"above {lo}, at most {hi}" if positive else f"from {lo} to {hi}"
            raise ConfigError(f"{w}: model.{k} {v!r} is out of range; give a value {rng}")
    try:   # the network's own consistency checks, with stand-ins for what the data decides
        c = TRMConfig.from_dict({k: v for k, v in model.items() if k not in FROM_DATA} | {"seq_len": 1, "vocab_size": 2})
    except ConfigError as e:
        raise ConfigError(f"{w}: model: {e}") from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
        raise ConfigError(f"{w}: model: {type(e).__name__}: {_show(str(e), 120)}; check the model settings") from None
    if not c.mlp_t and c.pos_encodings == "rope" and c.head_dim % 2:
        raise ConfigError(f"{w}: model: rope needs an even head width, hidden_size {c.hidden_size} / num_heads "
                          f"{c.num_heads} = {c.head_dim}; change hidden_size or num_heads")


def _check_task(task, w: str):
    if task is None:
        return
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise ConfigError(f"{w}: task must be a mapping with a name, e.g. {{name: sudoku, size: 9}}, got {_show(task)}")
    if task["name"] not in TASKS:
        raise ConfigError(f"{w}: task name {_show(task['name'])} is not one of {', '.join(TASKS)}")
    size = task.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"{w}: task size must be a whole number of cells per side, got {_show(size)}")
    if size is not None:
        from trm_edge.data import lookup
        why = lookup(task).fits(task, size * size)
        if why:
            raise ConfigError(f"{w}: task size {size} does not fit the {task['name']} task: {why}")
