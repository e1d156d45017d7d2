"""SQL validation files (one per layer) run through Spark SQL against the Delta tables."""

from __future__ import annotations

import functools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from phone_compliance.lakehouse import delta
from phone_compliance.lakehouse.locations import Locations

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


# Queries run this many at a time: each is small, and alone it leaves the cores idle while the
# driver plans it and reads the table's log.
CONCURRENT_QUERIES = 4


def _violation(spark: SparkSession, name: str, sql: str) -> Violation:
    df = spark.sql(sql)
    # One job over the whole table first: a limit on a query that finds nothing would scan it in
    # several growing jobs.
    count = df.count()
    examples = [r.asDict() for r in df.limit(5).collect()] if count else []
    return Violation(name, count, examples)


def validate(spark: SparkSession, layer: str, locations: Locations) -> dict[str, Violation]:
    """Run one layer's validations; every query returns the rows that break its rule.

    A query over a table not written yet (e.g. no file of that family has arrived) is skipped.
    """
    written = functools.cache(lambda uri: delta.exists(spark, uri))  # once per table
    sqls = {
        name: sql.replace("{warehouse}", locations.warehouse)
        for name, sql in queries(layer).items()
    }
    runnable = {name: sql for name, sql in sqls.items() if all(map(written, _TABLES.findall(sql)))}
    with ThreadPoolExecutor(CONCURRENT_QUERIES) as pool:
        found = pool.map(lambda item: _violation(spark, *item), runnable.items())
        return {v.name: v for v in found}
