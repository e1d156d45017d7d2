"""What a Delta table's log says, read with delta-rs: no JVM, no scan of the data files.

Sensors read the ledger here between runs; ingestion reads the ledger here while Spark starts, and
counts each Bronze file's rows from the log's per-file statistics instead of scanning the table.
"""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from phone_compliance.lakehouse.locations import Locations


def _table(locations: Locations, uri: str) -> DeltaTable | None:
    """The delta-rs table at `uri` (a Spark URI: a folder, file:// or s3a://), None when absent."""
    location, options = locations.delta_rs(uri)
    try:
        return DeltaTable(location, storage_options=options)
    except TableNotFoundError:
        return None


def read_rows(locations: Locations, uri: str, columns: list[str]) -> list[dict]:
    """`columns` of every row of a small table (the ledger); no rows when it does not exist."""
    table = _table(locations, uri)
    return [] if table is None else table.to_pyarrow_table(columns=columns).to_pylist()


def rows_per_file(locations: Locations, uri: str) -> dict[str, int] | None:
    """Rows stored per delivered file in a table partitioned by `source_file` (Bronze snapshots),
    summed from the row counts Delta records for every data file. None when the table is not
    partitioned so or a count is missing (the caller counts by scanning); {} when the table does
    not exist."""
    table = _table(locations, uri)
    if table is None:
        return {}
    adds = pa.table(table.get_add_actions(flatten=True))
    if "partition.source_file" not in adds.column_names or adds["num_records"].null_count:
        return None
    counts: dict[str, int] = {}
    for name, rows in zip(
        adds["partition.source_file"].to_pylist(), adds["num_records"].to_pylist(), strict=True
    ):
        counts[name] = counts.get(name, 0) + rows
    return counts
