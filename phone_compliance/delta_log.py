"""What a Delta table's log says, read with delta-rs: no JVM, no scan of the data files.

Sensors read the ledger here between runs; ingestion reads the ledger here while Spark starts, and
counts each Bronze file's rows from the log's per-file statistics instead of scanning the table.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from phone_compliance.settings import Settings, is_remote, load_settings


def delta_rs_location(settings: Settings, uri: str) -> tuple[str, dict[str, str] | None]:
    """A table URI as delta-rs reads it, and its storage options (endpoint, region; credentials
    come from the AWS provider chain, as everywhere else)."""
    if not is_remote(uri):
        return uri, None
    parsed = urlparse(uri)
    options = {}
    if settings.s3_endpoint:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint
        options["AWS_ALLOW_HTTP"] = str(settings.s3_endpoint.startswith("http://")).lower()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["AWS_REGION"] = region
    return f"s3://{parsed.netloc}{parsed.path}", options


def _table(uri: str, settings: Settings | None):
    """The delta-rs table at `uri` (a Spark URI: a folder, file:// or s3a://), None when absent."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    location, options = delta_rs_location(settings or load_settings(), uri)
    try:
        return DeltaTable(location, storage_options=options)
    except TableNotFoundError:
        return None


def read_rows(uri: str, columns: list[str], settings: Settings | None = None) -> list[dict]:
    """`columns` of every row of a small table (the ledger); no rows when it does not exist."""
    table = _table(uri, settings)
    return [] if table is None else table.to_pyarrow_table(columns=columns).to_pylist()


def rows_per_file(uri: str, settings: Settings | None = None) -> dict[str, int] | None:
    """Rows stored per delivered file in a table partitioned by `source_file` (Bronze snapshots),
    summed from the row counts Delta records for every data file. None when the table is not
    partitioned so or a count is missing (the caller counts by scanning); {} when the table does
    not exist."""
    import pyarrow as pa

    table = _table(uri, settings)
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
