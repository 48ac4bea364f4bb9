"""Granularity: export the whole supervision step (one graph, T and n unrolled) or one `net`
application (the host runs the T x (n+1) calls, the embedding and the heads)? Same math; this
measures latency per supervision step, export time and artifact size for ONNX Runtime and
ExecuTorch on the shipped model, and checks both give the same outputs.

    python benchmarks/granularity.py [--model trm_edge/models/sudoku.safetensors] [--threads 2] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trm_edge.checkpoint import load_checkpoint
from trm_edge.data import sample_puzzles
from trm_edge.step import example_inputs, make_step


class Net(torch.nn.Module):
    """One application of the tiny network: (h, injection) -> net(h + injection)."""
    input_names, output_names = ("h", "injection"), ("h_next",)

    def __init__(self, step):
        super().__init__()
        self.step = step

    def forward(self, h, injection):
        return self.step.net(h, injection)


def host_step(net, step, x, y, z):
    """The supervision step with the loops on the host: T x (n + 1) calls of `net`, heads in numpy."""
    c = step.config
    for _ in range(c.H_cycles):
        for _ in range(c.L_cycles):
            z = net(z, y + x)
        y = net(y, z)
    logits = y[:, c.P:] @ step.lm_head.weight.numpy().T
    q = y[:, 0] @ step.q_head.weight.numpy()[0] + step.q_head.bias.numpy()[0]
    return y, z, logits, q


def embed(step, tokens, puzzle_emb):
    """x = sqrt(D) * [puzzle prefix; token embeddings] (numpy, once per puzzle)."""
    c = step.config
    e = step.token_emb.weight.numpy()[tokens]
    if c.puzzle_emb_ndim:
        prefix = np.zeros((len(tokens), c.P * c.hidden_size), np.float32)
        prefix[:, :c.puzzle_emb_ndim] = puzzle_emb
        e = np.concatenate([prefix.reshape(len(tokens), c.P, c.hidden_size), e], 1)
    return (np.sqrt(c.hidden_size) * e).astype(np.float32)


def export_onnx(module, args, names, path):
    B = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(module, args, dynamo=True, input_names=list(names), opset_version=18,
                      dynamic_shapes={n: {0: B} for n in names}).save(str(path))
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    return lambda *a: sess.run(None, dict(zip(inputs, a)))


def export_et(module, args, names, path):
    from executorch.runtime import Runtime

    from trm_edge.export.executorch import MAX_BATCH, _lower
    B = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    ep = torch.export.export(module, args, dynamic_shapes={n: {0: B} for n in names})
    path.write_bytes(_lower(ep).to_executorch().buffer)
    method = Runtime.get().load_program(path).load_method("forward")
    return lambda *a: [o.numpy() for o in method.execute([torch.from_numpy(np.ascontiguousarray(v)) for v in a])]


def timed(fn, seconds=3.0, min_reps=10):
    fn()
    t, t_end = [], time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(t) < min_reps:
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return float(np.median(t) * 1e3)


def main():
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="trm_edge/models/sudoku.safetensors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    THREADS = a.threads
    torch.set_num_threads(a.threads)
    model = load_checkpoint(a.model)
    c = model.config
    tokens = sample_puzzles(model.metadata.get("task"), c.seq_len, c.vocab_size, 64, seed=5).astype(np.int64)
    pe = model.puzzle_rows(torch.zeros(64, dtype=torch.long)).numpy() if c.puzzle_emb_ndim else None
    rows, tmp = [], Path(tempfile.mkdtemp())
    for target, spelling, export in (("onnx", "reference", export_onnx), ("executorch", "xnnpack", export_et)):
        step = make_step(model, spelling)
        whole_args = example_inputs(step, 2)
        N = c.positions
        net_args = (torch.zeros(2, N, c.hidden_size), torch.zeros(2, N, c.hidden_size))
        t0 = time.perf_counter()
        whole = export(step, whole_args, step.input_names, tmp / f"whole.{target}")
        t_whole = time.perf_counter() - t0
        t0 = time.perf_counter()
        net = export(Net(step), net_args, Net.input_names, tmp / f"net.{target}")
        t_net = time.perf_counter() - t0
        net1 = lambda h, inj: net(h, inj)[0]
        for B in (1, 64):
            tok, emb = tokens[:B], None if pe is None else pe[:B]
            y = np.broadcast_to(step.y_init, (B, N, c.hidden_size)).astype(np.float32)
            z = np.broadcast_to(step.z_init, (B, N, c.hidden_size)).astype(np.float32)
            args = (tok, emb, y, z) if emb is not None else (tok, y, z)
            want = whole(*args)
            x = embed(step, tok, emb)
            got = host_step(net1, step, x, y, z)
            diff = float(np.abs(want[2] - got[2]).max())
            ms_whole = timed(lambda: whole(*args))
            ms_net = timed(lambda: host_step(net1, step, embed(step, tok, emb), y, z))
            rows.append({"target": target, "batch": B, "threads": a.threads,
                         "whole_step_ms": ms_whole, "net_calls_ms": ms_net, "net_calls_per_step": c.H_cycles * (c.L_cycles + 1),
                         "logits_max_abs_diff": diff,
                         "whole_export_s": t_whole, "net_export_s": t_net,
                         "whole_mb": (tmp / f"whole.{target}").stat().st_size / 2**20,
                         "net_mb": (tmp / f"net.{target}").stat().st_size / 2**20})
            print(json.dumps(rows[-1]))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "granularity.json").write_text(json.dumps({"model": a.model, "rows": rows}, indent=1))
    lines = ["| target | batch | whole step ms | net calls ms (host loop) | whole export s | net export s | whole MB | net MB | logits max diff |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['batch']} | {r['whole_step_ms']:.2f} | {r['net_calls_ms']:.2f} | "
                     f"{r['whole_export_s']:.1f} | {r['net_export_s']:.1f} | {r['whole_mb']:.2f} | {r['net_mb']:.2f} | "
                     f"{r['logits_max_abs_diff']:.1e} |")
    (out / "granularity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


THREADS = 2
if __name__ == "__main__":
    main()
