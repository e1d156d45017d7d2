"""Full graph from empty on a generated dataset: wall time per step, rows/s, peak memory.

    uv run python benchmarks/pipeline.py --size-gb 1.0 [--data-dir data/bench-1gb] [--seed 7]

Generates the dataset when the folder is absent (datagen), builds Bronze → Silver → Gold (and the
decision index when it is part of the graph) into a fresh temporary warehouse on an ephemeral
Dagster instance, and prints the figures. Peak memory is sampled from /proc every 0.2 s: the
Python driver process and the Spark JVM (local mode: driver and executors are one JVM).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


class PeakMemory(threading.Thread):
    """Samples the RSS of this process and of its java child processes until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.python_kb = 0
        self.jvm_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.is_set():
            self.python_kb = max(self.python_kb, _rss_kb(me))
            jvm = 0
            for child in _children(me):
                try:
                    cmd = Path(f"/proc/{child}/cmdline").read_bytes()
                except FileNotFoundError:
                    continue
                if b"java" in cmd.split(b"\0")[0]:
                    jvm += _rss_kb(child)
            self.jvm_kb = max(self.jvm_kb, jvm)
            time.sleep(0.2)

    def stop(self) -> None:
        self._done.set()
        self.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warehouse", help="default: a fresh temporary folder")
    args = parser.parse_args()

    data_dir = Path(args.data_dir or f"data/bench-{args.size_gb:g}gb")
    if not (data_dir / "manifest.json").exists():
        import datagen

        print(f"generating {args.size_gb} GB into {data_dir} …", flush=True)
        datagen.generate(data_dir, target_size_gb=args.size_gb, seed=args.seed)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    rows = sum(f["rows"] or 0 for f in manifest["files"])
    size = sum(f["size_bytes"] for f in manifest["files"])

    warehouse = args.warehouse or tempfile.mkdtemp(prefix="pc-bench-warehouse-")
    os.environ["PHONE_COMPLIANCE_LANDING"] = str(data_dir.resolve())
    os.environ["PHONE_COMPLIANCE_WAREHOUSE"] = warehouse
    os.environ.setdefault("PHONE_COMPLIANCE_SSN_HASH_KEY", "benchmark-key")

    import logging

    import dagster as dg

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for quiet in ("py4j", "dagster"):
        logging.getLogger(quiet).setLevel(logging.WARNING)

    from phone_compliance.definitions import defs

    memory = PeakMemory()
    memory.start()
    started = time.monotonic()
    result = defs.get_job_def("refresh_decisions").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    total = time.monotonic() - started
    memory.stop()

    print(
        f"\ndataset  {data_dir}: {len(manifest['files'])} files, {rows:,} rows, "
        f"{size / 1e6:,.0f} MB compressed"
    )
    print(f"result   {'success' if result.success else 'FAILED'}; warehouse {warehouse}")
    print("\nwall time per step (s)")
    for event in result.all_events:
        if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            ms = getattr(event.event_specific_data, "duration_ms", None)
            print(f"  {event.step_key:<60} {ms / 1000 if ms else float('nan'):8.1f}")
    print(f"\ntotal    {total:.1f} s from empty (Spark start-up included)")
    print(f"rows/s   {rows / total:,.0f}")
    print(
        f"peak RSS python driver {memory.python_kb / 1024**2:.2f} GiB, "
        f"Spark JVM {memory.jvm_kb / 1024**2:.2f} GiB"
    )


if __name__ == "__main__":
    main()
