"""The asset graph: Bronze (per file family, rejects, ledger) → Silver pairs → Gold decisions."""

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from phone_compliance import delta, delta_log, schema
from phone_compliance.ingest import (
    LEDGER_COLUMNS,
    KnownFiles,
    accepted_counts,
    ledger_rows,
    parse_batch,
    plan_batch,
    rejects,
    rows_per_file_of,
    stored_counts,
)
from phone_compliance.pipeline.remote import REMOTE_EXECUTION
from phone_compliance.pipeline.resources import (
    Appended,
    FileBatch,
    Lakehouse,
    SparkResource,
    Upsert,
)
from phone_compliance.settings import ssn_hash_key
from phone_compliance.transforms import bronze, gold, silver

KINDS = {"spark", "delta"}
BRONZE = "bronze"
SILVER = "silver"
GOLD = "gold"

ENROLLMENT_KEY = dg.AssetKey([BRONZE, schema.ENROLLMENT.name])
SNAPSHOT_KEY = dg.AssetKey([BRONZE, schema.SNAPSHOT.name])
CHANGE_KEY = dg.AssetKey([BRONZE, schema.CHANGE.name])
REJECTS_KEY = dg.AssetKey([BRONZE, "rejects"])
LEDGER_KEY = dg.AssetKey([BRONZE, "file_ledger"])
PAIR_STATE_KEY = dg.AssetKey([SILVER, "pair_state"])
PHONE_CONSENT_KEY = dg.AssetKey([GOLD, "phone_consent"])

_FAMILY_KEYS = {
    schema.ENROLLMENT.name: ENROLLMENT_KEY,
    schema.SNAPSHOT.name: SNAPSHOT_KEY,
    schema.CHANGE.name: CHANGE_KEY,
}
_BRONZE_DESCRIPTIONS = {
    schema.ENROLLMENT.name: "ENRLMT rows, typed, with lineage (file, file date, timestamp, line).",
    schema.SNAPSHOT.name: "NON-FIN-BDL snapshot rows, typed, with lineage.",
    schema.CHANGE.name: "SUPPLFWD change records, typed, with lineage.",
}


def _out(key: dg.AssetKey, description: str) -> tuple[str, dg.AssetOut]:
    return key.to_python_identifier(), dg.AssetOut(key=key, description=description, kinds=KINDS)


@dg.multi_asset(
    outs=dict(
        [
            *[_out(k, _BRONZE_DESCRIPTIONS[name]) for name, k in _FAMILY_KEYS.items()],
            _out(
                REJECTS_KEY, "Every row or file not accepted: file, line, raw text, reason (R1.2)."
            ),
            _out(LEDGER_KEY, "One row per delivered file version: rows read, accepted, rejected."),
        ]
    ),
    group_name=BRONZE,
)
def bronze_ingest(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lakehouse: Lakehouse,
    remote_execution: dg.ResourceParam[object],  # where the step runs (pipeline/remote.py)
) -> Iterator[dg.MaterializeResult | dg.Output]:
    """Ingest every landed file the ledger has not seen, exactly once (R1)."""
    ssn_key = ssn_hash_key()
    ledger = delta_log.read_rows(lakehouse.uri(BRONZE, "file_ledger"), LEDGER_COLUMNS)
    # Spark starts (seconds of JVM start-up) while the new files are inspected in Python.
    with ThreadPoolExecutor(1) as starter:
        starting = starter.submit(lambda: spark.spark_session)
        batch = plan_batch(lakehouse.landing, KnownFiles.from_ledger(ledger))
        session = starting.result()
    parse_batch(session, batch, ssn_key)
    accepted_files = batch.accepted_files
    conf = tuple(bronze.WRITE_CONF.items())
    for name, key in _FAMILY_KEYS.items():
        yield dg.Output(
            FileBatch(
                batch.accepted.get(name),
                accepted_files.get(name, ()),
                conf,
                schema.BRONZE_PARTITION_COLUMNS[name],
            ),
            output_name=key.to_python_identifier(),
            metadata={"files_ingested": len(accepted_files.get(name, ()))},
        )
    # Counted in the tables just written (each output is stored as it is yielded; Delta records
    # every data file's rows); a file short of rows is parsed again for its rejects. The ledger is
    # written last: a crash before it leaves the files unrecorded, and their re-ingestion replaces
    # (never duplicates) their rows.
    stored = rows_per_file_of(session, [lakehouse.uri(BRONZE, name) for name in batch.accepted])
    accepted = accepted_counts(stored, batch.files)
    yield dg.Output(
        FileBatch(
            rejects(session, batch, accepted, ssn_key) if batch.new else None,
            batch.files,
            conf,
        ),
        output_name=REJECTS_KEY.to_python_identifier(),
    )
    stored_rejects = delta.read(session, lakehouse.uri(BRONZE, "rejects"), schema.REJECTS)
    counts = stored_counts(accepted, stored_rejects, batch.files)
    by_reason = (
        stored_rejects.filter(F.col("source_file").isin(*batch.files))
        .groupBy("reason")
        .count()
        .collect()
        if batch.files
        else []
    )
    summary = {
        **batch.summary,
        "rows_accepted": sum(a for a, _ in counts.values()),
        "rows_rejected": sum(r for _, r in counts.values()),
    }
    context.log.info(f"ingestion batch: {json.dumps(summary)}")
    yield dg.Output(
        Appended(
            ledger_rows(session, batch.new, counts, context.run.run_id) if batch.new else None
        ),
        output_name=LEDGER_KEY.to_python_identifier(),
        metadata={
            **summary,
            "rejects_by_reason": dg.MetadataValue.json(
                {r["reason"]: r["count"] for r in by_reason}
            ),
        },
    )


def snapshot_files(ledger: DataFrame) -> dict[date, list[str]]:
    """R6: each snapshot date with a readable NON-FIN-BDL file, and its part files."""
    rows = (
        ledger.filter(
            (F.col("family") == schema.SNAPSHOT.name) & (F.col("status") == schema.LEDGER_INGESTED)
        )
        .select("file_date", "source_file")
        .distinct()
        .collect()
    )
    parts: dict[date, list[str]] = {}
    for r in rows:
        parts.setdefault(r["file_date"], []).append(r["source_file"])
    return {d: sorted(files) for d, files in parts.items()}


@dg.asset(
    key=PAIR_STATE_KEY,
    ins={
        "enrollment": dg.AssetIn(ENROLLMENT_KEY),
        "snapshot": dg.AssetIn(SNAPSHOT_KEY),
        "change": dg.AssetIn(CHANGE_KEY),
        "ledger": dg.AssetIn(LEDGER_KEY),
    },
    kinds=KINDS,
    group_name=SILVER,
    required_resource_keys={REMOTE_EXECUTION},
    description="One row per (account, phone) pair: deletion, attributes, consent (R4–R9), and "
    "the files whose evidence decided each (R12).",
)
def pair_state(
    enrollment: DataFrame, snapshot: DataFrame, change: DataFrame, ledger: DataFrame
) -> DataFrame:
    """Silver: the reconciled state of every pair, recomputed from all of Bronze."""
    return silver.reconcile(silver.evidence(enrollment, snapshot, change), snapshot_files(ledger))


@dg.asset(
    key=PHONE_CONSENT_KEY,
    ins={"pair_state": dg.AssetIn(PAIR_STATE_KEY), "ledger": dg.AssetIn(LEDGER_KEY)},
    kinds=KINDS,
    group_name=GOLD,
    required_resource_keys={REMOTE_EXECUTION},
    description="SPEC's phone_consent table with can_send_sms, reason (R10) and lineage (R12); "
    "merged by pair so its Change Data Feed is an audit trail of decision changes.",
)
def phone_consent(
    context: dg.AssetExecutionContext, pair_state: DataFrame, ledger: DataFrame
) -> Iterator[dg.Output]:
    """Gold: the decision for every pair, published by MERGE."""
    decided = gold.decisions(pair_state)
    by_reason = {r["reason"]: r["count"] for r in decided.groupBy("reason").count().collect()}
    snapshots = snapshot_files(ledger)
    note = {"snapshots_through": max(snapshots).isoformat() if snapshots else None}
    context.log.info(f"decisions by reason: {by_reason}")
    yield dg.Output(
        Upsert(decided, schema.GOLD_DECISION, commit_note=json.dumps(note)),
        metadata={
            "decisions_by_reason": dg.MetadataValue.json(by_reason),
            "pairs": sum(by_reason.values()),
            "snapshots_through": note["snapshots_through"] or "",
        },
    )


ASSETS = [bronze_ingest, pair_state, phone_consent]
