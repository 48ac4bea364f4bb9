"""`trm-edge train CONFIG`: the training loop. One process, or many under torchrun (DDP over NCCL on
GPUs, gloo on CPUs). Checkpoints are atomic and carry everything a resumed run needs to continue the
same schedule: weights, EMA, optimizer, step, the ACT carry, the data order and every RNG.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from trm_edge.checkpoint import atomic_write, save_checkpoint
from trm_edge.data.dataset import read_split
from trm_edge.model import TRM, TRMConfig
from trm_edge.train.act import Carry, act_step
from trm_edge.train.config import TrainConfig
from trm_edge.train.optim import EMA, adam_atan2, lr_at, sign_sgd_rows

CKPT = "train_state.pt"


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
    name = (task or {}).get("name")
    if name == "sudoku":
        from trm_edge.data.sudoku import augment
        return augment
    if name == "maze":
        from trm_edge.data import maze
        return lambda i, l, rng: maze.augment(i, l, int(rng.integers(8)))
    return None


def build_model(cfg: TrainConfig, meta: dict) -> TRM:
    d = {**cfg.model, "seq_len": meta["seq_len"], "vocab_size": meta["vocab_size"],
         "num_puzzle_identifiers": meta["num_puzzle_identifiers"]}
    return TRM(TRMConfig.from_dict(d))


def train(cfg: TrainConfig, progress: bool = True, stop_after: int | None = None) -> Path:
    """Train (or resume) into cfg.out. `stop_after`: end this process after that many steps (tests)."""
    rank, world, device = _dist_setup()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    sets, meta = read_split(cfg.data, "train", mmap=True)
    pset = sets[meta["sets"][0]]
    if cfg.global_batch_size % world:
        raise ValueError(f"global_batch_size {cfg.global_batch_size} is not divisible by {world} processes")
    local = cfg.global_batch_size // world
    total = cfg.steps or int(cfg.epochs * meta["total_groups"] * meta["mean_puzzle_examples"] / cfg.global_batch_size)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, meta).to(device)
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
        for stale in out.glob(".*.tmp"):
            stale.unlink()
    if ck.is_file():   # resume
        st = torch.load(ck, map_location=device, weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        if ema is not None:
            ema.shadow = st["ema"]
        sampler.load(st["sampler"])
        carry = Carry.from_state_dict(st["carry"]) if st.get("carry") else None
        step = st["step"]
        minutes_before = st.get("minutes", 0.0)
        torch.set_rng_state(st["torch_rng"])
        if rank == 0:
            print(f"resumed {ck} at step {step}/{total}")

    if cfg.compile:
        model.supervision_step = torch.compile(model.supervision_step)
    use_bf16 = cfg.autocast == "bf16" or (cfg.autocast == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext
    log = open(out / "metrics.jsonl", "a") if rank == 0 else None
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=step, desc="train", unit="step", dynamic_ncols=True)
    t_start, done_here = time.time() - 60 * minutes_before, 0   # minutes count across resumes
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
        if log:
            log.write(json.dumps(row) + "\n")
            log.flush()
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", exact=f"{row['exact_accuracy']:.3f}", steps=f"{row['steps']:.1f}")

        done_here += 1
        out_of_time = cfg.max_minutes is not None and (time.time() - t_start) / 60 >= cfg.max_minutes
        stopping = step >= total or out_of_time or (stop_after is not None and done_here >= stop_after)
        if rank == 0 and (step % cfg.checkpoint_every == 0 or stopping):
            _save_state(ck, model, opt, ema, sampler, carry, step, (time.time() - t_start) / 60)
            _export(cfg, model, ema, out, step, meta)
        if cfg.eval_every and step % cfg.eval_every == 0 and rank == 0:
            _evaluate_during_training(cfg, out, log, step)
        if stopping:
            break
    if bar:
        bar.close()
    if world > 1:   # every rank must hold the same weights: check, and say so in the log
        sums = torch.stack([p.detach().double().sum() for p in model.parameters()]).to(device)
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


def _save_state(path: Path, model, opt, ema, sampler, carry, step, minutes: float):
    st = {"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.shadow if ema else None,
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
