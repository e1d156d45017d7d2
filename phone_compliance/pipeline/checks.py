"""Asset checks: data quality per layer; blocking where failing would publish wrong decisions."""

import json
from collections import Counter
from collections.abc import Iterator

import dagster as dg
from pyspark.sql import functions as F

from phone_compliance import delta, schema, validation
from phone_compliance.ingest import rows_per_file_of
from phone_compliance.pipeline.assets import (
    CHANGE_KEY,
    ENROLLMENT_KEY,
    GOLD,
    LEDGER_KEY,
    PAIR_STATE_KEY,
    PHONE_CONSENT_KEY,
    REJECTS_KEY,
    SNAPSHOT_KEY,
)
from phone_compliance.pipeline.resources import Guardrails, Lakehouse, SparkResource
from phone_compliance.transforms import gold

MAX_REJECT_RATE = 0.02
# HyperLogLog sketches of 2^14 buckets: ~0.8% relative standard error.
SNAPSHOT_PAIRS_LG_K = 14
ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


def _table(spark: SparkResource, lakehouse: Lakehouse, key: dg.AssetKey):
    *layers, name = key.path
    path = "/".join(key.path)
    return delta.read(
        spark.spark_session, lakehouse.uri("/".join(layers), name), schema.TABLES[path]
    )


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
    for counts in rows_per_file_of(session, [lakehouse.uri(*key.path) for key in keys]):
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
    uri = lakehouse.uri(GOLD, "phone_consent")
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
    ledger = _table(spark, lakehouse, LEDGER_KEY)
    readable = ledger.filter(
        (F.col("family") == schema.SNAPSHOT.name) & (F.col("status") == schema.LEDGER_INGESTED)
    )
    dates = sorted(r["file_date"] for r in readable.select("file_date").distinct().collect())
    since = _published_snapshot_through(spark, lakehouse)
    # Only snapshots newer than the published Gold are judged, each against the one before it:
    # counting those alone keeps the check's cost per run, not per year of history.
    first_new = next(
        (i for i, d in enumerate(dates) if since is None or d.isoformat() > since), None
    )
    judged = dates[max(first_new - 1, 0) :] if first_new is not None else []
    # HyperLogLog over a 64-bit hash of the pair: a guard against a 20% shrink needs no exact
    # count, and an exact one would shuffle every snapshot row. Apache DataSketches' sketch (built
    # into Spark) has the error of approx_count_distinct (0.58% at most over the 1 GB snapshots)
    # in about half its time.
    pair = F.xxhash64(*schema.PAIR_KEY)
    counted = (
        snapshot.filter(F.col("file_date").isin(*judged))
        .groupBy("file_date")
        .agg(F.hll_sketch_estimate(F.hll_sketch_agg(pair, SNAPSHOT_PAIRS_LG_K)).alias("pairs"))
    )
    pairs = {r["file_date"]: r["pairs"] for r in counted.collect()}
    sizes = [(d, pairs.get(d, 0)) for d in judged]
    shrunk = []
    for (_, before), (day, after) in zip(sizes, sizes[1:], strict=False):
        new = since is None or day.isoformat() > since
        if new and before and (before - after) / before > guardrails.max_snapshot_shrink:
            shrunk.append({"snapshot": day.isoformat(), "pairs": after, "previous_pairs": before})
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
    uri = lakehouse.uri(GOLD, "phone_consent")
    if not delta.exists(spark.spark_session, uri):
        return dg.AssetCheckResult(passed=True, metadata={"published_pairs": 0, "flips": 0})
    current = delta.read(spark.spark_session, uri)
    proposed = gold.decisions(_table(spark, lakehouse, PAIR_STATE_KEY))
    published = current.count()
    flips = gold.flipped(current, proposed).count()
    fraction = flips / published if published else 0.0
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
    """One check per query of the layer's SQL validation file (`phone_compliance/sql/`), run
    through Spark SQL in one step."""
    names = list(validation.queries(layer))

    @dg.multi_asset_check(
        name=f"sql_{layer}_validations",
        specs=[
            dg.AssetCheckSpec(
                name,
                asset=key,
                blocking=blocking,
                description=f"phone_compliance/sql/{layer}.sql: {name}",
            )
            for name in names
        ],
    )
    def checks(spark: SparkResource, lakehouse: Lakehouse) -> Iterator[dg.AssetCheckResult]:
        results = validation.validate(spark.spark_session, layer, lakehouse.warehouse)
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
