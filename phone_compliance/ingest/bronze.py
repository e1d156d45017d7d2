"""Bronze: delivered rows, typed and validated, with lineage; untrusted rows become rejects (R1).

Every function here is DataFrame in, DataFrame out (or builds one from file paths); no Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.ingest import parser
from phone_compliance.ingest.inspect import InspectedFile

# Parquet builds a dictionary for every column and drops it only once it overflows: columns
# that are nearly unique per row group are written plain from the start. No column gets min/max
# statistics (a compare per value written): Bronze is read whole or by file, never filtered on
# its columns.
_NEARLY_UNIQUE = (
    "cnsmr_phn_id",
    "cnsmr_phn_hst_id",
    "account_number",
    "ssn_hash",
    "phone_number",
    "phone_raw",
    "raw_text",
)
_WRITTEN = {
    n for table in (*schema.BRONZE_SCHEMAS.values(), schema.REJECTS) for n in schema.names(table)
}
# The session confs Bronze's tables are written under. Statistics are turned off column by
# column: Parquet 1.15 ignores its table-wide switch.
WRITE_CONF = {
    **{f"parquet.column.statistics.enabled#{column}": "false" for column in sorted(_WRITTEN)},
    **{f"parquet.enable.dictionary#{column}": "false" for column in _NEARLY_UNIQUE},
}
# Up to this many compressed bytes, a family's files are read several to a partition: a task per
# tiny file costs more than its rows.
SMALL_FILES_BYTES = 64 << 20


def file_groups(files: Sequence[InspectedFile], partitions: int) -> list[list[InspectedFile]]:
    """The files as Spark partitions, largest first: one file each, or, when the family's files
    are small in all, packed into `partitions` groups of about equal bytes.

    A snapshot file alone in its partition is written by one task into its own Bronze partition.
    """
    by_size = sorted(files, key=lambda f: (-f.file.size, f.file.name))
    if sum(f.file.size for f in files) > SMALL_FILES_BYTES:
        return [[f] for f in by_size]
    groups: list[list[InspectedFile]] = [[] for _ in range(min(partitions, len(files)))]
    loads = [0] * len(groups)
    for f in by_size:
        smallest = loads.index(min(loads))
        groups[smallest].append(f)
        loads[smallest] += f.file.size
    return groups


def parse_files(
    spark: SparkSession, family: schema.Family, files: Sequence[InspectedFile], ssn_key: bytes
) -> DataFrame:
    """All readable files of one family parsed: Bronze's columns, `raw_text` and `reject_reason`
    (R1.1, R1.2).

    The line parser (`ingest.parser`) splits, types and judges each line once, matching columns by
    their names in each file's header, whatever their order (SPEC §1).
    """
    groups = [
        [
            parser.DeliveredFile(
                f.file.uri, f.file.name, date.fromisoformat(f.file_date), f.file_ts, f.header
            )
            for f in group
        ]
        for group in file_groups(files, spark.sparkContext.defaultParallelism)
    ]
    parsed = parser.read(spark, family, groups, ssn_key)
    renamed = {v: k for k, v in parser.BRONZE_NAME_OF[family.name].items()}
    return parsed.select(
        *[
            F.col(renamed.get(n, n)).alias(n)
            for n in schema.names(schema.BRONZE_SCHEMAS[family.name])
        ],
        "raw_text",
        "reject_reason",
    )


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
