"""Sensors that request a Bronze run when new files land; the local and S3 ones share `new_files`."""


import hashlib
import json
from collections.abc import Callable
from typing import Any

import dagster as dg

from phone_compliance import landing
from phone_compliance.pipeline.assets import LEDGER_KEY
from phone_compliance.settings import load_settings

LEDGER_COLUMNS = ["source_file", "fingerprint"]


def ledger_fingerprints(ledger_uri: str, storage_options: dict[str, str] | None = None):
    """(name, fingerprint) of every recorded file version, read with delta-rs (no JVM in sensors)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(ledger_uri, storage_options=storage_options)
    except TableNotFoundError:
        return set()
    data = table.to_pyarrow_table(columns=LEDGER_COLUMNS).to_pylist()
    return {(r["source_file"], r["fingerprint"]) for r in data}


def new_files(
    landed: list[landing.LandingFile], recorded: set[tuple[str, str]]
) -> list[landing.LandingFile]:
    """Landed file versions the ledger has not recorded."""
    return [f for f in landed if (f.name, f.fingerprint) not in recorded]


def landing_sensor_result(
    landed: list[landing.LandingFile], recorded: set[tuple[str, str]], cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One run for all unrecorded files, keyed by exactly that set so re-evaluation is idempotent.

    The cursor remembers the last set requested: while that run is in flight the same files are not
    requested again, and a re-delivered file (new fingerprint) makes a new set and a new run.
    """
    pending = new_files(landed, recorded)
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


def build_landing_sensor(
    name: str,
    list_files: Callable[[], list[landing.LandingFile]],
    recorded: Callable[[], set[tuple[str, str]]],
    default_status: dg.DefaultSensorStatus,
    description: str,
    job: dg.JobDefinition | Any,
) -> dg.SensorDefinition:
    """A sensor over one landing location: listing and ledger reading are what differ."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=60,
        default_status=default_status,
        description=description,
        job=job,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        return landing_sensor_result(list_files(), recorded(), context.cursor)

    return _sensor


def local_landing_sensor(job: dg.JobDefinition | Any) -> dg.SensorDefinition:
    """Watches the local landing folder (`PHONE_COMPLIANCE_LANDING`)."""
    settings = load_settings()
    ledger_uri = settings.table_uri(*LEDGER_KEY.path)
    return build_landing_sensor(
        "local_landing_sensor",
        lambda: landing.list_landing(settings.landing),
        lambda: ledger_fingerprints(ledger_uri),
        dg.DefaultSensorStatus.STOPPED,
        "Requests a refresh when files not yet in the ledger appear in the landing folder.",
        job,
    )
