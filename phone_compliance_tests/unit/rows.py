"""Tiny Bronze and Silver rows in memory, for the unit tests of the pure transforms.

No files, no Delta, no Dagster: each builder returns one row as a dict of its table's columns
(defaults for whatever a test does not care about), and `frame` turns rows into a DataFrame of
the table's exact schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from phone_compliance import schema

A = "1234567890123456"
B = "6543210987654321"
C = "1111222233334444"
D = "5555666677778888"
PHONE = "+12125550123"
OTHER_PHONE = "+13125550199"


def d(text: str) -> date:
    return date.fromisoformat(text)


def ts(day: str, clock: str = "060000000") -> str:
    """A 17-digit file timestamp on `day` (YYYY-MM-DD) at `clock` (HHMMSSmmm)."""
    return day.replace("-", "") + clock


def file_of(family: schema.Family, day: str, seq: int = 1, clock: str = "060000000") -> str:
    """The name of the file of `family` delivered on `day`."""
    return schema.file_name(family, ts(day, clock), seq)


def _lineage(family: schema.Family, file_day: str, seq: int, clock: str) -> dict[str, object]:
    return {
        "source_file": file_of(family, file_day, seq, clock),
        "file_date": d(file_day),
        "file_ts": ts(file_day, clock),
        "line_number": 2,
    }


def _common(account: str, phone: str, fields: Mapping[str, object]) -> dict[str, object]:
    row: dict[str, object] = {
        "account_number": account,
        "consumer_type": "P",
        "agency_id": "AG01",
        "ssn_hash": "ssn-hash",
        "phone_number": phone,
        "phone_type": "CELL",
        "phone_status": "ACTIVE",
        "phone_source": schema.CLIENT_SOURCE,
        "phone_technology": "WIRELESS",
        "quality_score": 80,
        "quality_score_raw": "80",
        "phone_raw": phone.removeprefix("+1"),
    }
    return {**row, **fields}


def enrollment(
    account: str,
    phone: str,
    day: str,
    *,
    file_day: str | None = None,
    seq: int = 1,
    clock: str = "060000000",
    **fields: object,
) -> dict[str, object]:
    """An accepted ENRLMT row: *present* on `day` (its enrollment date)."""
    lineage = _lineage(schema.ENROLLMENT, file_day or day, seq, clock)
    return {**_common(account, phone, fields), "enrollment_date": d(day), **lineage}


def snapshot(
    account: str,
    phone: str,
    day: str,
    *,
    consent: str = "",
    consent_date: str | None = None,
    seq: int = 1,
    clock: str = "060000000",
    **fields: object,
) -> dict[str, object]:
    """An accepted NON-FIN-BDL row of the snapshot of `day` (its file date)."""
    return {
        "cnsmr_phn_id": "100",
        **_common(account, phone, fields),
        "consent_flag": consent,
        "consent_date": d(consent_date) if consent_date else None,
        **_lineage(schema.SNAPSHOT, day, seq, clock),
    }


def change(
    account: str,
    phone: str,
    day: str,
    *,
    deleted: str = "N",
    consent: str = "",
    consent_date: str | None = None,
    file_day: str | None = None,
    seq: int = 1,
    clock: str = "060000000",
    **fields: object,
) -> dict[str, object]:
    """An accepted SUPPLFWD row recorded on `day`, flag `deleted`; its file is of `file_day`."""
    hst_id = fields.pop("cnsmr_phn_hst_id", "500")
    return {
        "cnsmr_phn_hst_id": hst_id,
        **_common(account, phone, fields),
        "consent_flag": consent,
        "consent_date": d(consent_date) if consent_date else None,
        "soft_delete_flag": deleted,
        "record_date": d(day),
        **_lineage(schema.CHANGE, file_day or day, seq, clock),
    }


def frame(
    spark: SparkSession, table: schema.Schema, rows: Iterable[Mapping[str, object]]
) -> DataFrame:
    """`rows` as a DataFrame of `table`'s exact schema; a column a row does not name is NULL.

    The rows go to Spark as an Arrow table: the JVM then holds them as a local relation, where
    a list of tuples would be re-read through Python workers by every job (several times slower).
    """
    names = schema.names(table)
    rows = list(rows)
    for row in rows:
        unknown = set(row) - set(names)
        assert not unknown, f"not columns of the table: {sorted(unknown)}"
    struct = StructType.fromDDL(schema.ddl(table))
    arrow = pa.Table.from_pylist(
        [{name: row.get(name) for name in names} for row in rows], schema=to_arrow_schema(struct)
    )
    return spark.createDataFrame(arrow, struct)


def bronze(
    spark: SparkSession, family: schema.Family, rows: Iterable[Mapping[str, object]]
) -> DataFrame:
    """A Bronze table of `family` holding `rows`."""
    return frame(spark, schema.BRONZE_SCHEMAS[family.name], rows)


def snapshot_parts(rows: Iterable[Mapping[str, object]]) -> dict[date, list[str]]:
    """R6: the snapshot dates the given snapshot rows were read from, with their part files."""
    parts: dict[date, set[str]] = {}
    for row in rows:
        parts.setdefault(row["file_date"], set()).add(row["source_file"])
    return {day: sorted(files) for day, files in parts.items()}


def by_pair(df: DataFrame) -> dict[tuple[str, str], dict[str, object]]:
    """A frame with one row per pair, as {(account, phone): row as a dict}."""
    rows = df.collect()
    got = {(r["account_number"], r["phone_number"]): r.asDict() for r in rows}
    assert len(got) == len(rows), "more than one row for a pair"
    return got


def pair_state(account: str, phone: str, **fields: object) -> dict[str, object]:
    """A Silver `pair_state` row: by default a live CLIENT pair with no consent observation."""
    row: dict[str, object] = {
        "account_number": account,
        "phone_number": phone,
        "phone_type": "CELL",
        "phone_status": "ACTIVE",
        "phone_source": schema.CLIENT_SOURCE,
        "phone_technology": "WIRELESS",
        "quality_score": 80,
        "attributes_file": file_of(schema.SNAPSHOT, "2020-02-01"),
        "latest_present_date": d("2020-02-01"),
        "presence_file": file_of(schema.SNAPSHOT, "2020-02-01"),
        "is_deleted": False,
        "delete_type": None,
        "deleted_at": None,
        "deletion_file": None,
        "has_sms_consent": None,
        "sms_consent_updated_at": None,
        "consent_file": None,
    }
    return {**row, **fields}


def deleted(day: str = "2020-03-01", **fields: object) -> dict[str, object]:
    """The Silver fields of a pair hard-deleted by the snapshot of `day`."""
    return {
        "is_deleted": True,
        "delete_type": schema.HARD_DELETE,
        "deleted_at": d(day),
        "deletion_file": file_of(schema.SNAPSHOT, day),
        **fields,
    }
