"""Full graph from empty on a generated dataset: wall time per step, rows/s, peak memory; with
`--daily`, what a day of operation costs.

    uv run python benchmarks/pipeline.py --size-gb 1.0 [--data-dir data/bench-1gb] [--seed 7]
    uv run python benchmarks/pipeline.py --size-gb 1.0 --daily [--repeats 2] [--warm]
    uv run python benchmarks/pipeline.py --size-gb 1.0 --standalone-cluster

`--standalone-cluster` runs the graph on a Spark standalone cluster started on loopback for the
run (a master and two workers of one core each, from pyspark's own scripts) instead of local[*].

`--daily` runs `phone-compliance run` as a user does (a fresh process each: Python, Dagster, the
JVM), side by side, `--repeats` times: from empty on the history without its newest SUPPLFWD
file and its newest snapshot; then that SUPPLFWD file arrives; then the snapshot; then a run with
nothing new. It prints min/median of each and, for the daily file, where its seconds went.
With `--warm` the same runs go one after the other in this one process: every run after the
first finds the JVM started and its JIT warm, which is what a long-lived Spark driver the runs
attach to (a Spark Connect server) would save.

Generates the dataset when the folder is absent (datagen), builds Bronze → Silver → Gold (and the
decision index when it is part of the graph) into a fresh temporary warehouse on an ephemeral
Dagster instance, and prints the figures. Peak memory is sampled from /proc every 0.2 s: the
Python driver process and the Spark JVM (local mode: driver and executors are one JVM). So is
CPU time, of this process and every child (the JVM, the file inspection workers), per step and in
all: on a machine with N cores a step that keeps them busy uses N CPU seconds per second, so CPU
seconds say how much work a step is, wall time how long it waited for it.

Last, it times gunzipping the whole dataset in one process: these shared VMs run at different
speeds from hour to hour (up to 1.5x), and that figure says how fast this one was (#3 quotes 9 s
for 1 GB on its reference machine), so runs taken at different times can be compared.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from pathlib import Path

from phone_compliance.settings import Settings
from phone_compliance_tests.cluster.standalone import running_cluster

_TICKS = os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _jit_seconds() -> float:
    """CPU time the Spark JVM's JIT compilers have spent so far (its management bean)."""
    from pyspark import SparkContext

    jvm = SparkContext._jvm
    if jvm is None:
        return float("nan")
    bean = jvm.java.lang.management.ManagementFactory.getCompilationMXBean()
    return bean.getTotalCompilationTime() / 1000


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


class Sampler(threading.Thread):
    """Samples, until stopped, the RSS of this process and of its java children (peaks) and the
    CPU time of this process and all its children (a series, to split by step)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.python_kb = 0
        self.jvm_kb = 0
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.rss_kb: list[tuple[int, int]] = []  # (python, jvm) at each sample
        self.jvm_cpu = 0.0
        self._child_cpu: dict[int, float] = {}  # last seen, kept after a child exits
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
                self._child_cpu[child] = max(self._child_cpu.get(child, 0.0), _cpu_seconds(child))
                if b"java" in cmd.split(b"\0")[0]:
                    jvm += _rss_kb(child)
                    self.jvm_cpu = self._child_cpu[child]
            self.jvm_kb = max(self.jvm_kb, jvm)
            self.rss_kb.append((_rss_kb(me), jvm))
            self.times.append(time.time())
            self.cpu.append(_cpu_seconds(me) + sum(self._child_cpu.values()))
            time.sleep(0.2)

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds used by all sampled processes between two wall-clock times."""
        if not self.times:
            return float("nan")
        at = [min(bisect_left(self.times, t), len(self.times) - 1) for t in (start, end)]
        return self.cpu[at[1]] - self.cpu[at[0]]

    def peak_between(self, start: float, end: float) -> tuple[float, float]:
        """Peak RSS (GiB) of the Python driver and of the JVM between two wall-clock times."""
        low, high = (bisect_left(self.times, t) for t in (start, end))
        window = self.rss_kb[low : max(high, low + 1)] or [(0, 0)]
        return tuple(max(kb[i] for kb in window) / 1024**2 for i in (0, 1))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _gunzip_seconds(data_dir: Path, manifest: dict) -> float:
    """Wall time to decompress every file of the dataset in this one process (zlib)."""
    started = time.monotonic()
    for f in manifest["files"]:
        gzip.decompress((data_dir / f["path"]).read_bytes())
    return time.monotonic() - started


_STEP_LINE = re.compile(r"^  (\S+)\s+(done|FAILED|skipped|waits)\s+([0-9.]+)s", re.M)


def _cli_run(landing: Path, warehouse: str, home: str) -> tuple[float, dict[str, float], str]:
    """`phone-compliance run` in a fresh process: wall seconds, seconds per step, its output."""
    env = {**os.environ, "DAGSTER_HOME": home}
    env.setdefault("PHONE_COMPLIANCE_SSN_HASH_KEY", "benchmark-key")
    command = [sys.executable, "-m", "phone_compliance.cli", "run"]
    command += ["--landing", str(landing), "--warehouse", warehouse]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    steps = {m[1]: float(m[3]) for m in _STEP_LINE.finditer(done.stdout)}
    return wall, steps, done.stdout


def _newest(data_dir: Path, token: str) -> list[Path]:
    """The files of the newest file date of a family (every part of a snapshot)."""
    files = sorted(data_dir.glob(f"MAINTENANCE/*-{token}*"))
    newest = max(f.name.split("-")[1][:8] for f in files)
    return [f for f in files if f.name.split("-")[1][:8] == newest]


def _spark_start_seconds() -> float:
    """A Spark session with the pipeline's configuration, started in a fresh process."""
    code = (
        "import time; t = time.monotonic(); "
        "from phone_compliance.settings import Settings; "
        "from phone_compliance.ingest import parser; "
        "from phone_compliance.lakehouse.spark import build_spark_session, spark_config; "
        "build_spark_session(spark_config(Settings.from_env(), jars=[parser.jar()])); "
        "print(time.monotonic() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def _landing_without(data_dir: Path, landing: Path, withheld: set[Path]) -> None:
    """Hard links of the dataset's files into `landing`, but for `withheld`."""
    for f in sorted(data_dir.glob("*/*.csv.gz")):
        if f not in withheld:
            (landing / f.parent.name).mkdir(parents=True, exist_ok=True)
            os.link(f, landing / f.parent.name / f.name)


def _in_process_runner(landing: Path, warehouse: str):
    """A function that runs the graph in this process and returns its wall seconds: every run
    after the first finds Spark's JVM started and warm, as a long-lived driver would."""
    import dagster as dg

    from phone_compliance.definitions import build_defs

    settings = Settings.from_env().with_overrides(landing=str(landing), warehouse=warehouse)
    if settings.ssn_hash_key is None:
        settings = settings.with_overrides(ssn_hash_key="benchmark-key")
    job = build_defs(settings).resolve_job_def("refresh_decisions")
    instance = dg.DagsterInstance.ephemeral()

    def run() -> tuple[float, dict[str, float], str]:
        started = time.monotonic()
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        wall = time.monotonic() - started
        steps = {}
        for event in result.all_events:
            if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                steps[event.step_key] = event.event_specific_data.duration_ms / 1000
        return wall, steps, "success" if result.success else "FAILED"

    return run


def daily(data_dir: Path, repeats: int, warm: bool) -> None:
    """From empty, a daily SUPPLFWD file, a snapshot, nothing new: each `repeats` times; each a
    fresh `phone-compliance run` process, or (`warm`) all in this one process."""
    held = {"daily": _newest(data_dir, "SUPPLFWD"), "snapshot": _newest(data_dir, "NON-FIN-BDL")}
    kinds = ["from empty", "daily file", "snapshot", "no-op"]
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    daily_steps: list[dict[str, float]] = []
    for n in range(repeats):
        with tempfile.TemporaryDirectory(prefix="pc-bench-daily-") as tmp:
            landing, home = Path(tmp) / "landing", Path(tmp) / "home"
            home.mkdir()
            shutil.copy(Path(__file__).parent.parent / ".dagster_home" / "dagster.yaml", home)
            _landing_without(data_dir, landing, {p for files in held.values() for p in files})
            warehouse = str(Path(tmp) / "warehouse")
            run = (
                _in_process_runner(landing, warehouse)
                if warm
                else functools.partial(_cli_run, landing, warehouse, str(home))
            )
            for kind in kinds:
                for f in held.get(kind.split()[0], []):
                    os.link(f, landing / f.parent.name / f.name)
                wall, steps, out = run()
                walls[kind].append(wall)
                if kind == "daily file":
                    daily_steps.append(steps)
                print(
                    f"  repeat {n + 1}: {kind:<11} {wall:6.1f} s  (load {os.getloadavg()[0]:.1f})"
                )
    print(f"\n{'run':<12} {'min s':>7} {'median s':>9}  of {repeats}; vs from empty (median)")
    empty = statistics.median(walls["from empty"])
    for kind, values in walls.items():
        median = statistics.median(values)
        print(f"{kind:<12} {min(values):7.1f} {median:9.1f}  {median / empty:6.1%}")
    print("\nthe daily file's run, step by step (median s):")
    for step in daily_steps[0]:
        print(f"  {step:<52} {statistics.median(s.get(step, 0.0) for s in daily_steps):6.1f}")
    accounted = statistics.median(sum(s.values()) for s in daily_steps)
    print(f"  {'(steps in all)':<52} {accounted:6.1f}")
    print(
        f"  {'(the rest: Python, imports, Dagster, summary)':<52} "
        f"{statistics.median(walls['daily file']) - accounted:6.1f}"
    )
    if not warm:
        print(f"Spark session start alone, fresh process: {_spark_start_seconds():.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--warehouse", help="kept after the run; default: a temporary folder, removed after it"
    )
    parser.add_argument("--daily", action="store_true", help="the daily-operation runs")
    parser.add_argument("--repeats", type=int, default=2, help="of each --daily run")
    parser.add_argument(
        "--warm", action="store_true", help="--daily runs in this one process (one JVM)"
    )
    parser.add_argument(
        "--standalone-cluster", action="store_true", help="on a loopback standalone cluster"
    )
    parser.add_argument("--worker-memory", default="4g", help="of each standalone worker")
    args = parser.parse_args()

    data_dir = Path(args.data_dir or f"data/bench-{args.size_gb:g}gb")
    if not (data_dir / "manifest.json").exists():
        import datagen

        print(f"generating {args.size_gb} GB into {data_dir} …", flush=True)
        datagen.generate(data_dir, target_size_gb=args.size_gb, seed=args.seed)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    if args.daily:
        daily(data_dir, args.repeats, args.warm)
        return
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for quiet in ("py4j", "dagster"):
        logging.getLogger(quiet).setLevel(logging.WARNING)

    with contextlib.ExitStack() as stack:
        # A temporary warehouse goes when the run ends, failed or not: a 5 GB one is ~8 GB.
        warehouse = args.warehouse or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pc-bench-warehouse-")
        )
        settings = Settings.from_env().with_overrides(
            landing=str(data_dir.resolve()), warehouse=warehouse
        )
        if settings.ssn_hash_key is None:
            settings = settings.with_overrides(ssn_hash_key="benchmark-key")
        if args.standalone_cluster:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pc-cluster-")))
            cluster = stack.enter_context(running_cluster(root, memory=args.worker_memory))
            executor_memory = f"{int(args.worker_memory.rstrip('g')) - 1}g"
            settings = settings.with_overrides(
                spark_master=cluster.master_url,
                spark_conf=(("spark.executor.memory", executor_memory),),
            )
            print(f"standalone cluster {cluster.master_url}: 2 workers, 1 core each")
        _from_empty(settings, data_dir, manifest, warehouse)


def _from_empty(settings: Settings, data_dir: Path, manifest: dict, warehouse: str) -> None:
    """The whole graph from empty, timed and sampled, and its figures printed."""
    import dagster as dg

    from phone_compliance.definitions import build_defs

    rows = sum(f["rows"] or 0 for f in manifest["files"])
    size = sum(f["size_bytes"] for f in manifest["files"])
    defs = build_defs(settings)

    sampler = Sampler()
    sampler.start()
    started = time.monotonic()
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("refresh_decisions").execute_in_process(
        instance=instance, raise_on_error=False
    )
    total = time.monotonic() - started
    sampler.stop()
    jit = _jit_seconds()

    print(
        f"\ndataset  {data_dir}: {len(manifest['files'])} files, {rows:,} rows, "
        f"{size / 1e6:,.0f} MB compressed"
    )
    print(f"result   {'success' if result.success else 'FAILED'}; warehouse {warehouse}")
    print(f"\n  {'step':<60} {'wall s':>8} {'CPU s':>8} {'peak GiB py/JVM':>16}")
    step_started: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            step_started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            ms = getattr(event.event_specific_data, "duration_ms", None)
            began = step_started.get(event.step_key, 0.0)
            cpu = sampler.cpu_between(began, entry.timestamp)
            python_gib, jvm_gib = sampler.peak_between(began, entry.timestamp)
            print(
                f"  {event.step_key:<60} {ms / 1000 if ms else float('nan'):8.1f} {cpu:8.1f} "
                f"{python_gib:9.2f} / {jvm_gib:4.2f}"
            )
    cpu = sampler.cpu[-1] - sampler.cpu[0] if sampler.cpu else float("nan")
    print(f"\ntotal    {total:.1f} s from empty (Spark start-up included)")
    print(
        f"CPU      {cpu:.0f} s in all ({sampler.jvm_cpu:.0f} s Spark JVM), {cpu / total:.2f} of "
        f"{os.cpu_count()} cores busy on average; {jit:.0f} s of it JIT-compiling"
    )
    print(f"rows/s   {rows / total:,.0f}")
    print(
        f"peak RSS python driver {sampler.python_kb / 1024**2:.2f} GiB, "
        f"Spark JVM {sampler.jvm_kb / 1024**2:.2f} GiB"
    )
    print(
        f"gunzip   {_gunzip_seconds(data_dir, manifest):.1f} s for the dataset in one process "
        "(this VM's speed now)"
    )


if __name__ == "__main__":
    main()
