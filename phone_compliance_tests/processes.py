"""Servers the tests start as processes of their own (a Spark cluster, moto's S3, Dagster's web
server, the decision service): a free port, a process group to start and stop, a wait until it
answers.

A server in a process of its own, not a thread of the test's: delta-rs holds the GIL while it
waits on some requests (a table's history), so an S3 server on a thread of the same interpreter
would never answer them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


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
    """Stop a process group: SIGTERM (a Spark worker then stops its executors), SIGKILL if
    needed."""
    for sig, within in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if _group_gone(process, within):
            return
    raise RuntimeError(f"process group {process.pid} survived SIGKILL")


def wait_until(
    what: str,
    ready: Callable[[], bool],
    processes: Sequence[subprocess.Popen],
    logs: Sequence[Path],
    timeout: float,
) -> None:
    """Poll `ready` (an OSError counts as not yet) until it holds; fail with the log of a process
    that exited, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"{what}: {log.name} exited:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise TimeoutError(f"{what} within {timeout} s; see {', '.join(map(str, logs))}")
