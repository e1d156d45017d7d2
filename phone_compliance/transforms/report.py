"""The compliance report's numbers: small aggregates of the decision history (R14), the rejects
(R1.2) and Gold's publications, computed in Spark so that only they are collected.

Each function reads one table and returns a frame of a few hundred rows at most (one per month,
snapshot, file date or reason); docs/report.md defines what each counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from phone_compliance import schema

VALID_FROM = "valid_from"
VALID_TO = "valid_to"
MONTH_END = "month_end"
MONTH = "month"
PAIRS = "pairs"
SNAPSHOT_DATE = "snapshot_date"
ROW_REJECT = "row"
FILE_REJECT = "file"  # R1.3: a whole-file reject has line number 0

_DELTA = "_delta"
_PREVIOUS = "_previous"


def reasons_by_month_end(history: DataFrame) -> DataFrame:
    """R14: per month end d and reason, the pairs whose decision as of d has that reason: the
    intervals with valid_from <= d < coalesce(valid_to, infinity), one per pair. Every month end
    from the first an interval holds to the month of the latest file date, with zeros.

    Not a join of months and intervals (an interval spans many months): in one pass, each
    interval adds one at the first month end it holds and takes it back at the first it no
    longer holds; a running sum over the months (a few dozen rows per reason) gives the counts.
    """
    first = F.last_day(VALID_FROM)
    # The last month end before valid_to: the day before valid_to's month starts.
    last = F.date_sub(F.trunc(VALID_TO, "month"), 1)
    holds_one = F.col(VALID_TO).isNull() | (first <= last)
    start = F.struct(first.alias(MONTH_END), F.lit(1).alias(_DELTA))
    end = F.struct(F.last_day(F.date_add(last, 1)).alias(MONTH_END), F.lit(-1).alias(_DELTA))
    steps = F.when(F.col(VALID_TO).isNull(), F.array(start)).otherwise(F.array(start, end))
    deltas = (
        history.filter(holds_one)
        .select("reason", F.explode(steps).alias("_step"))
        .groupBy(F.col(f"_step.{MONTH_END}").alias(MONTH_END), "reason")
        .agg(F.sum(f"_step.{_DELTA}").alias(_DELTA))
    )
    # The latest file date starts an open interval (R14: a pair's intervals follow one another),
    # so the months run from the first step to the last.
    months = F.sequence(
        F.trunc(F.min(MONTH_END), "month"),
        F.trunc(F.max(MONTH_END), "month"),
        F.expr("INTERVAL 1 MONTH"),
    )
    month_ends = (
        deltas.agg(months.alias("_months"))
        .filter(F.col("_months").isNotNull())
        .select(F.explode("_months").alias("_month"))
        .select(F.last_day("_month").alias(MONTH_END))
    )
    grid = month_ends.crossJoin(deltas.select("reason").distinct())
    running = (
        Window.partitionBy("reason")
        .orderBy(MONTH_END)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return (
        grid.join(deltas, [MONTH_END, "reason"], how="left")
        .withColumn(PAIRS, F.sum(F.coalesce(F.col(_DELTA), F.lit(0))).over(running))
        .select(MONTH_END, "reason", F.col(PAIRS).cast("bigint"))
    )


def _previous(column: str) -> Column:
    """`column` of the interval before, in the pair's history (NULL for its first interval)."""
    by_pair = Window.partitionBy(*schema.PAIR_KEY).orderBy(VALID_FROM)
    return F.lag(column).over(by_pair)


def deletions_by_snapshot(history: DataFrame, snapshots: Sequence[date]) -> DataFrame:
    """R5-R7: pairs deleted, per snapshot and delete type. A deletion is an interval deleted
    whose predecessor was not (or that has none: a pair known only from SUPPLFWD 'Y' rows),
    with that interval's `deleted_at` and `delete_type`; it is counted at the first snapshot
    dated on or after its `deleted_at` (a hard deletion's own snapshot), and with a NULL
    `snapshot_date` when no snapshot is that recent."""
    started = F.col("is_deleted") & ~F.coalesce(F.col(_PREVIOUS), F.lit(False))
    deleted = (
        history.withColumn(_PREVIOUS, _previous("is_deleted"))
        .filter(started)
        .groupBy("deleted_at", "delete_type")
        .agg(F.count(F.lit(1)).alias(PAIRS))
    )
    calendar = history.sparkSession.createDataFrame(
        [(d,) for d in sorted(set(snapshots))], f"{SNAPSHOT_DATE} DATE"
    )
    on_or_after = F.col(SNAPSHOT_DATE) >= F.col("deleted_at")
    first_snapshot = (
        deleted.join(F.broadcast(calendar), on_or_after, how="left")
        .groupBy("deleted_at", "delete_type", PAIRS)
        .agg(F.min(SNAPSHOT_DATE).alias(SNAPSHOT_DATE))
    )
    return (
        first_snapshot.groupBy(SNAPSHOT_DATE, "delete_type")
        .agg(F.sum(PAIRS).alias(PAIRS))
        .select(SNAPSHOT_DATE, "delete_type", F.col(PAIRS).cast("bigint"))
    )


def consent_withdrawals_by_month(history: DataFrame) -> DataFrame:
    """R9: consent withdrawals per month of `sms_consent_updated_at`. A withdrawal is an
    interval whose `has_sms_consent` is FALSE following one where it was TRUE or NULL (implicit
    consent); a pair first seen already without consent withdrew nothing known to us."""
    had_consent = F.coalesce(F.col(_PREVIOUS), F.lit(True))
    had_before = F.col("_had_before")
    withdrawn = (F.col("has_sms_consent") == F.lit(False)) & had_before & had_consent
    return (
        history.withColumns(
            {
                _PREVIOUS: _previous("has_sms_consent"),
                "_had_before": _previous(VALID_FROM).isNotNull(),
            }
        )
        .filter(withdrawn)
        .groupBy(F.trunc("sms_consent_updated_at", "month").alias(MONTH))
        .agg(F.count(F.lit(1)).alias("withdrawals"))
        .select(MONTH, "withdrawals")
    )


def rejects_by_file_date(rejects: DataFrame) -> DataFrame:
    """R1.2/R1.3: rejects per file date, kind (`row`, or `file` for a whole-file reject, line 0)
    and reason. A file whose name carries no date has a NULL file date."""
    kind = F.when(F.col("line_number") == 0, FILE_REJECT).otherwise(ROW_REJECT)
    return (
        rejects.groupBy("file_date", kind.alias("kind"), "reason")
        .agg(F.count(F.lit(1)).alias("rejects"))
        .select("file_date", "kind", "reason", "rejects")
    )


def _flipped() -> Column:
    # As R13 counts flips (transforms/gold.flipped): a pair that left Gold is no longer allowed;
    # a pair new to Gold had no decision to flip.
    after = F.coalesce(F.col("new_can_send_sms"), F.lit(False))
    return F.col("old_can_send_sms").isNotNull() & (F.col("old_can_send_sms") != after)


def last_publication(changes: DataFrame) -> DataFrame:
    """The pairs Gold's latest publication in `changes` (gold/decision_changes) changed, per
    decision and reason before and after, and whether `can_send_sms` flipped (`flipped`, as R13
    counts: a pair new to Gold flipped nothing, a pair that left it is no longer allowed); with
    the publication's version and time. No row before the first publication."""
    last = changes.agg(F.max("gold_version").alias("gold_version"))
    return (
        changes.join(F.broadcast(last), "gold_version", how="inner")
        .groupBy(
            "gold_version",
            "old_reason",
            "new_reason",
            "old_can_send_sms",
            "new_can_send_sms",
            _flipped().alias("flipped"),
        )
        .agg(F.count(F.lit(1)).alias(PAIRS), F.max("published_at").alias("published_at"))
        .select(
            "gold_version",
            "published_at",
            "old_reason",
            "new_reason",
            "old_can_send_sms",
            "new_can_send_sms",
            "flipped",
            PAIRS,
        )
    )
