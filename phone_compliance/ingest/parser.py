"""Bronze's line parser (SPEC §1, R1.1, R2, R3): a Spark data source in Java.

The rules live in `java/phonecompliance/LineParser.java`, the reading of delivered files in
`DeliveredFiles.java`. They are compiled into `line-parser.jar` beside this module when the
package is built (`hatch_build.py`; no jar is committed). This module says where each field sits
in a file's header and reads files through the source.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from phone_compliance import schema

JAR = Path(__file__).with_name("line-parser.jar")
SOURCE_CLASS = "phonecompliance.DeliveredFiles"

# What the parser returns, in its order (LineParser.OUTPUT, checked by name when a file is read);
# `record_id` is the family's row id (cnsmr_phn_id or cnsmr_phn_hst_id), `event_date` its
# enrollment_date or record_date.
PARSED: schema.Schema = (
    ("record_id", "STRING"),
    ("account_number", "STRING"),
    ("consumer_type", "STRING"),
    ("agency_id", "STRING"),
    ("ssn_hash", "STRING"),
    ("phone_number", "STRING"),
    *schema.ATTRIBUTES[:4],
    ("quality_score", "INT"),
    ("quality_score_raw", "STRING"),
    ("phone_raw", "STRING"),
    ("consent_flag", "STRING"),
    ("consent_date", "DATE"),
    ("soft_delete_flag", "STRING"),
    ("event_date", "DATE"),
    ("reject_reason", "STRING"),
)
# What the source returns for each line after the header: the parse, lineage, and the line as
# delivered when it is rejected.
SCHEMA: schema.Schema = (*PARSED, *schema.LINEAGE, ("raw_text", "STRING"))

# The delivered fields the parser reads, in LineParser's F_* order: per family, its column (None
# when the family has no such field).
ROLES: tuple[str, ...] = (
    "record_id",
    "account",
    *schema.COMMON_FIELDS,
    "consent_flag",
    "consent_date",
    "soft_delete",
    "event_date",
)
_KIND = {schema.ENROLLMENT.name: "E", schema.SNAPSHOT.name: "S", schema.CHANGE.name: "C"}
_OWN_FIELDS = {
    schema.ENROLLMENT.name: {"account": "account_number", "event_date": "enrollment_date"},
    schema.SNAPSHOT.name: {
        "record_id": "cnsmr_phn_id",
        "consent_flag": "cnsmr_phn_cnsnt_flg",
        "consent_date": "cnsmr_phn_cnsnt_dt",
    },
    schema.CHANGE.name: {
        "record_id": "cnsmr_phn_hst_id",
        "consent_flag": "cnsmr_phn_cnsnt_flg",
        "consent_date": "cnsmr_phn_cnsnt_dt",
        "soft_delete": "cnsmr_phn_sft_dlt_flg",
        "event_date": "record_date",
    },
}
# Bronze columns named differently from the parser's result: a family's own row id and date
# keep their delivered names.
BRONZE_NAME_OF = {
    family: {role: column for role, column in own.items() if role in ("record_id", "event_date")}
    for family, own in _OWN_FIELDS.items()
}


class ParserNotBuilt(RuntimeError):
    """The package was installed without its compiled line parser."""


def layout(family: schema.Family, header: tuple[str, ...] | list[str]) -> str:
    """The parser's view of one header: family, field count and each role's position in it."""
    own = _OWN_FIELDS[family.name]

    def column(role: str) -> str | None:
        if role in schema.COMMON_FIELDS:
            return schema.common_field(family, role)
        return own.get(role)

    positions = [header.index(c) if (c := column(role)) else -1 for role in ROLES]
    return f"{_KIND[family.name]};{len(header)};{','.join(map(str, positions))}"


@dataclass(frozen=True)
class DeliveredFile:
    """One file to read: where it is, its name and dates (lineage) and its header."""

    uri: str
    name: str
    file_date: date
    file_ts: str
    header: tuple[str, ...]


def read(
    spark: SparkSession,
    family: schema.Family,
    groups: Sequence[Sequence[DeliveredFile]],
    ssn_key: bytes,
) -> DataFrame:
    """Every line after the header of each file, parsed, as `SCHEMA` rows; a group of files is
    one Spark partition, read in order."""
    register(spark)
    files = [
        [str(g), f.uri, f.name, f.file_date.isoformat(), f.file_ts, layout(family, f.header)]
        for g, group in enumerate(groups)
        for f in group
    ]
    return (
        spark.read.format(SOURCE_CLASS)
        .schema(schema.ddl(SCHEMA))
        .option("files", json.dumps(files))
        .option("secret_ssn_hash_key", ssn_key.hex())
        .load()
    )


def jar() -> Path:
    """The parser's jar, built with the package."""
    if not JAR.exists():
        raise ParserNotBuilt(
            f"{JAR} is missing: Bronze's line parser is compiled when the package is built. "
            "Rebuild it with `uv sync --reinstall-package phone-compliance` (needs a JDK 17's "
            "javac)."
        )
    return JAR


def register(spark: SparkSession) -> None:
    """Make the source readable in a session started without its jar (e.g. a Databricks
    cluster's)."""
    path = jar()
    if str(path) not in spark.sparkContext.getConf().get("spark.jars", ""):
        spark.sql(f"ADD JAR '{path}'")
