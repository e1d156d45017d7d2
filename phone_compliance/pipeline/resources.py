"""Resources, chosen per deployment in one place (`resources_for`), from `PHONE_COMPLIANCE_ENV`."""

from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame

from phone_compliance import delta, schema
from phone_compliance.pipeline import remote
from phone_compliance.settings import Settings, load_settings
from phone_compliance.spark import build_spark_session, session_conf, spark_config


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session, built by the project's one factory (checks Java first)."""

    def _init_session(self) -> None:
        if self._spark_session is None:
            self._spark_session = build_spark_session(self.spark_config)


class Lakehouse(dg.ConfigurableResource):
    """Where files land and where tables live: `<warehouse>/<layer>/<table>`."""

    landing: str
    warehouse: str

    def uri(self, layer: str, name: str) -> str:
        base = self.warehouse.rstrip("/")
        if base.startswith("s3://"):
            base = "s3a://" + base.removeprefix("s3://")
        return f"{base}/{layer}/{name}"


class Guardrails(dg.ConfigurableResource):
    """R13 thresholds, and an operator's explicit acceptance (set in run config, then re-run)."""

    max_snapshot_shrink: float = 0.20
    max_decision_flips: float = 0.05
    accept_snapshot_shrink: bool = False
    accept_decision_flips: bool = False


# What an asset hands the IO manager says how the table is written.
@dataclass(frozen=True)
class FileBatch:
    """Rows of these files replace any earlier rows of the same files (exactly-once ingestion)."""

    rows: DataFrame | None
    files: tuple[str, ...]
    # Session confs the rows are written under (bronze.WRITE_CONF).
    spark_conf: tuple[tuple[str, str], ...] = ()
    # How a new table is partitioned (schema.BRONZE_PARTITION_COLUMNS).
    partition_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Appended:
    """Rows appended as they are (the file ledger)."""

    rows: DataFrame | None


@dataclass(frozen=True)
class Upsert:
    """Rows merged by pair, touching only rows whose content hash changed (Gold)."""

    rows: DataFrame
    table_schema: schema.Schema
    commit_note: str | None = None


class DeltaIOManager(dg.ConfigurableIOManager):
    """Persists every asset as a Delta table at `<warehouse>/<key path>`, local or s3a://."""

    lakehouse: dg.ResourceDependency[Lakehouse]
    spark: dg.ResourceDependency[SparkResource]

    def _uri(self, key: dg.AssetKey) -> str:
        *layers, name = key.path
        return self.lakehouse.uri("/".join(layers), name)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        uri = self._uri(context.asset_key)
        if isinstance(obj, FileBatch):
            if obj.rows is None or not obj.files:
                return
            with session_conf(self.spark.spark_session, dict(obj.spark_conf)):
                delta.replace_files(obj.rows, uri, obj.files, obj.partition_columns)
        elif isinstance(obj, Appended):
            if obj.rows is None:
                return
            delta.append(obj.rows, uri)
        elif isinstance(obj, Upsert):
            spark = self.spark.spark_session
            key = "spark.databricks.delta.commitInfo.userMetadata"
            spark.conf.set(key, obj.commit_note or "")
            try:
                delta.merge_changed(
                    obj.rows, uri, schema.PAIR_KEY, "content_hash", obj.table_schema
                )
            finally:
                spark.conf.unset(key)
        elif isinstance(obj, DataFrame):
            delta.overwrite(obj, uri)
        else:
            raise TypeError(f"{context.asset_key.to_user_string()}: cannot store {type(obj)}")
        metrics = delta.last_operation_metrics(self.spark.spark_session, uri)
        context.add_output_metadata(
            {
                "uri": dg.MetadataValue.path(uri),
                "delta_version": metrics.pop("version"),
                **{f"delta_{k}": v for k, v in metrics.items()},
            }
        )

    def load_input(self, context: dg.InputContext) -> DataFrame:
        path = "/".join(context.asset_key.path)
        return delta.read(
            self.spark.spark_session, self._uri(context.asset_key), schema.TABLES.get(path)
        )


def landing_s3(settings: Settings) -> S3Resource:
    """dagster-aws's S3 client for the landing sensor: credentials from the AWS provider chain."""
    return S3Resource(endpoint_url=settings.s3_endpoint)


def resources_for(settings: Settings | None = None) -> dict[str, Any]:
    """The resources of the deployment `PHONE_COMPLIANCE_ENV` names: the one place that decides.

    Both worlds share the assets, the checks and the Delta IO manager (over a folder or an
    s3a:// base URI). Production adds the landing sensor's S3 client and runs the heavy Spark
    steps on Databricks through `remote_execution` (pipeline/remote.py); a step already on the
    cluster uses the cluster's own Spark session.
    """
    settings = settings or load_settings()
    lakehouse = Lakehouse(landing=settings.landing, warehouse=settings.warehouse)
    spark = SparkResource(spark_config={} if remote.on_cluster() else spark_config(settings))
    resources: dict[str, Any] = {
        "lakehouse": lakehouse,
        "spark": spark,
        "guardrails": Guardrails(),
        "io_manager": DeltaIOManager(lakehouse=lakehouse, spark=spark),
        remote.REMOTE_EXECUTION: remote.remote_execution(settings),
    }
    if settings.production:
        resources["s3"] = landing_s3(settings)
    return resources
