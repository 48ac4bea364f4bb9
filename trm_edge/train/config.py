"""Training configuration: a plain dataclass read from YAML (`models/*.yaml`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from trm_edge.errors import ConfigError


@dataclass
class TrainConfig:
    model: dict                          # TRMConfig fields; seq_len, vocab_size, table size come from the data
    data: str                            # dataset folder in the reference's format (train/ and test/)
    task: dict | None = None             # {"name": "sudoku", "size": 9}: augmentation, checker, metadata
    out: str = "runs/trm"                # checkpoints, metrics.jsonl, the exported model
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
    seed: int = 0
    checkpoint_every: int = 200          # steps
    eval_every: int = 0                  # steps; 0 = only at the end
    eval_puzzles: int = 200
    threads: int | None = None           # CPU threads per process
    compile: bool = False                # torch.compile the supervision step (~12% faster on this CPU)
    notes: dict = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path, **overrides) -> "TrainConfig":
        import yaml
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"no training config at {p}; see models/*.yaml for examples")
        try:
            d = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot parse {p}: {str(e).splitlines()[0]}") from None
        d.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{p}: unknown keys {unknown}; known keys are {sorted(known)}")
        for k in ("model", "data"):
            if k not in d:
                raise ConfigError(f"{p}: `{k}` is required")
        for f in fields(cls):   # YAML reads 1e-4 as a string
            if d.get(f.name) is not None and f.type.split(" ")[0] in ("float", "int"):
                try:
                    d[f.name] = {"float": float, "int": int}[f.type.split(" ")[0]](d[f.name])
                except (TypeError, ValueError):
                    raise ConfigError(f"{p}: {f.name} must be a number, got {d[f.name]!r}") from None
        cfg = cls(**d)
        if cfg.steps is None and cfg.epochs is None:
            raise ConfigError(f"{p}: give `steps` or `epochs`")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)
