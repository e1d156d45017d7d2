"""Two runs at once on one warehouse: Dagster serializes their Delta writes (the `warehouse`
pool), so both end with the Gold a single run publishes, Bronze holds every line once and the
ledger every file version once; a write that still loses Delta's race says so in one line."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from py4j.protocol import Py4JJavaError
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.cli import run as cli_run
from phone_compliance.cli.arguments import add_run_arguments
from phone_compliance.cli.run import lost_race
from phone_compliance.lakehouse import delta
from phone_compliance.settings import PROJECT_ROOT
from phone_compliance_tests import files as f
from phone_compliance_tests.conftest import lake_settings
from phone_compliance_tests.harness import run_pipeline, table

A, B, C = "1234567890123456", "6543210987654321", "1111222233334444"
PHONE = "2125550123"
WAREHOUSE_STEPS = {
    "bronze_ingest",
    "silver__pair_evidence",
    "silver__pair_state",
    "gold__phone_consent",
}


def _seed(landing: Path) -> None:
    f.write(landing, schema.ENROLLMENT, "2020-01-05", [f.enrollment(A, PHONE, "2020-01-03")])
    f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [f.snapshot(A, PHONE, "Y", "2020-01-20"), f.snapshot(B, PHONE), "not|enough|fields"],
    )
    f.write(landing, schema.SNAPSHOT, "2020-02-08", [f.snapshot(A, PHONE), f.snapshot(C, PHONE)])
    f.write(landing, schema.CHANGE, "2020-02-09", [f.change(B, PHONE, "2020-02-05", deleted="Y")])


def _start(home: Path, landing: Path, warehouse: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PHONE_COMPLIANCE_SSN_HASH_KEY": "test-only-key",
        "PHONE_COMPLIANCE_DRIVER_MEMORY": "1g",
        "PHONE_COMPLIANCE_SHUFFLE_PARTITIONS": "2",
    }
    command = [sys.executable, "-m", "phone_compliance.cli", "run"]
    command += ["--landing", str(landing), "--warehouse", str(warehouse)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _warehouse_steps(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float, float]]:
    """(step, start, end) of the run's steps that write the warehouse."""
    events = instance.all_logs(
        run_id,
        of_type={
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        },
    )
    started = {}
    spans = []
    for e in events:
        if e.step_key not in WAREHOUSE_STEPS:
            continue
        if e.dagster_event_type == dg.DagsterEventType.STEP_START:
            started[e.step_key] = e.timestamp
        else:
            spans.append((e.step_key, started[e.step_key], e.timestamp))
    return spans


@pytest.mark.slow
def test_two_runs_at_once_write_the_warehouse_one_at_a_time_and_publish_one_gold(spark, tmp_path):
    home, landing, warehouse = tmp_path / "home", tmp_path / "landing", tmp_path / "warehouse"
    _seed(landing)
    home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")

    runs = [_start(home, landing, warehouse) for _ in range(2)]
    outputs = [run.communicate(timeout=900) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert "Traceback" not in out + err, out + err
        assert run.returncode == 0, out + err

    # Dagster ran the two runs' warehouse steps one at a time, never side by side.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_ids = [r.run_id for r in instance.get_runs()]
        assert len(run_ids) == 2
        assert all(r.tags.get("phone_compliance/warehouse") for r in instance.get_runs())
        spans = sorted(s for run_id in run_ids for s in _warehouse_steps(instance, run_id))
    spans.sort(key=lambda s: s[1])
    # The first run wrote every table; the other, waiting on the pool, found the files ingested
    # and skipped what was already done (R12): at least its Bronze step ran.
    assert len(WAREHOUSE_STEPS) + 1 <= len(spans) <= 2 * len(WAREHOUSE_STEPS)
    for (_, _, end), (_, start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start

    lake = lake_settings(tmp_path).with_overrides(landing=str(landing), warehouse=str(warehouse))
    single = lake_settings(tmp_path / "single").with_overrides(landing=str(landing))
    assert run_pipeline(single).success

    def gold(settings):
        return sorted(tuple(r) for r in table(spark, settings, "gold/phone_consent").collect())

    assert gold(lake) == gold(single) and len(gold(lake)) == 3
    for path in (*[f"bronze/{n}" for n in schema.BRONZE_SCHEMAS], "bronze/rejects"):
        rows = table(spark, lake, path)
        assert rows.count() == rows.select("source_file", "line_number").distinct().count(), path
    ledger = table(spark, lake, "bronze/file_ledger")
    versions = ledger.groupBy("source_file", "sha256").count()
    assert versions.count() == len(list(landing.glob("*/*")))
    assert versions.filter(F.col("count") != 1).count() == 0


def test_a_lost_delta_race_is_named_in_one_line(spark, tmp_path):
    """Delta's concurrent-modification errors become `ConcurrentWrite`, which the CLI reports in
    one line and retries; any other error stays what it was."""
    jvm = spark.sparkContext._jvm
    uri = str(tmp_path / "warehouse" / "gold" / "phone_consent")
    conflict = jvm.io.delta.exceptions.ConcurrentAppendException("Files were added by another")
    other = jvm.java.lang.IllegalStateException("something else")
    assert delta.concurrent_conflict(Py4JJavaError("save", conflict)) == "ConcurrentAppendException"
    assert delta.concurrent_conflict(Py4JJavaError("save", other)) is None
    assert delta.concurrent_conflict(ValueError("no JVM here")) is None

    @dg.asset
    def loses() -> None:
        with delta.concurrent_writes(uri):
            raise Py4JJavaError("An error occurred while calling o1.save.\n", conflict)

    @dg.asset
    def breaks() -> None:
        raise ValueError("not a race")

    lost = dg.materialize([loses], raise_on_error=False)
    assert lost_race(lost) == (
        f"another run wrote {uri} at the same time (ConcurrentAppendException); nothing was lost"
    )
    assert lost_race(dg.materialize([breaks], raise_on_error=False)) is None
    assert lost_race(dg.materialize([loses, breaks], raise_on_error=False)) is None


@pytest.mark.slow
def test_a_run_that_loses_a_delta_race_says_so_in_one_line_and_runs_again(
    spark, lake, monkeypatch, capfd
):
    """Gold's first publication loses to another writer once (as it would to a writer outside
    this Dagster instance, which the pool cannot hold back): `phone-compliance run` prints one
    line, no trace, runs again and publishes."""
    _seed(Path(lake.landing))
    merge = delta.merge_changed
    attempts = []

    def loses_once(df, uri, *args, **kwargs):
        attempts.append(uri)
        if len(attempts) == 1:  # Gold's first publication: the first table merged
            with delta.concurrent_writes(uri):
                conflict = spark.sparkContext._jvm.io.delta.exceptions.ConcurrentAppendException(
                    "Files were added to the root of the table by a concurrent update."
                )
                raise Py4JJavaError("An error occurred while calling o1.execute.\n", conflict)
        return merge(df, uri, *args, **kwargs)

    monkeypatch.setattr(delta, "merge_changed", loses_once)
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    args = parser.parse_args(["--landing", lake.landing, "--warehouse", lake.warehouse])

    assert cli_run.run(args, environment=lake) == 0
    out, err = capfd.readouterr()
    uri = str(Path(lake.warehouse) / "gold" / "phone_consent")
    said = [line for line in out.splitlines() if "at the same time" in line]
    assert said == [
        f"  another run wrote {uri} at the same time (ConcurrentAppendException); nothing was "
        "lost; retrying once"
    ]
    assert "Traceback" not in out + err
    assert attempts.count(uri) == 2  # Gold's publication, lost then done (the history merges too)
    assert table(spark, lake, "gold/phone_consent").count() == 3
