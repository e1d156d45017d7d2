"""The whole asset graph with landing files and Delta tables in S3: a real S3 API (moto's server
on 127.0.0.1), files delivered with boto3, Bronze → Silver → Gold written and read back by Spark
through s3a, exactly once per delivered file version (the S3 ETag is the fingerprint)."""

from __future__ import annotations

from phone_compliance import schema
from phone_compliance.lakehouse.locations import Locations
from phone_compliance_tests import files as f
from phone_compliance_tests.harness import failed_checks, run_pipeline, table

A, B = "1234567890123456", "6543210987654321"
PHONE = "2125550123"


def test_graph_runs_on_s3_and_a_redelivered_file_replaces_its_rows(s3_spark, s3_lake):
    spark, lake = s3_spark, s3_lake.settings
    staging = s3_lake.staging
    f.write(staging, schema.ENROLLMENT, "2020-01-05", [f.enrollment(A, PHONE, "2020-01-03")])
    snapshot = f.write(
        s3_lake.staging,
        schema.SNAPSHOT,
        "2020-02-01",
        [
            f.snapshot(A, PHONE, "Y", "2020-01-20"),
            f.snapshot(B, PHONE),
            "not|enough|fields",
        ],
    )
    s3_lake.upload()

    first = run_pipeline(lake)
    assert first.success and set(failed_checks(first)) <= {"r1_reject_rate"}
    assert Locations(lake).table("gold", "phone_consent").startswith("s3a://")
    gold = {r["account_number"]: r for r in table(spark, lake, "gold/phone_consent").collect()}
    assert gold[A]["can_send_sms"] is True and gold[A]["reason"] == schema.ALLOWED
    assert table(spark, lake, "bronze/rejects").count() == 1
    # The tables are Delta tables in the bucket, not on this machine.
    assert any(
        k.startswith("warehouse/gold/phone_consent/_delta_log/") for k in s3_lake.keys("warehouse/")
    )

    # Re-delivered under the same key with new content: a new ETag, so a new file version whose
    # rows replace the old version's (the reject goes with it).
    f.write(
        s3_lake.staging,
        schema.SNAPSHOT,
        "2020-02-01",
        [
            f.snapshot(A, PHONE, "N", "2020-01-25"),
            f.snapshot(B, PHONE),
        ],
    )
    s3_lake.upload(snapshot)
    second = run_pipeline(lake, accept_decision_flips=True)
    assert second.success
    assert table(spark, lake, "bronze/nonfin_snapshot").count() == 2
    assert table(spark, lake, "bronze/rejects").count() == 0
    ledger = table(spark, lake, "bronze/file_ledger").filter(f"source_file = '{snapshot.name}'")
    assert ledger.select("fingerprint").distinct().count() == 2
    gold = {r["account_number"]: r for r in table(spark, lake, "gold/phone_consent").collect()}
    assert gold[A]["can_send_sms"] is False
