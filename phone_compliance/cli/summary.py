"""A short, human summary of a pipeline run: rows per layer, rejects, decisions, checks, tables."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.lakehouse import delta
from phone_compliance.lakehouse.locations import Locations


def _counts(spark: SparkSession, locations: Locations) -> dict[str, int | None]:
    out = {}
    for path in schema.TABLES:
        uri = locations.table_of(path.split("/"))
        out[path] = (
            spark.read.format("delta").load(uri).count() if delta.exists(spark, uri) else None
        )
    return out


def print_summary(result, locations: Locations, elapsed: float) -> None:
    """Print what the run did and where its tables are."""
    spark = SparkSession.builder.getOrCreate()
    status = "succeeded" if result.success else "FAILED"
    print(f"\nphone-compliance run {result.run_id[:8]} {status} in {elapsed:.1f}s")
    print(f"  landing   {locations.landing}\n  warehouse {locations.warehouse}")
    print("\nrows per table")
    for path, n in _counts(spark, locations).items():
        print(f"  {path:<26} {'(not written)' if n is None else f'{n:,}'}")

    rejects_uri = locations.table("bronze", "rejects")
    if delta.exists(spark, rejects_uri):
        rows = spark.read.format("delta").load(rejects_uri).groupBy("reason").count().collect()
        print("\nrejects by reason (R1)")
        for r in sorted(rows, key=lambda r: -r["count"]):
            print(f"  {r['reason']:<26} {r['count']:,}")

    gold_uri = locations.table("gold", "phone_consent")
    if delta.exists(spark, gold_uri):
        decided = spark.read.format("delta").load(gold_uri)
        print(f"\ndecisions by reason (R10), Gold version {delta.version(spark, gold_uri)}")
        for r in decided.groupBy("reason").count().orderBy(F.desc("count")).collect():
            print(f"  {r['reason']:<26} {r['count']:,}")
        print("\nexample decisions")
        examples = decided.orderBy("reason", "account_number", "phone_number").dropDuplicates(
            ["reason"]
        )
        for r in examples.collect():
            print(
                f"  {r['account_number']} {r['phone_number']} can_send_sms={r['can_send_sms']!s:<5}"
                f" {r['reason']:<19} (source {r['phone_source']}, deleted {r['is_deleted']}, "
                f"consent {r['has_sms_consent']})"
            )

    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    print(f"\nasset checks: {len(checks) - len(failed)} passed, {len(failed)} failed")
    for c in failed:
        print(
            f"  FAILED {c.asset_check_key.to_user_string()} ({c.severity.value})"
            f"{': ' + c.description if c.description else ''}"
        )
    print("\nask a decision: uv run phone-compliance check ACCOUNT PHONE\n")
