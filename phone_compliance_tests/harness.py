"""Run the real asset graph (assets + checks) on a temporary Dagster instance and warehouse."""

from __future__ import annotations

from datetime import date

import dagster as dg
from pyspark.sql import DataFrame, SparkSession

from phone_compliance import schema
from phone_compliance.ingest import bronze
from phone_compliance.ingest.inspect import inspect_all
from phone_compliance.ingest.landing import list_landing
from phone_compliance.lakehouse import delta
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.lakehouse.spark import session_conf
from phone_compliance.pipeline.assets import ASSETS
from phone_compliance.pipeline.checks import CHECKS
from phone_compliance.pipeline.report import compliance_report
from phone_compliance.pipeline.resources import resources_for
from phone_compliance.pipeline.serving import decision_index
from phone_compliance.settings import Settings
from phone_compliance.transforms import gold, history, silver
from phone_compliance_tests import model


def run_pipeline(
    lake: Settings,
    instance: dg.DagsterInstance | None = None,
    accept_snapshot_shrink: bool = False,
    accept_decision_flips: bool = False,
    report: bool = False,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset with its checks, as `dagster asset materialize --select '*'` does;
    the compliance report only with `report` (it adds seconds to a run that only a few tests
    look at)."""
    return dg.materialize(
        [*ASSETS, *CHECKS, decision_index, *([compliance_report] if report else [])],
        resources=resources_for(lake),
        instance=instance or dg.DagsterInstance.ephemeral(),
        run_config={
            "resources": {
                "guardrails": {
                    "config": {
                        "accept_snapshot_shrink": accept_snapshot_shrink,
                        "accept_decision_flips": accept_decision_flips,
                    }
                }
            }
        },
        raise_on_error=False,
    )


def table(spark: SparkSession, lake: Settings, path: str) -> DataFrame:
    """A warehouse table by its path, e.g. 'gold/phone_consent'."""
    return delta.read(spark, Locations(lake).table_of(path.split("/")))


def failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """Names of the checks that did not pass in a run."""
    return [e.asset_check_key.name for e in result.get_asset_check_evaluations() if not e.passed]


def evidence_in_memory(
    spark: SparkSession, landing: str
) -> tuple[DataFrame, dict[date, list[str]]]:
    """A landing folder read by the pure ingest and Silver transforms (no Dagster, no Delta):
    its evidence (SPEC §4) and its snapshots (R6)."""
    locations = Locations(Settings(landing=landing))
    inspected = inspect_all(list_landing(locations), locations, workers=1)
    readable = [f for f in inspected if f.readable]
    tables = {}
    for family in schema.FAMILIES:
        files = [f for f in readable if f.family == family.name]
        if files:
            parsed = bronze.parse_files(spark, family, files, b"test-key")
            tables[family.name] = bronze.accepted_rows(parsed, family)
        else:
            tables[family.name] = delta.read(
                spark, "/nonexistent", schema.BRONZE_SCHEMAS[family.name]
            )
    snapshots: dict[date, list[str]] = {}
    for f in readable:
        if f.family == schema.SNAPSHOT.name:
            snapshots.setdefault(date.fromisoformat(f.file_date), []).append(f.file.name)
    ev = silver.evidence(*[tables[family.name] for family in schema.FAMILIES])
    return ev, snapshots


def decide_in_memory(spark: SparkSession, landing: str) -> dict[tuple[str, str], dict]:
    """The pure transforms end to end on a landing folder: Gold by pair."""
    ev, snapshots = evidence_in_memory(spark, landing)
    rows = gold.decisions(silver.reconcile(ev, snapshots)).collect()
    return {(r["account_number"], r["phone_number"]): r.asDict() for r in rows}


def history_in_memory(spark: SparkSession, landing: str) -> dict[tuple[str, str], list[dict]]:
    """The pure transforms end to end on a landing folder: the decision history (R14) by pair,
    each pair's intervals in date order."""
    ev, snapshots = evidence_in_memory(spark, landing)
    out: dict[tuple[str, str], list[dict]] = {}
    with session_conf(spark, history.SPARK_CONF):
        rows = history.decision_history(ev, snapshots).collect()
    for r in rows:
        out.setdefault((r["account_number"], r["phone_number"]), []).append(r.asDict())
    return {pair: sorted(rows, key=lambda r: r["valid_from"]) for pair, rows in out.items()}


def as_of(intervals: list[dict], day: date) -> dict | None:
    """The interval of a pair's history that `day` falls in (None before its first)."""
    hits = [
        r
        for r in intervals
        if r["valid_from"] <= day and (r["valid_to"] is None or day < r["valid_to"])
    ]
    assert len(hits) <= 1, f"{day} falls in {len(hits)} intervals"
    return hits[0] if hits else None


def decide_checked(spark: SparkSession, landing) -> dict[tuple[str, str], dict]:
    """Gold rows by pair from the pipeline, after asserting the reference model agrees on every
    field it decides."""
    got = decide_in_memory(spark, str(landing))
    rows, snapshot_dates = model.rows_from_files(landing)
    expected = model.decide(rows, snapshot_dates)
    assert set(got) == set(expected)
    for pair, want in expected.items():
        assert {k: got[pair][k] for k in want} == want, pair
    return got
