"""Run the real asset graph (assets + checks) on a temporary Dagster instance and warehouse."""

from __future__ import annotations

import dagster as dg
from pyspark.sql import DataFrame, SparkSession

from phone_compliance import delta
from phone_compliance.pipeline.assets import ASSETS
from phone_compliance.pipeline.checks import CHECKS
from phone_compliance.pipeline.resources import resources_for
from phone_compliance.settings import Settings


def run_pipeline(
    lake: Settings,
    instance: dg.DagsterInstance | None = None,
    accept_snapshot_shrink: bool = False,
    accept_decision_flips: bool = False,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset with its checks, as `dagster asset materialize --select '*'` does."""
    return dg.materialize(
        [*ASSETS, *CHECKS],
        resources=resources_for(lake),
        instance=instance or dg.DagsterInstance.ephemeral(),
        run_config={
            "resources": {
                "guardrails": {
                    "config": {
                        "accept_snapshot_shrink": accept_snapshot_shrink,
                        "accept_decision_flips": accept_decision_flips,
                    }
                }
            }
        },
        raise_on_error=False,
    )


def table(spark: SparkSession, lake: Settings, path: str) -> DataFrame:
    """A warehouse table by its path, e.g. 'gold/phone_consent'."""
    return delta.read(spark, lake.table_uri(*path.split("/")))


def failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """Names of the checks that did not pass in a run."""
    return [e.asset_check_key.name for e in result.get_asset_check_evaluations() if not e.passed]
