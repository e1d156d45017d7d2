"""`phone-compliance run` as a person types it: every documented flag, quiet by default, the
Dagster instance an exported DAGSTER_HOME names."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from phone_compliance import schema
from phone_compliance.cli.arguments import add_run_arguments
from phone_compliance.cli.run import (
    HOST_TAG,
    PID_TAG,
    open_instance,
    release_dead_runs,
    settings_for,
)
from phone_compliance.settings import PROJECT_ROOT, Settings
from phone_compliance_tests import files as f

A = "1234567890123456"
PHONE = "2125550123"


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return parser.parse_args(argv)


def test_every_documented_run_flag_exists_and_overrides_the_environment():
    args = _parse(
        "--landing",
        "/in",
        "--warehouse",
        "s3://bucket/wh",
        "--accept-snapshot-shrink",
        "--accept-decision-flips",
        "--verbose",
    )
    assert args.accept_snapshot_shrink and args.accept_decision_flips and args.verbose
    environment = Settings(landing="/env-in", warehouse="/env-wh", shuffle_partitions=3)
    settings = settings_for(args, environment)
    assert (settings.landing, settings.warehouse) == ("/in", "s3://bucket/wh")
    assert settings.shuffle_partitions == 3  # what no flag names stays the environment's
    assert settings_for(_parse(), environment) == environment


def _run(home: Path, landing: Path, warehouse: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PHONE_COMPLIANCE_SSN_HASH_KEY": "test-only-key",
        "PHONE_COMPLIANCE_DRIVER_MEMORY": "2g",
    }
    command = [sys.executable, "-m", "phone_compliance.cli", "run"]
    command += ["--landing", str(landing), "--warehouse", str(warehouse), *flags]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_run_is_quiet_logs_to_a_file_and_records_in_the_exported_dagster_home(tmp_path):
    home, landing, warehouse = tmp_path / "home", tmp_path / "landing", tmp_path / "warehouse"
    f.write(landing, schema.ENROLLMENT, "2020-01-05", [f.enrollment(A, PHONE, "2020-01-03")])

    quiet = _run(home, landing, warehouse)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    out = quiet.stdout
    assert "bronze_ingest" in out and "gold__phone_consent" in out  # a line per step
    assert "asset checks:" in out and "decisions by reason" in out  # the summary
    assert " - DEBUG - " not in out and "resolving dependencies" not in out  # Dagster's, Ivy's
    assert not quiet.stderr.strip()
    logs = list((home / "logs").glob("run-*.log"))
    assert len(logs) == 1 and str(logs[0]) in out
    assert "STEP_SUCCESS" in logs[0].read_text()  # Dagster's events went to the file

    verbose = _run(home, landing, warehouse, "--verbose")
    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    assert "STEP_SUCCESS" in verbose.stdout + verbose.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_runs()) == 2  # both runs in the exported DAGSTER_HOME


def test_a_run_whose_process_died_is_marked_failed_and_frees_its_warehouse_slot():
    """After a SIGKILL nothing marks an in-process run failed; the next `phone-compliance run`
    does, for runs of this host whose process is gone, and frees their pool slot."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with dg.instance_for_test() as instance:
        tags = {PID_TAG: str(dead.pid), HOST_TAG: "here"}
        gone = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED, tags=tags)
        alive = create_run_for_test(
            instance,
            status=dg.DagsterRunStatus.STARTED,
            tags={PID_TAG: str(os.getpid()), HOST_TAG: "here"},
        )
        elsewhere = create_run_for_test(
            instance, status=dg.DagsterRunStatus.STARTED, tags={**tags, HOST_TAG: "there"}
        )
        assert release_dead_runs(instance, "here") == [gone.run_id]
        status = {r.run_id: r.status for r in instance.get_runs()}
        assert status[gone.run_id] == dg.DagsterRunStatus.FAILURE
        assert status[alive.run_id] == status[elsewhere.run_id] == dg.DagsterRunStatus.STARTED


def _first_use(home: str) -> None:
    with open_instance(Path(home)) as instance:
        instance.get_run_records(limit=1)


def test_runs_started_at_once_on_a_fresh_dagster_home_create_its_storage_once(tmp_path):
    """Without the lock, two processes each create the SQLite schema (Alembic then has two heads,
    or a CREATE TABLE fails) and one run dies before it starts."""
    shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", tmp_path)
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_first_use, args=(str(tmp_path),)) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    with open_instance(tmp_path) as instance:
        assert instance.get_run_records() == []
