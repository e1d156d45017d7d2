"""Gold's decision history (R14): per pair, the intervals of file dates over which the decision
that the files dated on or before a day would give stays the same.

A pair's as-of decision can change only on the file date of a file holding its evidence, or on
a snapshot's date that leaves it out (R6). So: one `pair_evidence` state per pair and file date;
their running merge (the state of every file dated on or before); each finalized as of its own
date, and, between two such dates, as of the first snapshot the pair is absent from; then Gold's
decision (R10) of each, with consecutive equal decisions (same `content_hash`: decision, fields
and deciding files) collapsed into one interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.transforms import gold, silver

FILE_DATE = "file_date"
VALID_FROM = "valid_from"
VALID_TO = "valid_to"


def running_states(dated: DataFrame) -> DataFrame:
    """Per pair and file date, the `pair_evidence` state of the evidence of every file dated on
    or before it: `silver.merge_states` of the dated states (`pair_evidence(ev, by=[FILE_DATE])`)
    as a running aggregate. Every part is a max, and soft deletions a union less those before P."""
    running = (
        Window.partitionBy(*silver.PAIR)
        .orderBy(FILE_DATE)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    some_softs = F.when(F.size("soft_deletes") > 0, F.col("soft_deletes"))
    merged = dated.select(
        *silver.PAIR,
        FILE_DATE,
        *[F.max(c).over(running).alias(c) for c in ("last_in_snapshot", "presence", "latest")],
        F.max("consent").over(running).alias("consent"),
        F.flatten(F.collect_list(some_softs).over(running)).alias("soft_deletes"),
    )
    p = silver.p_of(F.col("presence"))
    after_p = F.filter("soft_deletes", lambda d: p.isNull() | (d["evidence_date"] >= p))
    return merged.withColumn("soft_deletes", F.array_sort(F.array_distinct(after_p)))


def _as_of_dates(states: DataFrame, snapshots: Mapping[date, Sequence[str]]) -> DataFrame:
    """Each running state with the dates its decision must be taken as of: its own file date,
    and the first snapshot after it (before the pair's next file date) that leaves it out."""
    snapshot_dates, _ = silver.snapshot_literals(snapshots)
    following = F.lead(FILE_DATE).over(Window.partitionBy(*silver.PAIR).orderBy(FILE_DATE))
    states = states.withColumn("_next", following)
    absent = silver.absent_from(silver.p_of(F.col("presence")), F.col("last_in_snapshot"))
    in_gap = F.filter(
        snapshot_dates,
        lambda s: (s > F.col(FILE_DATE)) & (F.col("_next").isNull() | (s < F.col("_next"))),
    )
    first_absence = F.array_min(F.filter(in_gap, absent))
    dates = F.array_compact(F.array(F.col(FILE_DATE), first_absence))
    return states.withColumn(VALID_FROM, F.explode(dates)).drop("_next")


def decision_history(ev: DataFrame, snapshots: Mapping[date, Sequence[str]]) -> DataFrame:
    """R14's intervals for every pair `ev` (evidence with its file dates) concerns, from all of
    its evidence: DECISION_HISTORY rows, the last interval of each pair (`valid_to` NULL) equal
    to its Gold row."""
    states = running_states(silver.pair_evidence(ev, by=[FILE_DATE]))
    as_of = _as_of_dates(states, snapshots)
    decided = gold.decisions(silver.finalize(as_of, snapshots, as_of=VALID_FROM), [VALID_FROM])
    pair = Window.partitionBy(*schema.PAIR_KEY).orderBy(VALID_FROM)
    previous = F.lag("content_hash").over(pair)
    changes = decided.withColumn("_previous", previous).filter(
        F.col("_previous").isNull() | (F.col("_previous") != F.col("content_hash"))
    )
    return changes.withColumn(VALID_TO, F.lead(VALID_FROM).over(pair)).select(
        *schema.names(schema.DECISION_HISTORY)
    )


def evidence_of_pairs(ev: DataFrame, pairs_of: DataFrame) -> DataFrame:
    """The rows of `ev` (evidence) of the pairs `pairs_of` (evidence too) concerns."""
    keys = pairs_of.select(*schema.PAIR_KEY).distinct()
    return ev.join(keys, list(schema.PAIR_KEY), "semi")
