"""`trm-edge train CONFIG`: the training loop. One process, or many under torchrun (DDP over NCCL on
GPUs, gloo on CPUs). Checkpoints are atomic and carry everything a resumed run needs to continue the
same schedule: weights, EMA, optimizer, step, the ACT carry, the data order and every RNG.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from trm_edge.checkpoint import atomic_write, save_checkpoint
from trm_edge.data.dataset import read_split
from trm_edge.errors import CheckpointError, ConfigError, TRMEdgeError
from trm_edge.outdir import OutputError, claim, make, reason, show, unmake
from trm_edge.model import TRM, Attention, TRMConfig
from trm_edge.train import qat
from trm_edge.train.act import Carry, act_step
from trm_edge.train.config import TrainConfig
from trm_edge.train.optim import EMA, adam_atan2, lr_at, sign_sgd_rows

CKPT = "train_state.pt"
RUN_FILES = (CKPT, "model.safetensors", "metrics.jsonl")   # what a run writes into its folder


def is_our_run(d: Path) -> bool:
    """A folder `train` may write into: it holds our training state, or only files a run writes (and
    what `eval --out` adds beside them), e.g. after a run stopped before its first checkpoint."""
    if (d / CKPT).is_file():
        return True
    names = {p.name for p in d.iterdir()}
    return "metrics.jsonl" in names and all(n in RUN_FILES or n in ("eval.json", "eval.png")
                                            or (n.startswith(".") and n.endswith(".tmp")) for n in names)


# -----------------------------------------------------------------------------
# Data: the reference's sampling (shuffle groups each epoch, one random puzzle per group, its examples)

class BatchSampler:
    def __init__(self, pset, batch: int, seed: int, augment=None, difficulty=None):
        self.s, self.batch, self.augment = pset, batch, augment
        self.rng = np.random.default_rng(seed)
        G = len(pset.group_indices) - 1
        # groups easiest first, for the curriculum (difficulty per group = its first example's)
        if difficulty is not None:
            first = pset.puzzle_indices[pset.group_indices[:-1]]
            self.by_ease = np.argsort(np.asarray(difficulty)[first], kind="stable")
        else:
            self.by_ease = np.arange(G)
        self.epoch, self.order, self.pos = 0, None, 0

    def _new_epoch(self, share: float):
        n = max(self.batch, int(round(share * len(self.by_ease))))
        self.order = self.rng.permutation(self.by_ease[:n])
        self.pos = 0
        self.epoch += 1

    def next(self, share: float = 1.0) -> dict:
        s = self.s
        idx, pids = [], []
        while len(idx) < self.batch:
            if self.order is None or self.pos >= len(self.order):
                self._new_epoch(share)
            g = self.order[self.pos]
            self.pos += 1
            p = self.rng.integers(s.group_indices[g], s.group_indices[g + 1])
            start, size = s.puzzle_indices[p], s.puzzle_indices[p + 1] - s.puzzle_indices[p]
            take = min(size, self.batch - len(idx))
            idx.extend(start + self.rng.choice(size, take, replace=False))
            pids.extend([p] * take)
        inputs, labels = np.asarray(s.inputs[idx]), np.asarray(s.labels[idx])
        if self.augment is not None:
            inputs, labels = self.augment(inputs, labels, self.rng)
        return {"inputs": inputs, "labels": labels, "puzzle_identifiers": s.puzzle_identifiers[pids]}

    def state(self) -> dict:
        return {"rng": json.dumps(self.rng.bit_generator.state), "epoch": self.epoch, "pos": self.pos,
                "order": torch.from_numpy(np.asarray(self.order if self.order is not None else [], np.int64))}

    def load(self, st: dict):
        self.rng.bit_generator.state = json.loads(st["rng"])
        self.epoch, self.pos = st["epoch"], st["pos"]
        self.order = st["order"].numpy() if len(st["order"]) else None


META_NUMBERS = {"seq_len": 1, "vocab_size": 1, "num_puzzle_identifiers": 1, "total_groups": 0}


def read_train_data(cfg: TrainConfig):
    """The `train` split of cfg.data as (sets, metadata, the set trained on), checked far enough that
    training cannot fail on it later: metadata keys and types, array shapes, token and identifier
    ranges, no empty group or puzzle, the task's grid. Any problem: one TRMEdgeError line, nothing written."""
    root = Path(cfg.data).expanduser()
    d = root / "train"
    f = d / "dataset.json"
    fix = "build one with `trm-edge data build` and point `data` (or --data) at it"
    try:
        if not root.is_dir():
            raise ConfigError(f"data {show(cfg.data)} is not a dataset folder; {fix}")
        if not f.is_file():
            raise ConfigError(f"no dataset at {show(d)} (missing dataset.json); {fix}")
        raw = f.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the dataset {show(cfg.data)}: {reason(e)}; {fix}") from None
    bad = f"{show(f)} is not our dataset metadata"
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ConfigError(f"{bad} (not JSON); rebuild it with `trm-edge data build`") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{bad} (a JSON {type(meta).__name__}, not an object); rebuild it with `trm-edge data build`")
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)
    for key, lo in META_NUMBERS.items():
        if key not in meta:
            raise ConfigError(f"{bad}: it lacks `{key}`; rebuild it with `trm-edge data build`")
        if not whole(meta[key]) or meta[key] < lo:
            raise ConfigError(f"{bad}: `{key}` must be a whole number >= {lo}, got {meta[key]!r:.40}; "
                              f"rebuild it with `trm-edge data build`")
    mpe = meta.get("mean_puzzle_examples")
    if isinstance(mpe, bool) or not isinstance(mpe, (int, float)) or not np.isfinite(mpe) or mpe < 0:
        raise ConfigError(f"{bad}: `mean_puzzle_examples` must be a number >= 0; rebuild it with `trm-edge data build`")
    ignore = meta.get("ignore_label_id")
    if ignore is not None and not whole(ignore):
        raise ConfigError(f"{bad}: `ignore_label_id` must be a whole number or null; rebuild it")
    names = meta.get("sets")
    if (not isinstance(names, list) or not names
            or not all(isinstance(n, str) and n and n.isprintable() and "/" not in n and "\\" not in n
                       and n not in (".", "..") for n in names)):
        raise ConfigError(f"{bad}: `sets` must be a non-empty list of set names; rebuild it with `trm-edge data build`")
    try:
        sets, meta = read_split(root, "train", mmap=True)
    except TRMEdgeError as e:
        raise ConfigError(" ".join(str(e).split())) from None
    except Exception as e:   # np.load on damaged files: ValueError, EOFError, OSError, pickle errors ...
        raise ConfigError(f"cannot read the dataset {show(d)} ({type(e).__name__}: {reason(e)[:120]}); "
                          f"rebuild it with `trm-edge data build`") from None
    pset = sets[names[0]]
    where = f"dataset {show(d)} set {names[0]}"
    rebuild = "rebuild it with `trm-edge data build`"
    arrays = {k: getattr(pset, k) for k in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")}
    for k, a in arrays.items():
        if not np.issubdtype(a.dtype, np.integer):
            raise ConfigError(f"{where}: {k} holds {a.dtype}, not integers; {rebuild}")
    L = meta["seq_len"]
    x, y = arrays["inputs"], arrays["labels"]
    if x.ndim != 2 or x.shape[1] != L or len(x) == 0:
        raise ConfigError(f"{where}: inputs are {tuple(x.shape)}, not [examples >= 1, seq_len {L}]; {rebuild}")
    for k in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
        if arrays[k].ndim != 1:
            raise ConfigError(f"{where}: {k} must be one-dimensional, got {tuple(arrays[k].shape)}; {rebuild}")
    if np.any(np.diff(arrays["puzzle_indices"]) < 1) or np.any(np.diff(arrays["group_indices"]) < 1):
        raise ConfigError(f"{where}: a puzzle without examples or a group without puzzles; {rebuild}")
    ids = arrays["puzzle_identifiers"]
    if ids.size and (ids.min() < 0 or ids.max() >= meta["num_puzzle_identifiers"]):
        raise ConfigError(f"{where}: puzzle_identifiers outside 0..{meta['num_puzzle_identifiers'] - 1}; {rebuild}")
    V = meta["vocab_size"]
    for i in range(0, len(x), 1 << 16):   # chunks: the inputs may be memory-mapped and large
        xs, ys = np.asarray(x[i:i + (1 << 16)]), np.asarray(y[i:i + (1 << 16)])
        if xs.min() < 0 or xs.max() >= V:
            raise ConfigError(f"{where}: input tokens outside the vocabulary 0..{V - 1}; {rebuild}")
        ok = (ys >= 0) & (ys < V)
        if ignore is not None:
            ok |= ys == ignore
        if not ok.all():
            raise ConfigError(f"{where}: labels outside the vocabulary 0..{V - 1} (and ignore_label_id "
                              f"{ignore}); {rebuild}")
    if cfg.curriculum_steps:
        diff = pset.extra.get("difficulty")
        if diff is not None and (np.ndim(diff) != 1 or len(diff) != len(x) or not np.issubdtype(np.asarray(diff).dtype, np.number)):
            raise ConfigError(f"{where}: difficulty must hold one number per example; {rebuild}, "
                              f"or set curriculum_steps: 0")
    _check_task_fits(cfg, meta, where)
    return sets, meta, pset


def _check_task_fits(cfg: TrainConfig, meta: dict, where: str):
    """The config's task and the data's agree: the same task and grid (what augmentation and the checker assume)."""
    task, data_task, L = cfg.task, meta.get("task"), meta["seq_len"]
    if isinstance(task, dict) and isinstance(data_task, dict) and isinstance(data_task.get("name"), str):
        if task["name"] != data_task["name"]:
            raise ConfigError(f"the config's task is {task['name']} but {where} is {data_task['name']}; "
                              f"make `task` match the data")
    if not isinstance(task, dict):
        return
    from trm_edge.data import lookup
    why = lookup(task).fits(task, L)
    if why:
        raise ConfigError(f"the config's task does not fit {where}: {why}; make `task` match the data")


def _to_torch(batch: dict, ignore_label_id, device) -> dict:
    out = {k: torch.from_numpy(np.ascontiguousarray(v).astype(np.int32)) for k, v in batch.items()}
    if ignore_label_id is not None:
        out["labels"][out["labels"] == ignore_label_id] = -100
    return {k: v.to(device) for k, v in out.items()}


# -----------------------------------------------------------------------------

def _dist_setup():
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        return rank, world, torch.device("cuda")
    return rank, world, torch.device("cpu")


def _task_augment(task):
    """The task's on-the-fly training augmentation (its row of the tasks table), or None."""
    from trm_edge.data import lookup
    return lookup(task).augment if task else None


def build_model(cfg: TrainConfig, meta: dict) -> TRM:
    d = {**cfg.model, "seq_len": meta["seq_len"], "vocab_size": meta["vocab_size"],
         "num_puzzle_identifiers": meta["num_puzzle_identifiers"]}
    return TRM(TRMConfig.from_dict(d))


def _init_weights(cfg: TrainConfig, meta: dict) -> dict | None:
    """The state dict `init:` names, checked against the model this config and data build (shapes
    included): a checkpoint of another size or task is one ConfigError line, before anything is written."""
    if cfg.init is None:
        return None
    from trm_edge.checkpoint import load_checkpoint
    from trm_edge.outdir import show
    src = load_checkpoint(cfg.init)
    model = build_model(cfg, meta)
    if cfg.widen:   # widen checks the shapes it makes against the model itself
        from trm_edge.train.widen import widen
        return widen(src, model, cfg.seed)
    want, have = model.state_dict(), src.state_dict()
    for k, v in want.items():
        if k not in have or tuple(have[k].shape) != tuple(v.shape):
            got = "missing" if k not in have else f"shaped {tuple(have[k].shape)}"
            raise ConfigError(f"init {show(cfg.init)} does not fit this config's model: {k} is {got}, the model "
                              f"needs {tuple(v.shape)}; give the model settings the checkpoint was trained with")
    extra = sorted(set(have) - set(want))
    if extra:
        raise ConfigError(f"init {show(cfg.init)} does not fit this config's model: it has {extra[0]} too; give the "
                          f"model settings the checkpoint was trained with")
    return {k: have[k].to(want[k].dtype) for k in want}


def train(cfg: TrainConfig, progress: bool = True, stop_after: int | None = None) -> Path:
    """Train (or resume) into cfg.out. `stop_after`: end this process after that many steps (tests).

    The config, the dataset and the run folder are checked before anything is written (every rank
    checks the same things, before the rendezvous): a bad input is one TRMEdgeError line and no folder."""
    cfg.validate()
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 1):
        raise ConfigError(f"stop_after must be a whole number of steps, at least 1, got {stop_after!r}")
    sets, meta, pset = read_train_data(cfg)
    total = cfg.steps or int(cfg.epochs * meta["total_groups"] * meta["mean_puzzle_examples"] / cfg.global_batch_size)
    if total < 1:
        raise ConfigError(f"epochs {cfg.epochs} of {meta['total_groups']} groups at global_batch_size "
                          f"{cfg.global_batch_size} make no whole step; raise epochs or give steps")
    init = _init_weights(cfg, meta)
    out = claim(cfg.out, "training run", is_our_run, option="out")
    rank, world, device = _dist_setup()
    if cfg.global_batch_size % world:
        raise ConfigError(f"global_batch_size {cfg.global_batch_size} is not divisible by {world} processes; "
                          f"choose a multiple of {world}")
    local = cfg.global_batch_size // world
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    created = make(out, "training run", option="out") if rank == 0 else []   # only rank 0 writes there
    ours_before, closers = {n for n in RUN_FILES if (out / n).exists()}, []
    try:
        return _run(cfg, out, sets, meta, pset, total, rank, world, device, local, progress, stop_after, closers, init)
    except BaseException as e:
        for close in reversed(closers):   # the progress bar ends its line before the error is printed
            try:
                close()
            except Exception:
                pass
        if rank == 0 and not (out / CKPT).exists():   # failed before its first checkpoint: leave nothing new
            try:
                for name in set(RUN_FILES) - ours_before:
                    (out / name).unlink(missing_ok=True)
                unmake(created)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise OutputError(f"training into {show(out)} failed: {reason(e)}"
                              f"{f' ({show(e.filename)})' if e.filename else ''}; free space or choose another "
                              f"--out, then run the same command again") from None
        raise


def _run(cfg, out, sets, meta, pset, total, rank, world, device, local, progress, stop_after, closers,
         init=None) -> Path:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, meta)
    if init is not None:   # fine-tuning: the first step starts from these weights (a resume replaces them)
        model.load_state_dict(init)
    if cfg.qat:
        qat.prepare(model)
    model = model.to(device)
    if world > 1:   # one starting point everywhere
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, 0)
    opt = adam_atan2(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_rate, cfg.ema_warmup) if cfg.ema else None
    sampler = BatchSampler(pset, cfg.global_batch_size, cfg.seed, _task_augment(cfg.task) if cfg.augment else None,
                           pset.extra.get("difficulty") if cfg.curriculum_steps else None)
    carry, step, minutes_before = None, 0, 0.0

    ck = out / CKPT
    if rank == 0:   # a run killed while writing leaves a temporary file; the checkpoint itself is whole
        for name in (CKPT, "model.safetensors"):
            for stale in out.glob(f".{name}.*.tmp"):
                stale.unlink()
    if ck.is_file():   # resume
        try:
            st = torch.load(ck, map_location=device, weights_only=True)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            if ema is not None:
                ema.shadow = st["ema"]
            sampler.load(st["sampler"])
            carry = Carry.from_state_dict(st["carry"]) if st.get("carry") else None
            if cfg.qat and st.get("qat"):
                qat.load_ranges(model, st["qat"])
            step = int(st["step"])
            minutes_before = float(st.get("minutes", 0.0))
            torch.set_rng_state(st["torch_rng"])
        except Exception as e:
            raise CheckpointError(f"cannot resume from {show(ck)} ({type(e).__name__}: {reason(e)[:120]}): it is "
                                  f"damaged or was made with another model or data; train into a new --out") from None
        if rank == 0:
            print(f"resumed {ck} at step {step}/{total}")

    for m in model.modules():
        if isinstance(m, Attention):
            m.kernel = cfg.attention
    if cfg.compile:
        model.supervision_step = torch.compile(model.supervision_step)
    use_bf16 = cfg.autocast == "bf16" or (cfg.autocast == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext
    log = open(out / "metrics.jsonl", "a") if rank == 0 else None
    if log:
        closers.append(log.close)
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=step, desc="train", unit="step", dynamic_ncols=True)
        closers.append(bar.close)
    t_start, done_here = time.time() - 60 * minutes_before, 0   # minutes count across resumes
    asked = _stop_on_sigterm(closers)
    model.train()
    while step < total:
        share = 1.0
        if cfg.curriculum_steps:
            share = min(1.0, cfg.curriculum_start + (1 - cfg.curriculum_start) * step / cfg.curriculum_steps)
        batch = _to_torch(sampler.next(share), meta.get("ignore_label_id"), device)
        batch = {k: v[rank * local:(rank + 1) * local] for k, v in batch.items()}
        if carry is None:
            carry = Carry.start(model, batch)

        rows_leaf = {}

        def rows_fn(ids):
            rows_leaf["ids"] = ids
            rows_leaf["rows"] = model.puzzle_emb[ids.long()].detach().clone().requires_grad_(True)
            return rows_leaf["rows"]

        with autocast():
            carry, loss, metrics, _ = act_step(model, carry, batch, rows_fn)
        (loss / cfg.global_batch_size).backward()
        if world > 1:
            for p in model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
            if cfg.qat:
                qat.sync_ranges(model, world)
        step += 1
        lr = lr_at(step, cfg.lr, cfg.lr_warmup_steps, total, cfg.lr_min_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        opt.zero_grad(set_to_none=True)
        if rows_leaf and rows_leaf["rows"].grad is not None:
            sign_sgd_rows(model.puzzle_emb, rows_leaf["ids"].long(), rows_leaf["rows"].grad,
                          lr_at(step, cfg.puzzle_emb_lr, cfg.lr_warmup_steps, total, cfg.lr_min_ratio),
                          cfg.puzzle_emb_weight_decay)
        if ema is not None:
            ema.update(model, step)

        m = torch.stack([metrics[k].float() for k in sorted(metrics)])
        if world > 1:
            dist.all_reduce(m)
        m = dict(zip(sorted(metrics), m.tolist()))
        n = max(m.pop("count"), 1.0)
        row = {"step": step, "lr": lr, "loss": m["lm_loss"] / cfg.global_batch_size,
               "q_halt_loss": m["q_halt_loss"] / cfg.global_batch_size, "halted": n,
               "accuracy": m["accuracy"] / n, "exact_accuracy": m["exact_accuracy"] / n,
               "q_halt_accuracy": m["q_halt_accuracy"] / n, "steps": m["steps"] / n,
               "minutes": (time.time() - t_start) / 60, "curriculum": share}
        if "q_continue_loss" in m:        # no_ACT_continue: false trains q_continue too
            row["q_continue_loss"] = m["q_continue_loss"] / cfg.global_batch_size
        if log:
            log.write(json.dumps(row) + "\n")
            log.flush()
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", exact=f"{row['exact_accuracy']:.3f}", steps=f"{row['steps']:.1f}")

        done_here += 1
        out_of_time = cfg.max_minutes is not None and (time.time() - t_start) / 60 >= cfg.max_minutes
        stop_now = torch.tensor([float(asked["signal"] is not None)])
        if world > 1:   # a signal to any rank stops them all after the same step
            stop_now = stop_now.to(device)
            dist.all_reduce(stop_now, op=dist.ReduceOp.MAX)
        stopping = (step >= total or out_of_time or (stop_after is not None and done_here >= stop_after)
                    or bool(stop_now.item()))
        if rank == 0 and (step % cfg.checkpoint_every == 0 or stopping):
            _save_state(ck, model, opt, ema, sampler, carry, step, (time.time() - t_start) / 60)
            _export(cfg, model, ema, out, step, meta)
        if cfg.eval_every and step % cfg.eval_every == 0 and rank == 0:
            _evaluate_during_training(cfg, out, log, step)
        if stopping:
            break
    if bar:
        bar.close()
    asked["restore"]()
    if asked["signal"] is not None and rank == 0 and step < total:
        print(f"stopped at step {step}/{total} (checkpoint written); the same command resumes", file=sys.stderr)
    if world > 1:   # every rank must hold the same weights: check, and say so in the log
        sums = torch.stack([t.detach().double().sum() for t in (*model.parameters(), *model.buffers())]).to(device)
        gathered = [torch.zeros_like(sums) for _ in range(world)]
        dist.all_gather(gathered, sums)
        if log:
            in_sync = all(torch.equal(g, gathered[0]) for g in gathered)
            log.write(json.dumps({"step": step, "ranks": world, "ranks_in_sync": in_sync}) + "\n")
        dist.barrier()
        dist.destroy_process_group()
    if log:
        log.close()
    return out / "model.safetensors"


def _stop_on_sigterm(closers) -> dict:
    """SIGTERM (kill, a scheduler's stop) ends the run after the current step, with a checkpoint, instead of
    losing the steps since the last one; `closers` gets the restore of the previous handler."""
    asked = {"signal": None, "restore": lambda: None}
    try:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: asked.update(signal=signum))
    except ValueError:   # not the main thread: no handler, the run stops as before
        return asked
    asked["restore"] = lambda: signal.signal(signal.SIGTERM, previous)
    closers.append(asked["restore"])
    return asked


def _save_state(path: Path, model, opt, ema, sampler, carry, step, minutes: float):
    st = {"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.shadow if ema else None,
          "qat": qat.ranges(model),
          "sampler": sampler.state(), "carry": carry.state_dict() if carry is not None else None,
          "step": step, "minutes": minutes, "torch_rng": torch.get_rng_state()}
    atomic_write(path, lambda tmp: torch.save(st, tmp))


def _export(cfg: TrainConfig, model, ema, out: Path, step: int, meta: dict):
    """The weights to evaluate and ship (EMA where on) in our format, with the task and how they were made."""
    export = TRM(model.config)
    export.load_state_dict(ema.state_dict_for(model) if ema else model.state_dict())
    save_checkpoint(export, out / "model.safetensors", task=cfg.task,
                    training={"step": step, "ema": bool(ema), "data": cfg.data, "config": cfg.to_dict()})


def _evaluate_during_training(cfg, out, log, step):
    from trm_edge.evaluate import evaluate
    res = evaluate(out / "model.safetensors", cfg.data, puzzles=cfg.eval_puzzles, thresholds=(0.5,), progress=False)
    row = {"step": step, "eval": {k: res[k] for k in ("fixed", "q_halt") if k in res}}
    if log:
        log.write(json.dumps(row) + "\n")
        log.flush()
