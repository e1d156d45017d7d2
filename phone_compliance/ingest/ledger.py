"""The file ledger: one row per delivered file version, with what was read, accepted and
rejected (R1.2, R1.3). Ingestion reads it to skip what it has seen; sensors read it to find what
is new; the checks and the snapshots (R6) judge each name's version in force."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from deltalake.exceptions import DeltaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.ingest.inspect import InspectedFile
from phone_compliance.ingest.landing import LandingFile
from phone_compliance.lakehouse import delta_log
from phone_compliance.lakehouse.locations import Locations

LEDGER = ("bronze", "file_ledger")
# The ledger's columns a file's history reads: all of them (the run id says which run's checks
# judge a version).
VERSION_COLUMNS = schema.names(schema.FILE_LEDGER)

Version = Mapping[str, Any]  # one ledger row, by column name


def _delivery_order(row: Version) -> tuple:
    # Versions of one name come in separate batches, so ingested_at orders them; the checksum and
    # fingerprint only make the order total (e.g. a version recorded twice by a crashed run).
    at = row["ingested_at"]
    return (
        at is not None,
        at if at is not None else 0,
        row["sha256"] or "",
        row["fingerprint"] or "",
    )


@dataclass(frozen=True)
class FileHistory:
    """Every recorded delivery of one file name, in delivery order (R1.3)."""

    name: str
    deliveries: tuple[Version, ...]

    @cached_property
    def versions(self) -> tuple[Version, ...]:
        """The deliveries that were versions: all but the same bytes delivered again."""
        return tuple(v for v in self.deliveries if v["status"] != schema.LEDGER_UNCHANGED)

    @property
    def latest(self) -> Version:
        """The delivery seen last, readable or not: what the landing held when last seen."""
        return self.deliveries[-1]

    @cached_property
    def version_in_force(self) -> int:
        """R1.3, the one definition of the version in force: the latest readable version; with
        none ever readable, the latest (rejected). Numbered from 1 in delivery order."""
        readable = [
            n for n, v in enumerate(self.versions, 1) if v["status"] == schema.LEDGER_INGESTED
        ]
        return readable[-1] if readable else len(self.versions)

    @property
    def in_force(self) -> Version:
        """The version in force (`version_in_force`)."""
        return self.versions[self.version_in_force - 1]

    @property
    def rejected_redeliveries(self) -> list[tuple[int, Version]]:
        """(number, version) of the versions delivered after the one in force: all rejected, and
        the last of them is what the landing holds while the last readable version stays in
        force."""
        start = self.version_in_force
        return list(enumerate(self.versions[start:], start=start + 1))


def file_histories(rows: Iterable[Version]) -> dict[str, FileHistory]:
    """The ledger's rows grouped by file name (R1.3: a file is known by its name)."""
    by_name: dict[str, list[Version]] = {}
    for row in rows:
        by_name.setdefault(row["source_file"], []).append(row)
    return {
        name: FileHistory(name, tuple(sorted(versions, key=_delivery_order)))
        for name, versions in by_name.items()
    }


def histories(ledger: DataFrame) -> dict[str, FileHistory]:
    """`file_histories` of a ledger DataFrame: collected, as the ledger holds one small row per
    delivered file version. Columns the frame lacks read as None."""
    present = [c for c in VERSION_COLUMNS if c in ledger.columns]
    rows = ledger.select(*present).collect()
    return file_histories({**dict.fromkeys(VERSION_COLUMNS), **r.asDict()} for r in rows)


def evidence_in_force(histories: Mapping[str, FileHistory]) -> dict[str, Version]:
    """Each name's version in force, for the names whose version in force is readable: the
    file versions whose rows Bronze holds and Silver decides from (R1.3)."""
    return {
        name: h.in_force
        for name, h in histories.items()
        if h.in_force["status"] == schema.LEDGER_INGESTED
    }


def snapshot_parts(evidence: Mapping[str, Version]) -> dict[date, list[str]]:
    """R6: each snapshot date and its part files, among the versions in force (a date whose
    versions in force are all rejected is no snapshot)."""
    parts: dict[date, list[str]] = {}
    for name, version in evidence.items():
        if version["family"] == schema.SNAPSHOT.name:
            parts.setdefault(version["file_date"], []).append(name)
    return {d: sorted(files) for d, files in parts.items()}


def same_version(a: Version, b: Version) -> bool:
    """The same delivery of a name: its bytes and when they were recorded."""
    return (a["sha256"], a["ingested_at"]) == (b["sha256"], b["ingested_at"])


@dataclass(frozen=True)
class KnownFiles:
    """What the ledger already holds: each name's history (R1.3)."""

    files: Mapping[str, FileHistory]

    @classmethod
    def from_ledger(cls, rows: Iterable[Version]) -> KnownFiles:
        """From the ledger's rows (at least its VERSION_COLUMNS)."""
        return cls(file_histories(rows))

    @classmethod
    def read(cls, locations: Locations) -> KnownFiles:
        """The ledger as it is now, read with delta-rs (no JVM: Spark may still be starting)."""
        uri = locations.table_of(LEDGER)
        return cls.from_ledger(delta_log.read_rows(locations, uri, VERSION_COLUMNS))

    def unseen(self, files: list[LandingFile]) -> list[LandingFile]:
        """Files whose fingerprint is not that of the latest recorded delivery of their name.

        Not any recorded version: the original bytes delivered again after a broken version
        (same S3 ETag as the first time) are a new delivery.
        """
        return [f for f in files if not self._is_latest(f.name, "fingerprint", f.fingerprint)]

    def unchanged(self, file: InspectedFile) -> bool:
        """The file's bytes are those of the latest recorded version of its name (e.g. only
        touched): nothing new was delivered. The original bytes of the version in force,
        delivered again after a broken version, are new: recorded, they end the broken one's
        turn as the latest (R1.3). Bytes that could not be read (no checksum) are never the
        same as any."""
        return file.sha256 is not None and self._is_latest(file.file.name, "sha256", file.sha256)

    def _is_latest(self, name: str, column: str, value: str) -> bool:
        history = self.files.get(name)
        return history is not None and history.latest[column] == value


def ledger_version(locations: Locations) -> int | None:
    """The ledger's current Delta version; None before the first ingestion."""
    return delta_log.version(locations, locations.table_of(LEDGER))


def evidence_at(locations: Locations, version: int | None) -> dict[str, Version] | None:
    """`evidence_in_force` when the ledger was at `version` ({} before any); None when Delta
    has cleaned that version's log up (the caller then rebuilds)."""
    if version is None:
        return {}
    try:
        rows = delta_log.read_rows(locations, locations.table_of(LEDGER), VERSION_COLUMNS, version)
    except DeltaError:  # that version's log is gone
        return None
    return evidence_in_force(file_histories(rows))


def ledger_rows(
    spark: SparkSession,
    files: list[InspectedFile],
    counts: dict[str, tuple[int, int]],
    run_id: str,
    unchanged: Sequence[InspectedFile] = (),
) -> DataFrame:
    """One ledger row per delivered file version, with what was read, accepted and rejected.

    A version rejected whole read, accepted and rejected no rows, whatever Bronze still holds of
    the version of its name in force (R1.3). `unchanged` files (the latest version's bytes under
    a new fingerprint) are recorded as UNCHANGED, reading nothing: identity is by content.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for f in [*files, *unchanged]:
        accepted, rejected = counts.get(f.file.name, (0, 0)) if f.readable else (0, 0)
        if f in unchanged:
            status, rows_read, accepted, rejected = schema.LEDGER_UNCHANGED, 0, 0, 0
        else:
            status = schema.LEDGER_INGESTED if f.readable else schema.LEDGER_REJECTED
            rows_read = f.rows_read
        rows.append(
            (
                f.file.name,
                f.family,
                date.fromisoformat(f.file_date) if f.file_date else None,
                f.file_ts,
                f.file.size,
                f.file.fingerprint,
                f.sha256,
                rows_read,
                accepted,
                rejected,
                status,
                f.reason,
                now,
                run_id,
            )
        )
    return spark.createDataFrame(rows, StructType.fromDDL(schema.ddl(schema.FILE_LEDGER)))
