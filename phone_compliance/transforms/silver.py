"""Silver: evidence from Bronze (SPEC §4) reconciled into one state per pair (R4–R9).

One pass of aggregations over the evidence: no per-snapshot joins, no Python UDFs. Each aggregate is
a max or min, so exact duplicate rows count once (R1.4) and read order never matters (R12).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from phone_compliance import schema

PRESENT = "present"
SOFT_DELETED = "soft_deleted"

_ATTRIBUTES = schema.names(schema.ATTRIBUTES)
EVIDENCE_COLUMNS = [
    "account_number",
    "phone_number",
    "evidence_date",
    "source_rank",
    "kind",
    "source_file",
    "file_ts",
    "row_text",
    *_ATTRIBUTES,
    "consent_flag",
    "consent_date",
]


def enrollment_evidence(enrollment: DataFrame) -> DataFrame:
    """ENRLMT rows: *present* on their enrollment date, rank 1 (SPEC §4); they carry no consent."""
    return enrollment.select(
        "account_number",
        "phone_number",
        F.col("enrollment_date").alias("evidence_date"),
        F.lit(schema.ENROLLMENT.source_rank).alias("source_rank"),
        F.lit(PRESENT).alias("kind"),
        "source_file",
        "file_ts",
        "row_text",
        *_ATTRIBUTES,
        F.lit(None).cast("string").alias("consent_flag"),
        F.lit(None).cast("date").alias("consent_date"),
    )


def snapshot_evidence(snapshot: DataFrame) -> DataFrame:
    """NON-FIN-BDL rows: *present* on the snapshot's file date, rank 2 (SPEC §4)."""
    return snapshot.select(
        "account_number",
        "phone_number",
        F.col("file_date").alias("evidence_date"),
        F.lit(schema.SNAPSHOT.source_rank).alias("source_rank"),
        F.lit(PRESENT).alias("kind"),
        "source_file",
        "file_ts",
        "row_text",
        *_ATTRIBUTES,
        "consent_flag",
        "consent_date",
    )


def change_evidence(change: DataFrame) -> DataFrame:
    """SUPPLFWD rows: flag N is *present*, flag Y *soft-deleted*, on the record date, rank 3."""
    kind = F.when(F.col("soft_delete_flag") == "Y", SOFT_DELETED).otherwise(PRESENT)
    return change.select(
        "account_number",
        "phone_number",
        F.col("record_date").alias("evidence_date"),
        F.lit(schema.CHANGE.source_rank).alias("source_rank"),
        kind.alias("kind"),
        "source_file",
        "file_ts",
        "row_text",
        *_ATTRIBUTES,
        "consent_flag",
        "consent_date",
    )


def evidence(enrollment: DataFrame, snapshot: DataFrame, change: DataFrame) -> DataFrame:
    """All dated, ranked evidence of SPEC §4 in one frame (absences are derived in `reconcile`)."""
    return (
        enrollment_evidence(enrollment)
        .unionByName(snapshot_evidence(snapshot))
        .unionByName(change_evidence(change))
    )


def _latest_row(ev: DataFrame) -> Column:
    """R8 order: latest date, higher source rank, later file timestamp, greater row text."""
    return F.max(
        F.struct(
            F.col("evidence_date"),
            F.col("source_rank"),
            F.col("file_ts"),
            F.col("row_text"),
            *[F.col(c) for c in _ATTRIBUTES],
            F.col("source_file"),
        )
    )


def _latest_consent() -> Column:
    """R9: the consent observation with the latest consent date, `N` winning a tie."""
    observed = F.col("consent_flag").isin("Y", "N")
    consent_date = F.coalesce(F.col("consent_date"), F.col("evidence_date"))
    observation = F.struct(
        consent_date.alias("date"),
        (F.col("consent_flag") == "N").alias("is_n"),
        F.col("source_rank"),
        F.col("file_ts"),
        F.col("row_text"),
        F.col("consent_flag").alias("flag"),
        F.col("source_file"),
    )
    return F.max(F.when(observed, observation))


def _snapshot_literals(snapshots: Mapping[date, Sequence[str]]) -> tuple[Column, Column]:
    """The snapshot dates (sorted) and a map from each date to its part files, as literals."""
    dates = sorted(snapshots)
    date_array = F.array(*[F.lit(d) for d in dates]) if dates else F.array().cast("array<date>")
    files = (
        F.create_map(*[x for d in dates for x in (F.lit(d), F.lit(",".join(sorted(snapshots[d]))))])
        if dates
        else F.create_map().cast("map<date,string>")
    )
    return date_array, files


def reconcile(ev: DataFrame, snapshots: Mapping[date, Sequence[str]]) -> DataFrame:
    """One row per pair (R4) with deletion (R5–R7), attributes (R8), consent (R9) and lineage (R12).

    `snapshots` maps each snapshot date (a date with at least one readable NON-FIN-BDL file, R6) to
    its file names.
    """
    present = F.col("kind") == PRESENT
    soft = F.col("kind") == SOFT_DELETED
    is_snapshot = F.col("source_rank") == schema.SNAPSHOT.source_rank
    per_pair = ev.groupBy("account_number", "phone_number").agg(
        F.max(
            F.when(present, F.struct("evidence_date", "source_rank", "file_ts", "source_file"))
        ).alias("presence"),
        F.max(F.when(present & is_snapshot, F.col("evidence_date"))).alias("last_in_snapshot"),
        F.collect_set(F.when(soft, F.struct("evidence_date", "source_file"))).alias("soft"),
        _latest_row(ev).alias("latest"),
        _latest_consent().alias("consent"),
    )

    snapshot_dates, snapshot_files = _snapshot_literals(snapshots)
    p = F.col("presence.evidence_date")
    # R5: soft deletions dated on or after P; with no present evidence at all, every one counts.
    soft_after_p = F.array_min(
        F.filter("soft", lambda s: p.isNull() | (s.getField("evidence_date") >= p))
    )
    # R6: the pair is absent from every snapshot after P, and from the one on P unless it is in it.
    in_snapshot_on_p = F.col("last_in_snapshot") == p

    def absent(d: Column) -> Column:
        return (d > p) | ((d == p) & ~F.coalesce(in_snapshot_on_p, F.lit(False)))

    absent_since = F.array_min(F.filter(snapshot_dates, absent))

    state = per_pair.select(
        "account_number",
        "phone_number",
        "latest",
        "consent",
        "presence",
        soft_after_p.alias("soft_delete"),
        absent_since.alias("absent_since"),
    )
    soft_date = F.col("soft_delete.evidence_date")
    hard_date = F.col("absent_since")
    is_deleted = soft_date.isNotNull() | hard_date.isNotNull()
    # R7: the earliest deletion evidence on or after P; a soft delete wins a same-day tie.
    soft_first = soft_date.isNotNull() & (hard_date.isNull() | (soft_date <= hard_date))
    deletion_file = F.when(soft_first, F.col("soft_delete.source_file")).when(
        hard_date.isNotNull(), F.element_at(snapshot_files, hard_date)
    )
    consent_flag = F.col("consent.flag")
    return state.select(
        "account_number",
        "phone_number",
        *[F.col(f"latest.{c}").alias(c) for c in _ATTRIBUTES],
        F.col("latest.source_file").alias("attributes_file"),
        F.col("presence.evidence_date").alias("latest_present_date"),
        F.col("presence.source_file").alias("presence_file"),
        is_deleted.alias("is_deleted"),
        F.when(soft_first, F.lit(schema.SOFT_DELETE))
        .when(is_deleted, F.lit(schema.HARD_DELETE))
        .alias("delete_type"),
        F.when(soft_first, soft_date).otherwise(hard_date).alias("deleted_at"),
        deletion_file.alias("deletion_file"),
        F.when(consent_flag == "Y", True).when(consent_flag == "N", False).alias("has_sms_consent"),
        F.col("consent.date").alias("sms_consent_updated_at"),
        F.col("consent.source_file").alias("consent_file"),
    )
