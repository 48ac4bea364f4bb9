"""Which rows of a puzzle table a bundle ships: the chosen tasks' views (ARC).

An ARC checkpoint's puzzle table holds one row per task and augmentation (about 1M x 512 for the
published runs, 1.8-2.5 GB): far too big for a phone, and useless without knowing which row is which.
The dataset's `identifiers.json` (the official builder's: index = puzzle identifier = table row, entry
0 the blank, names `task` or `task|||t<dihedral>|||<colour permutation>`) says it. An export with
`--identifiers identifiers.json --tasks all-test|ID,ID,... --views K` ships, per chosen task, its first
K rows in table order (the builder puts a task's identity first, then its augmentations), plus row 0
(the blank), and the manifest's `task_rows` lists them with their names, so an app runs a task's views
by their rows (runtime/arc.py). `--table-dtype float16` stores those rows as IEEE half (half the bytes);
runtimes widen them to float32 once, at load, and the step runs as before.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from trm_edge.errors import TRMEdgeError

SEPARATOR = "|||"


def _read_json(path: Path, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise TRMEdgeError(f"no {what} at {path}; give the dataset's {path.name} (trm-edge data build arc writes it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TRMEdgeError(f"{path} is not a readable JSON {what} ({type(e).__name__}); give the dataset's "
                           f"{path.name}") from None


def read_identifiers(path, table_rows: int) -> list[str]:
    """identifiers.json, checked against the checkpoint's puzzle table (one name per row)."""
    path = Path(os.fspath(path))
    ids = _read_json(path, "identifiers file")
    if not isinstance(ids, list) or not all(isinstance(n, str) for n in ids):
        raise TRMEdgeError(f"{path} is not a list of puzzle names; give the dataset's identifiers.json")
    if len(ids) != table_rows:
        raise TRMEdgeError(f"{path} names {len(ids):,} puzzles but the checkpoint's table has {table_rows:,} rows; "
                           f"give the identifiers.json of the dataset this checkpoint was trained on")
    return ids


def test_tasks(identifiers_path) -> list[str]:
    """The test set's task ids: the keys of test_puzzles.json beside identifiers.json, in its order."""
    path = Path(os.fspath(identifiers_path)).with_name("test_puzzles.json")
    tests = _read_json(path, "test set (test_puzzles.json, beside identifiers.json)")
    if not isinstance(tests, dict) or not tests:
        raise TRMEdgeError(f"{path} holds no test tasks; give --tasks ID,ID,... instead of all-test")
    return list(tests)


def select(identifiers: list[str], tasks, views: int) -> list[dict]:
    """Per task, its first `views` rows in table order: [{"id": task, "views": [{"row": r, "name": n}]}]."""
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise TRMEdgeError(f"views must be a whole number 1 or more, got {views!r}")
    by_task: dict[str, list] = {}
    for row, name in enumerate(identifiers):
        if row == 0:
            continue                                     # the blank puzzle
        by_task.setdefault(name.split(SEPARATOR)[0], []).append({"row": row, "name": name})
    chosen = []
    for t in dict.fromkeys(tasks):
        if t not in by_task:
            near = ", ".join(list(by_task)[:3])
            raise TRMEdgeError(f"task {t!r} is not in the identifiers ({len(by_task):,} tasks, e.g. {near}); "
                               f"give task ids of the dataset the checkpoint was trained on")
        chosen.append({"id": t, "views": by_task[t][:views]})
    if not chosen:
        raise TRMEdgeError("no tasks chosen; give --tasks all-test or --tasks ID,ID,...")
    return chosen


def plan(identifiers_path, tasks: str, views: int, table_rows: int, width: int, dtype: str = "float32") -> dict:
    """What an export ships for `--identifiers P --tasks T --views K`: {"rows": [0, ...] (the table rows, in
    the shipped order), "tasks": select(...), "source_rows", "dtype", "bytes"}; the manifest's task_rows
    without "rows" (each view's row is renumbered into the shipped table)."""
    if dtype not in ("float32", "float16"):
        raise TRMEdgeError(f"the shipped table is float32 or float16, not {dtype!r}")
    ids = read_identifiers(identifiers_path, table_rows)
    wanted = test_tasks(identifiers_path) if tasks == "all-test" else [t.strip() for t in tasks.split(",") if t.strip()]
    chosen = select(ids, wanted, views)
    rows = [0]
    for t in chosen:
        for v in t["views"]:
            v["source_row"] = v["row"]
            v["row"] = len(rows)
            rows.append(v["source_row"])
    size = np.dtype(dtype).itemsize
    return {"rows": rows, "tasks": chosen, "source_rows": table_rows, "dtype": dtype,
            "bytes": len(rows) * width * size, "source_bytes": table_rows * width * 4}


def describe(p: dict, width: int) -> str:
    """One line: how big the shipped table is against the whole one."""
    n = len(p["tasks"])
    per = {len(t["views"]) for t in p["tasks"]}
    k = per.pop() if len(per) == 1 else f"{min(len(t['views']) for t in p['tasks'])}-{max(len(t['views']) for t in p['tasks'])}"
    return (f"{n} task(s) x {k} view(s) + the blank = {len(p['rows']):,} rows x {width} x "
            f"{np.dtype(p['dtype']).itemsize} bytes ({p['dtype']}) = {p['bytes'] / 2**20:.2f} MB, against "
            f"{p['source_bytes'] / 2**20:,.1f} MB for the whole table ({p['source_rows']:,} rows, float32)")
