"""Asset checks: data quality per layer; blocking where failing would publish wrong decisions."""

from collections import Counter
from collections.abc import Iterator

import dagster as dg
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.ingest import ledger as file_ledger
from phone_compliance.lakehouse import delta, delta_log
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline.assets import (
    CHANGE_KEY,
    DECISION_CHANGES_KEY,
    DECISION_HISTORY_KEY,
    ENROLLMENT_KEY,
    LEDGER_KEY,
    PAIR_STATE_KEY,
    PHONE_CONSENT_KEY,
    REJECTS_KEY,
    SNAPSHOT_KEY,
    SNAPSHOTS_THROUGH,
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


def _histories(lakehouse: Lakehouse) -> dict[str, file_ledger.FileHistory]:
    """Each name's delivered versions, read with delta-rs: the ledger holds a small row per
    version, cheaper to read in the driver than with a Spark job per check."""
    return file_ledger.KnownFiles.read(lakehouse).files


def _ingested_by(histories: dict[str, file_ledger.FileHistory], run_id: str) -> list[str]:
    """The names whose latest delivery the run `run_id` recorded: the rows Bronze's checks judge
    (the tables changed only there, so a run's checks cost what its files cost)."""
    return sorted(name for name, h in histories.items() if h.latest["run_id"] == run_id)


@dg.asset_check(asset=LEDGER_KEY, blocking=True)
def r1_2_rows_conserved_per_file(
    context: dg.AssetCheckExecutionContext, spark: SparkResource, lakehouse: Lakehouse
) -> dg.AssetCheckResult:
    """R1.2: for every file name this run ingested, the version in force (R1.3) read as many
    rows as the tables hold for it: Bronze's rows, and its rejected rows (line > 0; a whole-file
    reject holds none)."""
    histories = _histories(lakehouse)
    names = _ingested_by(histories, context.run.run_id)
    in_force = {name: histories[name].in_force for name in names}
    stored: Counter[str] = Counter()
    of_run = F.col("source_file").isin(*names)
    for key in (ENROLLMENT_KEY, SNAPSHOT_KEY, CHANGE_KEY):
        rows = _table(spark, lakehouse, key).filter(of_run).groupBy("source_file").count()
        stored.update({r["source_file"]: r["count"] for r in rows.collect()})
    rejected = (
        _table(spark, lakehouse, REJECTS_KEY)
        .filter(of_run & (F.col("line_number") > 0))
        .groupBy("source_file")
        .count()
        .collect()
    )
    stored.update({r["source_file"]: r["count"] for r in rejected})
    broken = [
        {"source_file": name, "rows_read": v["rows_read"], "stored": stored[name]}
        for name, v in sorted(in_force.items())
        if v["rows_read"] != stored[name]
    ]
    return dg.AssetCheckResult(
        passed=not broken,
        severity=ERROR,
        metadata={
            "files_checked": len(in_force),
            "files_not_conserved": dg.MetadataValue.json(broken[:20]),
        },
    )


def _unexplained_rejections(histories: dict[str, file_ledger.FileHistory]) -> list[dict]:
    """Names with no readable version at all whose version in force says no reason, or claims
    accepted rows."""
    return [
        {"source_file": name, "reason": v["reason"], "rows_accepted": v["rows_accepted"]}
        for name, h in sorted(histories.items())
        if (v := h.in_force)["status"] == schema.LEDGER_REJECTED
        and (v["reason"] is None or v["rows_accepted"] != 0)
    ]


def _rejected_redeliveries(histories: dict[str, file_ledger.FileHistory]) -> list[dict]:
    """Versions that could not be read, delivered after the readable version in force."""
    return [
        {
            "source_file": name,
            "version": number,
            "reason": v["reason"],
            "delivered_at": str(v["ingested_at"]),
            "sha256": v["sha256"],
            "version_in_force": h.version_in_force,
        }
        for name, h in sorted(histories.items())
        for number, v in h.rejected_redeliveries
    ]


@dg.multi_asset_check(
    name="r1_3_file_versions",
    specs=[
        dg.AssetCheckSpec(
            "r1_3_rejected_files_have_a_reason",
            asset=LEDGER_KEY,
            blocking=True,
            description="R1.3: a file name with no readable version at all (its version in "
            "force is rejected) says why, and accepted no rows.",
        ),
        dg.AssetCheckSpec(
            "r1_3_rejected_redeliveries",
            asset=LEDGER_KEY,
            description="R1.3: a file delivered again could not be read; the last readable "
            "version of its name stays in force and publication goes on (a warning to look).",
        ),
    ],
)
def r1_3_file_versions(lakehouse: Lakehouse) -> Iterator[dg.AssetCheckResult]:
    """R1.3 over each file name's versions (one read of the ledger): the version in force of a
    name never readable has a reason (blocking); a broken re-delivery is a warning."""
    histories = _histories(lakehouse)
    unexplained = _unexplained_rejections(histories)
    yield dg.AssetCheckResult(
        asset_key=LEDGER_KEY,
        check_name="r1_3_rejected_files_have_a_reason",
        passed=not unexplained,
        severity=ERROR,
        metadata={"files_unexplained": dg.MetadataValue.json(unexplained[:20])},
    )
    found = _rejected_redeliveries(histories)
    yield dg.AssetCheckResult(
        asset_key=LEDGER_KEY,
        check_name="r1_3_rejected_redeliveries",
        passed=not found,
        severity=WARN,
        description=(
            f"R1.3: {len(found)} re-delivered file version(s) could not be read; the last "
            "readable version of each name stays in force. Ask the client to deliver again."
            if found
            else None
        ),
        metadata={"rejected_redeliveries": dg.MetadataValue.json(found[:50])},
    )


@dg.asset_check(asset=REJECTS_KEY)
def r1_reject_rate(spark: SparkResource, lakehouse: Lakehouse) -> dg.AssetCheckResult:
    """R1: rejected rows over all rows read, of the versions in force (R1.3), stays under the
    threshold (a warning to look)."""
    in_force = [h.in_force for h in _histories(lakehouse).values()]
    read = sum(v["rows_read"] or 0 for v in in_force)
    rejected = sum(v["rows_rejected"] or 0 for v in in_force)
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
    def check(
        context: dg.AssetCheckExecutionContext, spark: SparkResource, lakehouse: Lakehouse
    ) -> dg.AssetCheckResult:
        """R1.1: unknown type/status/technology/source values are kept; this counts them in the
        files this run ingested."""
        names = _ingested_by(_histories(lakehouse), context.run.run_id)
        rows = _table(spark, lakehouse, key).filter(F.col("source_file").isin(*names))
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
            metadata={
                "files_checked": len(names),
                **{f"unknown_{k}": v or 0 for k, v in counts.items()},
            },
        )

    return check


def _published_snapshot_through(lakehouse: Lakehouse) -> str | None:
    """The latest snapshot date Gold was last published with (kept in its Delta commit)."""
    uri = lakehouse.table_of(PHONE_CONSENT_KEY.path)
    return delta_log.last_commit_note(lakehouse, uri, SNAPSHOTS_THROUGH).get(SNAPSHOTS_THROUGH)


@dg.asset_check(asset=PAIR_STATE_KEY, blocking=True, additional_deps=[SNAPSHOT_KEY])
def r13_snapshot_not_shrunk(
    spark: SparkResource, lakehouse: Lakehouse, guardrails: Guardrails
) -> dg.AssetCheckResult:
    """R13: a new snapshot holding markedly fewer pairs than the one before blocks Gold."""
    snapshot = _table(spark, lakehouse, SNAPSHOT_KEY)
    dates = list(guards.snapshot_files(_table(spark, lakehouse, LEDGER_KEY)))
    since = _published_snapshot_through(lakehouse)
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
    r1_3_file_versions,
    r1_reject_rate,
    *[_domain_check(k) for k in (ENROLLMENT_KEY, SNAPSHOT_KEY, CHANGE_KEY)],
    r13_snapshot_not_shrunk,
    r13_decision_flips_within_limit,
    _sql_checks("bronze", LEDGER_KEY, blocking=True),
    _sql_checks("silver", PAIR_STATE_KEY, blocking=True),
    _sql_checks("gold", PHONE_CONSENT_KEY, blocking=False),
    _sql_checks("history", DECISION_HISTORY_KEY, blocking=True),
    _sql_checks("changes", DECISION_CHANGES_KEY, blocking=False),
]
