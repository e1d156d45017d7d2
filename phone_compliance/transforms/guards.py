"""R13's counts: a snapshot that looks broken, or a run that would flip many decisions, must not
publish. Pure functions over DataFrames and plain values; the checks that block Gold wire them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.ingest import ledger as file_ledger
from phone_compliance.transforms import gold

# HyperLogLog sketches of 2^14 buckets: ~0.8% relative standard error.
SNAPSHOT_PAIRS_LG_K = 14


def snapshot_files(ledger: DataFrame) -> dict[date, list[str]]:
    """R6: each snapshot date and its part files, a snapshot being made of readable files: a
    NON-FIN-BDL file counts when the version of its name in force is readable (R1.3), so a broken
    re-delivery leaves its last readable version in the snapshot, and a date whose versions in
    force are all rejected is no snapshot."""
    snapshots = ledger.filter(F.col("family") == schema.SNAPSHOT.name)
    return file_ledger.snapshot_parts(
        file_ledger.evidence_in_force(file_ledger.histories(snapshots))
    )


def snapshots_to_judge(dates: list[date], published_through: str | None) -> list[date]:
    """The snapshots newer than the published Gold, and the one before the first of them.

    Only those are judged, each against the one before it: counting those alone keeps the
    check's cost per run, not per year of history.
    """
    dates = sorted(dates)
    first_new = next(
        (i for i, d in enumerate(dates) if _newer(d, published_through)),
        None,
    )
    return dates[max(first_new - 1, 0) :] if first_new is not None else []


def _newer(day: date, published_through: str | None) -> bool:
    return published_through is None or day.isoformat() > published_through


def snapshot_pair_counts(snapshot: DataFrame, dates: list[date]) -> dict[date, int]:
    """About how many pairs each snapshot holds.

    HyperLogLog over a 64-bit hash of the pair: a guard against a 20% shrink needs no exact
    count, and an exact one would shuffle every snapshot row. Apache DataSketches' sketch (built
    into Spark) has the error of approx_count_distinct in about half its time.
    """
    pair = F.xxhash64(*schema.PAIR_KEY)
    counted = (
        snapshot.filter(F.col("file_date").isin(*dates))
        .groupBy("file_date")
        .agg(F.hll_sketch_estimate(F.hll_sketch_agg(pair, SNAPSHOT_PAIRS_LG_K)).alias("pairs"))
    )
    pairs = {r["file_date"]: r["pairs"] for r in counted.collect()}
    return {d: pairs.get(d, 0) for d in dates}


def shrunk_snapshots(
    pairs: dict[date, int], published_through: str | None, max_shrink: float
) -> list[dict[str, object]]:
    """R13: each new snapshot holding more than `max_shrink` fewer pairs than the one before."""
    sizes = sorted(pairs.items())
    shrunk = []
    for (_, before), (day, after) in zip(sizes, sizes[1:], strict=False):
        if _newer(day, published_through) and before and (before - after) / before > max_shrink:
            shrunk.append({"snapshot": day.isoformat(), "pairs": after, "previous_pairs": before})
    return shrunk


@dataclass(frozen=True)
class Flips:
    """How many published decisions a publication would flip (R13)."""

    published: int
    flips: int

    @property
    def fraction(self) -> float:
        return self.flips / self.published if self.published else 0.0


def decision_flips(published: DataFrame, pair_state: DataFrame) -> Flips:
    """R13: published decisions whose `can_send_sms` Silver's state would change."""
    proposed = gold.decisions(pair_state)
    return Flips(published.count(), gold.flipped(published, proposed).count())
