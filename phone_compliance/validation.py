"""SQL validation files (one per layer) run through Spark SQL against the Delta tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from phone_compliance import delta

SQL_DIR = Path(__file__).parent / "sql"
_NAMED = re.compile(r"--\s*name:\s*(\w+)\s*\n(.*?)(?=(?:--\s*name:)|\Z)", re.S)
_TABLES = re.compile(r"delta\.`([^`]+)`")


@dataclass(frozen=True)
class Violation:
    """A validation query and how many rows broke it (with a few examples)."""

    name: str
    rows: int
    examples: list[dict]


def queries(layer: str) -> dict[str, str]:
    """The named queries of one layer's validation file."""
    text = (SQL_DIR / f"{layer}.sql").read_text()
    return {name: sql.strip().rstrip(";") for name, sql in _NAMED.findall(text)}


def validate(spark: SparkSession, layer: str, warehouse: str) -> dict[str, Violation]:
    """Run one layer's validations; every query returns the rows that break its rule.

    A query over a table not written yet (e.g. no file of that family has arrived) is skipped.
    """
    results = {}
    base = warehouse.rstrip("/")
    if base.startswith("s3://"):  # Spark reads S3 through s3a (as Settings.table_uri does)
        base = "s3a://" + base.removeprefix("s3://")
    for name, template in queries(layer).items():
        sql = template.replace("{warehouse}", base)
        if not all(delta.exists(spark, uri) for uri in _TABLES.findall(sql)):
            continue
        df = spark.sql(sql)
        # One job over the whole table first: a limit on a query that finds nothing would scan it
        # in several growing jobs.
        count = df.count()
        examples = [r.asDict() for r in df.limit(5).collect()] if count else []
        results[name] = Violation(name, count, examples)
    return results
