"""Gold's decision history (R14): per pair, the intervals of file dates over which the decision
that the files dated on or before a day would give stays the same.

A pair's as-of decision can change only on the file date of a file holding its evidence, or on
a snapshot's date that leaves it out (R6). So: one `pair_evidence` state per pair and file date;
their running merge (the state of every file dated on or before); each finalized as of its own
date, and, between two such dates, as of the first snapshot the pair is absent from; then R10 for
each, consecutive equal decisions (`DECISION`) making one interval, recorded as of its first day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.transforms import gold, silver

# What an interval is the same of: R10's answer and the facts it rests on (R5-R9). The other Gold
# fields (descriptive attributes, the deciding files) are those of the interval's first day.
DECISION = (
    "can_send_sms",
    "reason",
    "phone_source",
    "is_deleted",
    "delete_type",
    "deleted_at",
    "has_sms_consent",
    "sms_consent_updated_at",
)
FILE_DATE = "file_date"
# What a session computing the history needs set: Spark 4.0.1's nested column aliasing, pushing
# struct field extractions below the `explode` of `_as_of_dates`, loses one of them on a large
# plan ("[INTERNAL_ERROR] Couldn't find _extract_phone_source"); without it, nothing is lost but
# a projection.
SPARK_CONF = {"spark.sql.optimizer.nestedSchemaPruning.enabled": "false"}
VALID_FROM = "valid_from"
VALID_TO = "valid_to"


def running_states(ev: DataFrame) -> DataFrame:
    """Per pair and file date, the `silver.pair_evidence` state of the evidence `ev` holds from
    every file dated on or before it.

    One sort of the evidence by pair and file date serves every window: each row is a state of
    its own (`silver.evidence_parts`), the running max of each part over the rows of earlier and
    equal file dates is their merged state, and the last row of each date carries it. R8's and
    R9's last tie-break, the row text, is built only where a pair has several rows of one file
    date: only rows of one file can tie before it (their file timestamps are equal).
    """
    by_pair = Window.partitionBy(*silver.PAIR).orderBy(FILE_DATE)
    same_date = by_pair.rangeBetween(Window.currentRow, Window.currentRow)
    running = by_pair.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    ev = ev.withColumns(silver.pair_as_longs())
    ev = ev.withColumn("_rows", F.count(F.lit(1)).over(same_date))
    parts = silver.evidence_parts(F.when(F.col("_rows") > 1, silver.row_text()))
    merged = ev.select(
        *silver.PAIR,
        FILE_DATE,
        *[
            F.max(parts[c]).over(running).alias(c)
            for c in ("last_in_snapshot", "presence", "latest", "consent")
        ],
        F.collect_list(parts["soft_delete"]).over(running).alias("soft_deletes"),
        F.lead(FILE_DATE).over(by_pair).alias("_next_row_date"),
    )
    last_of_date = F.col("_next_row_date").isNull() | (F.col("_next_row_date") != F.col(FILE_DATE))
    p = silver.p_of(F.col("presence"))
    after_p = F.filter("soft_deletes", lambda d: p.isNull() | (d["evidence_date"] >= p))
    return (
        merged.filter(last_of_date)
        .drop("_next_row_date")
        .withColumn("soft_deletes", F.array_sort(F.array_distinct(after_p)))
    )


def _as_of_dates(states: DataFrame, snapshots: Mapping[date, Sequence[str]]) -> DataFrame:
    """Each running state with the dates its decision must be taken as of: its own file date,
    and the first snapshot after it (before the pair's next file date) that leaves it out: the
    first the pair is absent from when P is later, else the first after the file date (R6)."""
    day = F.col(FILE_DATE)
    p = silver.p_of(F.col("presence"))
    states = silver.with_next_snapshots(states, p, "_p_", snapshots)
    states = silver.with_next_snapshots(states, day, "_d_", snapshots)
    absent_from_p, _ = silver.first_absence(p, F.col("last_in_snapshot"), "_p_")
    absence = F.when(p > day, absent_from_p).otherwise(F.col("_d_after"))
    following = F.lead(FILE_DATE).over(Window.partitionBy(*silver.PAIR).orderBy(FILE_DATE))
    states = states.withColumn("_next", following)
    in_gap = absence.isNotNull() & (F.col("_next").isNull() | (absence < F.col("_next")))
    dates = F.array_compact(F.array(day, F.when(in_gap, absence)))
    helpers = [c for c in states.columns if c.startswith(("_p_", "_d_", "_next"))]
    return states.withColumn(VALID_FROM, F.explode(dates)).drop(*helpers)


def decision_history(ev: DataFrame, snapshots: Mapping[date, Sequence[str]]) -> DataFrame:
    """R14's intervals for every pair `ev` (evidence with its file dates) concerns, from all of
    its evidence: DECISION_HISTORY rows, the last interval of each pair (`valid_to` NULL) equal
    to its Gold row."""
    states = running_states(ev)
    as_of = _as_of_dates(states, snapshots)
    final = silver.finalize(as_of, snapshots, as_of=VALID_FROM, keep=[VALID_FROM, *silver.PAIR])
    decided = gold.reasons(final)
    # By the pair's longs, as the running states are: no second shuffle, only a sort.
    pair = Window.partitionBy(*silver.PAIR).orderBy(VALID_FROM)
    decision = F.struct(*DECISION)
    same = F.lag(decision).over(pair).eqNullSafe(decision)
    starts = decided.withColumn("_same", same).filter(~F.col("_same"))
    intervals = starts.withColumn(VALID_TO, F.lead(VALID_FROM).over(pair))
    return gold.with_content_hash(intervals, [VALID_FROM, VALID_TO])


def evidence_of_pairs(ev: DataFrame, pairs_of: DataFrame) -> DataFrame:
    """The rows of `ev` (evidence) of the pairs `pairs_of` (evidence too) concerns."""
    keys = pairs_of.select(*schema.PAIR_KEY).distinct()
    return ev.join(keys, list(schema.PAIR_KEY), "semi")
