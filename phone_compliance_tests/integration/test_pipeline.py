"""The asset graph through Dagster on a temporary instance and Delta warehouse: ingestion (R1),
publication (R12), guards (R13) and personal data."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from delta.tables import DeltaTable
from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.quality import validation
from phone_compliance.settings import Settings
from phone_compliance_tests import files as f
from phone_compliance_tests.conftest import lake_settings
from phone_compliance_tests.files import PHONE, A, B, C
from phone_compliance_tests.harness import failed_checks, run_pipeline, table


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> Settings:
    """The graph run once over `files.small_history`, for the tests that only read its tables."""
    lake = lake_settings(tmp_path_factory.mktemp("small_book"))
    f.small_history(Path(lake.landing))
    assert run_pipeline(lake).success
    return lake


def _counts(spark, lake) -> dict[str, int]:
    return {p: table(spark, lake, p).count() for p in schema.TABLES}


def test_r1_ingestion_is_exactly_once_and_rejects_whole_files(spark, lake):
    landing = Path(lake.landing)
    f.small_history(landing)
    truncated = f.write(landing, schema.CHANGE, "2020-02-15", [f.change(A, PHONE, "2020-02-10")])
    truncated.write_bytes(truncated.read_bytes()[:-10])
    (landing / "MAINTENANCE" / "README_2020.csv.gz").write_bytes(b"")
    f.write(landing, schema.ENROLLMENT, "2020-02-20", ["a|b|c", "1|2|3"], columns=("a", "b", "c"))
    empty = landing / "ENROLLMENT" / schema.file_name(schema.ENROLLMENT, f.ts("2020-02-21"), 1)
    empty.write_bytes(b"")

    first = run_pipeline(lake)
    assert first.success and failed_checks(first) == ["r1_reject_rate"]
    ledger = {r["source_file"]: r for r in table(spark, lake, "bronze/file_ledger").collect()}
    reasons = {r["reason"] for r in ledger.values() if r["status"] == schema.LEDGER_REJECTED}
    assert reasons == {
        schema.FILE_BAD_GZIP,
        schema.FILE_BAD_NAME,
        schema.FILE_BAD_HEADER,
        schema.FILE_NO_HEADER,
    }
    rejects = table(spark, lake, "bronze/rejects").collect()
    assert sorted((r["reason"], r["line_number"]) for r in rejects) == sorted(
        [(schema.REJECT_FIELD_COUNT, 5)] + [(reason, 0) for reason in reasons]
    )
    before = _counts(spark, lake)

    # R1.2: a second run finds nothing new; touching a file (same bytes) changes nothing either
    # but the ledger, which records the new fingerprint as an UNCHANGED delivery (known by
    # content: under SSE-KMS an S3 ETag changes with the same bytes).
    touched = next((landing / "ENROLLMENT").glob("*ENRLMT*_001.csv.gz"))
    os.utime(touched, (time.time(), time.time()))
    second = run_pipeline(lake)
    assert second.success
    assert _counts(spark, lake) == {
        **before,
        "bronze/file_ledger": before["bronze/file_ledger"] + 1,
    }
    statuses = [
        r["status"]
        for r in table(spark, lake, "bronze/file_ledger").collect()
        if r["source_file"] == touched.name
    ]
    assert len(statuses) == 2 and statuses.count(schema.LEDGER_UNCHANGED) == 1
    materialized = second.asset_materializations_for_node("bronze_ingest")
    ledger_meta = next(m for m in materialized if m.asset_key.path[-1] == "file_ledger").metadata
    assert ledger_meta["files_new"].value == 0


def test_r1_2_a_changed_redelivery_replaces_its_rows(spark, lake):
    landing = Path(lake.landing)
    f.small_history(landing)
    assert run_pipeline(lake).success
    path = f.write(
        landing,
        schema.SNAPSHOT,
        "2020-02-01",
        [f.snapshot(A, PHONE, "N", "2020-01-25"), f.snapshot(B, PHONE), f.snapshot(C, PHONE)],
    )
    # The change table is not partitioned by file (schema.BRONZE_PARTITION_COLUMNS): its file's
    # rows are replaced all the same.
    change = f.write(
        landing,
        schema.CHANGE,
        "2020-02-08",
        [f.change(B, PHONE, "2020-02-05", deleted="N"), f.change(C, PHONE, "2020-02-06")],
    )
    result = run_pipeline(lake, accept_decision_flips=True)
    # The old version's reject stays in the ledger's history, so only R1.2 is asked of the checks.
    passed = {e.asset_check_key.name for e in result.get_asset_check_evaluations() if e.passed}
    assert result.success and "r1_2_rows_conserved_per_file" in passed
    snapshot_rows = table(spark, lake, "bronze/nonfin_snapshot")
    assert snapshot_rows.filter(f"source_file = '{path.name}'").count() == 3
    change_rows = table(spark, lake, "bronze/supplfwd_change")
    assert change_rows.filter(f"source_file = '{change.name}'").count() == 2
    assert change_rows.count() == 2
    assert table(spark, lake, "bronze/rejects").count() == 0  # the old version's reject went too
    gold = {r["account_number"]: r for r in table(spark, lake, "gold/phone_consent").collect()}
    assert gold[A]["has_sms_consent"] is False
    assert gold[B]["is_deleted"] is False


def test_r12_r14_gold_merge_touches_only_changed_rows_and_each_publication_is_recorded_and_reported(
    spark, lake
):
    landing = Path(lake.landing)
    f.small_history(landing)
    first_run = run_pipeline(lake)
    assert first_run.success
    uri = Locations(lake).table("gold", "phone_consent")
    first = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 0)
        .load(uri)
    )
    assert {r["_change_type"] for r in first.collect()} == {"insert"}
    first_gold = table(spark, lake, "gold/phone_consent").collect()
    assert first.count() == table(spark, lake, "gold/phone_consent").count() == 3
    withdrawal = f.write(
        landing,
        schema.CHANGE,
        "2020-02-22",
        [f.change(C, PHONE, "2020-02-20", consent="N", consent_date="2020-02-20")],
    )
    # 1 of 3 flips: > 5%. With the compliance report (docs/report.md) this once.
    second_run = run_pipeline(lake, accept_decision_flips=True, report=True)
    assert second_run.success
    history = DeltaTable.forPath(spark, uri).history(1).collect()[0]
    assert history["operationMetrics"]["numTargetRowsUpdated"] == "1"
    assert history["operationMetrics"]["numTargetRowsInserted"] == "0"
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", history["version"])
        .load(uri)
        .collect()
    )
    assert {(r["account_number"], r["_change_type"], r["reason"]) for r in changes} == {
        (C, "update_preimage", schema.ALLOWED),
        (C, "update_postimage", schema.CONSENT_WITHDRAWN),
    }
    # R14, system time: what each publication changed, when, by which run, applying which files.
    published = table(spark, lake, "gold/decision_changes").orderBy("gold_version").collect()
    assert [r["change"] for r in published] == ["insert"] * 3 + ["update"]
    assert {
        (r["account_number"], r["new_can_send_sms"], r["new_reason"]) for r in published[:3]
    } == {(r["account_number"], r["can_send_sms"], r["reason"]) for r in first_gold}
    for row in published[:3]:  # a full build: its files are those in force at its ledger version
        assert (row["run_id"], row["refresh"], row["run_files"]) == (first_run.run_id, "full", None)
        assert row["old_reason"] is None and row["published_at"] is not None
    update = published[3]
    assert (update["account_number"], update["old_can_send_sms"], update["old_reason"]) == (
        C,
        True,
        schema.ALLOWED,
    )
    assert (update["new_can_send_sms"], update["new_reason"]) == (False, schema.CONSENT_WITHDRAWN)
    assert (update["gold_version"], update["run_id"], update["refresh"]) == (
        history["version"],
        second_run.run_id,
        "incremental",
    )
    assert update["run_files"] == [withdrawal.name]
    assert update["ledger_version"] > published[0]["ledger_version"]
    # The compliance report: its page in the warehouse, its charts and numbers in Dagster.
    [report] = second_run.asset_materializations_for_node("reports__compliance")
    page = Path(Locations(lake).report_uri)
    assert report.metadata["report"].value == str(page)
    assert page.read_text().count('<img src="data:image/png;base64,') == 5
    charts = {
        k: v.value for k, v in report.metadata.items() if isinstance(v, dg.MarkdownMetadataValue)
    }
    assert len(charts) == 5 and all("](data:image/png;base64," in md for md in charts.values())
    assert report.metadata["gold_version"].value == history["version"]
    assert report.metadata["consent_withdrawals"].value == 1
    assert report.metadata["flips_in_last_publication"].value == 1
    [flip] = report.metadata["flips_by_reason"].value.records
    assert (flip.data["from"], flip.data["to"], flip.data["pairs"]) == (
        schema.ALLOWED,
        schema.CONSENT_WITHDRAWN,
        1,
    )


def test_r12_same_files_in_any_arrival_order_give_the_same_gold(spark, lake, tmp_path):
    landing = Path(lake.landing)
    f.small_history(landing)
    f.write(landing, schema.SNAPSHOT, "2020-03-01", [f.snapshot(A, PHONE), f.snapshot(C, PHONE)])
    # The guards are accepted throughout: this test is about arrival order, not R13.
    all_at_once = run_pipeline(lake, accept_snapshot_shrink=True, accept_decision_flips=True)
    assert all_at_once.success

    other = lake.with_overrides(landing=str(tmp_path / "l2"), warehouse=str(tmp_path / "w2"))
    files = sorted(landing.glob("*/*"), reverse=True)  # newest first, in two deliveries
    for batch in (files[:2], files[2:]):
        for src in batch:
            dst = Path(other.landing) / src.parent.name / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
        assert run_pipeline(other, accept_snapshot_shrink=True, accept_decision_flips=True).success

    def gold(s):
        return sorted(
            (r["account_number"], r["phone_number"], r["content_hash"])
            for r in table(spark, s, "gold/phone_consent").collect()
        )

    assert gold(lake) == gold(other)


def test_r13_shrunk_snapshot_blocks_gold_until_an_operator_accepts(spark, lake):
    landing = Path(lake.landing)
    f.small_history(landing)
    assert run_pipeline(lake).success
    f.write(landing, schema.SNAPSHOT, "2020-03-01", [f.snapshot(A, PHONE)])  # 3 pairs -> 1
    gold_uri = Locations(lake).table("gold", "phone_consent")
    version = DeltaTable.forPath(spark, gold_uri).history(1).collect()[0]["version"]

    blocked = run_pipeline(lake)
    assert {"r13_snapshot_not_shrunk", "r13_decision_flips_within_limit"} <= set(
        failed_checks(blocked)
    )
    assert DeltaTable.forPath(spark, gold_uri).history(1).collect()[0]["version"] == version

    accepted = run_pipeline(lake, accept_snapshot_shrink=True, accept_decision_flips=True)
    assert accepted.success and set(failed_checks(accepted)) <= {"r1_reject_rate"}
    gold = {r["account_number"]: r for r in table(spark, lake, "gold/phone_consent").collect()}
    assert gold[C]["reason"] == schema.DELETED


def test_personal_data_ssn_only_as_keyed_hash_and_no_names_past_bronze(spark, small_book):
    lake = small_book
    bronze_row = table(spark, lake, "bronze/enrollment").collect()[0]
    key = hashlib.sha256(os.environ["PHONE_COMPLIANCE_SSN_HASH_KEY"].encode()).digest()
    assert bronze_row["ssn_hash"] == hashlib.sha256(key + b"078051120").hexdigest()
    for path in (
        "bronze/enrollment",
        "bronze/nonfin_snapshot",
        "silver/pair_state",
        "gold/phone_consent",
    ):
        rows = table(spark, lake, path).collect()
        text = " ".join(str(v) for r in rows for v in r.asDict().values())
        assert "078051120" not in text and "Zelda" not in text and "Quixote" not in text, path


def test_bronze_nearly_unique_columns_are_written_plain_and_none_with_min_max(small_book):
    """Storage, not a SPEC rule: ids, hashes and phone numbers get no Parquet dictionary, no
    column gets min/max statistics (bronze.WRITE_CONF); low-cardinality columns keep their
    dictionary."""
    written = sorted(Path(small_book.warehouse, "bronze", "nonfin_snapshot").rglob("*.parquet"))
    assert written
    row_group = pq.ParquetFile(written[0]).metadata.row_group(0)
    chunks = [row_group.column(i) for i in range(row_group.num_columns)]
    columns = {c.path_in_schema: c for c in chunks}
    for name in ("account_number", "ssn_hash", "phone_number"):
        assert "PLAIN_DICTIONARY" not in columns[name].encodings, name
    for name, column in columns.items():
        assert not (column.is_stats_set and column.statistics.has_min_max), name
    assert "PLAIN_DICTIONARY" in columns["phone_type"].encodings


def test_sql_validation_files_pass_on_a_built_warehouse(spark, small_book):
    for layer in ("bronze", "silver", "gold", "history"):
        results = validation.validate(spark, layer, Locations(small_book))
        assert results and not {n: v.rows for n, v in results.items() if v.rows}, layer


def test_r2_sql_validation_reports_how_many_rows_break_a_rule_with_examples(spark, tmp_path):
    """A Silver key that is not 16 digits (R2) is counted in full, with five examples."""
    good = {
        "account_number": A,
        "phone_number": "+1" + PHONE,
        "attributes_file": "f",
        "is_deleted": False,
    }
    rows = [good] + [
        {**good, "account_number": A[:15] + "x", "phone_number": f"+1212555{i:04d}"}
        for i in range(7)
    ]
    warehouse = str(tmp_path)
    spark.createDataFrame(rows, StructType.fromDDL(schema.ddl(schema.SILVER_PAIR))).write.format(
        "delta"
    ).save(f"{warehouse}/silver/pair_state")
    results = validation.validate(spark, "silver", Locations(Settings(warehouse=warehouse)))
    broken = {name: v for name, v in results.items() if v.rows}
    assert set(broken) == {"r2_r3_pair_keys_valid"}
    assert broken["r2_r3_pair_keys_valid"].rows == 7
    assert len(broken["r2_r3_pair_keys_valid"].examples) == 5


def test_definitions_load_and_the_graph_is_as_reviewed():
    from phone_compliance.definitions import defs

    graph = defs.get_repository_def().asset_graph
    deps = {
        key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }
    assert deps == {
        "bronze/enrollment": [],
        "bronze/nonfin_snapshot": [],
        "bronze/supplfwd_change": [],
        "bronze/rejects": [],
        "bronze/file_ledger": [],
        "silver/pair_evidence": [
            "bronze/enrollment",
            "bronze/file_ledger",
            "bronze/nonfin_snapshot",
            "bronze/supplfwd_change",
        ],
        # The Bronze tables again: an increment reads the rows of the new files.
        "silver/pair_state": [
            "bronze/enrollment",
            "bronze/nonfin_snapshot",
            "bronze/supplfwd_change",
            "silver/pair_evidence",
        ],
        "gold/phone_consent": [
            "bronze/enrollment",
            "bronze/nonfin_snapshot",
            "bronze/supplfwd_change",
            "silver/pair_state",
        ],
        # R14: every pair's evidence, dated by file; after Gold, whose open intervals it equals.
        "gold/decision_history": [
            "bronze/enrollment",
            "bronze/nonfin_snapshot",
            "bronze/supplfwd_change",
            "gold/phone_consent",
        ],
        # R14, system time: Gold's change feed, publication by publication.
        "gold/decision_changes": ["gold/phone_consent"],
        "serving/decision_index": ["gold/decision_history", "gold/phone_consent"],
        # docs/report.md: the history, the publications and the rejects, summed up.
        "reports/compliance": [
            "bronze/file_ledger",
            "bronze/rejects",
            "gold/decision_changes",
            "gold/decision_history",
            "gold/phone_consent",
        ],
    }
    assert isinstance(defs.get_job_def("refresh_decisions"), dg.JobDefinition)
