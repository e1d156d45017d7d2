"""Sensors that request a run when new files land: the landing-folder sensor and the S3 sensor
differ only in how they list files and reach the ledger; every tick is decided once, by
`landing_sensor_tick` (wait for a run in flight) and `landing_sensor_result` (what to request)."""

import hashlib
import json
from collections.abc import Callable
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.sensor import get_objects

from phone_compliance.ingest import landing
from phone_compliance.ingest.ledger import KnownFiles
from phone_compliance.lakehouse.locations import Locations


def landing_sensor_result(
    landed: list[landing.LandingFile], known: KnownFiles, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One run for all unrecorded files, keyed by exactly that set so re-evaluation is idempotent.

    The cursor remembers the last set requested: while that run is in flight the same files are not
    requested again, and a re-delivered file (new fingerprint) makes a new set and a new run.
    """
    # Ingestion's own test (KnownFiles.unseen): a file is pending until the ledger records its
    # fingerprint as the latest delivery of its name, duplicates by content included.
    pending = known.unseen(landed)
    if not pending:
        return dg.SkipReason(f"{len(landed)} files landed, all in the ledger")
    fingerprint = hashlib.sha256(
        json.dumps(sorted((f.relpath, f.fingerprint) for f in pending)).encode()
    ).hexdigest()[:32]
    if fingerprint == cursor:
        return dg.SkipReason(f"{len(pending)} new files already requested (run key {fingerprint})")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=fingerprint,
                tags={"phone_compliance/new_files": str(len(pending))},
            )
        ],
        cursor=fingerprint,
    )


# A run in one of these states has its files still to record: do not request them again.
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def landing_sensor_tick(
    context: dg.SensorEvaluationContext,
    job_name: str,
    landed: list[landing.LandingFile],
    known: KnownFiles,
) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of a landing sensor, wherever the files land.

    While a run of the job is queued or running it waits: that run ingests every file the ledger
    lacks when it starts, and two runs must never ingest the same files at once.
    """
    in_flight = context.instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=_IN_FLIGHT), limit=1
    )
    if in_flight:
        run_id = in_flight[0].dagster_run.run_id
        return dg.SkipReason(f"run {run_id} of {job_name} is in flight; new files wait for it")
    return landing_sensor_result(landed, known, context.cursor)


def build_landing_sensor(
    name: str,
    list_files: Callable[[], list[landing.LandingFile]],
    known: Callable[[], KnownFiles],
    default_status: dg.DefaultSensorStatus,
    description: str,
    job: dg.JobDefinition | Any,
) -> dg.SensorDefinition:
    """A sensor over a landing location that needs no resource to list (a folder)."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=60,
        default_status=default_status,
        description=description,
        job=job,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        return landing_sensor_tick(context, job.name, list_files(), known())

    return _sensor


def local_landing_sensor(job: dg.JobDefinition | Any, locations: Locations) -> dg.SensorDefinition:
    """Watches the local landing folder (`PHONE_COMPLIANCE_LANDING`)."""
    return build_landing_sensor(
        "local_landing_sensor",
        lambda: landing.list_landing(locations),
        lambda: KnownFiles.read(locations),
        dg.DefaultSensorStatus.STOPPED,
        "Requests a refresh when files not yet in the ledger appear in the landing folder.",
        job,
    )


def s3_landing_sensor(job: dg.JobDefinition | Any, locations: Locations) -> dg.SensorDefinition:
    """Watches the landing bucket (`PHONE_COMPLIANCE_LANDING=s3://bucket/prefix`) through
    dagster-aws's S3 resource; the ledger is read from S3 with delta-rs."""
    bucket, prefix = landing.s3_landing_prefix(locations.landing)

    @dg.sensor(
        name="s3_landing_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Requests Bronze when files not in the ledger land in {locations.landing}.",
        job=job,
    )
    def _sensor(context: dg.SensorEvaluationContext, s3: S3Resource):
        objects = get_objects(bucket, prefix, client=s3.get_client())
        return landing_sensor_tick(
            context,
            job.name,
            landing.s3_landing_files(bucket, prefix, objects),
            KnownFiles.read(locations),
        )

    return _sensor
