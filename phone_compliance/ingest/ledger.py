"""The file ledger: one row per delivered file version, with what was read, accepted and
rejected (R1.2, R1.3). Ingestion reads it to skip what it has seen; sensors read it to find what
is new."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.ingest.inspect import InspectedFile
from phone_compliance.ingest.landing import LandingFile
from phone_compliance.lakehouse import delta_log
from phone_compliance.lakehouse.locations import Locations

LEDGER = ("bronze", "file_ledger")
KNOWN_COLUMNS = ["source_file", "fingerprint", "sha256"]


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

    @classmethod
    def read(cls, locations: Locations) -> KnownFiles:
        """The ledger as it is now, read with delta-rs (no JVM: Spark may still be starting)."""
        uri = locations.table_of(LEDGER)
        return cls.from_ledger(delta_log.read_rows(locations, uri, KNOWN_COLUMNS))

    def unseen(self, files: list[LandingFile]) -> list[LandingFile]:
        """Files whose name and fingerprint the ledger has not recorded."""
        return [f for f in files if (f.name, f.fingerprint) not in self.fingerprints]


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
