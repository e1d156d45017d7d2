"""What a Delta table's log says, read with delta-rs: no JVM, no scan of the data files.

Sensors read the ledger here between runs; ingestion reads the ledger here while Spark starts, and
counts each Bronze file's rows from the log's per-file statistics instead of scanning the table.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from phone_compliance.lakehouse.locations import Locations


def _table(locations: Locations, uri: str, version: int | None = None) -> DeltaTable | None:
    """The delta-rs table at `uri` (a Spark URI: a folder, file:// or s3a://), None when absent."""
    location, options = locations.delta_rs(uri)
    try:
        return DeltaTable(location, version=version, storage_options=options)
    except TableNotFoundError:
        return None


def read_rows(
    locations: Locations, uri: str, columns: list[str], version: int | None = None
) -> list[dict]:
    """`columns` of every row of a small table (the ledger), as of `version` (default: now); no
    rows when it does not exist. A version whose log Delta has cleaned up raises."""
    table = _table(locations, uri, version)
    return [] if table is None else table.to_pyarrow_table(columns=columns).to_pylist()


def columns(locations: Locations, uri: str, names: list[str]) -> pa.Table | None:
    """`names` of every row of the table at `uri` as Arrow (a few columns of a table of a few
    million rows at most: Gold's reasons, the rejects' reasons); None when it does not exist."""
    table = _table(locations, uri)
    return None if table is None else table.to_pyarrow_table(columns=names)


def row_count(locations: Locations, uri: str) -> int | None:
    """The table's rows, summed from the log's per-file counts; None when it does not exist."""
    table = _table(locations, uri)
    if table is None:
        return None
    adds = pa.table(table.get_add_actions(flatten=True))
    if adds["num_records"].null_count:
        return table.to_pyarrow_dataset().count_rows()
    return sum(adds["num_records"].to_pylist())


def version(locations: Locations, uri: str) -> int | None:
    """The table's current version; None when it does not exist."""
    table = _table(locations, uri)
    return None if table is None else table.version()


def last_operation(locations: Locations, uri: str) -> dict[str, int] | None:
    """The latest commit's version and Delta's numeric operation metrics (rows inserted,
    updated, …); None when the table does not exist."""
    table = _table(locations, uri)
    if table is None:
        return None
    commit = table.history(1)[0]
    metrics = commit.get("operationMetrics") or {}
    return {
        "version": table.version(),
        **{k: int(v) for k, v in metrics.items() if str(v).isdigit()},
    }


def last_commit_note(locations: Locations, uri: str, key: str, within: int = 50) -> dict[str, Any]:
    """The JSON note (user metadata) of the table's latest commit whose note has `key`, among its
    last `within` commits (others, e.g. an operator's OPTIMIZE, carry none); {} when none has."""
    table = _table(locations, uri)
    if table is None:
        return {}
    for commit in table.history(within):
        note = json.loads(commit.get("userMetadata") or "{}")
        if key in note:
            return note
    return {}


def commit_notes(locations: Locations, uri: str, after: int) -> dict[int, dict[str, Any]]:
    """The JSON note (user metadata) of each commit of the table after version `after`, by
    version ({} for a commit without one); {} when the table does not exist."""
    table = _table(locations, uri)
    if table is None or table.version() <= after:
        return {}
    return {
        commit["version"]: json.loads(commit.get("userMetadata") or "{}")
        for commit in table.history(table.version() - after)
        if commit["version"] > after
    }


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
