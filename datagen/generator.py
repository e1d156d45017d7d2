"""Writes a dataset: plans one task per file, runs them in worker processes, writes the manifest.

Workers are forked after the world and its shared texts are built, so they read them without
copying or pickling; each file depends only on (world, file), never on which worker wrote it
or in which order, so the output is byte-identical for the same arguments.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from isal import igzip
from tqdm import tqdm

from datagen import dirty as dirty_mod
from datagen.calendar import Calendar, build_calendar, iso, to_day
from datagen.render import Tables, build_tables, file_rows, header, payload, snapshot_rows
from datagen.world import (
    ACCOUNTS_PER_GB,
    DEL_HARD,
    DEL_SOFT,
    FLAG_N,
    FLAG_Y,
    PLANTED_CASES,
    SPLIT_SNAPSHOT_PART,
    World,
    build_world,
)
from phone_compliance import schema

GZIP_LEVEL = 1  # isal level 1: ~350 MB/s per core with the ratio of zlib level 4-6
DEFAULT_START = "2019-01-01"
DEFAULT_END = "2024-12-31"
MANIFEST = "manifest.json"
_OWNED = ("ENROLLMENT", "MAINTENANCE", MANIFEST)
PROGRESS_MIN_ACCOUNTS = 20_000
POOL_MIN_ACCOUNTS = 5_000


@dataclass
class Task:
    """One file to write."""

    rel_path: str
    family: str  # schema family name
    index: int  # snapshot / change file / enrollment file index in the calendar
    part: int = 0
    parts: int = 1
    inserts: list[tuple[float, dirty_mod.DirtyLine]] = field(default_factory=list)
    crlf: bool = False


@dataclass
class _State:
    world: World
    tables: Tables
    tasks: list[Task]
    out: Path
    preview: Path | None


_STATE: _State | None = None  # set in the parent before workers fork


def _content(task: Task, st: _State) -> tuple[bytes, int, list[dict[str, Any]]]:
    """The plain bytes of a file, its data-row count and the manifest entries of its dirty lines."""
    w, t = st.world, st.tables
    if task.family == schema.SNAPSHOT.name:
        rows = snapshot_rows(w, t, task.index, task.part, task.parts)
        fam = schema.SNAPSHOT
    elif task.family == schema.CHANGE.name:
        rows = file_rows(t.change_rows, w.ch_file, w.ch_dup, task.index)
        fam = schema.CHANGE
    else:
        rows = file_rows(t.enroll_rows, w.en_file, w.en_dup, task.index)
        fam = schema.ENROLLMENT
    data, offsets = payload(rows)
    n = len(rows)
    pieces: list[bytes | memoryview] = [header(fam)]
    entries = []
    last = 0
    placed = sorted(
        ((min(int(frac * n), n), k, line) for k, (frac, line) in enumerate(task.inserts)),
        key=lambda x: (x[0], x[1]),
    )
    for k, (pos, _, line) in enumerate(placed):
        pieces.append(data[offsets[last] : offsets[pos]])
        pieces.append((line.text + "\n").encode())
        last = pos
        # header is line 1, then pos book rows and the k dirty lines placed before this one
        entries.append(
            {
                "file": task.rel_path,
                "line": pos + k + 2,
                "kind": line.kind,
                "expected": line.expected,
            }
        )
    pieces.append(data[offsets[last] :])
    content = b"".join(pieces)
    if task.crlf:
        content = content.replace(b"\n", b"\r\n")
        entries.append(
            {
                "file": task.rel_path,
                "line": None,
                "kind": "crlf_line_ends",
                "expected": dirty_mod.KEEP_CRLF,
            }
        )
    return content, n + len(task.inserts), entries


def _run(i: int) -> dict[str, Any]:
    """Write file i of the plan (in a worker); returns its manifest entries."""
    st = _STATE
    assert st is not None
    task = st.tasks[i]
    content, n_rows, entries = _content(task, st)
    packed = igzip.compress(content, GZIP_LEVEL, mtime=0)
    (st.out / task.rel_path).write_bytes(packed)
    if st.preview is not None:
        (st.preview / task.rel_path.removesuffix(".gz")).write_bytes(content)
    return {
        "path": task.rel_path,
        "rows": n_rows,
        "size_bytes": len(packed),
        "raw_bytes": len(content),
        "dirty": entries,
    }


def _plan(w: World, seed: int, dirty: bool) -> tuple[list[Task], list[dirty_mod.ExtraFile]]:
    """One task per book file, dirty lines assigned to files, and the extra dirty files."""
    cal = w.cal
    tasks: list[Task] = []
    for j, ts in enumerate(cal.snapshot_ts):
        parts = int(w.snapshot_parts[j])
        for part in range(parts):
            name = schema.file_name(schema.SNAPSHOT, ts, part + 1)
            tasks.append(
                Task(f"{schema.SNAPSHOT.folder}/{name}", schema.SNAPSHOT.name, j, part, parts)
            )
    for i, ts in enumerate(cal.change_ts):
        name = schema.file_name(schema.CHANGE, ts, 1)
        tasks.append(Task(f"{schema.CHANGE.folder}/{name}", schema.CHANGE.name, i))
    for i, ts in enumerate(cal.enroll_ts):
        name = schema.file_name(schema.ENROLLMENT, ts, 1)
        tasks.append(Task(f"{schema.ENROLLMENT.folder}/{name}", schema.ENROLLMENT.name, i))
    if not dirty:
        return tasks, []

    rng = np.random.default_rng([seed, 303])  # its own stream: --dirty leaves the book as is
    rows = dirty_mod._Rows(rng, w.agencies)
    by_family: dict[str, list[int]] = {}
    for k, task in enumerate(tasks):
        by_family.setdefault(task.family, []).append(k)
    day_of = {
        schema.SNAPSHOT.name: cal.snapshot_days,
        schema.CHANGE.name: cal.change_days,
        schema.ENROLLMENT.name: cal.enroll_days,
    }
    for family, kind, expected, mutation in dirty_mod.CATALOGUE:
        k = int(rng.choice(by_family[family.name]))
        task = tasks[k]
        day = int(day_of[family.name][task.index])
        line = dirty_mod.dirty_line(rows, family, day, mutation, kind, expected)
        task.inserts.append((float(rng.random()), line))
    # CRLF line ends in one whole enrollment file and one change file (valid files).
    for family, files in ((schema.ENROLLMENT, w.en_file), (schema.CHANGE, w.ch_file)):
        counts = np.bincount(files, minlength=len(day_of[family.name]))
        busiest = int(np.argmax(counts))
        k = next(k for k in by_family[family.name] if tasks[k].index == busiest)
        tasks[k].crlf = True
    extras = dirty_mod.extra_files(rng, w.agencies, cal.change_days, cal.enroll_days)
    return tasks, extras


def _prepare_dir(path: Path) -> None:
    """Make `path` ready: a previous datagen output there is replaced, anything else kept."""
    path.mkdir(parents=True, exist_ok=True)
    previous = (path / MANIFEST).exists()
    for sub in ("ENROLLMENT", "MAINTENANCE"):
        d = path / sub
        if d.exists() and any(d.iterdir()):
            if not previous:
                raise FileExistsError(f"{d} is not empty and holds no datagen manifest")
            shutil.rmtree(d)
        d.mkdir(exist_ok=True)
    (path / MANIFEST).unlink(missing_ok=True)


def _counts(w: World, files: list[dict[str, Any]], n_dirty_rows: int) -> dict[str, Any]:
    """Summary numbers of the book and of the files."""
    per_family: dict[str, dict[str, int]] = {}
    for f in files:
        key = f["family"] or "unrecognised"
        c = per_family.setdefault(key, {"files": 0, "rows": 0, "size_bytes": 0})
        c["files"] += 1
        c["rows"] += f["rows"] or 0
        c["size_bytes"] += f["size_bytes"]
    ever_y = (w.cf == FLAG_Y).any(axis=1)
    withdrawn = ever_y & (w.cf[:, 1:] == FLAG_N).any(axis=1)
    acc_phones = np.bincount(w.pair_acc, minlength=len(w.acc_number))
    return {
        "accounts": int(len(w.acc_number)),
        "consumers": int(len(w.con_acc)),
        "pairs": int(len(w.pair_acc)),
        "consumer_phone_records": int(len(w.unit_pair)),
        "phones_per_account": {str(k): int((acc_phones == k).sum()) for k in range(1, 5)},
        "soft_deleted_pairs": int((w.del_kind == DEL_SOFT).sum()),
        "hard_deleted_pairs": int((w.del_kind == DEL_HARD).sum()),
        "readded_pairs": int((w.s1 < 2**30).sum()),
        "consented_pairs": int(ever_y.sum()),
        "withdrawn_pairs": int(withdrawn.sum()),
        "rows": sum(f["rows"] or 0 for f in files),
        "size_bytes": sum(f["size_bytes"] for f in files),
        "dirty_rows": n_dirty_rows,
        "by_family": dict(sorted(per_family.items())),
    }


def _check_split_case(w: World) -> None:
    """The split-snapshot pairs must really sit in a later part of the last snapshot."""
    j = len(w.cal.snapshot_days) - 1
    units, _, _ = w.snapshot_units(j)
    boundary = len(units) // int(w.snapshot_parts[j])
    later = set(w.unit_pair[units[boundary:]].tolist())
    w.planted[SPLIT_SNAPSHOT_PART] = [p for p in w.planted[SPLIT_SNAPSHOT_PART] if p in later]
    if not w.planted[SPLIT_SNAPSHOT_PART]:
        raise AssertionError("no planted pair landed in a later part of the last snapshot")


def generate(
    output_dir: str | os.PathLike[str],
    target_size_gb: float = 1.0,
    seed: int = 0,
    dirty: bool = False,
    accounts: int | None = None,
    start: str = DEFAULT_START,
    end: str = DEFAULT_END,
    workers: int | None = None,
    progress: bool | None = None,
    preview_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write a dataset (ENROLLMENT/, MAINTENANCE/, manifest.json) into output_dir."""
    global _STATE
    n_accounts = int(accounts) if accounts is not None else round(ACCOUNTS_PER_GB * target_size_gb)
    if workers is None:
        # Small books are written in-process: forking costs more than it saves, and the caller
        # (a test run holding JVM or other threads) is better left unforked.
        workers = (os.cpu_count() or 1) if n_accounts >= POOL_MIN_ACCOUNTS else 1
    workers = max(1, workers)
    progress = n_accounts >= PROGRESS_MIN_ACCOUNTS if progress is None else progress
    to_day(start), to_day(end)  # fail early on a bad date

    cal: Calendar = build_calendar(start, end, seed)
    world = build_world(n_accounts, cal, seed)
    _check_split_case(world)
    tables = build_tables(world)
    tasks, extras = _plan(world, seed, dirty)

    out = Path(output_dir)
    _prepare_dir(out)
    preview = Path(preview_dir) if preview_dir is not None else None
    if preview is not None:
        _prepare_dir(preview)
    _STATE = _State(world, tables, tasks, out, preview)

    # Biggest files first so the pool ends evenly.
    order = sorted(range(len(tasks)), key=lambda i: tasks[i].family != schema.SNAPSHOT.name)
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(tasks), unit="file", file=sys.stderr, disable=not progress, desc="datagen")
    try:
        if workers == 1 or "fork" not in mp.get_all_start_methods():
            for i in order:
                results.append(_run(i))
                bar.update()
        else:
            ctx = mp.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_run, i) for i in order]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
    finally:
        bar.close()
        _STATE = None

    dirty_entries: list[dict[str, Any]] = []
    for r in results:
        dirty_entries += r.pop("dirty")
    for x in extras:
        (out / x.rel_path).write_bytes(x.data)
        if preview is not None:
            (preview / x.rel_path.removesuffix(".gz")).write_bytes(x.plain)
        results.append(
            {
                "path": x.rel_path,
                "rows": x.rows,
                "size_bytes": len(x.data),
                "raw_bytes": len(x.plain),
            }
        )
        dirty_entries.append(
            {"file": x.rel_path, "line": None, "kind": x.kind, "expected": x.expected}
        )

    files = []
    for r in sorted(results, key=lambda r: r["path"]):
        parsed = schema.parse_file_name(r["path"].split("/")[-1])
        files.append(
            {
                "path": r["path"],
                "family": parsed.family.name if parsed else None,
                "file_date": parsed.file_date if parsed else None,
                "rows": r["rows"],
                "size_bytes": r["size_bytes"],
            }
        )
    manifest = {
        "args": {
            "target_size_gb": target_size_gb if accounts is None else None,
            "accounts": n_accounts,
            "seed": seed,
            "dirty": dirty,
            "start": start,
            "end": end,
        },
        "files": files,
        "counts": _counts(world, files, sum(1 for d in dirty_entries if d["line"] is not None)),
        "planted": {
            case: [world.pair_key(p) for p in world.planted[case]] for case in PLANTED_CASES
        },
        "dirty": sorted(dirty_entries, key=lambda d: (d["file"], d["line"] or 0, d["kind"])),
        "calendar": {
            "snapshot_dates": [iso(d) for d in cal.snapshot_days],
            "last_snapshot": iso(cal.last_snapshot),
        },
    }
    text = json.dumps(manifest, indent=1) + "\n"
    (out / MANIFEST).write_text(text)
    if preview is not None:
        (preview / MANIFEST).write_text(text)
    return manifest


def sample(
    output_dir: str | os.PathLike[str] = "data_sample",
    preview_dir: str | os.PathLike[str] | None = "data_preview",
    seed: int = 0,
    dirty: bool = False,
    accounts: int = 500,
    workers: int | None = None,
) -> dict[str, Any]:
    """A small dataset (~500 accounts, every file family and planted case) plus plain-CSV copies."""
    return generate(
        output_dir,
        seed=seed,
        dirty=dirty,
        accounts=accounts,
        workers=workers,
        preview_dir=preview_dir,
        progress=False,
    )
