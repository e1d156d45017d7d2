"""`phone-compliance run`: the whole graph on one deployment's settings, then a short summary.

Quiet by default: a line per step and the summary on the terminal; Dagster's events and the JVM's
own output (Ivy, Spark warnings) go to a log file whose path is printed. `--verbose` sends
everything to the terminal instead.

The run executes in this process (no run queue), so it waits at each warehouse-writing step for the
instance's `warehouse` pool like any other run, and says so. A run that still loses Delta's race to
a writer outside this instance says what happened in one line and is run again once.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import dagster as dg

import datagen
from phone_compliance.cli.summary import print_summary
from phone_compliance.definitions import build_defs
from phone_compliance.lakehouse.delta import ConcurrentWrite
from phone_compliance.lakehouse.locations import Locations, is_remote
from phone_compliance.pipeline.assets import WAREHOUSE_POOL
from phone_compliance.settings import Settings

PROGRESS_LOGGER = "progress"
_STEP_EVENTS = {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE"}


def settings_for(args: argparse.Namespace, environment: Settings | None = None) -> Settings:
    """The deployment's settings (the environment's), with the command line's flags on top."""
    base = environment if environment is not None else Settings.from_env()
    return base.with_overrides(landing=args.landing, warehouse=args.warehouse)


def _ensure_sample(landing: str) -> None:
    """Generate the embedded sample when the default landing folder is absent."""
    if is_remote(landing) or Path(landing).exists():
        return
    print(f"no data at {landing}: generating the sample dataset there …", flush=True)
    datagen.sample(output_dir=landing)


class _StepLines(logging.Handler):
    """Writes one line per step event of a run to the terminal, and which run a step waits for."""

    def __init__(self, out: TextIO, instance: dg.DagsterInstance | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.out = out
        self.instance = instance
        self.started: dict[str, float] = {}
        self.waiting: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_event", None)
        if event is None:
            return
        step = event.step_key or "?"
        if event.is_engine_event and step not in self.waiting:
            pool = (getattr(event.event_specific_data, "metadata", None) or {}).get("pool")
            if pool is not None:  # blocked by the pool's limit: another run holds its slot
                self.waiting.add(step)
                print(f"  {step:<52} waits: {self._holders(pool.value)}", file=self.out, flush=True)
            return
        if event.event_type_value not in _STEP_EVENTS:
            return
        if event.event_type_value == "STEP_START":
            self.started[step] = time.monotonic()
            return
        took = time.monotonic() - self.started.get(step, time.monotonic())
        status = "done" if event.event_type_value == "STEP_SUCCESS" else "FAILED"
        print(f"  {step:<52} {status:<6} {took:6.1f}s", file=self.out, flush=True)

    def _holders(self, pool: str) -> str:
        """Who holds `pool`'s slots, for a person to look up (or free, if that run died)."""
        claimed = []
        if self.instance is not None:
            info = self.instance.event_log_storage.get_concurrency_info(pool)
            claimed = sorted({slot.run_id[:8] for slot in info.claimed_slots})
        who = f"run {', '.join(claimed)} is" if claimed else "another run is"
        return f"{who} writing the {pool} (Dagster pool '{pool}')"


def progress_logger(out: TextIO, instance: dg.DagsterInstance | None = None) -> dg.LoggerDefinition:
    """A Dagster logger that prints a line per step to `out` (and, with `instance`, which run a
    step waits for)."""

    @dg.logger(description="One line per step on the terminal.")
    def _progress(_: dg.InitLoggerContext) -> logging.Logger:
        log = logging.getLogger("phone_compliance.progress")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.handlers = [_StepLines(out, instance)]
        return log

    return _progress


@contextlib.contextmanager
def _output_to(log_file: Path | None) -> Iterator[TextIO]:
    """Send this process's standard output and error (the JVM's too: it inherits them) to
    `log_file`; yields the terminal to print progress on. None: leave both as they are."""
    if log_file is None:
        yield sys.stdout
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    with open(log_file, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            terminal.close()


def _blocked(result: dg.ExecuteInProcessResult) -> bool:
    """True when a blocking check failed (Gold was then not published)."""
    return any(
        not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        for e in result.get_asset_check_evaluations()
    )


def lost_race(result: dg.ExecuteInProcessResult) -> str | None:
    """What a run lost to another writer of the warehouse (Delta's optimistic concurrency refused
    its commit), when that is the only reason it failed; None otherwise."""
    lost = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        while error is not None and error.cls_name != ConcurrentWrite.__name__:
            error = error.cause
        if error is None:
            return None  # a step failed for another reason: not a race, not retried
        lost.append(error.message.partition(": ")[2].strip())
    return lost[0] if lost else None


# Tags that let a later `phone-compliance run` tell a run whose process died (SIGKILL, a lost
# machine) from one still going: nothing else marks an in-process run failed.
PID_TAG = "phone_compliance/pid"
HOST_TAG = "phone_compliance/host"
_UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance, host: str) -> list[str]:
    """Mark failed the unfinished `phone-compliance run`s of this host whose process is gone, and
    free the warehouse pool slots they held; the ids of those runs."""
    released = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=_UNFINISHED)):
        tags = record.dagster_run.tags
        pid = tags.get(PID_TAG)
        if tags.get(HOST_TAG) != host or not pid or _alive(int(pid)):
            continue
        run_id = record.dagster_run.run_id
        instance.report_run_failed(
            record.dagster_run, message=f"its process {pid} ended without finishing the run"
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        released.append(run_id)
    return released


@contextlib.contextmanager
def open_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance at `home`, opened by one process at a time: two runs started at once
    on a fresh home would otherwise both create its SQLite schema and leave Alembic two heads."""
    with (home / ".instance.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance = dg.DagsterInstance.from_config(str(home))
            # Touch each storage under the lock: some are created at first use.
            instance.get_run_records(limit=1)
            instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance


def run(args: argparse.Namespace, environment: Settings | None = None) -> int:
    """Materialize every asset (with checks) into the warehouse and print what happened."""
    settings = settings_for(args, environment)
    locations = Locations(settings)
    locations.dagster_home.mkdir(parents=True, exist_ok=True)
    _ensure_sample(settings.landing)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # The process id too: two runs started in the same second keep their own logs.
    log_name = f"run-{stamp}-{os.getpid()}.log"
    log_file = None if args.verbose else locations.dagster_home / "logs" / log_name
    if log_file is not None:
        print(f"phone-compliance run: logs in {log_file} (--verbose to see them here)")
    run_config = {
        "resources": {
            "guardrails": {
                "config": {
                    "accept_snapshot_shrink": args.accept_snapshot_shrink,
                    "accept_decision_flips": args.accept_decision_flips,
                }
            },
            "refresh": {"config": {"full_refresh": args.full_refresh}},
        },
        "loggers": {
            # Every event, to the log file (quiet) or the terminal (--verbose).
            "console": {"config": {"log_level": "DEBUG"}},
            PROGRESS_LOGGER: {},
        },
    }
    started = time.monotonic()
    host = socket.gethostname()
    with _output_to(log_file) as terminal, open_instance(locations.dagster_home) as instance:
        for run_id in release_dead_runs(instance, host):
            print(
                f"  run {run_id[:8]} had died: marked failed, its warehouse slot freed",
                file=terminal,
                flush=True,
            )
        progress = progress_logger(terminal, instance)
        defs = build_defs(settings, loggers={PROGRESS_LOGGER: progress})
        job = defs.resolve_job_def("refresh_decisions")
        tags = {PID_TAG: str(os.getpid()), HOST_TAG: host}
        result = job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False, tags=tags
        )
        lost = lost_race(result)
        if lost is not None:
            # Safe to run again: Bronze plans anew from the ledger, Silver and Gold from Bronze.
            print(f"  {lost}; retrying once", file=terminal, flush=True)
            result = job.execute_in_process(
                instance=instance, run_config=run_config, raise_on_error=False, tags=tags
            )
            lost = lost_race(result)
    print_summary(result, locations, time.monotonic() - started)
    if lost is not None:
        print(f"{lost}; re-run `phone-compliance run`")
    return 0 if result.success and not _blocked(result) else 1
