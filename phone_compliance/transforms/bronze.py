"""Bronze: delivered rows, typed and validated, with lineage; untrusted rows become rejects (R1).

Every function here is DataFrame in, DataFrame out (or builds one from file paths); no Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from phone_compliance import line_parser, schema
from phone_compliance.landing import InspectedFile

# Spark's line reader keeps one gzip file in one partition; a huge open cost stops it packing two
# files into one partition, so a row's index within its partition is its line number.
ONE_FILE_PER_PARTITION = {"spark.sql.files.openCostInBytes": str(1 << 40)}
_INDEX_IN_PARTITION = (1 << 33) - 1  # monotonically_increasing_id's low 33 bits
# Left alone, Spark pushes the accepted-rows filter below the parse, inlining the parser's call
# into the predicate: every row would be parsed twice.
# Bronze plans keep their filters where they are written.
PARSE_ONCE = {
    "spark.sql.optimizer.excludedRules": ",".join(
        f"org.apache.spark.sql.catalyst.optimizer.{rule}"
        for rule in ("PushDownPredicates", "PushPredicateThroughNonJoin")
    )
}
# Parquet builds a dictionary for every column and drops it only once it overflows: columns
# that are nearly unique per row group are written plain from the start. Nor do they get min/max
# statistics (a compare per value written): Bronze is read whole or by file, never filtered on them.
_NEARLY_UNIQUE = (
    "cnsmr_phn_id",
    "cnsmr_phn_hst_id",
    "account_number",
    "ssn_hash",
    "phone_number",
    "phone_raw",
    "raw_text",
)
PLAIN_ENCODED = {
    f"{option}#{column}": "false"
    for column in _NEARLY_UNIQUE
    for option in ("parquet.enable.dictionary", "parquet.column.statistics.enabled")
}
# Up to this many compressed bytes, a family's files are read several to a partition and numbered
# by a window: a task per tiny file costs more than shuffling their few rows.
SMALL_FILES_BYTES = 64 << 20


def numbered_by_window(files: Sequence[InspectedFile]) -> bool:
    """True when `files` are few bytes in all: read packed, their lines numbered by a window."""
    return sum(f.file.size for f in files) <= SMALL_FILES_BYTES


PACKED_CONF = PARSE_ONCE | PLAIN_ENCODED
# Right for any files; a family's small files alone may be read packed (`read_conf`).
PER_FILE_CONF = ONE_FILE_PER_PARTITION | PACKED_CONF


def read_conf(files: Sequence[InspectedFile]) -> dict[str, str]:
    """The session confs under which `parse_files(files)` must be evaluated (and written)."""
    return PACKED_CONF if numbered_by_window(files) else PER_FILE_CONF


def read_lines(spark: SparkSession, uris: Sequence[str], *, by_window: bool) -> DataFrame:
    """Every physical line of the files with its file name and 1-based line number (header = 1).

    A partition reads its files one after the other, each from its first line, so a row's
    position orders the lines of its file. Numbered by position alone (no shuffle), this must be
    evaluated under ONE_FILE_PER_PARTITION (see `read_conf`); `by_window` numbers the lines of
    each file by a window instead, under any partitioning.
    """
    position = F.monotonically_increasing_id()
    lines = spark.read.text(list(uris)).select(
        F.col("_metadata.file_name").alias("source_file"),
        position.alias("_position"),
        F.col("value").alias("raw_text"),
    )
    if by_window:
        line = F.row_number().over(Window.partitionBy("source_file").orderBy("_position"))
    else:
        line = F.col("_position").bitwiseAND(F.lit(_INDEX_IN_PARTITION)) + 1
    return lines.select("source_file", line.cast("bigint").alias("line_number"), "raw_text")


def parse_family(
    lines: DataFrame, family: schema.Family, header: Sequence[str], ssn_key: bytes
) -> DataFrame:
    """One family's lines (header lines excluded) as Bronze columns plus `reject_reason` (R1.1).

    The line parser (`line_parser`) splits, types and judges each line once.
    """
    parsed = line_parser.parsed_line(F.col("raw_text"), family, header, ssn_key)
    rows = lines.filter(F.col("line_number") > 1).select(
        "source_file", "line_number", "raw_text", parsed.alias("_parsed")
    )
    renamed = {v: k for k, v in line_parser.BRONZE_NAME_OF[family.name].items()}
    lineage = set(schema.names(schema.LINEAGE))
    reason = F.col("_parsed.reject_reason")
    return rows.select(
        *[
            F.col(f"_parsed.{renamed.get(n, n)}").alias(n)
            for n in schema.names(schema.BRONZE_SCHEMAS[family.name])
            if n not in lineage
        ],
        "source_file",
        "line_number",
        # Raw text is kept for rejects only (R1.2): accepted rows carry every field already.
        F.when(reason.isNotNull(), F.col("raw_text")).alias("raw_text"),
        reason.alias("reject_reason"),
    )


def parse_files(
    spark: SparkSession, family: schema.Family, files: Sequence[InspectedFile], ssn_key: bytes
) -> DataFrame:
    """All readable files of one family parsed, with lineage and `reject_reason` (R1.1, R1.2).

    Evaluate it under `read_conf(files)`.

    Files are grouped by header so columns are matched by name, whatever their order (SPEC §1).
    """
    by_header: dict[tuple[str, ...], list[InspectedFile]] = {}
    for f in files:
        by_header.setdefault(f.header, []).append(f)
    by_window = numbered_by_window(files)
    parts = [
        parse_family(
            read_lines(spark, [f.file.uri for f in group], by_window=by_window),
            family,
            header,
            ssn_key,
        )
        for header, group in sorted(by_header.items())
    ]
    parsed = parts[0]
    for part in parts[1:]:
        parsed = parsed.unionByName(part)
    return with_file_lineage(parsed, file_dates(spark, files))


def file_dates(spark: SparkSession, files: Sequence[InspectedFile]) -> DataFrame:
    """Each file's name with the file date and file timestamp its name carries (SPEC §1)."""
    rows = [(f.file.name, date.fromisoformat(f.file_date), f.file_ts) for f in files]
    return spark.createDataFrame(rows, "source_file STRING, file_date DATE, file_ts STRING")


def with_file_lineage(rows: DataFrame, files: DataFrame) -> DataFrame:
    """Adds each row's file date and file timestamp from `file_dates` (a left join: no row lost).

    A broadcast join: one hash lookup per row instead of a regular expression over its file name.
    """
    return rows.join(F.broadcast(files), on="source_file", how="left")


def accepted_rows(parsed: DataFrame, family: schema.Family) -> DataFrame:
    """The rows that passed R1.1, in the family's Bronze schema."""
    return parsed.filter(F.col("reject_reason").isNull()).select(
        *schema.names(schema.BRONZE_SCHEMAS[family.name])
    )


def rejected_rows(parsed: DataFrame, family: schema.Family) -> DataFrame:
    """The rows that failed R1.1, with file, line, raw text as delivered and reason (R1.2)."""
    return parsed.filter(F.col("reject_reason").isNotNull()).select(
        "source_file",
        F.lit(family.name).alias("family"),
        "file_date",
        "line_number",
        "raw_text",
        F.col("reject_reason").alias("reason"),
    )
