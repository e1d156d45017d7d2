"""The code location: every asset, check, job, sensor and resource, assembled in one place."""


import dagster as dg

from phone_compliance.pipeline.assets import ASSETS
from phone_compliance.pipeline.checks import CHECKS
from phone_compliance.pipeline.resources import resources_for
from phone_compliance.pipeline.sensors import local_landing_sensor
from phone_compliance.pipeline.serving import decision_index

# New files refresh the whole graph: Bronze ingests them, Silver, Gold and the index follow.
refresh_decisions = dg.define_asset_job(
    "refresh_decisions",
    selection=dg.AssetSelection.all(),
    description="Ingest new landed files and republish decisions (Bronze → Silver → Gold).",
)

defs = dg.Definitions(
    assets=[*ASSETS, decision_index],
    asset_checks=CHECKS,
    jobs=[refresh_decisions],
    sensors=[local_landing_sensor(refresh_decisions)],
    resources=resources_for(),
    # One SparkSession (one JVM) per run, shared by every step.
    executor=dg.in_process_executor,
)
