"""Bronze's line parser (SPEC §1, R1.1, R2, R3): a Spark data source in Java, compiled here on
first use.

The rules live in `java/phonecompliance/LineParser.java`, the reading of delivered files in
`DeliveredFiles.java`; this module compiles them against the installed pyspark (javac, cached
outside the repo like Spark's Maven jars: no jar is committed), hands the jar to Spark, says where
each field sits in a file's header and reads files through the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyspark
from pyspark.sql import DataFrame, SparkSession

from phone_compliance import schema

SOURCES = Path(__file__).with_name("java")
SOURCE_CLASS = "phonecompliance.DeliveredFiles"

# What the parser returns, in its order; `record_id` is the family's row id (cnsmr_phn_id or
# cnsmr_phn_hst_id), `event_date` its enrollment_date or record_date.
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


class JavacNotFound(RuntimeError):
    """The line parser cannot be compiled: no `javac` (a JRE without its JDK)."""


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


def _javac() -> str:
    from phone_compliance.spark import jdk_tool  # spark.py imports this module

    javac = jdk_tool("javac")
    if not javac:
        raise JavacNotFound(
            "Bronze's line parser is compiled on first use and needs `javac` (JAVA_HOME="
            f"{os.environ.get('JAVA_HOME')!r}): install a JDK 17, e.g. "
            "`apt-get install openjdk-17-jdk-headless`."
        )
    return javac


def jar() -> Path:
    """The parser's jar for this pyspark: shipped beside the sources (a staged package), or
    compiled once per source version into a user cache."""
    sources = sorted(SOURCES.rglob("*.java"))
    digest = hashlib.sha256(pyspark.__version__.encode())
    for source in sources:
        digest.update(source.relative_to(SOURCES).as_posix().encode() + source.read_bytes())
    name = f"line-parser-{digest.hexdigest()[:16]}.jar"
    shipped = SOURCES / name  # beside the sources in a package staged for a cluster
    if shipped.exists():
        return shipped
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "phone-compliance"
    target = cache / name
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    spark_jars = Path(pyspark.__file__).parent / "jars"
    with tempfile.TemporaryDirectory(dir=cache) as work:
        classes = Path(work) / "classes"
        subprocess.run(
            [
                _javac(),
                "--release",
                "17",
                "-nowarn",
                "-cp",
                f"{spark_jars}/*",
                "-d",
                str(classes),
                *map(str, sources),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        staged = Path(work) / target.name
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(classes.rglob("*.class")):
                out.write(path, path.relative_to(classes).as_posix())
        os.replace(staged, target)  # atomic: a concurrent build finds a whole jar or none
    return target


def register(spark: SparkSession) -> None:
    """Make the source readable in this session: add its jar if the session started without it
    (e.g. a Databricks cluster's)."""
    path = jar()
    if str(path) not in spark.sparkContext.getConf().get("spark.jars", ""):
        spark.sql(f"ADD JAR '{path}'")


def ship() -> Path:
    """Put the compiled jar beside the sources, where a package built for a runtime without a JDK
    compiler (the image, a cluster) finds it."""
    built = jar()
    shipped = SOURCES / built.name
    if built != shipped:
        shutil.copy(built, shipped)
    return shipped


if __name__ == "__main__":
    print(ship())
