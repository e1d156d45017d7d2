"""The serving index: Gold exported by Spark, built into the service's memory-mapped index."""

import tempfile
from pathlib import Path

import dagster as dg
from pyspark.sql import DataFrame

from phone_compliance.lakehouse import delta_log
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline.assets import DECISION_HISTORY_KEY, PHONE_CONSENT_KEY
from phone_compliance.service.build import build_index, index_intervals
from phone_compliance.service.verify import verify_index

DECISION_INDEX_KEY = dg.AssetKey(["serving", "decision_index"])
AGREES_WITH_GOLD = "r12_index_agrees_with_gold"


@dg.asset(
    key=DECISION_INDEX_KEY,
    ins={
        "phone_consent": dg.AssetIn(PHONE_CONSENT_KEY),
        "decision_history": dg.AssetIn(DECISION_HISTORY_KEY),
    },
    kinds={"spark", "numpy"},
    group_name="serving",
    check_specs=[dg.AssetCheckSpec(AGREES_WITH_GOLD, asset=DECISION_INDEX_KEY, blocking=True)],
    description="Memory-mapped index the decision service answers from (now, and as of a date "
    "from the decision history), stamped with the Gold Delta version it was built from; rebuilt "
    "on every Gold materialization.",
)
def decision_index(
    context: dg.AssetExecutionContext,
    phone_consent: DataFrame,
    decision_history: DataFrame,
    lakehouse: dg.ResourceParam[Locations],
) -> dg.MaterializeResult:
    """Export Gold and its history once to Parquet, build and publish the index, and verify it
    pair by pair."""
    version = delta_log.version(lakehouse, lakehouse.table_of(PHONE_CONSENT_KEY.path))
    with tempfile.TemporaryDirectory(prefix="gold-export-") as tmp:
        export, history = Path(tmp) / "gold", Path(tmp) / "history"
        phone_consent.write.mode("overwrite").parquet(export.as_uri())
        decision_history.write.mode("overwrite").parquet(history.as_uri())
        path = build_index(export, lakehouse.index_dir, version, history_dir=history)
        verification = verify_index(path, export)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    context.log.info(f"published decision index {path} for Gold version {version}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "gold_version": version,
            "pairs": verification.index_pairs,
            "history_intervals": index_intervals(path),
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
