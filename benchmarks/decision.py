"""Decision service benchmark: index build, in-process lookups, HTTP at a fixed rate, CLI batch,
and a synthetic 10^8-pair index.

    uv run python benchmarks/decision.py                      # everything (10^8 part: ~1 h)
    uv run python benchmarks/decision.py --skip-large         # minutes
    uv run python benchmarks/decision.py --gold DIR --gold-version N   # a real Gold export

What it measures and how:

1. Index build time and size for a book the size of the 1 GB reference load (~140k accounts,
   1-4 phones: 350,000 pairs). Without --gold, Gold is synthetic (same columns and pair count,
   64-hex content hashes, 400 source files; `datagen.synthetic_gold`).
2. In-process `decide` and `can_send_sms`: 1,000,000 calls on random pairs (90% in Gold, 10%
   absent; phones written as E.164, `(212) 555-0123` and bare 10 digits in turn), each timed
   with perf_counter_ns; p50/p99/p99.9. GC stays on.
3. HTTP: `phone-compliance serve` in its own process; load from another process, an asyncio
   open-loop generator on raw keep-alive HTTP/1.1 sockets (up to 64 connections) sending GET
   /v1/sms-permission at a fixed schedule (1,000 requests/s for 30 s). Latency runs from each
   request's *scheduled* send time to the last byte of its response, so a stalled server
   cannot hide queueing (no coordinated omission). Any non-200 or socket error is an error.
4. CLI batch: `phone-compliance check --input pairs.csv --output decisions.csv` on 1,000,000
   pairs (mixed formats, 0.1% invalid), wall time of the whole command (Python start included).
5. 10^8 pairs: synthetic Gold Parquet, index build (time, peak RSS of the builder, size on
   disk), then a fresh serving process opens it and makes 1,000,000 random `decide` calls:
   p50/p99 and resident memory (private vs. file-backed pages of the memory map). Everything is
   deleted afterwards.

The machine is shared: the load average is printed next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

from datagen.synthetic_gold import write_synthetic_gold, write_synthetic_history
from phone_compliance.service.build import build_index
from phone_compliance.service.index import (
    ACCOUNT_SHIFT,
    PHONE_LOW_BITS,
    DecisionIndex,
    HistoryIndex,
)

API_KEY = "bench-key-4c1d"
PAIRS_1GB = 350_000
HISTORY_INTERVALS = 2  # per pair: the 1 GB load has 1.87 (docs/performance.md)


# --- helpers ---------------------------------------------------------------------------------


def du(path: Path) -> int:
    """Bytes on disk under path."""
    total = 0
    for p in Path(path).rglob("*"):
        if p.is_file():
            total += p.stat().st_blocks * 512
    return total


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sample_pairs(index: DecisionIndex, count: int, seed: int, miss: float = 0.1) -> list:
    """Random (account, phone) inputs: pairs of the index (decoded from its keys), a share of
    them with the phone changed (absent pairs), phones in three written forms."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, index.n, size=count)
    keys = np.asarray(index.keys[np.sort(rows)])
    low = np.asarray(index.low[np.sort(rows)]).astype(np.uint64)
    if isinstance(index, HistoryIndex):  # `low` holds the phone's low bits above the day
        low >>= np.uint64(32)
    perm = rng.permutation(count)
    keys, low = keys[perm], low[perm]
    accounts = keys >> np.uint64(ACCOUNT_SHIFT)
    digits = ((keys & np.uint64((1 << ACCOUNT_SHIFT) - 1)) << np.uint64(PHONE_LOW_BITS)) | low
    absent = rng.random(count) < miss
    # an absent pair: same account, line number shifted (checked below to really be absent)
    digits = np.where(absent, (digits // 10000) * 10000 + (digits + 5003) % 10000, digits)
    out = []
    for k, (a, d) in enumerate(zip(accounts.tolist(), digits.tolist(), strict=True)):
        s = f"{d:010d}"
        form = k % 3
        phone = f"+1{s}" if form == 0 else f"({s[:3]}) {s[3:6]}-{s[6:]}" if form == 1 else s
        out.append((f"{a:016d}", phone))
    return out


# --- 1 + 2: build and in-process lookups ---------------------------------------------------------


def bench_build(gold: Path, history: Path | None, index_dir: Path, version: int) -> dict:
    t = time.perf_counter()
    path = build_index(gold, index_dir, version, history_dir=history)
    seconds = time.perf_counter() - t
    index = DecisionIndex(index_dir)
    return {
        "pairs": index.n,
        "intervals": index.history.n if index.history is not None else 0,
        "build_seconds": round(seconds, 2),
        "index_bytes": du(path),
        "gold_parquet_bytes": du(gold),
        "path": str(path),
    }


def bench_open(index_dir: Path) -> float:
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        DecisionIndex(index_dir)
        best = min(best, time.perf_counter() - t)
    return best


def bench_lookups(index: DecisionIndex, count: int, seed: int = 1) -> dict:
    pairs = sample_pairs(index, count, seed)
    clock = time.perf_counter_ns
    out = {}
    for name, fn in (("decide", index.decide), ("can_send_sms", index.can_send_sms)):
        lat = np.empty(count, dtype=np.int64)
        cpu0 = time.process_time()
        for i, (a, p) in enumerate(pairs):
            t0 = clock()
            fn(a, p)
            lat[i] = clock() - t0
        cpu = time.process_time() - cpu0
        us = lat / 1000
        out[name] = {
            "calls": count,
            "p50_us": round(pct(us, 50), 2),
            "p99_us": round(pct(us, 99), 2),
            "p99.9_us": round(pct(us, 99.9), 2),
            "mean_us": round(float(us.mean()), 2),
            "cpu_us_per_call": round(cpu / count * 1e6, 2),  # timer overhead included
        }
    reasons = {}
    for a, p in pairs[:20000]:
        r = index.decide(a, p).reason
        reasons[r] = reasons.get(r, 0) + 1
    out["reason_mix_first_20k"] = reasons
    return out


def bench_as_of(index: DecisionIndex, count: int, seed: int = 2) -> dict:
    """`decide(..., as_of=day)` (R14) on random pairs of the history and random days over its
    span (before the first interval too): p50/p99/p99.9 of each call."""
    history = index.require_history()
    pairs = sample_pairs(history, count, seed)
    rng = np.random.default_rng(seed)
    day_bits = np.asarray(history.low[:: max(history.n // 1000, 1)]) & np.uint64(0xFFFFFFFF)
    first = dt.date(1970, 1, 1) + dt.timedelta(days=int(day_bits.min()) - 2**31)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=int(day_bits.max()) - 2**31)
    span = (last - first).days + 60
    days = [
        first - dt.timedelta(days=30) + dt.timedelta(days=int(d))
        for d in rng.integers(0, span, count)
    ]
    clock = time.perf_counter_ns
    lat = np.empty(count, dtype=np.int64)
    reasons: dict[str, int] = {}
    for i, ((a, p), day) in enumerate(zip(pairs, days, strict=True)):
        t0 = clock()
        decision = index.decide(a, p, day)
        lat[i] = clock() - t0
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
    us = lat / 1000
    return {
        "calls": count,
        "intervals": history.n,
        "p50_us": round(pct(us, 50), 2),
        "p99_us": round(pct(us, 99), 2),
        "p99.9_us": round(pct(us, 99.9), 2),
        "reasons": reasons,
    }


# --- 3: HTTP at a fixed rate -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PHONE_COMPLIANCE_API_KEYS": API_KEY}
    cmd = [sys.executable, "-m", "phone_compliance.cli", "serve", "--port", str(port),
           "--index", str(index_dir), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in s.recv(100):
                    return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


async def _loadgen(port: int, targets: list[str], rate: float, seconds: float, conns: int):
    clock = time.perf_counter  # uvloop's loop.time() ticks in whole milliseconds
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    total = int(rate * seconds)
    latencies = np.zeros(total)
    errors: list[str] = []
    start = clock() + 0.2
    pending = set()

    async def one(i: int, scheduled: float, conn) -> None:
        reader, writer = conn
        request = (
            f"GET {targets[i % len(targets)]} HTTP/1.1\r\nHost: bench\r\n"
            f"X-API-Key: {API_KEY}\r\n\r\n"
        ).encode()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            latencies[i] = clock() - scheduled
            if status != 200 or not body.startswith(b'{"account_number"'):
                errors.append(f"{status} {body[:120]!r}")
            pool.put_nowait(conn)
        except Exception as e:  # a broken connection is an error; replace it
            errors.append(repr(e))
            latencies[i] = clock() - scheduled
            writer.close()
            pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await pool.get()
        task = asyncio.create_task(one(i, scheduled, conn))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = clock() - start
    return latencies, errors, total / elapsed


def loadgen_main(args: argparse.Namespace) -> None:
    """Entry point of the separate load-generating process; prints JSON."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    targets = json.loads(Path(args.targets).read_text())
    lat, errors, achieved = asyncio.run(
        _loadgen(args.port, targets, args.rate, args.seconds, args.conns)
    )
    ms = lat * 1000
    print(
        json.dumps(
            {
                "requests": len(lat),
                "target_rate": args.rate,
                "achieved_rate": round(achieved, 1),
                "errors": len(errors),
                "first_errors": errors[:5],
                "p50_ms": round(pct(ms, 50), 3),
                "p99_ms": round(pct(ms, 99), 3),
                "p99.9_ms": round(pct(ms, 99.9), 3),
                "max_ms": round(float(ms.max()), 3),
            }
        )
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_http(index_dir: Path, work: Path, rate: float, seconds: float) -> dict:
    index = DecisionIndex(index_dir)
    targets = [
        f"/v1/sms-permission?account={a}&phone={quote(p)}"
        for a, p in sample_pairs(index, 20000, seed=5)
    ]
    targets_file = work / "http_targets.json"
    targets_file.write_text(json.dumps(targets))
    port = free_port()
    server = start_server(index_dir, port)
    try:
        cmd = [sys.executable, __file__, "--_loadgen", "--port", str(port), "--targets",
               str(targets_file), "--rate", str(rate), "--seconds", str(seconds)]  # fmt: skip
        cpu0 = _cpu_seconds(server.pid)
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        server_cpu = _cpu_seconds(server.pid) - cpu0
        result = json.loads(run.stdout)
        result["server_cpu_us_per_request"] = round(server_cpu / result["requests"] * 1e6, 1)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    result["load"] = "asyncio raw HTTP/1.1 keep-alive, open loop, separate process"
    return result


# --- 4: CLI batch ------------------------------------------------------------------------------


def bench_batch(index_dir: Path, work: Path, rows: int) -> dict:
    index = DecisionIndex(index_dir)
    pairs = sample_pairs(index, rows, seed=9)
    source = work / "pairs.csv"
    rng = np.random.default_rng(9)
    bad = set(rng.integers(0, rows, size=rows // 1000).tolist())
    with open(source, "w") as f:
        f.write("account_number,phone_number\n")
        for i, (a, p) in enumerate(pairs):
            f.write(f'{a},"{"555-01" if i in bad else p}"\n')
    target = work / "decisions.csv"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "phone_compliance.cli", "check", "--input", str(source),
           "--output", str(target), "--index", str(index_dir), "--no-progress"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rows": rows,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2
        ),
        "output_bytes": target.stat().st_size,
        "summary": run.stderr.strip().splitlines()[-1],
    }


# --- 5: 10^8 pairs -----------------------------------------------------------------------------


def serve_lookups_main(args: argparse.Namespace) -> None:
    """Separate process: open an index, time random decides, report resident memory."""
    t = time.perf_counter()
    index = DecisionIndex(args.index)
    opened = time.perf_counter() - t
    result = {"open_ms": round(opened * 1000, 2), "rss_after_open": _proc_status()}
    # cold: each page of the map is faulted in on its first touch, as right after a swap
    # without warming (`serve --no-warm`)
    result["cold"] = bench_lookups(index, args.lookups, seed=3)
    del index
    index = DecisionIndex(args.index)  # new maps: page tables start empty again
    t = time.perf_counter()
    index.warm()
    result["warm_seconds"] = round(time.perf_counter() - t, 2)
    result.update(bench_lookups(index, args.lookups, seed=4))
    result["rss_after_lookups"] = _proc_status()
    print(json.dumps(result))


def _proc_status() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = value.strip()
    return out


def bench_large(work: Path, pairs: int, lookups: int) -> dict:
    gold = work / "gold_large"
    t = time.perf_counter()
    write_synthetic_gold(gold, pairs, seed=100, rows_per_file=2_000_000)
    gen_seconds = time.perf_counter() - t
    gold_bytes = du(gold)
    index_dir = work / "index_large"
    code = (
        "import json, resource, threading, time\n"
        "from pathlib import Path\n"
        "from phone_compliance.service.build import build_index\n"
        "peak = {'RssAnon': 0, 'RssFile': 0}\n"
        "def sample():\n"
        "    while True:\n"
        "        for line in Path('/proc/self/status').read_text().splitlines():\n"
        "            k, _, v = line.partition(':')\n"
        "            if k in peak:\n"
        "                peak[k] = max(peak[k], int(v.split()[0]))\n"
        "        time.sleep(0.2)\n"
        "threading.Thread(target=sample, daemon=True).start()\n"
        "t = time.perf_counter()\n"
        f"p = build_index({str(gold)!r}, {str(index_dir)!r}, 1)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'path': str(p),"
        " 'maxrss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " 'peak_anon_kib': peak['RssAnon'], 'peak_file_kib': peak['RssFile']}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    built = json.loads(run.stdout)
    shutil.rmtree(gold)  # free the disk before serving
    cmd = [sys.executable, __file__, "--_serve-lookups", "--index", str(index_dir),
           "--lookups", str(lookups)]  # fmt: skip
    served = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    result = {
        "pairs": pairs,
        "gold_generate_seconds": round(gen_seconds, 1),
        "gold_parquet_bytes": gold_bytes,
        "build_seconds": round(built["seconds"], 1),
        "build_peak_rss": mib(built["maxrss_kib"] * 1024),
        "build_peak_rss_anon": mib(built["peak_anon_kib"] * 1024),  # the builder's own memory
        "build_peak_rss_file": mib(built["peak_file_kib"] * 1024),  # mapped files (page cache)
        "index_bytes": du(Path(built["path"])),
        "serving": served,
    }
    shutil.rmtree(index_dir)
    return result


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", type=Path, help="real Gold Parquet export (default: synthetic)")
    parser.add_argument("--gold-version", type=int, default=1)
    parser.add_argument("--history", type=Path, help="its decision history export (with --gold)")
    parser.add_argument(
        "--history-intervals", type=int, default=HISTORY_INTERVALS, help="synthetic, per pair"
    )
    parser.add_argument("--pairs", type=int, default=PAIRS_1GB)
    parser.add_argument("--lookups", type=int, default=1_000_000)
    parser.add_argument("--http-rate", type=float, default=1000)
    parser.add_argument("--http-seconds", type=float, default=30)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--large-pairs", type=int, default=100_000_000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temp dir)")
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    # internal: the separate processes
    parser.add_argument("--_loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_serve-lookups", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--conns", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._loadgen:
        return loadgen_main(args)
    if args._serve_lookups:
        return serve_lookups_main(args)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="decision-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict = {"load_average_at_start": load(), "cpus": os.cpu_count()}
    try:
        print(f"workdir {work}; load average {load()}", flush=True)
        history = args.history
        if args.gold is None:
            gold = work / "gold"
            t = time.perf_counter()
            write_synthetic_gold(gold, args.pairs, seed=1, rows_per_file=500_000)
            history = work / "history"
            write_synthetic_history(history, args.pairs, args.history_intervals, seed=1)
            figures["gold"] = (
                f"synthetic, {args.pairs:,} pairs, {args.history_intervals} intervals each "
                f"({time.perf_counter() - t:.1f}s)"
            )
        else:
            gold = args.gold
            figures["gold"] = f"real export {gold}" + (f", history {history}" if history else "")
        index_dir = work / "index"
        figures["build"] = bench_build(gold, history, index_dir, args.gold_version)
        figures["build"]["open_ms"] = round(bench_open(index_dir) * 1000, 2)
        b = figures["build"]
        print(f"[build] {b['pairs']:,} pairs and {b['intervals']:,} history intervals in "
              f"{b['build_seconds']}s, index {mib(b['index_bytes'])} (Gold Parquet "
              f"{mib(b['gold_parquet_bytes'])}), open {b['open_ms']} ms", flush=True)  # fmt: skip

        index = DecisionIndex(index_dir)
        figures["in_process"] = bench_lookups(index, args.lookups)
        for name in ("decide", "can_send_sms"):
            f = figures["in_process"][name]
            print(f"[in-process] {name}: {f['calls']:,} calls p50 {f['p50_us']} us, p99 "
                  f"{f['p99_us']} us, p99.9 {f['p99.9_us']} us, CPU {f['cpu_us_per_call']} us/call "
                  f"(goal p99 <= 20 us); "
                  f"load {load()}", flush=True)  # fmt: skip

        if index.history is not None:
            a = figures["as_of"] = bench_as_of(index, args.lookups)
            print(f"[as-of] decide(as_of=day): {a['calls']:,} calls over {a['intervals']:,} "
                  f"intervals p50 {a['p50_us']} us, p99 {a['p99_us']} us, p99.9 "
                  f"{a['p99.9_us']} us (goal p99 <= 50 us); load {load()}", flush=True)  # fmt: skip

        if not args.skip_http:
            h = figures["http"] = bench_http(index_dir, work, args.http_rate, args.http_seconds)
            print(f"[http] {h['requests']:,} GETs at {h['achieved_rate']}/s: p50 {h['p50_ms']} "
                  f"ms, p99 {h['p99_ms']} ms, p99.9 {h['p99.9_ms']} ms, max {h['max_ms']} ms, "
                  f"errors {h['errors']}; server CPU {h['server_cpu_us_per_request']} us/request "
                  f"(goal p99 <= 5 ms, 0 errors); load {load()}",
                  flush=True)  # fmt: skip

        if not args.skip_batch:
            c = figures["batch_cli"] = bench_batch(index_dir, work, args.batch_rows)
            print(f"[batch] {c['rows']:,} pairs through the CLI in {c['wall_seconds']}s wall, "
                  f"{c['cpu_seconds']}s CPU (goal <= 10 s); output {mib(c['output_bytes'])}; "
                  f"load {load()}", flush=True)  # fmt: skip
        shutil.rmtree(work / "index", ignore_errors=True)

        if not args.skip_large:
            print(f"[large] {args.large_pairs:,} pairs: generating, building, serving "
                  f"(disk free {mib(shutil.disk_usage(work).free)})", flush=True)  # fmt: skip
            g = figures["large"] = bench_large(work, args.large_pairs, args.lookups)
            s = g["serving"]
            print(f"[large] Gold Parquet {mib(g['gold_parquet_bytes'])} generated in "
                  f"{g['gold_generate_seconds']}s; index built in {g['build_seconds']}s "
                  f"(builder peak RSS {g['build_peak_rss']}: anonymous {g['build_peak_rss_anon']}, "
                  f"mapped files {g['build_peak_rss_file']}), {mib(g['index_bytes'])} on disk; "
                  f"open {s['open_ms']} ms; cold decide p50 {s['cold']['decide']['p50_us']} us, "
                  f"p99 {s['cold']['decide']['p99_us']} us; warm-up {s['warm_seconds']}s; warm "
                  f"decide p50 {s['decide']['p50_us']} us, p99 {s['decide']['p99_us']} us, "
                  f"can_send_sms p99 {s['can_send_sms']['p99_us']} us; RSS after lookups "
                  f"{s['rss_after_lookups']}; load {load()}", flush=True)  # fmt: skip
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    figures["load_average_at_end"] = load()
    print(json.dumps(figures, indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
