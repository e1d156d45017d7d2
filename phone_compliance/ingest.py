"""Exactly-once, incremental ingestion of landed files into Bronze, like Auto Loader (R1).

A file ledger records every delivered file version; a batch ingests only versions not in it. This
module plans and builds a batch; writing it is the caller's (the IO manager's) job.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.landing import InspectedFile, LandingFile, inspect_all, list_landing
from phone_compliance.transforms import bronze

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownFiles:
    """What the ledger already holds, by (name, fingerprint) and by (name, sha256)."""

    fingerprints: frozenset[tuple[str, str]]
    checksums: frozenset[tuple[str, str]]

    @classmethod
    def from_ledger(cls, ledger: DataFrame) -> KnownFiles:
        rows = ledger.select("source_file", "fingerprint", "sha256").collect()
        return cls(
            fingerprints=frozenset((r["source_file"], r["fingerprint"]) for r in rows),
            checksums=frozenset((r["source_file"], r["sha256"]) for r in rows),
        )

    def unseen(self, files: list[LandingFile]) -> list[LandingFile]:
        """Files whose name and fingerprint the ledger has not recorded."""
        return [f for f in files if (f.name, f.fingerprint) not in self.fingerprints]


@dataclass
class Batch:
    """One ingestion batch: Bronze rows per family, rejects and ledger rows, not yet written."""

    accepted: dict[str, DataFrame] = field(default_factory=dict)
    accepted_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rejects: DataFrame | None = None
    ledger: DataFrame | None = None
    files: tuple[str, ...] = ()
    summary: dict[str, object] = field(default_factory=dict)
    _cached: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        """Drop the cached parse once every table of the batch is written."""
        for df in self._cached:
            df.unpersist()


def _file_rejects(spark: SparkSession, files: list[InspectedFile]) -> DataFrame:
    """Whole-file rejects (R1.3) as rejects rows with line 0 and no text."""
    rows = [
        (f.file.name, f.family, date.fromisoformat(f.file_date) if f.file_date else None, 0, None,
         f.reason)
        for f in files
    ]
    return spark.createDataFrame(rows, StructType.fromDDL(schema.ddl(schema.REJECTS)))


def _ledger_rows(
    spark: SparkSession,
    files: list[InspectedFile],
    counts: dict[str, tuple[int, int]],
    run_id: str,
) -> DataFrame:
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


def build_batch(
    spark: SparkSession, landing: str, ledger: DataFrame, ssn_key: bytes, run_id: str
) -> Batch:
    """Inspect the files the ledger has not seen and parse the readable ones (R1)."""
    known = KnownFiles.from_ledger(ledger)
    landed = list_landing(landing)
    started = time.monotonic()
    inspected = inspect_all(known.unseen(landed))
    log.info("inspected %d files in %.1fs", len(inspected), time.monotonic() - started)
    # Same name and bytes as a recorded version (e.g. only touched): delivered again unchanged.
    new = [f for f in inspected if (f.file.name, f.sha256) not in known.checksums]
    batch = Batch(files=tuple(f.file.name for f in new))
    batch.summary = {
        "files_landed": len(landed),
        "files_new": len(new),
        "files_unchanged": len(landed) - len(new),
        "files_rejected": len([f for f in new if not f.readable]),
    }
    if not new:
        return batch

    counts: dict[str, tuple[int, int]] = {}
    row_reasons: Counter[str] = Counter()
    reject_parts = [_file_rejects(spark, [f for f in new if not f.readable])]
    for family in schema.FAMILIES:
        readable = [f for f in new if f.readable and f.family == family.name]
        if not readable:
            continue
        parsed = bronze.parse_files(spark, family, readable, ssn_key).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        batch._cached.append(parsed)
        # Materialize the cache while line numbers are exact (one file per partition).
        started = time.monotonic()
        with bronze.spark_conf(spark, bronze.ONE_FILE_PER_PARTITION):
            per_file = parsed.groupBy("source_file", "reject_reason").count().collect()
        log.info("parsed %d %s files in %.1fs", len(readable), family.name, time.monotonic() - started)
        for r in per_file:
            accepted, rejected = counts.get(r["source_file"], (0, 0))
            if r["reject_reason"] is None:
                accepted += r["count"]
            else:
                rejected += r["count"]
                row_reasons[r["reject_reason"]] += r["count"]
            counts[r["source_file"]] = (accepted, rejected)
        batch.accepted[family.name] = bronze.accepted_rows(parsed, family)
        batch.accepted_files[family.name] = tuple(f.file.name for f in readable)
        reject_parts.append(bronze.rejected_rows(parsed, family))

    rejects = reject_parts[0]
    for part in reject_parts[1:]:
        rejects = rejects.unionByName(part)
    batch.rejects = rejects
    batch.ledger = _ledger_rows(spark, new, counts, run_id)
    batch.summary["rows_read"] = sum(f.rows_read for f in new)
    batch.summary["rows_accepted"] = sum(a for a, _ in counts.values())
    batch.summary["rows_rejected"] = sum(r for _, r in counts.values())
    batch.summary["rejects_by_reason"] = dict(
        row_reasons + Counter(f.reason for f in new if not f.readable)
    )
    return batch
