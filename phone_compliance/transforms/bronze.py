"""Bronze: delivered rows, typed and validated, with lineage; untrusted rows become rejects (R1).

Every function here is DataFrame in, DataFrame out (or builds one from file paths); no Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.landing import InspectedFile

# Spark's line reader keeps one gzip file in one partition; a huge open cost stops it packing two
# files into one partition, so a row's index within its partition is its line number.
ONE_FILE_PER_PARTITION = {"spark.sql.files.openCostInBytes": str(1 << 40)}
_INDEX_IN_PARTITION = (1 << 33) - 1  # monotonically_increasing_id's low 33 bits
# Left alone, Spark pushes the accepted-rows filter below the parse, inlining each column's
# expression into the predicate: every row would be parsed twice, its split repeated per field.
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
# A `|` followed by an even number of quotes up to the end of the line is outside quotes.
_PIPE_OUTSIDE_QUOTES = r'\|(?=(?:[^"]*"[^"]*")*[^"]*$)'


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


def _unquote(field: Column) -> Column:
    """A trimmed field without its surrounding quotes, `""` read as `"` (SPEC §1)."""
    value = F.trim(field)
    inner = F.regexp_replace(F.regexp_extract(value, r'^"(.*)"$', 1), '""', '"')
    return F.when(value.startswith('"') & value.endswith('"'), F.trim(inner)).otherwise(value)


def split_fields(lines: DataFrame, header: Sequence[str]) -> DataFrame:
    """Lines of files sharing `header` as trimmed text fields named by the header (match by name).

    Most lines hold no quote and split on every `|`; only a line with quotes splits on the pipes
    outside them and unquotes its fields (SPEC §1: `"` only where needed, `""` inside).
    """
    raw = F.col("raw_text")
    quoted = F.transform(F.split(raw, _PIPE_OUTSIDE_QUOTES, -1), _unquote)
    # Split once per line in its own projection; the fields below only index the array.
    split = lines.select(
        "source_file",
        "line_number",
        "raw_text",
        F.when(raw.contains('"'), quoted).otherwise(F.split(raw, r"\|", -1)).alias("_fields"),
    )
    return split.select(
        "source_file",
        "line_number",
        "raw_text",
        (F.size("_fields") == len(header)).alias("_field_count_ok"),
        *[
            F.coalesce(F.trim(F.get("_fields", i)), F.lit("")).alias(name)
            for i, name in enumerate(header)
        ],
    )


def normalized_phone(raw: Column) -> Column:
    """R3: E.164 `+1XXXXXXXXXX`, or NULL when the number cannot be normalized."""
    digits = F.regexp_replace(raw, "[^0-9]", "")
    eleven_with_one = (F.length(digits) == 11) & digits.startswith("1")
    national = F.when(eleven_with_one, F.substring(digits, 2, 10)).otherwise(digits)
    valid = national.rlike("^[2-9][0-9]{2}[2-9][0-9]{6}$")
    return F.when(valid, F.concat(F.lit("+1"), national))


def account_from_legacy(legacy_id: Column) -> Column:
    """R2: the legacy identifier minus its consumer-type letter, or NULL when malformed."""
    return F.when(legacy_id.rlike("^[0-9]{16}[A-Z]$"), F.substring(legacy_id, 1, 16))


def parsed_date(text: Column) -> Column:
    """A strict `YYYY-MM-DD` date, or NULL (2023-02-30 and 20230101 are not dates)."""
    well_formed = text.rlike("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    return F.when(well_formed, text.try_cast("date"))


def quality_score(text: Column) -> Column:
    """The 1–100 score as an int; NULL otherwise (kept, and counted by a data-quality check)."""
    score = F.when(text.rlike("^[0-9]{1,3}$"), text.cast("int"))
    return F.when(score.between(1, 100), score)


def keyed_hash(value: Column, key: bytes) -> Column:
    """SHA-256 of a secret key followed by `value`, as hex; NULL for empty (a keyed pseudonym).

    One digest per row instead of HMAC's two: the key has a fixed length and the hash is only ever
    compared, never verified as a MAC, so length extension does not apply; half the cost on the
    hottest path of Bronze.
    """
    return F.when(
        value != "", F.sha2(F.concat(F.lit(bytearray(key)), F.encode(value, "UTF-8")), 256)
    )


def _first_failure(checks: Sequence[tuple[Column, str]]) -> Column:
    """The reason code of the first failing check (R1.1), NULL when all pass."""
    return F.coalesce(*[F.when(~ok, F.lit(reason)) for ok, reason in checks])


def parse_family(
    lines: DataFrame, family: schema.Family, header: Sequence[str], ssn_key: bytes
) -> DataFrame:
    """One family's lines (header lines excluded) as Bronze columns plus `reject_reason` (R1.1).

    Two projections: values are normalized and typed once (NULL when invalid), then judged.
    """
    fields = split_fields(lines.filter(F.col("line_number") > 1), header)
    is_enrollment = family is schema.ENROLLMENT
    common = {ours: F.col(schema.common_field(family, ours)) for ours in schema.COMMON_FIELDS}
    values = {
        "account_number": F.col("account_number") if is_enrollment else F.lit(None),
        "consumer_type": F.substring(common["legacy_id"], 17, 1),
        "agency_id": common["agency_id"],
        "ssn_hash": keyed_hash(common["ssn"], ssn_key),
        "phone_number": normalized_phone(common["phone_raw"]),
        "phone_type": common["phone_type"],
        "phone_status": common["phone_status"],
        "phone_source": common["phone_source"],
        "phone_technology": common["phone_technology"],
        "quality_score": quality_score(common["quality_score_raw"]),
        "quality_score_raw": common["quality_score_raw"],
        "phone_raw": common["phone_raw"],
        "_legacy_account": account_from_legacy(common["legacy_id"]),
    }
    account = F.col("_legacy_account")
    phone_ok = (F.col("phone_number").isNotNull(), schema.REJECT_PHONE)
    if is_enrollment:
        values["enrollment_date"] = parsed_date(F.col("enrollment_date"))
        account = F.col("account_number")
        checks = [
            (account.rlike("^[0-9]{16}$"), schema.REJECT_ACCOUNT),
            (F.col("_legacy_account").isNotNull(), schema.REJECT_LEGACY_ID),
            (account == F.col("_legacy_account"), schema.REJECT_ACCOUNT_MISMATCH),
            phone_ok,
            (F.col("enrollment_date").isNotNull(), schema.REJECT_DATE),
        ]
    else:
        consent_text = F.col("cnsmr_phn_cnsnt_dt")
        values |= {
            "consent_flag": F.col("cnsmr_phn_cnsnt_flg"),
            "consent_date": parsed_date(consent_text),
            "_consent_date_ok": (consent_text == "") | parsed_date(consent_text).isNotNull(),
        }
        checks = [
            (F.col("_legacy_account").isNotNull(), schema.REJECT_LEGACY_ID),
            phone_ok,
            (F.col("_consent_date_ok"), schema.REJECT_DATE),
            (F.col("consent_flag").isin(*schema.CONSENT_FLAGS), schema.REJECT_CONSENT_FLAG),
        ]
        if family is schema.SNAPSHOT:
            values["cnsmr_phn_id"] = F.col("cnsmr_phn_id")
        else:
            values |= {
                "cnsmr_phn_hst_id": F.col("cnsmr_phn_hst_id"),
                "soft_delete_flag": F.col("cnsmr_phn_sft_dlt_flg"),
                "record_date": parsed_date(F.col("record_date")),
            }
            checks += [
                (F.col("record_date").isNotNull(), schema.REJECT_DATE),
                (
                    F.col("soft_delete_flag").isin(*schema.SOFT_DELETE_FLAGS),
                    schema.REJECT_SOFT_DELETE_FLAG,
                ),
            ]
    typed = fields.select(
        "source_file",
        "line_number",
        "raw_text",
        "_field_count_ok",
        *[value.alias(name) for name, value in values.items()],
    )
    reason = _first_failure([(F.col("_field_count_ok"), schema.REJECT_FIELD_COUNT), *checks])
    bronze_names = schema.names(schema.BRONZE_SCHEMAS[family.name])
    judged = typed.select(
        *[
            (account if n == "account_number" else F.col(n)).alias(n)
            for n in bronze_names
            if n in values
        ],
        "source_file",
        "line_number",
        "raw_text",
        reason.alias("reject_reason"),
    )
    # Raw text is kept for rejects only (R1.2): accepted rows carry every field already.
    rejected = F.col("reject_reason").isNotNull()
    return judged.withColumn("raw_text", F.when(rejected, F.col("raw_text")))


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
