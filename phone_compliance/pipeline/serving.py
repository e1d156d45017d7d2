"""The serving index: Gold exported by Spark, built into the service's memory-mapped index."""

import os
import tempfile
from pathlib import Path

import dagster as dg
from pyspark.sql import DataFrame

from phone_compliance import delta
from phone_compliance.pipeline.assets import GOLD, PHONE_CONSENT_KEY
from phone_compliance.pipeline.resources import Lakehouse, SparkResource
from phone_compliance.settings import is_remote

DECISION_INDEX_KEY = dg.AssetKey(["serving", "decision_index"])
AGREES_WITH_GOLD = "r12_index_agrees_with_gold"


def index_dir(lakehouse: Lakehouse) -> Path:
    """PHONE_COMPLIANCE_INDEX, else beside a local warehouse; the service's default otherwise."""
    from phone_compliance.service import default_index_dir

    if os.environ.get("PHONE_COMPLIANCE_INDEX") or is_remote(lakehouse.warehouse):
        return default_index_dir()
    return Path(lakehouse.warehouse.removeprefix("file://")) / "serving" / "decision_index"


@dg.asset(
    key=DECISION_INDEX_KEY,
    ins={"phone_consent": dg.AssetIn(PHONE_CONSENT_KEY)},
    kinds={"spark", "numpy"},
    group_name="serving",
    check_specs=[dg.AssetCheckSpec(AGREES_WITH_GOLD, asset=DECISION_INDEX_KEY, blocking=True)],
    description="Memory-mapped index the decision service answers from, stamped with the Gold "
    "Delta version it was built from; rebuilt on every Gold materialization.",
)
def decision_index(
    context: dg.AssetExecutionContext,
    phone_consent: DataFrame,
    spark: SparkResource,
    lakehouse: Lakehouse,
) -> dg.MaterializeResult:
    """Export Gold once to Parquet, build and publish the index, and verify it pair by pair."""
    from phone_compliance.service import build_index
    from phone_compliance.service.verify import verify_index

    version = delta.version(spark.spark_session, lakehouse.uri(GOLD, "phone_consent"))
    with tempfile.TemporaryDirectory(prefix="gold-export-") as tmp:
        export = Path(tmp) / "gold"
        phone_consent.write.mode("overwrite").parquet(export.as_uri())
        path = build_index(export, index_dir(lakehouse), version)
        verification = verify_index(path, export)
    size = sum(f.stat().st_size for f in path.iterdir())
    context.log.info(f"published decision index {path} for Gold version {version}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "gold_version": version,
            "pairs": verification.index_pairs,
            "size_bytes": size,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=AGREES_WITH_GOLD,
                passed=verification.ok,
                metadata={"verification": verification.describe()},
            )
        ],
    )
