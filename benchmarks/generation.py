"""Benchmark of the data generator: `uv run python benchmarks/generation.py [GB] [--workers K]`.

Generates the given size (default 1 GB) into a temporary directory and prints wall time,
compressed MB/s, rows/s, file count and peak RSS (parent and the largest worker).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import datagen


def _load() -> str:
    """Load averages, to tell whether other work shared the machine."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    """Run one generation and print its figures."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("gb", nargs="?", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dirty", action="store_true")
    args = p.parse_args()

    print(f"before: {_load()}")
    with tempfile.TemporaryDirectory(prefix="datagen-bench-") as tmp:
        t0 = time.perf_counter()
        manifest = datagen.generate(
            tmp, target_size_gb=args.gb, seed=args.seed, dirty=args.dirty, workers=args.workers
        )
        wall = time.perf_counter() - t0
    counts = manifest["counts"]
    mb = counts["size_bytes"] / 1e6
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"target: {args.gb} GB -> {counts['accounts']:,} accounts, {counts['pairs']:,} pairs")
    print(f"wall time: {wall:.1f} s")
    print(f"files: {len(manifest['files'])}")
    print(f"rows: {counts['rows']:,} ({counts['rows'] / wall:,.0f} rows/s)")
    print(f"compressed output: {mb:,.1f} MB ({mb / wall:,.1f} MB/s)")
    print(f"peak RSS: parent {parent:,.0f} MB, largest worker {child:,.0f} MB")
    print(f"after: {_load()}")


if __name__ == "__main__":
    main()
