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
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

from phone_compliance_tests.processes import (
    LOOPBACK,
    free_port,
    start_group,
    stop_group,
    wait_until,
)

SPARK_HOME = Path(pyspark.__file__).parent
WORKERS = 2
STARTUP_TIMEOUT = 300  # seconds; JVMs start slowly on a busy 2-core machine


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
        wait_until(
            "the master",
            lambda: cluster.status()["status"] == "ALIVE",
            processes,
            logs,
            STARTUP_TIMEOUT,
        )
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
        wait_until(
            f"{workers} workers registered",
            lambda: cluster.status()["aliveworkers"] == workers,
            processes,
            logs,
            STARTUP_TIMEOUT,
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
