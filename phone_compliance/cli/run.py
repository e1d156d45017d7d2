"""`phone-compliance run`: the whole graph on one deployment's settings, then a short summary.

Quiet by default: a line per step and the summary on the terminal; Dagster's events and the JVM's
own output (Ivy, Spark warnings) go to a log file whose path is printed. `--verbose` sends
everything to the terminal instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
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
from phone_compliance.lakehouse.locations import Locations, is_remote
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
    """Writes one line per step event of a run to the terminal."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.DEBUG)
        self.out = out
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_event", None)
        if event is None or event.event_type_value not in _STEP_EVENTS:
            return
        step = event.step_key or "?"
        if event.event_type_value == "STEP_START":
            self.started[step] = time.monotonic()
            return
        took = time.monotonic() - self.started.get(step, time.monotonic())
        status = "done" if event.event_type_value == "STEP_SUCCESS" else "FAILED"
        print(f"  {step:<52} {status:<6} {took:6.1f}s", file=self.out, flush=True)


def progress_logger(out: TextIO) -> dg.LoggerDefinition:
    """A Dagster logger that prints a line per step to `out`."""

    @dg.logger(description="One line per step on the terminal.")
    def _progress(_: dg.InitLoggerContext) -> logging.Logger:
        log = logging.getLogger("phone_compliance.progress")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.handlers = [_StepLines(out)]
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


def run(args: argparse.Namespace, environment: Settings | None = None) -> int:
    """Materialize every asset (with checks) into the warehouse and print what happened."""
    settings = settings_for(args, environment)
    locations = Locations(settings)
    locations.dagster_home.mkdir(parents=True, exist_ok=True)
    _ensure_sample(settings.landing)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_file = None if args.verbose else locations.dagster_home / "logs" / f"run-{stamp}.log"
    if log_file is not None:
        print(f"phone-compliance run: logs in {log_file} (--verbose to see them here)")
    run_config = {
        "resources": {
            "guardrails": {
                "config": {
                    "accept_snapshot_shrink": args.accept_snapshot_shrink,
                    "accept_decision_flips": args.accept_decision_flips,
                }
            }
        },
        "loggers": {
            # Every event, to the log file (quiet) or the terminal (--verbose).
            "console": {"config": {"log_level": "DEBUG"}},
            PROGRESS_LOGGER: {},
        },
    }
    started = time.monotonic()
    with (
        _output_to(log_file) as terminal,
        dg.DagsterInstance.from_config(str(locations.dagster_home)) as instance,
    ):
        defs = build_defs(settings, loggers={PROGRESS_LOGGER: progress_logger(terminal)})
        result = defs.get_job_def("refresh_decisions").execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
    print_summary(result, locations, time.monotonic() - started)
    return 0 if result.success and not _blocked(result) else 1
