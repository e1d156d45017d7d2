"""Resources: one explicit table per deployment (local, production), chosen in one place from
one `Settings` value (`resources_for`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame

from phone_compliance import schema
from phone_compliance.ingest import parser
from phone_compliance.lakehouse import delta, delta_log
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.lakehouse.spark import build_spark_session, session_conf, spark_config
from phone_compliance.pipeline import remote
from phone_compliance.settings import Settings
from phone_compliance.transforms.plan import FULL, INCREMENTAL, Plan

COMMIT_NOTE = "spark.databricks.delta.commitInfo.userMetadata"
LEDGER_VERSION = "phone_compliance.ledger_version"


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session, built by the project's one factory (checks Java first)."""

    def _init_session(self) -> None:
        if self._spark_session is None:
            self._spark_session = build_spark_session(self.spark_config)


class Guardrails(dg.ConfigurableResource):
    """R13 thresholds, and an operator's explicit acceptance (set in run config, then re-run)."""

    max_snapshot_shrink: float = 0.20
    max_decision_flips: float = 0.05
    accept_snapshot_shrink: bool = False
    accept_decision_flips: bool = False


class RefreshPolicy(dg.ConfigurableResource):
    """How Silver and Gold catch up with Bronze: by what is new (default), or, with
    `full_refresh`, rebuilt from all of Bronze on purpose."""

    full_refresh: bool = False


@dataclass(frozen=True)
class TableRefresh:
    """A Silver or Gold table brought up to `plan.ledger_version` (transforms/plan.py): `rows`
    replace it (full) or are merged into it by `keys` (incremental); unchanged, nothing is
    written. With `change_columns` (Gold), only rows where one of them differs are written and
    the table keeps a Change Data Feed."""

    rows: DataFrame | None
    plan: Plan
    keys: Sequence[str]
    table_schema: schema.Schema
    change_columns: Sequence[str] = ()
    note: Mapping[str, Any] = field(default_factory=dict)  # more for the commit's note
    # `rows` hold every row of each value of `groups` they name: its other rows go.
    groups: Sequence[str] = ()
    # `rows` hold the whole table even in an incremental plan.
    complete: bool = False
    # Session settings the write (which computes `rows`) needs.
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    # `rows` are new rows of an append-only table (the note records how far it has read).
    append: bool = False

    def metadata(self) -> dict[str, Any]:
        """What Dagster shows: how the table caught up, why, and from which files."""
        plan = self.plan
        files = list(plan.files) if plan.mode == INCREMENTAL else []
        return {
            "refresh": plan.mode,
            "refresh_reason": plan.reason,
            "ledger_version": plan.ledger_version if plan.ledger_version is not None else -1,
            "files_applied": len(plan.files),
            "files": dg.MetadataValue.json(files),
        }


def table_metadata(lakehouse: Locations, uri: str) -> dict[str, Any]:
    """What Dagster shows of a Delta table after a write: where, which version, Delta's metrics
    (read from its log with delta-rs: no Spark job); {} when the table does not exist."""
    metrics = delta_log.last_operation(lakehouse, uri)
    if metrics is None:
        return {}
    return {
        "uri": dg.MetadataValue.path(uri),
        "delta_version": metrics.pop("version"),
        **{f"delta_{k}": v for k, v in metrics.items()},
    }


def _rows_written(metadata: dict[str, Any]) -> int:
    """Rows a write inserted, updated or replaced, from Delta's metrics of it."""
    merged = ("delta_numTargetRowsInserted", "delta_numTargetRowsUpdated")
    if any(k in metadata for k in merged):
        return sum(metadata.get(k, 0) for k in (*merged, "delta_numTargetRowsDeleted"))
    return metadata.get("delta_numOutputRows", 0)


class DeltaIOManager(dg.IOManager):
    """Persists an asset as the Delta table at `<warehouse>/<key path>`, local or s3a://: a
    DataFrame replaces the table, a `TableRefresh` brings it up to date."""

    def __init__(self, lakehouse: Locations, spark: SparkResource) -> None:
        self.lakehouse = lakehouse
        self.spark = spark

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        uri = self.lakehouse.table_of(context.asset_key.path)
        if isinstance(obj, TableRefresh):
            context.add_output_metadata(obj.metadata())
            if obj.rows is None:
                return  # unchanged: no commit
            session = self.spark.spark_session
            before = delta_log.version(self.lakehouse, uri)
            note = {COMMIT_NOTE: json.dumps(obj.plan.note(**obj.note))}
            with session_conf(session, {**obj.spark_conf, **note}):
                self._refresh(obj, uri)
                written = delta_log.version(self.lakehouse, uri) != before
                if not written:  # no row changed: still record what the table now reflects
                    delta.record(session, uri, {LEDGER_VERSION: str(obj.plan.ledger_version)})
            metadata = table_metadata(self.lakehouse, uri)
            metadata["pairs_written"] = _rows_written(metadata) if written else 0
            context.add_output_metadata(metadata)
        elif isinstance(obj, DataFrame):
            delta.overwrite(obj, uri)
            context.add_output_metadata(table_metadata(self.lakehouse, uri))
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store {type(obj)}")

    @staticmethod
    def _refresh(obj: TableRefresh, uri: str) -> None:
        full = obj.plan.mode == FULL or obj.complete
        if obj.append:
            delta.append(obj.rows, uri)
        elif obj.change_columns:
            delta.merge_changed(
                obj.rows,
                uri,
                obj.keys,
                obj.change_columns,
                obj.table_schema,
                complete=full,
                groups=obj.groups,
            )
        elif full:
            delta.overwrite(obj.rows, uri)
        else:
            delta.upsert(obj.rows, uri, obj.keys)

    def load_input(self, context: dg.InputContext) -> DataFrame:
        path = "/".join(context.asset_key.path)
        uri = self.lakehouse.table_of(context.asset_key.path)
        return delta.read(self.spark.spark_session, uri, schema.TABLES.get(path))


@dg.io_manager(
    required_resource_keys={"lakehouse", "spark"},
    description="Delta tables at <warehouse>/<layer>/<name>, through the run's Spark session.",
)
def delta_io_manager(context: dg.InitResourceContext) -> DeltaIOManager:
    return DeltaIOManager(context.resources.lakehouse, context.resources.spark)


def _shared(settings: Settings) -> dict[str, Any]:
    """What every deployment has: where things live, Spark, the R13 guardrails, the IO manager."""
    locations = Locations(settings)
    lakehouse = dg.ResourceDefinition.hardcoded_resource(
        locations, "Where files land and tables live (lakehouse.locations)."
    )
    # A step already on a cluster uses the cluster's own session.
    config = {} if remote.on_cluster() else spark_config(settings, jars=[parser.jar()])
    return {
        "lakehouse": lakehouse,
        "spark": SparkResource(spark_config=config),
        "guardrails": Guardrails(),
        "refresh": RefreshPolicy(),
        "io_manager": delta_io_manager,
    }


def local_resources(settings: Settings) -> dict[str, Any]:
    """A laptop: local Spark, steps in this process."""
    return {
        **_shared(settings),
        remote.REMOTE_EXECUTION: remote.in_process(),
    }


def production_resources(settings: Settings) -> dict[str, Any]:
    """Production: the landing sensor's S3 client (credentials from the AWS provider chain); the
    heavy Spark steps on Databricks through the step launcher (pipeline/remote.py)."""
    return {
        **_shared(settings),
        "s3": S3Resource(endpoint_url=settings.s3_endpoint),
        remote.REMOTE_EXECUTION: (
            remote.in_process()
            if remote.on_cluster()
            else remote.databricks_step_launcher(settings)
        ),
    }


def resources_for(settings: Settings) -> dict[str, Any]:
    """The resources of the deployment `settings.env` names: the one place that decides."""
    return production_resources(settings) if settings.production else local_resources(settings)
