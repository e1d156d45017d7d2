"""The asset graph: Bronze (per file family, rejects, ledger) → Silver (each pair's evidence, then
its state) → Gold decisions. Silver and Gold catch up with what is new in Bronze (transforms/plan).

Thin wiring: ingestion is `ingest.batch.ingest`, Silver and Gold are `transforms`.
"""

import json
from collections.abc import Iterator

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from phone_compliance import schema
from phone_compliance.ingest.batch import ingest
from phone_compliance.ingest.ledger import ledger_version
from phone_compliance.ingest.ssn_key import ssn_hash_key
from phone_compliance.lakehouse import delta, delta_log
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline import progress
from phone_compliance.pipeline.resources import (
    RefreshPolicy,
    SparkResource,
    TableRefresh,
    table_metadata,
)
from phone_compliance.transforms import changes, gold, history, silver
from phone_compliance.transforms.plan import FULL, INCREMENTAL, Plan

KINDS = {"spark", "delta"}
BRONZE = "bronze"
SILVER = "silver"
GOLD = "gold"

ENROLLMENT_KEY = dg.AssetKey([BRONZE, schema.ENROLLMENT.name])
SNAPSHOT_KEY = dg.AssetKey([BRONZE, schema.SNAPSHOT.name])
CHANGE_KEY = dg.AssetKey([BRONZE, schema.CHANGE.name])
REJECTS_KEY = dg.AssetKey([BRONZE, "rejects"])
LEDGER_KEY = dg.AssetKey([BRONZE, "file_ledger"])
PAIR_EVIDENCE_KEY = dg.AssetKey([SILVER, "pair_evidence"])
PAIR_STATE_KEY = dg.AssetKey([SILVER, "pair_state"])
PHONE_CONSENT_KEY = dg.AssetKey([GOLD, "phone_consent"])
DECISION_HISTORY_KEY = dg.AssetKey([GOLD, "decision_history"])
DECISION_CHANGES_KEY = dg.AssetKey([GOLD, "decision_changes"])
# The keys of Gold's commit note: the latest snapshot date it was published with (R13), and the
# run that published it, applying which file versions (R14's publication history).
SNAPSHOTS_THROUGH = "snapshots_through"
RUN_ID = "run_id"
FILES = "files"
# The key of decision_changes' commit note: the Gold version it has read the change feed to.
GOLD_VERSION = "gold_version"

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
    dg.AssetSpec(
        key,
        description=_BRONZE_DESCRIPTIONS[name],
        kinds=KINDS,
        group_name=BRONZE,
        skippable=True,
    )
    for name, key in _BRONZE_KEYS.items()
]


@dg.multi_asset(specs=_BRONZE_SPECS, can_subset=False, pool=WAREHOUSE_POOL)
def bronze_ingest(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lakehouse: dg.ResourceParam[Locations],
    refresh: RefreshPolicy,
    remote_execution: dg.ResourceParam[object],  # where the step runs (pipeline/remote.py)
) -> Iterator[dg.MaterializeResult]:
    """Ingest every landed file the ledger has not seen, exactly once (R1); Bronze writes its own
    tables (a file's rows replace its earlier version's, the ledger last).

    With nothing new, and Silver and Gold reflecting the ledger, nothing is materialized: the
    rest of the run is skipped, and Spark never starts (R12: no new file version, no change)."""
    done = ingest(
        lambda: spark.spark_session, lakehouse, ssn_hash_key(lakehouse), context.run.run_id
    )
    context.log.info(f"ingestion batch: {json.dumps(done.summary)}")
    if not done.wrote and not refresh.full_refresh:
        behind = progress.lagging(lakehouse, _derived_uris(lakehouse))
        if not behind:
            context.log.info("no new file version; Silver and Gold are current: nothing to do")
            return
        context.log.info(f"nothing new, but behind the ledger: {', '.join(behind)}")
    for name, key in _BRONZE_KEYS.items():
        uri = lakehouse.table_of(key.path)
        metadata: dict = table_metadata(lakehouse, uri)
        if name in _FAMILY_KEYS:
            metadata["files_ingested"] = done.files_per_family.get(name, 0)
        if key == LEDGER_KEY:
            metadata.update(done.summary)
            metadata["rejects_by_reason"] = dg.MetadataValue.json(done.rejects_by_reason)
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def _derived_uris(lakehouse: Locations, after: dg.AssetKey | None = None) -> list[str]:
    """The tables that follow Bronze (after `after`, when given), in the order they are built."""
    keys = [PAIR_EVIDENCE_KEY, PAIR_STATE_KEY, PHONE_CONSENT_KEY, DECISION_HISTORY_KEY]
    if after is not None:
        keys = keys[keys.index(after) + 1 :]
    return [lakehouse.table_of(k.path) for k in keys]


def _plan(
    lakehouse: Locations, key: dg.AssetKey, refresh: RefreshPolicy, upstream: dg.AssetKey | None
) -> Plan:
    """How the table of `key` catches up with `upstream`'s ledger version (None: the ledger's)."""
    target = (
        ledger_version(lakehouse)
        if upstream is None
        else progress.reflected_version(lakehouse, lakehouse.table_of(upstream.path))
    )
    return progress.plan_for(lakehouse, lakehouse.table_of(key.path), target, refresh.full_refresh)


def _idle(context: dg.AssetExecutionContext, plan: Plan, lakehouse: Locations) -> bool:
    """Nothing to write here and nothing after this table behind: the asset yields no output,
    so what follows it (and the checks on it) is skipped."""
    if plan.writes or progress.lagging(lakehouse, _derived_uris(lakehouse, context.asset_key)):
        context.log.info(f"{context.asset_key.to_user_string()}: {plan.mode} ({plan.reason})")
        return False
    context.log.info(f"{context.asset_key.to_user_string()}: {plan.reason}; nothing to write")
    return True


def _new_evidence(
    plan: Plan, enrollment: DataFrame, snapshot: DataFrame, change: DataFrame
) -> DataFrame:
    """The evidence (SPEC §4) of the file versions `plan` applies."""
    of_plan = F.col("source_file").isin(*plan.files)
    return silver.evidence(*[t.filter(of_plan) for t in (enrollment, snapshot, change)])


_BRONZE_INS = {
    "enrollment": dg.AssetIn(ENROLLMENT_KEY),
    "snapshot": dg.AssetIn(SNAPSHOT_KEY),
    "change": dg.AssetIn(CHANGE_KEY),
}


@dg.asset(
    key=PAIR_EVIDENCE_KEY,
    ins=_BRONZE_INS,
    deps=[LEDGER_KEY],
    kinds=KINDS,
    group_name=SILVER,
    pool=WAREHOUSE_POOL,
    output_required=False,
    description="Per pair, the evidence its decision is made from (R4–R9) as a mergeable state: "
    "new files update only the pairs they concern (R12).",
)
def pair_evidence(
    context: dg.AssetExecutionContext,
    enrollment: DataFrame,
    snapshot: DataFrame,
    change: DataFrame,
    spark: SparkResource,
    lakehouse: dg.ResourceParam[Locations],
    refresh: RefreshPolicy,
    remote_execution: dg.ResourceParam[object],
) -> Iterator[dg.Output]:
    """Silver's state: from all of Bronze (full), or the state of the new files' evidence merged
    into that of the pairs they concern (incremental)."""
    plan = _plan(lakehouse, PAIR_EVIDENCE_KEY, refresh, upstream=None)
    if _idle(context, plan, lakehouse):
        return
    rows = None
    if plan.mode == FULL:
        rows = silver.pair_evidence(silver.evidence(enrollment, snapshot, change))
    elif plan.mode == INCREMENTAL:
        new = silver.pair_evidence(_new_evidence(plan, enrollment, snapshot, change))
        current = delta.read(spark.spark_session, lakehouse.table_of(PAIR_EVIDENCE_KEY.path))
        rows = silver.merge_states(current.join(new.select(*silver.PAIR), silver.PAIR, "semi"), new)
    yield dg.Output(TableRefresh(rows, plan, silver.PAIR, schema.PAIR_EVIDENCE))


@dg.asset(
    key=PAIR_STATE_KEY,
    ins={"state": dg.AssetIn(PAIR_EVIDENCE_KEY), **_BRONZE_INS},
    kinds=KINDS,
    group_name=SILVER,
    pool=WAREHOUSE_POOL,
    output_required=False,
    description="One row per (account, phone) pair: deletion, attributes, consent (R4–R9), and "
    "the files whose evidence decided each (R12).",
)
def pair_state(
    context: dg.AssetExecutionContext,
    state: DataFrame,
    enrollment: DataFrame,
    snapshot: DataFrame,
    change: DataFrame,
    lakehouse: dg.ResourceParam[Locations],
    refresh: RefreshPolicy,
    remote_execution: dg.ResourceParam[object],
) -> Iterator[dg.Output]:
    """Silver: each pair's state decided (R5–R9); a new snapshot re-judges every pair's absences
    (R6), other files only the pairs they concern."""
    plan = _plan(lakehouse, PAIR_STATE_KEY, refresh, upstream=PAIR_EVIDENCE_KEY)
    if _idle(context, plan, lakehouse):
        return
    rows = None
    if plan.writes:
        if plan.mode == INCREMENTAL and not plan.snapshots_changed:
            state = silver.of_pairs(state, _new_evidence(plan, enrollment, snapshot, change))
        rows = silver.finalize(state, plan.snapshots)
    yield dg.Output(TableRefresh(rows, plan, schema.PAIR_KEY, schema.SILVER_PAIR))


@dg.asset(
    key=PHONE_CONSENT_KEY,
    ins={"pair_state": dg.AssetIn(PAIR_STATE_KEY), **_BRONZE_INS},
    kinds=KINDS,
    group_name=GOLD,
    pool=WAREHOUSE_POOL,
    output_required=False,
    description="SPEC's phone_consent table with can_send_sms, reason (R10) and lineage (R12); "
    "merged by pair, only rows whose decision or lineage changed, so its Change Data Feed is an "
    "audit trail of decision changes.",
)
def phone_consent(
    context: dg.AssetExecutionContext,
    pair_state: DataFrame,
    enrollment: DataFrame,
    snapshot: DataFrame,
    change: DataFrame,
    spark: SparkResource,
    lakehouse: dg.ResourceParam[Locations],
    refresh: RefreshPolicy,
    remote_execution: dg.ResourceParam[object],
) -> Iterator[dg.Output]:
    """Gold: the decision for every pair the run concerns, published by MERGE."""
    plan = _plan(lakehouse, PHONE_CONSENT_KEY, refresh, upstream=PAIR_STATE_KEY)
    if _idle(context, plan, lakehouse):
        return
    decided = gold.decisions(pair_state)
    by_reason = {r["reason"]: r["count"] for r in decided.groupBy("reason").count().collect()}
    rows, flips = decided, 0
    published = delta.read(
        spark.spark_session, lakehouse.table_of(PHONE_CONSENT_KEY.path), schema.GOLD_DECISION
    )
    if plan.mode == INCREMENTAL:
        if not plan.snapshots_changed:
            new = _new_evidence(plan, enrollment, snapshot, change)
            rows = decided.join(new.select(*schema.PAIR_KEY), list(schema.PAIR_KEY), "semi")
        rows = gold.changed(rows, published)
    if plan.writes:
        flips = gold.flipped(published, rows).filter(F.col("after").isNotNull()).count()
    through = max(plan.snapshots).isoformat() if plan.snapshots else None
    context.log.info(f"decisions by reason: {by_reason}")
    yield dg.Output(
        TableRefresh(
            rows,
            plan,
            schema.PAIR_KEY,
            schema.GOLD_DECISION,
            change_columns=("content_hash",),
            # decision_changes reads who published each Gold version, applying what.
            # (a full build's files are all those in force at its ledger version: not listed).
            note={
                SNAPSHOTS_THROUGH: through,
                RUN_ID: context.run.run_id,
                FILES: plan.files if plan.mode == INCREMENTAL else None,
            },
        ),
        # One number per reason, so that the UI's Plots tab charts each run over run.
        metadata={
            **{
                f"pairs_{r.lower()}": by_reason.get(r, 0)
                for r in schema.DECISION_REASONS
                if r != schema.NOT_FOUND  # Gold holds found pairs only
            },
            "pairs_flipped": flips,
            "decisions_by_reason": dg.MetadataValue.json(by_reason),
            "pairs": sum(by_reason.values()),
            "snapshots_through": through or "",
        },
    )


@dg.asset(
    key=DECISION_HISTORY_KEY,
    ins=_BRONZE_INS,
    deps=[PHONE_CONSENT_KEY],
    kinds=KINDS,
    group_name=GOLD,
    pool=WAREHOUSE_POOL,
    output_required=False,
    description="R14: per pair, the intervals [valid_from, valid_to) of file dates over which its "
    "decision as of a date (from the files dated on or before it) stays the same, each with the "
    "Gold row and deciding files of its first day; the open interval has the pair's Gold decision.",
)
def decision_history(
    context: dg.AssetExecutionContext,
    enrollment: DataFrame,
    snapshot: DataFrame,
    change: DataFrame,
    lakehouse: dg.ResourceParam[Locations],
    refresh: RefreshPolicy,
    remote_execution: dg.ResourceParam[object],
) -> Iterator[dg.Output]:
    """The history of the pairs the new files concern, from all their evidence, replaces theirs;
    a new snapshot (an absence can start on its date for any pair, R6) re-dates every pair."""
    plan = _plan(lakehouse, DECISION_HISTORY_KEY, refresh, upstream=PHONE_CONSENT_KEY)
    if _idle(context, plan, lakehouse):
        return
    rows = None
    if plan.writes:
        ev = silver.evidence(enrollment, snapshot, change)
        if plan.mode == INCREMENTAL and not plan.snapshots_changed:
            new = _new_evidence(plan, enrollment, snapshot, change)
            ev = history.evidence_of_pairs(ev, new)
        rows = history.decision_history(ev, plan.snapshots)
    yield dg.Output(
        TableRefresh(
            rows,
            plan,
            (*schema.PAIR_KEY, history.VALID_FROM),
            schema.DECISION_HISTORY,
            change_columns=("content_hash", history.VALID_TO),
            groups=schema.PAIR_KEY,
            complete=plan.snapshots_changed,
            spark_conf=history.SPARK_CONF,
        )
    )


@dg.asset(
    key=DECISION_CHANGES_KEY,
    deps=[PHONE_CONSENT_KEY],
    kinds=KINDS,
    group_name=GOLD,
    pool=WAREHOUSE_POOL,
    output_required=False,
    description="R14, system time: one row per pair each Gold publication changed (from Gold's "
    "Change Data Feed): the decision and reason before and after, the Gold version, when it was "
    "published, by which run, applying which file versions. Append-only.",
)
def decision_changes(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lakehouse: dg.ResourceParam[Locations],
    remote_execution: dg.ResourceParam[object],
) -> Iterator[dg.Output]:
    """Appends the changes of the Gold versions published since the last one it read."""
    uri = lakehouse.table_of(DECISION_CHANGES_KEY.path)
    gold_uri = lakehouse.table_of(PHONE_CONSENT_KEY.path)
    read = delta_log.last_commit_note(lakehouse, uri, GOLD_VERSION).get(GOLD_VERSION, -1)
    notes = delta_log.commit_notes(lakehouse, gold_uri, after=read)
    if not notes:
        context.log.info(f"no Gold version after {read}: nothing to record")
        return
    last = max(notes)
    publications = spark.spark_session.createDataFrame(
        [
            (v, n.get(RUN_ID), n.get("mode"), n.get("ledger_version"), n.get(FILES))
            for v, n in notes.items()
        ],
        schema.ddl(changes.PUBLICATION),
    )
    feed = delta.change_feed(spark.spark_session, gold_uri, read + 1, last)
    rows = changes.decision_changes(feed, publications)
    why = f"Gold versions {read + 1}–{last}"
    plan = Plan(INCREMENTAL if read >= 0 else FULL, why, ledger_version(lakehouse))
    yield dg.Output(
        TableRefresh(
            rows,
            plan,
            (*schema.PAIR_KEY, GOLD_VERSION),
            schema.DECISION_CHANGES,
            append=True,
            note={GOLD_VERSION: last},
        ),
        metadata={"gold_versions": why, "publications": len(notes)},
    )


ASSETS = [
    bronze_ingest,
    pair_evidence,
    pair_state,
    phone_consent,
    decision_history,
    decision_changes,
]
