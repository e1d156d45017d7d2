"""Delta table operations the pipeline needs, as plain functions over a SparkSession.

A write that loses Delta's optimistic concurrency to another writer of the same table raises
`ConcurrentWrite`: the losing commit was abandoned whole, so nothing was lost or half-written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from delta.tables import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from phone_compliance import schema
from phone_compliance.lakehouse.spark import session_conf

log = logging.getLogger(__name__)

_DEFAULT_INDEXED_COLUMNS = "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols"
# What every Delta conflict between concurrent writers extends (ConcurrentAppendException,
# ProtocolChangedException, MetadataChangedException, ConcurrentDeleteReadException, …).
_CONCURRENT_MODIFICATION = "org.apache.spark.sql.delta.DeltaConcurrentModificationException"


class ConcurrentWrite(Exception):
    """Another writer committed to the table first; Delta abandoned this write whole (nothing was
    lost), and writing again, from a fresh read, is safe."""

    def __init__(self, uri: str, conflict: str) -> None:
        super().__init__(f"another run wrote {uri} at the same time ({conflict}); nothing was lost")
        self.uri = uri
        self.conflict = conflict


def concurrent_conflict(error: BaseException) -> str | None:
    """The name of the Delta concurrent-modification exception behind `error` (e.g.
    'ConcurrentAppendException'); None when `error` is anything else."""
    thrown = getattr(error, "java_exception", None) if isinstance(error, Py4JJavaError) else None
    while thrown is not None:
        cls = thrown.getClass()
        while cls is not None:
            if cls.getName() == _CONCURRENT_MODIFICATION:
                return thrown.getClass().getSimpleName()
            cls = cls.getSuperclass()
        thrown = thrown.getCause()
    return None


@contextmanager
def concurrent_writes(uri: str) -> Iterator[None]:
    """Raise `ConcurrentWrite` for a write to `uri` that Delta refused because another writer
    committed first; any other error passes unchanged."""
    try:
        yield
    except Py4JJavaError as e:
        conflict = concurrent_conflict(e)
        if conflict is None:
            raise
        raise ConcurrentWrite(uri, conflict) from e


@contextmanager
def _timed(what: str, uri: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    log.info("%s %s in %.1fs", what, uri, time.monotonic() - started)


def exists(spark: SparkSession, uri: str) -> bool:
    """True when `uri` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, uri)


def read(spark: SparkSession, uri: str, table_schema: schema.Schema | None = None) -> DataFrame:
    """The table at `uri`; an empty frame of `table_schema` when it does not exist yet."""
    if exists(spark, uri):
        return spark.read.format("delta").load(uri)
    if table_schema is None:
        raise FileNotFoundError(f"no Delta table at {uri}")
    return spark.createDataFrame([], StructType.fromDDL(schema.ddl(table_schema)))


def change_feed(spark: SparkSession, uri: str, first: int, last: int) -> DataFrame:
    """The table's Change Data Feed from version `first` to `last`, both included."""
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", first)
        .option("endingVersion", last)
        .load(uri)
    )


def overwrite(df: DataFrame, uri: str) -> None:
    """Replace the whole table (schema included) in one commit."""
    with concurrent_writes(uri), _timed("overwrote", uri):
        df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(uri)


def replace_files(
    df: DataFrame, uri: str, files: Sequence[str], partition_columns: Sequence[str] = ()
) -> None:
    """Atomically replace the rows of `files` with `df`: re-ingesting never duplicates a file.

    A new table is partitioned by `partition_columns` and keeps no min/max statistics, only row
    counts: partitioned by file (Bronze snapshots), replacing a file is a metadata operation and
    its lineage costs nothing per row, while min/max over long text columns would cost more than
    writing the rows.
    """
    if not files:
        return
    if not exists(df.sparkSession, uri):
        with (
            concurrent_writes(uri),
            _timed("created", uri),
            session_conf(df.sparkSession, {_DEFAULT_INDEXED_COLUMNS: "0"}),
        ):
            df.write.format("delta").mode("append").partitionBy(*partition_columns).save(uri)
        return
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    with concurrent_writes(uri), _timed("replaced files of", uri):
        (
            df.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"source_file IN ({quoted})")
            .save(uri)
        )


def record(spark: SparkSession, uri: str, properties: dict[str, str]) -> None:
    """A commit that changes no data, setting table `properties` (and carrying the session's
    commit note): e.g. that an increment which changed no row was applied."""
    assignments = ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())
    with concurrent_writes(uri):
        spark.sql(f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES ({assignments})")


def append(df: DataFrame, uri: str) -> None:
    """Append rows (the ledger: one row per delivered file version)."""
    with concurrent_writes(uri):
        df.write.format("delta").mode("append").save(uri)


def upsert(df: DataFrame, uri: str, keys: Sequence[str], update_when: str | None = None) -> None:
    """Merge `df` into the table by `keys`: matched rows updated (when `update_when` holds for
    them: t = the table, s = `df`), the others inserted; rows `df` lacks stay."""
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    with concurrent_writes(uri), _timed("merged into", uri):
        (
            DeltaTable.forPath(df.sparkSession, uri)
            .alias("t")
            .merge(df.alias("s"), on)
            .whenMatchedUpdateAll(condition=update_when)
            .whenNotMatchedInsertAll()
            .execute()
        )


def merge_changed(
    df: DataFrame,
    uri: str,
    keys: Sequence[str],
    change_columns: Sequence[str],
    table_schema: schema.Schema,
    complete: bool,
    groups: Sequence[str] = (),
) -> None:
    """Upsert `df` by `keys`, touching only rows where one of `change_columns` differs, with
    Change Data Feed on, so the table's history holds only real changes. A `complete` `df` is the
    whole table: rows it lacks are deleted. Otherwise, with `groups` (a prefix of `keys`), `df`
    holds the whole of every group it names: the group's rows it lacks are deleted.

    The first publication appends: into a table created just now every row is an insert, which
    the change feed records as such, without joining the rows to an empty table.
    """
    spark = df.sparkSession
    new = not exists(spark, uri)
    with concurrent_writes(uri):
        (
            DeltaTable.createIfNotExists(spark)
            .location(uri)
            .addColumns(StructType.fromDDL(schema.ddl(table_schema)))
            .property("delta.enableChangeDataFeed", "true")
            .execute()
        )
    if new:
        with _timed("published first rows of", uri):
            append(df, uri)
        return
    changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in change_columns)
    if not complete and not groups:
        upsert(df, uri, keys, changed)
        return
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    table = DeltaTable.forPath(spark, uri)
    if complete:
        merge = (
            table.alias("t")
            .merge(df.alias("s"), on)
            .whenMatchedUpdateAll(condition=changed)
            .whenNotMatchedInsertAll()
            .whenNotMatchedBySourceDelete()
        )
    else:
        # The rows of the groups `df` names that it lacks go in as tombstones: one MERGE.
        stale = (
            table.toDF()
            .join(df.select(*groups).distinct(), list(groups), "semi")
            .join(df.select(*keys), list(keys), "anti")
        )
        source = df.withColumn("_stale", F.lit(False)).unionByName(
            stale.select(*df.columns).withColumn("_stale", F.lit(True))
        )
        values = {c: f"s.{c}" for c in df.columns}
        merge = (
            table.alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedDelete(condition="s._stale")
            .whenMatchedUpdate(condition=f"NOT s._stale AND ({changed})", set=values)
            .whenNotMatchedInsert(condition="NOT s._stale", values=values)
        )
    with concurrent_writes(uri), _timed("merged into", uri):
        merge.execute()
