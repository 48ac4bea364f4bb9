"""Calibration sets for static quantization (W8A8): the step's real inputs on real puzzles.

Static int8 fixes every activation's scale at export, so the scales must come from what the step
really sees on a device: puzzles of the model's own task (its sampler, or a user's puzzle file),
run through the float32 step for every supervision step with the host loop's own code, so the
recurrent states y and z of late steps are covered, not only the first step's initial state. The
result is a list of feeds (one per chunk of puzzles and supervision step, keyed by the step's input
names) and the provenance the manifest records (task, count, seed or file hash, steps).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trm_edge.errors import PuzzleError, TRMEdgeError

DEFAULT_COUNT = 64      # puzzles; x 16 supervision steps = 1,024 calibration rows per activation
DEFAULT_SEED = 3        # not the parity (1) or accuracy (2) puzzles' seed
CHUNK = 16              # puzzles per recorded batch, fewer where positions are many (chunk_for)
DEFAULT_PERCENTILE = 99.9   # percentile ranges: on the shipped Sudoku model ONNX static solved 97.8% of the card's
                            # 1,000 moderate puzzles at 99.9 and 99.5, 96.3% with minmax (benchmarks/RESULTS.md)


class CalibrationError(TRMEdgeError):
    pass


@dataclass
class Calibration:
    feeds: list[dict[str, np.ndarray]]              # step inputs by name: tokens, puzzle_emb, y, z
    provenance: dict = field(default_factory=dict)   # what the manifest records
    keep_fp32: tuple[str, ...] = ()                  # layers (the target's own node names) left unquantized
    method: str = "minmax"                           # how feeds become ranges (trm_edge.targets.CALIBRATIONS)
    percentile: float | None = None                  # P of the percentile method


class _Recording:
    """A step that keeps a copy of every input it is given, then runs the real one."""

    def __init__(self, step, names):
        self.step, self.names, self.feeds = step, names, []
        self.name = getattr(step, "name", "pytorch-eager")
        self.positions = getattr(step, "positions", None)
        self.takes_puzzle_emb = getattr(step, "takes_puzzle_emb", True)

    def __call__(self, tokens, puzzle_emb, y, z):
        given = {"tokens": tokens, "puzzle_emb": puzzle_emb, "y": y, "z": z}
        self.feeds.append({n: np.array(given[n]) for n in self.names})
        return self.step(tokens, puzzle_emb, y, z)


def puzzles_of(model, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED, file=None) -> tuple[np.ndarray, dict]:
    """The calibration puzzles as tokens [n, L] and where they came from: the task's sampler, or a file of
    puzzles of the model's task (one per line, as `trm-edge run --puzzle-file` reads)."""
    from trm_edge.data import codec, lookup, read_puzzle_file, task_name
    c = model.config
    task = model.metadata.get("task")
    name = task_name(task)
    if file is None:
        if name in ("tokens", "arc"):
            raise CalibrationError(f"a {name} model has no puzzle sampler to calibrate on; give --calibration FILE "
                                   f"with puzzles of its task, one per line")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise CalibrationError(f"calibration count must be a whole number of puzzles, at least 1, got {count!r}")
        tokens = lookup(task).sample(count, c.seq_len, c.vocab_size, seed=seed)
        return np.asarray(tokens, dtype=np.int64), {"task": name, "source": "sampler", "count": int(count),
                                                     "seed": int(seed)}
    path = Path(file)
    try:
        lines = read_puzzle_file(path, comment=None if name == "maze" else "#")
    except PuzzleError as e:
        raise CalibrationError(f"calibration file: {e}") from None
    cod = codec(task, c.seq_len, c.vocab_size)
    tokens = []
    for i, line in enumerate(lines, 1):
        try:
            tokens.append(cod.parse(line))
        except PuzzleError as e:
            raise CalibrationError(f"calibration file {path.name}, puzzle {i}: {e} (is it a file of {name} puzzles "
                                   f"for this model?)") from None
    return np.stack(tokens).astype(np.int64), {"task": name, "source": "file", "file": path.name,
                                               "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                               "count": len(tokens)}


def chunk_for(positions: int) -> int:
    """Puzzles per recorded batch: CHUNK, fewer where an attention map (N x N per head and puzzle, N = P + L
    positions) would be large. An exporter's calibration holds a feed's every intermediate tensor at once
    (onnxruntime's calibrator: ~42 pairs of maps per step at the published Maze size), so a feed of 16
    916-position puzzles is ~36 GB; one puzzle is ~2 GB. Sudoku's 97 positions keep CHUNK. MinMax ranges
    do not depend on how the rows are batched."""
    return max(1, min(CHUNK, CHUNK * 128 ** 2 // positions ** 2))


def ranges(method: str = "minmax", percentile: float | None = None) -> tuple[str, float | None]:
    """The method (a row of trm_edge.targets.CALIBRATIONS) and its percentile, checked: one line if wrong."""
    from trm_edge.targets import CALIBRATIONS
    if method not in CALIBRATIONS:
        raise CalibrationError(f"unknown calibration method {method!r}; methods: {', '.join(CALIBRATIONS)}")
    if method != "percentile":
        if percentile is not None:
            raise CalibrationError(f"a calibration percentile is for --calibration-method percentile, not {method}; "
                                   f"drop --calibration-percentile or use percentile")
        return method, None
    p = DEFAULT_PERCENTILE if percentile is None else percentile
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 50 < p < 100:
        raise CalibrationError(f"the calibration percentile must be a number above 50 and below 100 (e.g. 99.9), "
                               f"got {p!r}")
    return method, float(p)


PERCENTILE_SAMPLE = 50_000    # values per activation and feed that its percentiles are taken from


class PercentileRanges:
    """The percentile method's ranges (trm_edge.targets.CALIBRATIONS): each activation's range is the mean over
    the feeds of its [100-P, P] percentiles (of at most PERCENTILE_SAMPLE of its values, sampled with a fixed
    seed), widened to hold 0. Feed an activation's values one feed at a time (`add`); nothing is held but the
    sums. Every target's percentile calibration is this one fold."""

    def __init__(self, percentile: float):
        self.percentile, self.rng, self.lo, self.hi, self.seen = percentile, np.random.default_rng(0), {}, {}, {}

    def add(self, name: str, values: np.ndarray) -> None:
        v = np.asarray(values).ravel()
        if v.size > PERCENTILE_SAMPLE:
            v = self.rng.choice(v, PERCENTILE_SAMPLE, replace=False)
        a, b = np.percentile(v, [100 - self.percentile, self.percentile])
        self.lo[name] = self.lo.get(name, 0.0) + min(float(a), 0.0)
        self.hi[name] = self.hi.get(name, 0.0) + max(float(b), 0.0)
        self.seen[name] = self.seen.get(name, 0) + 1

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {k: (self.lo[k] / self.seen[k], self.hi[k] / self.seen[k]) for k in self.lo}

    def method(self) -> str:
        p = self.percentile
        return f"percentile {p:g}: the mean over the feeds of each activation's [{100 - p:g}, {p:g}] percentiles"


def calibration_set(model, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED, file=None,
                    steps: int | None = None, keep_fp32=(), method: str = "minmax",
                    percentile: float | None = None) -> Calibration:
    """Every supervision step's inputs (fixed halting: every puzzle runs every step) for the calibration
    puzzles, recorded while the float32 step solves them. keep_fp32: layers the exporter leaves in float
    (mixed precision), checked by the exporter against its own graph. method / percentile: how the exporter
    turns the feeds into activation ranges (recorded in the provenance)."""
    from trm_edge.solver import Checkpoint
    from trm_edge.step import make_step
    method, percentile = ranges(method, percentile)
    tokens, prov = puzzles_of(model, count, seed, file)
    S = steps or model.config.halt_max_steps
    solver = Checkpoint(model)
    rec = _Recording(solver.step, make_step(model).input_names)
    solver.step = rec
    chunk = chunk_for(model.config.positions)
    for a in range(0, len(tokens), chunk):
        solver.solve(tokens[a:a + chunk], max_steps=S, halting="fixed", views=1)
    prov.update(steps=int(S), rows_per_activation=int(len(tokens) * S), method=method,
                **({"percentile": percentile} if percentile is not None else {}))
    return Calibration(rec.feeds, prov, tuple(keep_fp32), method, percentile)
