"""Resources: one explicit table per deployment (local, production), chosen in one place from
one `Settings` value (`resources_for`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame, SparkSession

from phone_compliance import schema
from phone_compliance.ingest import parser
from phone_compliance.lakehouse import delta
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.lakehouse.spark import build_spark_session, spark_config
from phone_compliance.pipeline import remote
from phone_compliance.settings import Settings

COMMIT_NOTE = "spark.databricks.delta.commitInfo.userMetadata"


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


@dataclass(frozen=True)
class Upsert:
    """Rows merged by pair, touching only rows whose content hash changed (Gold)."""

    rows: DataFrame
    table_schema: schema.Schema
    commit_note: str = ""


def table_metadata(spark: SparkSession, uri: str) -> dict[str, Any]:
    """What Dagster shows of a Delta table after a write: where, which version, Delta's metrics."""
    metrics = delta.last_operation_metrics(spark, uri)
    return {
        "uri": dg.MetadataValue.path(uri),
        "delta_version": metrics.pop("version"),
        **{f"delta_{k}": v for k, v in metrics.items()},
    }


class DeltaIOManager(dg.IOManager):
    """Persists an asset as the Delta table at `<warehouse>/<key path>`, local or s3a://: a
    DataFrame replaces the table, an `Upsert` is merged by pair."""

    def __init__(self, lakehouse: Locations, spark: SparkResource) -> None:
        self.lakehouse = lakehouse
        self.spark = spark

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        uri = self.lakehouse.table_of(context.asset_key.path)
        session = self.spark.spark_session
        if isinstance(obj, Upsert):
            session.conf.set(COMMIT_NOTE, obj.commit_note)
            try:
                delta.merge_changed(
                    obj.rows, uri, schema.PAIR_KEY, "content_hash", obj.table_schema
                )
            finally:
                session.conf.unset(COMMIT_NOTE)
        elif isinstance(obj, DataFrame):
            delta.overwrite(obj, uri)
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store {type(obj)}")
        context.add_output_metadata(table_metadata(session, uri))

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
