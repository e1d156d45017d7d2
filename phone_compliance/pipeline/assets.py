"""The asset graph: Bronze (per file family, rejects, ledger) → Silver pairs → Gold decisions.

Thin wiring: ingestion is `ingest.batch.ingest`, Silver and Gold are `transforms`.
"""

import json
from collections.abc import Iterator

import dagster as dg
from pyspark.sql import DataFrame

from phone_compliance import schema
from phone_compliance.ingest.batch import ingest
from phone_compliance.ingest.ssn_key import ssn_hash_key
from phone_compliance.lakehouse import delta
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline.remote import REMOTE_EXECUTION
from phone_compliance.pipeline.resources import SparkResource, Upsert, table_metadata
from phone_compliance.transforms import gold, silver
from phone_compliance.transforms.guards import snapshot_files

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
# Every step that writes the warehouse takes this pool's one slot (the instance sets the limit).
WAREHOUSE_POOL = "warehouse"

_BRONZE_DESCRIPTIONS = {
    schema.ENROLLMENT.name: "ENRLMT rows, typed, with lineage (file, file date, timestamp, line).",
    schema.SNAPSHOT.name: "NON-FIN-BDL snapshot rows, typed, with lineage.",
    schema.CHANGE.name: "SUPPLFWD change records, typed, with lineage.",
    "rejects": "Every row or file not accepted: file, line, raw text, reason (R1.2).",
    "file_ledger": "One row per delivered file version: rows read, accepted, rejected.",
}
_BRONZE_KEYS = {
    **_FAMILY_KEYS,
    "rejects": REJECTS_KEY,
    "file_ledger": LEDGER_KEY,
}
_BRONZE_SPECS = [
    dg.AssetSpec(key, description=_BRONZE_DESCRIPTIONS[name], kinds=KINDS, group_name=BRONZE)
    for name, key in _BRONZE_KEYS.items()
]


@dg.multi_asset(specs=_BRONZE_SPECS, can_subset=False, pool=WAREHOUSE_POOL)
def bronze_ingest(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lakehouse: dg.ResourceParam[Locations],
    remote_execution: dg.ResourceParam[object],  # where the step runs (pipeline/remote.py)
) -> Iterator[dg.MaterializeResult]:
    """Ingest every landed file the ledger has not seen, exactly once (R1); Bronze writes its own
    tables (a file's rows replace its earlier version's, the ledger last)."""
    done = ingest(
        lambda: spark.spark_session, lakehouse, ssn_hash_key(lakehouse), context.run.run_id
    )
    context.log.info(f"ingestion batch: {json.dumps(done.summary)}")
    session = spark.spark_session
    for name, key in _BRONZE_KEYS.items():
        uri = lakehouse.table_of(key.path)
        metadata: dict = table_metadata(session, uri) if delta.exists(session, uri) else {}
        if name in _FAMILY_KEYS:
            metadata["files_ingested"] = done.files_per_family.get(name, 0)
        if key == LEDGER_KEY:
            metadata.update(done.summary)
            metadata["rejects_by_reason"] = dg.MetadataValue.json(done.rejects_by_reason)
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


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
    pool=WAREHOUSE_POOL,
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
    pool=WAREHOUSE_POOL,
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
