"""The S3 landing sensor against a real S3 API (moto's server on 127.0.0.1) and a real temporary
Dagster instance: it lists the bucket through dagster-aws's S3 resource, reads the ledger from S3
with delta-rs, and requests one idempotent run for every file version the ledger lacks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pyarrow as pa
import pytest
from dagster._core.test_utils import create_run_for_test
from dagster_aws.s3 import S3Resource
from deltalake import write_deltalake

from phone_compliance import schema
from phone_compliance.definitions import ingest_landing
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline.assets import LEDGER_KEY
from phone_compliance.pipeline.sensors import s3_landing_sensor
from phone_compliance_tests.files import ts
from phone_compliance_tests.production.conftest import s3_client

MANY = 1100  # more than one page of ListObjectsV2 (1000 keys)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _evaluate(sensor, instance, lake, cursor=None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"s3": S3Resource(endpoint_url=lake.settings.s3_endpoint)},
    )
    return sensor(context)


def _record_in_ledger(lake, keys: list[str]) -> None:
    """Write the ledger's (name, fingerprint) columns to S3 as ingestion would have."""
    client = s3_client()
    etags = [client.head_object(Bucket=lake.bucket, Key=k)["ETag"].strip('"') for k in keys]
    locations = Locations(lake.settings)
    uri, options = locations.delta_rs(locations.table_of(LEDGER_KEY.path))
    write_deltalake(
        uri,
        pa.table({"source_file": [k.rsplit("/", 1)[-1] for k in keys], "fingerprint": etags}),
        mode="append",
        storage_options={**options, "AWS_S3_ALLOW_UNSAFE_RENAME": "true"},  # one writer here
    )


def _deliver(lake, count: int) -> list[str]:
    keys = [
        f"landing/MAINTENANCE/{schema.file_name(schema.CHANGE, ts('2020-01-01'), seq)}"
        for seq in range(1, count + 1)
    ]
    client = s3_client()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=lake.bucket, Key=k, Body=b"v1"), keys))
    return keys


def test_many_files_at_once_make_one_idempotent_run_and_the_ledger_stops_them(s3_lake, instance):
    sensor = s3_landing_sensor(ingest_landing, Locations(s3_lake.settings))
    assert isinstance(_evaluate(sensor, instance, s3_lake), dg.SkipReason)  # nothing landed

    keys = _deliver(s3_lake, MANY)
    client = s3_client()
    noise = ("landing/README.txt", "landing/ENROLLMENT/old/x.csv.gz", "elsewhere/ENROLLMENT/y")
    for key in noise:
        client.put_object(Bucket=s3_lake.bucket, Key=key, Body=b"not a delivery")

    first = _evaluate(sensor, instance, s3_lake)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.tags["phone_compliance/new_files"] == str(MANY)
    # Re-evaluated without its cursor (a lost tick), the same files give the same run key, which
    # Dagster launches once; with its cursor the sensor skips.
    assert _evaluate(sensor, instance, s3_lake).run_requests[0].run_key == request.run_key
    assert isinstance(_evaluate(sensor, instance, s3_lake, first.cursor), dg.SkipReason)

    _record_in_ledger(s3_lake, keys)
    assert "all in the ledger" in _evaluate(sensor, instance, s3_lake, first.cursor).skip_message


def test_a_redelivered_file_is_a_new_version_and_waits_for_a_run_in_flight(s3_lake, instance):
    sensor = s3_landing_sensor(ingest_landing, Locations(s3_lake.settings))
    keys = _deliver(s3_lake, 3)
    _record_in_ledger(s3_lake, keys)
    assert isinstance(_evaluate(sensor, instance, s3_lake), dg.SkipReason)

    s3_client().put_object(Bucket=s3_lake.bucket, Key=keys[1], Body=b"v2, corrected")
    again = _evaluate(sensor, instance, s3_lake)
    assert again.run_requests[0].tags["phone_compliance/new_files"] == "1"

    run = create_run_for_test(
        instance, job_name=ingest_landing.name, status=dg.DagsterRunStatus.STARTED
    )
    waiting = _evaluate(sensor, instance, s3_lake)
    assert isinstance(waiting, dg.SkipReason) and run.run_id in waiting.skip_message
