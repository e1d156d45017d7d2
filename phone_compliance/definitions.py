"""The code location: every asset, check, job, sensor and resource, assembled in one place.

Local (the default): the landing-folder sensor (stopped until started) requests a whole-graph run.
Production: the S3 landing sensor requests Bronze only, and declarative automation (its sensor on
by default) makes Silver, Gold and the decision index follow each Bronze update.

Two runs never write the warehouse at once: every step that writes a Delta table takes the
`warehouse` pool (limit 1 in the instance's dagster.yaml), and every run these definitions request
carries WAREHOUSE_TAG, of which the instance's run queue lets one run be in progress at a time.
"""

import dagster as dg

from phone_compliance.lakehouse.locations import Locations, is_remote
from phone_compliance.pipeline.assets import ASSETS, BRONZE
from phone_compliance.pipeline.checks import CHECKS
from phone_compliance.pipeline.report import compliance_report
from phone_compliance.pipeline.resources import resources_for
from phone_compliance.pipeline.sensors import local_landing_sensor, s3_landing_sensor
from phone_compliance.pipeline.serving import decision_index
from phone_compliance.settings import Settings, load_settings

# Runs that write the warehouse: the run queue (concurrency.runs.tag_concurrency_limits in
# dagster.yaml) keeps one of them in progress at a time, so one run's Silver never reads Bronze
# half-way through another's ingestion. Runs started outside these jobs and the sensors (an asset
# materialized from the UI, `dagster asset materialize`) still take the `warehouse` pool per step.
WAREHOUSE_TAG = "phone_compliance/warehouse"
WAREHOUSE_RUN = {WAREHOUSE_TAG: "write"}

# New files refresh the whole graph: Bronze ingests them, Silver, Gold and the index follow.
refresh_decisions = dg.define_asset_job(
    "refresh_decisions",
    selection=dg.AssetSelection.all(),
    description="Ingest new landed files and republish decisions (Bronze → Silver → Gold).",
    tags=WAREHOUSE_RUN,
)
# Only Bronze: what follows it is declarative automation's to run.
ingest_landing = dg.define_asset_job(
    "ingest_landing",
    selection=dg.AssetSelection.groups(BRONZE),
    description="Ingest new landed files into Bronze; Silver, Gold and the index follow.",
    tags=WAREHOUSE_RUN,
)
FOLLOWS_BRONZE = dg.AssetSelection.all() - dg.AssetSelection.groups(BRONZE)
# Follow every update of what an asset reads, unless a blocking check failed on it: R1.2 and R13
# stay blocking across runs, as they are inside one run.
FOLLOW_UPDATES = (
    dg.AutomationCondition.eager()
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(
            dg.AutomationCondition.check_failed(), blocking_only=True
        )
    )
).with_label("eager, unless a blocking check failed upstream")


def build_defs(
    settings: Settings, loggers: dict[str, dg.LoggerDefinition] | None = None
) -> dg.Definitions:
    """The code location of one deployment (`loggers`: extra loggers its jobs may use)."""
    locations = Locations(settings)
    if settings.production and is_remote(settings.landing):
        landing_sensor = s3_landing_sensor(ingest_landing, locations)
    else:
        landing_sensor = local_landing_sensor(refresh_decisions, locations)
    follow_bronze = dg.AutomationConditionSensorDefinition(
        "decisions_follow_bronze",
        target=FOLLOWS_BRONZE,
        default_status=(
            dg.DefaultSensorStatus.RUNNING
            if settings.production
            else dg.DefaultSensorStatus.STOPPED
        ),
        description="Materializes Silver, Gold and the decision index after Bronze updates.",
        run_tags=WAREHOUSE_RUN,
    )
    return dg.Definitions(
        # Everything downstream of Bronze follows it (runs that include it are not repeated).
        assets=dg.map_asset_specs(_follows_bronze, [*ASSETS, decision_index, compliance_report]),
        asset_checks=CHECKS,
        jobs=[refresh_decisions, ingest_landing],
        sensors=[landing_sensor, follow_bronze],
        resources=resources_for(settings),
        # One SparkSession (one JVM) per run, shared by every step.
        executor=dg.in_process_executor,
        loggers={"console": dg.colored_console_logger, **(loggers or {})},
    )


def _follows_bronze(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.group_name == BRONZE:
        return spec
    return spec.replace_attributes(automation_condition=FOLLOW_UPDATES)


# What `dagster dev` and `dagster asset materialize` load: this process's environment.
defs = build_defs(load_settings())
