"""Asset checks: data quality per layer; blocking where failing would publish wrong decisions."""

import json
from collections import Counter
from collections.abc import Iterator

import dagster as dg
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.ingest.batch import rows_per_file_of
from phone_compliance.lakehouse import delta
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline.assets import (
    CHANGE_KEY,
    ENROLLMENT_KEY,
    LEDGER_KEY,
    PAIR_STATE_KEY,
    PHONE_CONSENT_KEY,
    REJECTS_KEY,
    SNAPSHOT_KEY,
)
from phone_compliance.pipeline.resources import Guardrails, SparkResource
from phone_compliance.quality import validation
from phone_compliance.transforms import guards

MAX_REJECT_RATE = 0.02
ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


Lakehouse = dg.ResourceParam[Locations]


def _table(spark: SparkResource, lakehouse: Locations, key: dg.AssetKey):
    path = "/".join(key.path)
    return delta.read(spark.spark_session, lakehouse.table_of(key.path), schema.TABLES[path])


@dg.asset_check(asset=LEDGER_KEY, blocking=True)
def r1_2_rows_conserved_per_file(spark: SparkResource, lakehouse: Lakehouse) -> dg.AssetCheckResult:
    """R1.2: for every file, rows read = rows accepted + rows rejected, counted in the tables
    (Bronze's rows per file as Delta records them for its data files, rejects by a count)."""
    session = spark.spark_session
    ledger = _table(spark, lakehouse, LEDGER_KEY).filter(F.col("status") == schema.LEDGER_INGESTED)
    latest = ledger.groupBy("source_file").agg(
        F.max_by("rows_read", "ingested_at").alias("rows_read")
    )
    stored: Counter[str] = Counter()
    keys = (ENROLLMENT_KEY, SNAPSHOT_KEY, CHANGE_KEY)
    for counts in rows_per_file_of(session, lakehouse, [lakehouse.table_of(k.path) for k in keys]):
        stored.update(counts)
    rejected = _table(spark, lakehouse, REJECTS_KEY).groupBy("source_file").count().collect()
    stored.update({r["source_file"]: r["count"] for r in rejected})
    files = latest.collect()
    broken = [
        {"source_file": r["source_file"], "rows_read": r["rows_read"], "stored": stored[name]}
        for r in files
        if r["rows_read"] != stored[name := r["source_file"]]
    ]
    return dg.AssetCheckResult(
        passed=not broken,
        severity=ERROR,
        metadata={
            "files_checked": len(files),
            "files_not_conserved": dg.MetadataValue.json(broken[:20]),
        },
    )


@dg.asset_check(asset=REJECTS_KEY)
def r1_reject_rate(spark: SparkResource, lakehouse: Lakehouse) -> dg.AssetCheckResult:
    """R1: rejected rows over all rows read stays under the threshold (a warning to look)."""
    ledger = _table(spark, lakehouse, LEDGER_KEY)
    totals = ledger.agg(F.sum("rows_read").alias("read"), F.sum("rows_rejected").alias("rej"))
    row = totals.collect()[0]
    read, rejected = row["read"] or 0, row["rej"] or 0
    rate = rejected / read if read else 0.0
    by_reason = {
        r["reason"]: r["count"]
        for r in _table(spark, lakehouse, REJECTS_KEY).groupBy("reason").count().collect()
    }
    return dg.AssetCheckResult(
        passed=rate <= MAX_REJECT_RATE,
        severity=WARN,
        metadata={
            "reject_rate": rate,
            "threshold": MAX_REJECT_RATE,
            "rejects_by_reason": dg.MetadataValue.json(by_reason),
        },
    )


def _domain_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=key, name="r1_1_unknown_domain_values")
    def check(spark: SparkResource, lakehouse: Lakehouse) -> dg.AssetCheckResult:
        """R1.1: unknown type/status/technology/source values are kept; this counts them."""
        rows = _table(spark, lakehouse, key)
        domains = {
            "phone_type": schema.PHONE_TYPES,
            "phone_status": schema.PHONE_STATUSES,
            "phone_technology": schema.PHONE_TECHNOLOGIES,
            "phone_source": schema.PHONE_SOURCES,
        }
        counts = (
            rows.agg(
                *[F.count_if(~F.col(c).isin(*values)).alias(c) for c, values in domains.items()],
                F.count_if(F.col("quality_score").isNull()).alias("quality_score_invalid"),
            )
            .collect()[0]
            .asDict()
        )
        return dg.AssetCheckResult(
            passed=not any(counts.values()),
            severity=WARN,
            metadata={f"unknown_{k}": v for k, v in counts.items()},
        )

    return check


def _published_snapshot_through(spark: SparkResource, lakehouse: Lakehouse) -> str | None:
    """The latest snapshot date Gold was last published with (kept in its Delta commit)."""
    uri = lakehouse.table_of(PHONE_CONSENT_KEY.path)
    if not delta.exists(spark.spark_session, uri):
        return None
    note = delta.last_commit_note(spark.spark_session, uri)
    return json.loads(note).get("snapshots_through") if note else None


@dg.asset_check(asset=PAIR_STATE_KEY, blocking=True, additional_deps=[SNAPSHOT_KEY])
def r13_snapshot_not_shrunk(
    spark: SparkResource, lakehouse: Lakehouse, guardrails: Guardrails
) -> dg.AssetCheckResult:
    """R13: a new snapshot holding markedly fewer pairs than the one before blocks Gold."""
    snapshot = _table(spark, lakehouse, SNAPSHOT_KEY)
    dates = list(guards.snapshot_files(_table(spark, lakehouse, LEDGER_KEY)))
    since = _published_snapshot_through(spark, lakehouse)
    pairs = guards.snapshot_pair_counts(snapshot, guards.snapshots_to_judge(dates, since))
    shrunk = guards.shrunk_snapshots(pairs, since, guardrails.max_snapshot_shrink)
    accepted = bool(shrunk) and guardrails.accept_snapshot_shrink
    return dg.AssetCheckResult(
        passed=not shrunk or accepted,
        severity=ERROR,
        description=(
            "R13: snapshot(s) hold more than "
            f"{guardrails.max_snapshot_shrink:.0%} fewer pairs than the one before; Gold is not "
            "published. If the snapshot is genuine, re-run with run config "
            "resources.guardrails.config.accept_snapshot_shrink: true"
            if shrunk and not accepted
            else None
        ),
        metadata={
            "shrunk_snapshots": dg.MetadataValue.json(shrunk),
            "operator_accepted": accepted,
            "checked_after": since or "",
        },
    )


@dg.asset_check(asset=PAIR_STATE_KEY, blocking=True)
def r13_decision_flips_within_limit(
    spark: SparkResource, lakehouse: Lakehouse, guardrails: Guardrails
) -> dg.AssetCheckResult:
    """R13: a run that would flip markedly many published decisions blocks Gold."""
    uri = lakehouse.table_of(PHONE_CONSENT_KEY.path)
    if not delta.exists(spark.spark_session, uri):
        return dg.AssetCheckResult(passed=True, metadata={"published_pairs": 0, "flips": 0})
    counted = guards.decision_flips(
        delta.read(spark.spark_session, uri), _table(spark, lakehouse, PAIR_STATE_KEY)
    )
    published, flips, fraction = counted.published, counted.flips, counted.fraction
    too_many = fraction > guardrails.max_decision_flips
    accepted = too_many and guardrails.accept_decision_flips
    return dg.AssetCheckResult(
        passed=not too_many or accepted,
        severity=ERROR,
        description=(
            f"R13: this run would flip {flips} of {published} published decisions "
            f"({fraction:.1%} > {guardrails.max_decision_flips:.0%}); Gold is not published. "
            "If this is expected, re-run with run config "
            "resources.guardrails.config.accept_decision_flips: true"
            if too_many and not accepted
            else None
        ),
        metadata={
            "published_pairs": published,
            "flips": flips,
            "flip_fraction": fraction,
            "operator_accepted": accepted,
        },
    )


def _sql_checks(layer: str, key: dg.AssetKey, blocking: bool) -> dg.AssetChecksDefinition:
    """One check per query of the layer's SQL validation file (`quality/sql/`), run
    through Spark SQL in one step."""
    names = list(validation.queries(layer))

    @dg.multi_asset_check(
        name=f"sql_{layer}_validations",
        specs=[
            dg.AssetCheckSpec(
                name,
                asset=key,
                blocking=blocking,
                description=f"phone_compliance/quality/sql/{layer}.sql: {name}",
            )
            for name in names
        ],
    )
    def checks(spark: SparkResource, lakehouse: Lakehouse) -> Iterator[dg.AssetCheckResult]:
        results = validation.validate(spark.spark_session, layer, lakehouse)
        for name in names:
            found = results.get(name)
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=name,
                passed=found is None or not found.rows,
                severity=ERROR,
                # A query over a table not written yet (no file of its family so far) holds.
                metadata={
                    "violations": found.rows if found else 0,
                    "examples": dg.MetadataValue.json(found.examples if found else []),
                    "ran": found is not None,
                },
            )

    return checks


CHECKS = [
    r1_2_rows_conserved_per_file,
    r1_reject_rate,
    *[_domain_check(k) for k in (ENROLLMENT_KEY, SNAPSHOT_KEY, CHANGE_KEY)],
    r13_snapshot_not_shrunk,
    r13_decision_flips_within_limit,
    _sql_checks("bronze", LEDGER_KEY, blocking=True),
    _sql_checks("silver", PAIR_STATE_KEY, blocking=True),
    _sql_checks("gold", PHONE_CONSENT_KEY, blocking=False),
]
