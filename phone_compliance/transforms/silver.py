"""Silver: evidence from Bronze (SPEC §4) reconciled into one state per pair (R4–R9).

Two aggregations over the evidence: no per-snapshot joins, no Python UDFs. Each aggregate is
a max or min, so exact duplicate rows count once (R1.4) and read order never matters (R12).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from phone_compliance import schema

_ATTRIBUTES = schema.names(schema.ATTRIBUTES)


def _row_parts(record_id: str, soft_delete_flag: Column | None = None) -> list[Column]:
    """The delivered fields, beside the attributes, that `row_text` rebuilds a row from."""
    return [
        F.col(record_id).alias("record_id"),
        "consumer_type",
        "agency_id",
        "phone_raw",
        "quality_score_raw",
        (soft_delete_flag if soft_delete_flag is not None else F.lit(None).cast("string")).alias(
            "soft_delete_flag"
        ),
    ]


def _delivered_field(family: schema.Family, column: str) -> Column:
    """One delivered field of an evidence row of `family`, as its (trimmed) text."""
    ours = {schema.common_field(family, o): o for o in schema.COMMON_FIELDS}.get(column)
    if column in schema.PERSONAL_FIELDS:
        return F.lit("")
    if ours == "legacy_id":  # R2: accepted rows' legacy id is the account and its type letter
        return F.concat("account_number", "consumer_type")
    if ours is not None:
        return F.col(ours)
    by_column = {
        "account_number": F.col("account_number"),
        "cnsmr_phn_id": F.col("record_id"),
        "cnsmr_phn_hst_id": F.col("record_id"),
        "enrollment_date": F.date_format("evidence_date", "yyyy-MM-dd"),
        "record_date": F.date_format("evidence_date", "yyyy-MM-dd"),
        "cnsmr_phn_cnsnt_flg": F.col("consent_flag"),
        "cnsmr_phn_cnsnt_dt": F.coalesce(F.date_format("consent_date", "yyyy-MM-dd"), F.lit("")),
        "cnsmr_phn_sft_dlt_flg": F.col("soft_delete_flag"),
    }
    return by_column[column]


def row_text() -> Column:
    """R8's last tie-break: the delivered row in its family's column order, personal fields blank.

    Accepted fields are stored trimmed and dates strictly `YYYY-MM-DD`, so the text is rebuilt
    exactly; only the few rows reaching phase two of `reconcile` pay for it.
    """
    rank = F.col("source_rank")
    return F.coalesce(
        *[
            F.when(
                rank == f.source_rank,
                F.concat_ws("|", *[_delivered_field(f, c) for c in f.columns]),
            )
            for f in schema.FAMILIES
        ]
    )


def enrollment_evidence(enrollment: DataFrame) -> DataFrame:
    """ENRLMT rows: *present* on their enrollment date, rank 1 (SPEC §4); they carry no consent."""
    return enrollment.select(
        "account_number",
        "phone_number",
        F.col("enrollment_date").alias("evidence_date"),
        F.lit(schema.ENROLLMENT.source_rank).alias("source_rank"),
        F.lit(False).alias("soft_deleted"),
        "source_file",
        "file_date",
        "file_ts",
        *_ATTRIBUTES,
        F.lit(None).cast("string").alias("consent_flag"),
        F.lit(None).cast("date").alias("consent_date"),
        *_row_parts("account_number"),
    )


def snapshot_evidence(snapshot: DataFrame) -> DataFrame:
    """NON-FIN-BDL rows: *present* on the snapshot's file date, rank 2 (SPEC §4)."""
    return snapshot.select(
        "account_number",
        "phone_number",
        F.col("file_date").alias("evidence_date"),
        F.lit(schema.SNAPSHOT.source_rank).alias("source_rank"),
        F.lit(False).alias("soft_deleted"),
        "source_file",
        "file_date",
        "file_ts",
        *_ATTRIBUTES,
        "consent_flag",
        "consent_date",
        *_row_parts("cnsmr_phn_id"),
    )


def change_evidence(change: DataFrame) -> DataFrame:
    """SUPPLFWD rows: flag N is *present*, flag Y *soft-deleted*, on the record date, rank 3."""
    return change.select(
        "account_number",
        "phone_number",
        F.col("record_date").alias("evidence_date"),
        F.lit(schema.CHANGE.source_rank).alias("source_rank"),
        (F.col("soft_delete_flag") == "Y").alias("soft_deleted"),
        "source_file",
        "file_date",
        "file_ts",
        *_ATTRIBUTES,
        "consent_flag",
        "consent_date",
        *_row_parts("cnsmr_phn_hst_id", F.col("soft_delete_flag")),
    )


def evidence(enrollment: DataFrame, snapshot: DataFrame, change: DataFrame) -> DataFrame:
    """All dated, ranked evidence of SPEC §4 in one frame (absences are derived in `reconcile`)."""
    return (
        enrollment_evidence(enrollment)
        .unionByName(snapshot_evidence(snapshot))
        .unionByName(change_evidence(change))
    )


# Phase one orders evidence by small ints (a hash aggregate); ties on them go to phase two.
_RANKS = 4  # source ranks 1-3 fit below 4


def _day_rank(day: Column) -> Column:
    """R5/R8 order down to the source rank, as one int: evidence date, then source rank."""
    return F.unix_date(day) * _RANKS + F.col("source_rank")


# A consent repeated by every later snapshot ties on its key in each of them, and phase two would
# read them all; phase two's tie-break (file timestamp first) picks the latest snapshot anyway,
# since a later file date is a later file timestamp. So a snapshot row's key ends with its
# snapshot date, counted from Spark's first date so that it is never negative.
_DAYS = 1 << 22  # every date Spark holds, 0001-01-01 to 9999-12-31
_FIRST_DAY = -719162  # unix_date(0001-01-01)


def _consent_key() -> Column:
    """R9 order down to the source rank, as one long: consent date, then `N` over `Y`, then rank;
    then, for a snapshot row, the snapshot's date (see above)."""
    consent_date = F.coalesce(F.col("consent_date"), F.col("evidence_date"))
    is_n = (F.col("consent_flag") == "N").cast("long")
    key = (F.unix_date(consent_date).cast("long") * 2 + is_n) * _RANKS + F.col("source_rank")
    is_snapshot = F.col("source_rank") == schema.SNAPSHOT.source_rank
    snapshot_day = F.when(is_snapshot, F.unix_date("evidence_date") - _FIRST_DAY).otherwise(0)
    return key * _DAYS + snapshot_day


def _date_of(key: Column, per_day: int) -> Column:
    return F.date_from_unix_date(F.floor(key / per_day).cast("int"))


# R2/R3: an accepted account is 16 digits and an accepted phone `+1` and ten digits, so each is
# exactly one long. Both phases group and probe on two longs rather than two strings: fixed-width
# keys, which Spark's hash aggregate and join handle several times faster.
def _as_long(column: str) -> Column:
    """`column` as a long; anything else stops the run (whatever Spark's ANSI mode) rather than
    merging pairs under a null key."""
    bad = F.concat_ws(" ", F.lit(f"R2/R3: {column}"), F.col(column), F.lit("in"), "source_file")
    return F.coalesce(F.col(column).try_cast("long"), F.raise_error(bad))


def pair_as_longs() -> dict[str, Column]:
    return {
        "account_key": _as_long("account_number"),
        "phone_key": _as_long("phone_number"),  # the `+` reads as a sign
    }


def _pair_as_text() -> dict[str, Column]:
    return {
        "account_number": F.lpad(F.col("account_key").cast("string"), 16, "0"),
        "phone_number": F.concat(F.lit("+"), F.col("phone_key").cast("string")),
    }


PAIR = ["account_key", "phone_key"]


def evidence_parts(row_text: Column) -> dict[str, Column]:
    """Each evidence row as a state of its own: the parts a `pair_evidence` state keeps the max
    of (NULL where the row is no such evidence), and `soft_delete` for a *soft-deleted* row."""
    soft = F.col("soft_deleted")
    present = ~soft
    day_rank = _day_rank(F.col("evidence_date"))
    is_snapshot = F.col("source_rank") == schema.SNAPSHOT.source_rank
    observed = F.col("consent_flag").isin("Y", "N")
    return {
        "last_in_snapshot": F.when(present & is_snapshot, F.col("evidence_date")),
        "presence": F.when(present, F.struct(day_rank.alias("key"), "file_ts", "source_file")),
        "latest": F.struct(
            day_rank.alias("key"),
            "file_ts",
            row_text.alias("row_text"),
            *_ATTRIBUTES,
            "source_file",
        ),
        "consent": F.when(
            observed,
            F.struct(
                _consent_key().alias("key"),
                "file_ts",
                row_text.alias("row_text"),
                "consent_flag",
                "source_file",
            ),
        ),
        "soft_delete": F.when(soft, F.struct("evidence_date", "source_file")),
    }


def pair_evidence(ev: DataFrame) -> DataFrame:
    """Per pair (R4), the evidence R5–R9 decide from, as a state that merges with another
    (`merge_states`) exactly as if both batches of evidence had been read at once (R12).

    Each part is a max or a min: the best presence, latest row and consent observation, each a
    struct led by its order key (so the max of two states is the state of their union); the
    latest snapshot the pair is in; and its soft deletions on or after its presence date (P only
    grows as evidence is added, so a deletion before it never counts again).

    Two passes over the evidence, both aggregations. Phase one keeps, per pair, the best
    (date, rank) of its present, latest and consent evidence as ints: fixed-width buffers, so a
    hash aggregate. Phase two keeps only the rows that reach those keys (about one per pair, plus
    soft deletions on or after P) and breaks the remaining ties by file timestamp, row text and
    file name. Ties never depend on read order (R12).
    """
    # Evidence is *present* or *soft-deleted* (SPEC §4), as a boolean: no text compared per row.
    soft = F.col("soft_deleted")
    present = ~soft
    observed = F.col("consent_flag").isin("Y", "N")
    is_snapshot = F.col("source_rank") == schema.SNAPSHOT.source_rank
    ev = ev.withColumns(pair_as_longs())
    best = ev.groupBy(*PAIR).agg(
        F.max(F.when(present, _day_rank(F.col("evidence_date")))).alias("p_key"),
        F.max(F.when(present & is_snapshot, F.col("evidence_date"))).alias("last_in_snapshot"),
        F.max(_day_rank(F.col("evidence_date"))).alias("latest_key"),
        F.max(F.when(observed, _consent_key())).alias("consent_key"),
    )
    p = _date_of(F.col("p_key"), _RANKS)
    flags = {
        "is_presence": present & (_day_rank(F.col("evidence_date")) == F.col("p_key")),
        "is_latest": _day_rank(F.col("evidence_date")) == F.col("latest_key"),
        "is_consent": observed & (_consent_key() == F.col("consent_key")),
        # R5: soft deletions dated on or after P; with no present evidence at all, all count.
        "is_soft_after_p": soft & (p.isNull() | (F.col("evidence_date") >= p)),
    }
    candidates = (
        _join_by_pair(ev, best)
        .withColumns(flags)
        .filter(F.greatest(*[F.col(f) for f in flags]))
        .withColumn("row_text", row_text())
    )
    parts = evidence_parts(F.col("row_text"))
    return candidates.groupBy(*PAIR, "last_in_snapshot").agg(
        *[
            F.max(F.when(F.col(flag), parts[part])).alias(part)
            for flag, part in (
                ("is_presence", "presence"),
                ("is_latest", "latest"),
                ("is_consent", "consent"),
            )
        ],
        F.array_sort(F.collect_set(F.when(F.col("is_soft_after_p"), parts["soft_delete"]))).alias(
            "soft_deletes"
        ),
    )


def _join_by_pair(ev: DataFrame, best: DataFrame) -> DataFrame:
    """`ev` joined to its pair's row of `best` (one row per pair).

    The pair table is small (one row per pair, ~400k at the reference load): broadcast it,
    keyed by a 64-bit hash of the pair (a map keyed by one long probes several times faster than
    one keyed by two). The pair itself is then compared by <= both ways, which Spark keeps out of
    the hash key: a hash collision can only add a row that this comparison drops.
    """
    pair_hash = F.xxhash64(*PAIR)
    by_hash = best.select(
        pair_hash.alias("_best_hash"),
        *[F.col(c).alias(f"_best_{c}") for c in PAIR],
        *[c for c in best.columns if c not in PAIR],
    )
    same_pair = [F.col("_hash") == F.col("_best_hash")] + [
        cond
        for c in PAIR
        for cond in (F.col(c) <= F.col(f"_best_{c}"), F.col(c) >= F.col(f"_best_{c}"))
    ]
    return ev.withColumn("_hash", pair_hash).join(F.broadcast(by_hash), on=same_pair)


def p_of(presence: Column) -> Column:
    """R5's P: the date of a state's best presence (NULL without one)."""
    return _date_of(presence["key"], _RANKS)


def merge_states(old: DataFrame, new: DataFrame) -> DataFrame:
    """Two `pair_evidence` states as one: the state of both batches' evidence together (R12).

    Pairs in either side; each part is the greater (or, for soft deletions, the union, less
    those now before P).
    """
    o, n = old.alias("o"), new.alias("n")
    joined = o.join(n, on=PAIR, how="full_outer")

    def greater(c: str) -> Column:
        return F.greatest(F.col(f"o.{c}"), F.col(f"n.{c}")).alias(c)

    presence = F.greatest(F.col("o.presence"), F.col("n.presence"))
    p = p_of(presence)
    union = F.array_union(
        F.coalesce(F.col("o.soft_deletes"), F.col("n.soft_deletes")),
        F.coalesce(F.col("n.soft_deletes"), F.col("o.soft_deletes")),
    )
    return joined.select(
        *PAIR,
        greater("last_in_snapshot"),
        presence.alias("presence"),
        greater("latest"),
        greater("consent"),
        F.array_sort(F.filter(union, lambda d: p.isNull() | (d["evidence_date"] >= p))).alias(
            "soft_deletes"
        ),
    )


_NEXT = ("on_or_after", "on_or_after_files", "after", "after_files")
_NEXT_TYPES = ("DATE", "STRING", "DATE", "STRING")


def with_next_snapshots(
    df: DataFrame, day: Column, prefix: str, snapshots: Mapping[date, Sequence[str]]
) -> DataFrame:
    """`df` with, for the date `day`, the first snapshot dated on or after it and the first dated
    after it, with their files (`<prefix>on_or_after`, `<prefix>after`, `…_files`; NULL when
    there is none). A broadcast join with a table of one row per day over the snapshots' span:
    a hash lookup per row, where searching the snapshot dates would scan them all."""
    dates = sorted(snapshots)
    names = [f"{prefix}{c}" for c in _NEXT]
    if not dates:
        return df.withColumns(
            {n: F.lit(None).cast(t) for n, t in zip(names, _NEXT_TYPES, strict=True)}
        )
    files = {d: ",".join(sorted(snapshots[d])) for d in dates}
    rows = []
    for offset in range((dates[-1] - dates[0]).days + 1):
        today = dates[0] + timedelta(days=offset)
        on, after = bisect_left(dates, today), bisect_right(dates, today)
        on_day = dates[on] if on < len(dates) else None
        after_day = dates[after] if after < len(dates) else None
        rows.append((today, on_day, files.get(on_day), after_day, files.get(after_day)))
    key = f"{prefix}day"
    calendar = df.sparkSession.createDataFrame(
        rows,
        ", ".join([f"{key} DATE", *[f"{n} {t}" for n, t in zip(names, _NEXT_TYPES, strict=True)]]),
    )
    joined = df.join(F.broadcast(calendar), day == F.col(key), "left").drop(key)
    # Before the first snapshot, the first one is next; after the last, none.
    first, first_files = F.lit(dates[0]), F.lit(files[dates[0]])
    early = day < first
    return joined.withColumns(
        {
            n: F.coalesce(F.col(n), F.when(early, first_files if n.endswith("_files") else first))
            for n in names
        }
    )


def first_absence(p: Column, last_in_snapshot: Column, prefix: str) -> tuple[Column, Column]:
    """R6: the first snapshot the pair whose latest presence date is `p` is missing from, and its
    files, from the columns `with_next_snapshots` added for `p`: the snapshot on P unless the pair
    is in it, else the first after P (every snapshot after P misses it)."""
    in_snapshot_on_p = F.coalesce(last_in_snapshot == p, F.lit(False))
    on_p = (F.col(f"{prefix}on_or_after") == p) & ~in_snapshot_on_p
    return (
        F.when(on_p, p).otherwise(F.col(f"{prefix}after")),
        F.when(on_p, F.col(f"{prefix}on_or_after_files")).otherwise(F.col(f"{prefix}after_files")),
    )


def finalize(
    state: DataFrame,
    snapshots: Mapping[date, Sequence[str]],
    as_of: str | None = None,
    keep: Sequence[str] = (),
) -> DataFrame:
    """One row per pair (R4) with deletion (R5–R7), attributes (R8), consent (R9) and lineage (R12),
    from its `pair_evidence` state and the snapshots (R6: absences depend on every snapshot date).

    `snapshots` maps each snapshot date (a date with at least one readable NON-FIN-BDL file, R6) to
    its file names. With `as_of` (a date column of `state`), only the snapshots dated on or
    before it count (R14). `keep`: more columns of `state` to carry along.
    """
    p = p_of(F.col("presence"))
    state = with_next_snapshots(state, p, "_p_", snapshots)
    hard_date, hard_files = first_absence(p, F.col("last_in_snapshot"), "_p_")
    if as_of is not None:
        hard_date = F.when(hard_date <= F.col(as_of), hard_date)
    soft_delete = F.array_min("soft_deletes")
    soft_date = soft_delete["evidence_date"]
    is_deleted = soft_date.isNotNull() | hard_date.isNotNull()
    # R7: the earliest deletion evidence on or after P; a soft delete wins a same-day tie.
    soft_first = soft_date.isNotNull() & (hard_date.isNull() | (soft_date <= hard_date))
    deletion_file = F.when(soft_first, soft_delete["source_file"]).when(
        hard_date.isNotNull(), hard_files
    )
    consent_flag = F.col("consent.consent_flag")
    return state.select(
        *[text.alias(name) for name, text in _pair_as_text().items()],
        *[F.col(f"latest.{c}").alias(c) for c in _ATTRIBUTES],
        F.col("latest.source_file").alias("attributes_file"),
        p.alias("latest_present_date"),
        F.col("presence.source_file").alias("presence_file"),
        is_deleted.alias("is_deleted"),
        F.when(soft_first, F.lit(schema.SOFT_DELETE))
        .when(is_deleted, F.lit(schema.HARD_DELETE))
        .alias("delete_type"),
        F.when(soft_first, soft_date).otherwise(hard_date).alias("deleted_at"),
        deletion_file.alias("deletion_file"),
        F.when(consent_flag == "Y", True).when(consent_flag == "N", False).alias("has_sms_consent"),
        _date_of(F.col("consent.key"), 2 * _RANKS * _DAYS).alias("sms_consent_updated_at"),
        F.col("consent.source_file").alias("consent_file"),
        *keep,
    )


def reconcile(ev: DataFrame, snapshots: Mapping[date, Sequence[str]]) -> DataFrame:
    """`finalize` of the state of all of `ev`: Silver rebuilt from the whole history."""
    return finalize(pair_evidence(ev), snapshots)


def of_pairs(state: DataFrame, ev: DataFrame) -> DataFrame:
    """The rows of `state` of the pairs `ev` (evidence) concerns."""
    return state.join(ev.select(*pair_as_longs().values()).toDF(*PAIR), PAIR, "semi")
