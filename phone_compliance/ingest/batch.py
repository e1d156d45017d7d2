"""Exactly-once, incremental ingestion of landed files into Bronze, like Auto Loader (R1).

A file ledger records every delivered file version; a batch ingests only versions not in it. A
readable version replaces the rows of its name; a version rejected whole leaves them, the last
readable version of its name staying in force (R1.3).
`ingest` is the one entry point: it plans a batch (inspecting new files while Spark starts),
writes the three family tables, then the rejects, then the ledger, and says what it did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.ingest import bronze
from phone_compliance.ingest.inspect import InspectedFile, inspect_all
from phone_compliance.ingest.landing import LandingFile, list_landing
from phone_compliance.ingest.ledger import LEDGER, KnownFiles, ledger_rows
from phone_compliance.lakehouse import delta, delta_log
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.lakehouse.spark import session_conf

log = logging.getLogger(__name__)
BRONZE = "bronze"
REJECTS = (BRONZE, "rejects")


@dataclass
class Batch:
    """One ingestion batch: Bronze rows per family, lazily parsed, not yet written."""

    new: list[InspectedFile] = field(default_factory=list)
    # Same bytes as the name's latest version under a new fingerprint: recorded, not ingested.
    unchanged: list[InspectedFile] = field(default_factory=list)
    accepted: dict[str, DataFrame] = field(default_factory=dict)
    readable: dict[str, list[InspectedFile]] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f.file.name for f in self.new)

    @property
    def readable_files(self) -> tuple[str, ...]:
        return tuple(f.file.name for f in self.new if f.readable)

    @property
    def rejected_files(self) -> tuple[str, ...]:
        return tuple(f.file.name for f in self.new if not f.readable)

    @property
    def accepted_files(self) -> dict[str, tuple[str, ...]]:
        return {name: tuple(f.file.name for f in files) for name, files in self.readable.items()}


@dataclass(frozen=True)
class Ingested:
    """What one call of `ingest` did."""

    summary: dict[str, object]
    files_per_family: dict[str, int]
    rejects_by_reason: dict[str, int]
    # Whether Bronze got anything new (a ledger row at least).
    wrote: bool = True


def _file_rejects(spark: SparkSession, files: list[InspectedFile]) -> DataFrame:
    """Whole-file rejects (R1.3) as rejects rows with line 0 and no text."""
    rows = [
        (
            f.file.name,
            f.family,
            date.fromisoformat(f.file_date) if f.file_date else None,
            0,
            None,
            f.reason,
        )
        for f in files
    ]
    return spark.createDataFrame(rows, StructType.fromDDL(schema.ddl(schema.REJECTS)))


def plan_batch(locations: Locations, known: KnownFiles, landed: list[LandingFile]) -> Batch:
    """Inspect the `landed` files the ledger has not seen (R1.3); no Spark, so it can run while
    Spark starts. `parse_batch` then plans the parse of the readable ones."""
    started = time.monotonic()
    inspected = inspect_all(known.unseen(landed), locations)
    log.info("inspected %d files in %.1fs", len(inspected), time.monotonic() - started)
    # The bytes of the latest recorded version of the name (e.g. only touched): nothing new.
    batch = Batch()
    for f in inspected:
        (batch.unchanged if known.unchanged(f) else batch.new).append(f)
    batch.summary = {
        "files_landed": len(landed),
        "files_new": len(batch.new),
        "files_unchanged": len(landed) - len(batch.new),
        "files_rejected": len([f for f in batch.new if not f.readable]),
        "rows_read": sum(f.rows_read for f in batch.new),
    }
    return batch


def parse_batch(spark: SparkSession, batch: Batch, ssn_key: bytes) -> None:
    """Plan the parse of the batch's readable files, one lazy frame per family (R1.1).

    The writer computes each, reading every file once; nothing is cached. Rejected rows come
    after (`rejects`).
    """
    for family in schema.FAMILIES:
        readable = [f for f in batch.new if f.readable and f.family == family.name]
        if readable:
            parsed = bronze.parse_files(spark, family, readable, ssn_key)
            batch.accepted[family.name] = bronze.accepted_rows(parsed, family)
            batch.readable[family.name] = readable


def _reject_unreadable(batch: Batch, failed: InspectedFile, error: BaseException) -> None:
    """R1.3: a file that inspection passed but Spark could not read (it changed or vanished
    since, or the store failed) is rejected whole; the rest of the batch goes on."""
    log.warning("%s rejected whole (%s): %s", failed.file.relpath, schema.FILE_UNREADABLE, error)
    unreadable = replace(failed, rows_read=0, reason=schema.FILE_UNREADABLE)
    batch.new = [unreadable if f is failed else f for f in batch.new]
    family = batch.readable[failed.family]
    family.remove(failed)
    if not family:
        del batch.readable[failed.family]


def write_family(
    spark: SparkSession, batch: Batch, family: schema.Family, uri: str, ssn_key: bytes
) -> None:
    """Write one family's accepted rows in one commit; when that fails for a reason other than a
    concurrent writer, write its files one by one and reject whole those Spark cannot read.

    When no file of the family can be written, the fault is not a file's (the store, the
    cluster): the error stops the run, nothing is recorded, and the next run tries again.
    """
    files = batch.readable[family.name]
    partitions = schema.BRONZE_PARTITION_COLUMNS[family.name]
    try:
        names = tuple(f.file.name for f in files)
        delta.replace_files(batch.accepted[family.name], uri, names, partitions)
        return
    except delta.ConcurrentWrite:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of one file must not stop the batch
        log.warning("writing %s failed (%s): writing its files one by one", family.name, error)
    failed: list[tuple[InspectedFile, Exception]] = []
    for f in list(files):
        rows = bronze.accepted_rows(bronze.parse_files(spark, family, [f], ssn_key), family)
        try:
            delta.replace_files(rows, uri, (f.file.name,), partitions)
        except delta.ConcurrentWrite:
            raise
        except Exception as error:  # noqa: BLE001
            failed.append((f, error))
    if len(failed) == len(files):
        raise failed[-1][1]
    for f, error in failed:
        _reject_unreadable(batch, f, error)
    batch.accepted.pop(family.name, None)  # written


def rows_per_file(spark: SparkSession, locations: Locations, uri: str) -> dict[str, int]:
    """Rows stored per delivered file in a Bronze table: from Delta's per-file row counts, or by
    scanning when the log lacks one."""
    counts = delta_log.rows_per_file(locations, uri)
    if counts is None:
        table = spark.read.format("delta").load(uri)
        rows = table.groupBy("source_file").count().collect()
        counts = {r["source_file"]: r["count"] for r in rows}
    return counts


def rows_per_file_of(
    spark: SparkSession, locations: Locations, uris: Sequence[str]
) -> list[dict[str, int]]:
    """`rows_per_file` of several tables, concurrently: a scan of a small table leaves the cores
    idle while the driver plans it."""
    with ThreadPoolExecutor(max(len(uris), 1)) as pool:
        return list(pool.map(lambda uri: rows_per_file(spark, locations, uri), uris))


def accepted_counts(stored: list[dict[str, int]], files: tuple[str, ...]) -> dict[str, int]:
    """Accepted rows per file of this batch, from the written Bronze tables' `rows_per_file`."""
    return {name: sum(table.get(name, 0) for table in stored) for name in files}


def rejects(
    spark: SparkSession, batch: Batch, accepted: dict[str, int], ssn_key: bytes, stored: DataFrame
) -> DataFrame:
    """The rejects of the batch's file names, to replace theirs in `stored` (the rejects table).

    A readable version's are its rejected rows (R1.1): a file whose stored accepted rows fall
    short of its rows read is parsed again for them; a clean file is read only once. A version
    rejected whole leaves the version of its name in force (R1.3): its name's rejects are that
    version's rejected rows, kept from `stored` (R1.2 holds for it), and this version's
    whole-file reject (line 0), in place of an earlier broken version's.
    """
    broken = batch.rejected_files
    kept = stored.filter(F.col("source_file").isin(*broken) & (F.col("line_number") > 0))
    frame = _file_rejects(spark, [f for f in batch.new if not f.readable])
    if broken:
        frame = frame.unionByName(kept)
    for family in schema.FAMILIES:
        short = [
            f
            for f in batch.readable.get(family.name, [])
            if accepted.get(f.file.name, 0) < f.rows_read
        ]
        if short:
            parsed = bronze.parse_files(spark, family, short, ssn_key)
            frame = frame.unionByName(bronze.rejected_rows(parsed, family))
    return frame


def stored_counts(
    accepted: dict[str, int], rejects: DataFrame, files: tuple[str, ...]
) -> dict[str, tuple[int, int]]:
    """(accepted, rejected) rows per readable file as stored in the written tables (R1.2
    conservation); a file rejected whole has none of its own (R1.3)."""
    rejected = dict.fromkeys(files, 0)
    rows = rejects.filter(F.col("source_file").isin(*files) & (F.col("line_number") > 0))
    for r in rows.groupBy("source_file").count().collect():
        rejected[r["source_file"]] += r["count"]
    return {name: (accepted.get(name, 0), rejected[name]) for name in files}


def ingest(
    spark: Callable[[], SparkSession], locations: Locations, ssn_key: bytes, run_id: str
) -> Ingested:
    """Ingest every landed file version the ledger has not seen, exactly once (R1).

    `spark` is called once: the session starts (seconds of JVM start-up) while the new files are
    inspected in Python. The ledger is written last: a crash before it leaves the files
    unrecorded, and their re-ingestion replaces (never duplicates) their rows.
    """
    known = KnownFiles.read(locations)
    landed = list_landing(locations)
    if not known.unseen(landed):  # nothing delivered since the last run: Spark is not started
        summary = {"files_landed": len(landed), "files_unchanged": len(landed)}
        zero = ("files_new", "files_rejected", "rows_read", "rows_accepted", "rows_rejected")
        return Ingested({**summary, **dict.fromkeys(zero, 0)}, {}, {}, wrote=False)
    with ThreadPoolExecutor(1) as starter:
        starting = starter.submit(spark)
        batch = plan_batch(locations, known, landed)
        session = starting.result()
    parse_batch(session, batch, ssn_key)
    accepted_files = batch.accepted_files
    with session_conf(session, bronze.WRITE_CONF):
        for family in schema.FAMILIES:
            if family.name in batch.readable:
                uri = locations.table(BRONZE, family.name)
                write_family(session, batch, family, uri, ssn_key)
        accepted_files = batch.accepted_files
        # Counted in the tables just written (Delta records every data file's rows); a file
        # short of rows is parsed again for its rejects.
        uris = [locations.table(BRONZE, name) for name in batch.readable]
        accepted = accepted_counts(rows_per_file_of(session, locations, uris), batch.readable_files)
        if batch.new:
            stored = delta.read(session, locations.table_of(REJECTS), schema.REJECTS)
            found = rejects(session, batch, accepted, ssn_key, stored)
            delta.replace_files(found, locations.table_of(REJECTS), batch.files)
    stored_rejects = delta.read(session, locations.table_of(REJECTS), schema.REJECTS)
    counts = stored_counts(accepted, stored_rejects, batch.readable_files)
    # What this batch rejected: its readable files' rows and its whole-file rejects, not the
    # kept rejects of a version in force.
    of_batch = F.col("source_file").isin(*batch.readable_files) | (
        F.col("source_file").isin(*batch.rejected_files) & (F.col("line_number") == 0)
    )
    by_reason = (
        stored_rejects.filter(of_batch).groupBy("reason").count().collect() if batch.files else []
    )
    if batch.new or batch.unchanged:
        recorded = ledger_rows(session, batch.new, counts, run_id, batch.unchanged)
        delta.append(recorded, locations.table_of(LEDGER))
    return Ingested(
        summary={
            **batch.summary,
            "rows_accepted": sum(a for a, _ in counts.values()),
            "rows_rejected": sum(r for _, r in counts.values()),
        },
        files_per_family={name: len(files) for name, files in accepted_files.items()},
        rejects_by_reason={r["reason"]: r["count"] for r in by_reason},
    )
