"""Exactly-once, incremental ingestion of landed files into Bronze, like Auto Loader (R1).

A file ledger records every delivered file version; a batch ingests only versions not in it. This
module plans and builds a batch; writing it is the caller's (the IO manager's) job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from phone_compliance import delta_log, schema
from phone_compliance.landing import InspectedFile, LandingFile, inspect_all, list_landing
from phone_compliance.transforms import bronze

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownFiles:
    """What the ledger already holds, by (name, fingerprint) and by (name, sha256)."""

    fingerprints: frozenset[tuple[str, str]]
    checksums: frozenset[tuple[str, str]]

    @classmethod
    def from_ledger(cls, rows: list[dict]) -> KnownFiles:
        """From the ledger's rows (its source_file, fingerprint and sha256 columns)."""
        return cls(
            fingerprints=frozenset((r["source_file"], r["fingerprint"]) for r in rows),
            checksums=frozenset((r["source_file"], r["sha256"]) for r in rows),
        )

    def unseen(self, files: list[LandingFile]) -> list[LandingFile]:
        """Files whose name and fingerprint the ledger has not recorded."""
        return [f for f in files if (f.name, f.fingerprint) not in self.fingerprints]


@dataclass
class Batch:
    """One ingestion batch: Bronze rows per family, lazily parsed, not yet written."""

    new: list[InspectedFile] = field(default_factory=list)
    accepted: dict[str, DataFrame] = field(default_factory=dict)
    readable: dict[str, list[InspectedFile]] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f.file.name for f in self.new)

    @property
    def accepted_files(self) -> dict[str, tuple[str, ...]]:
        return {name: tuple(f.file.name for f in files) for name, files in self.readable.items()}


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


LEDGER_COLUMNS = ["source_file", "fingerprint", "sha256"]


def plan_batch(landing: str, known: KnownFiles) -> Batch:
    """Inspect the files the ledger has not seen (R1.3); no Spark, so it can run while Spark
    starts. `parse_batch` then plans the parse of the readable ones."""
    landed = list_landing(landing)
    started = time.monotonic()
    inspected = inspect_all(known.unseen(landed))
    log.info("inspected %d files in %.1fs", len(inspected), time.monotonic() - started)
    # Same name and bytes as a recorded version (e.g. only touched): delivered again unchanged.
    batch = Batch(new=[f for f in inspected if (f.file.name, f.sha256) not in known.checksums])
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


def rows_per_file(spark: SparkSession, uri: str) -> dict[str, int]:
    """Rows stored per delivered file in a Bronze table: from Delta's per-file row counts, or by
    scanning when the log lacks one."""
    counts = delta_log.rows_per_file(uri)
    if counts is None:
        table = spark.read.format("delta").load(uri)
        rows = table.groupBy("source_file").count().collect()
        counts = {r["source_file"]: r["count"] for r in rows}
    return counts


def rows_per_file_of(spark: SparkSession, uris: Sequence[str]) -> list[dict[str, int]]:
    """`rows_per_file` of several tables, concurrently: a scan of a small table leaves the cores
    idle while the driver plans it."""
    with ThreadPoolExecutor(max(len(uris), 1)) as pool:
        return list(pool.map(lambda uri: rows_per_file(spark, uri), uris))


def accepted_counts(stored: list[dict[str, int]], files: tuple[str, ...]) -> dict[str, int]:
    """Accepted rows per file of this batch, from the written Bronze tables' `rows_per_file`."""
    return {name: sum(table.get(name, 0) for table in stored) for name in files}


def rejects(
    spark: SparkSession, batch: Batch, accepted: dict[str, int], ssn_key: bytes
) -> DataFrame:
    """Whole-file rejects (R1.3) and the rejected rows (R1.1) of every file that has any.

    A file whose stored accepted rows fall short of its rows read is parsed again for its rejects;
    a clean file is read only once.
    """
    frame = _file_rejects(spark, [f for f in batch.new if not f.readable])
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
    """(accepted, rejected) rows per file as stored in the written tables (R1.2 conservation)."""
    rejected = dict.fromkeys(files, 0)
    rows = rejects.filter(F.col("source_file").isin(*files) & (F.col("line_number") > 0))
    for r in rows.groupBy("source_file").count().collect():
        rejected[r["source_file"]] += r["count"]
    return {name: (accepted.get(name, 0), rejected[name]) for name in files}


def ledger_rows(
    spark: SparkSession,
    files: list[InspectedFile],
    counts: dict[str, tuple[int, int]],
    run_id: str,
) -> DataFrame:
    """One ledger row per delivered file version, with what was read, accepted and rejected."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for f in files:
        accepted, rejected = counts.get(f.file.name, (0, 0))
        rows.append(
            (
                f.file.name,
                f.family,
                date.fromisoformat(f.file_date) if f.file_date else None,
                f.file_ts,
                f.file.size,
                f.file.fingerprint,
                f.sha256,
                f.rows_read,
                accepted,
                rejected,
                schema.LEDGER_INGESTED if f.readable else schema.LEDGER_REJECTED,
                f.reason,
                now,
                run_id,
            )
        )
    return spark.createDataFrame(rows, StructType.fromDDL(schema.ddl(schema.FILE_LEDGER)))
