"""A Spark standalone cluster on 127.0.0.1: a master and two workers (1 core, 1 GB each), each its
own JVM started with pyspark's own `bin/spark-class`, each worker with its own work folder.

Every process leads its own process group, so stopping a group also stops the executors a
worker launched; nothing is left running, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
LOOPBACK = "127.0.0.1"
WORKERS = 2
STARTUP_TIMEOUT = 300  # seconds; JVMs start slowly on a busy 2-core machine


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def start_group(args: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """Start `args` as the leader of a new process group, its output to `log`."""
    with open(log, "ab") as sink:
        return subprocess.Popen(
            list(args),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _group_gone(process: subprocess.Popen, within: float) -> bool:
    """True once no process of `process`'s group is left (its leader reaped), within seconds."""
    deadline = time.monotonic() + within
    while True:
        process.poll()  # reap the leader: a zombie still counts as a member
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """Stop a process group: SIGTERM (a worker then stops its executors), SIGKILL if needed."""
    for sig, within in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if _group_gone(process, within):
            return
    raise RuntimeError(f"process group {process.pid} survived SIGKILL")


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: its master's URL and each worker's work folder."""

    master_url: str
    web_url: str
    work_dirs: tuple[Path, ...]

    def status(self) -> dict:
        """The master's status page as JSON (workers, applications)."""
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=10) as answer:
            return json.load(answer)


def _wait_for(what: str, ready, processes: Sequence[subprocess.Popen], logs: Sequence[Path]):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"{what}: {log.name} exited:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass  # the master's web UI is not up yet
        time.sleep(1)
    raise TimeoutError(f"{what} within {STARTUP_TIMEOUT} s; see {', '.join(map(str, logs))}")


@contextlib.contextmanager
def running_cluster(
    root: Path, workers: int = WORKERS, cores: int = 1, memory: str = "1g"
) -> Iterator[Cluster]:
    """A master and `workers` workers on loopback under `root`, started and registered; stopped
    afterwards, whatever happened."""
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": LOOPBACK,
        "SPARK_NO_DAEMONIZE": "1",
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port, web_port = free_port(), free_port()
    cluster = Cluster(
        master_url=f"spark://{LOOPBACK}:{port}",
        web_url=f"http://{LOOPBACK}:{web_port}",
        work_dirs=tuple(root / f"worker-{n}" for n in range(1, workers + 1)),
    )
    processes: list[subprocess.Popen] = []
    logs: list[Path] = []
    try:
        logs.append(root / "master.log")
        master = [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            *("--host", LOOPBACK, "--port", str(port), "--webui-port", str(web_port)),
        ]
        processes.append(start_group(master, env, logs[-1]))
        _wait_for("the master", lambda: cluster.status()["status"] == "ALIVE", processes, logs)
        for work_dir in cluster.work_dirs:
            work_dir.mkdir()
            local_dir = work_dir.with_name(f"{work_dir.name}-local")  # executors' scratch
            local_dir.mkdir()
            logs.append(work_dir.with_suffix(".log"))
            worker = [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                cluster.master_url,
                *("--cores", str(cores), "--memory", memory, "--work-dir", str(work_dir)),
                *("--host", LOOPBACK, "--webui-port", str(free_port())),
            ]
            processes.append(
                start_group(worker, {**env, "SPARK_LOCAL_DIRS": str(local_dir)}, logs[-1])
            )
        _wait_for(
            f"{workers} workers registered",
            lambda: cluster.status()["aliveworkers"] == workers,
            processes,
            logs,
        )
        yield cluster
    finally:
        survivors = []
        for process in reversed(processes):
            try:
                stop_group(process)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                survivors.append(str(error))
        # Keep the executors' logs, not their copies of the jars (the AWS SDK alone is 0.5 GB).
        for work_dir in cluster.work_dirs:
            shutil.rmtree(work_dir.with_name(f"{work_dir.name}-local"), ignore_errors=True)
            for jar in work_dir.rglob("*.jar"):
                jar.unlink()
        if survivors:
            raise RuntimeError(f"cluster processes survived: {survivors}")
