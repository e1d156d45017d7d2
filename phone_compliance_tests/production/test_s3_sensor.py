"""The S3 landing sensor against a real S3 API (moto's server on 127.0.0.1) and a real temporary
Dagster instance: it lists the bucket through dagster-aws's S3 resource, reads the ledger from S3
with delta-rs, and requests one idempotent run for every file version the ledger lacks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import dagster as dg
import pyarrow as pa
import pytest
from dagster._core.test_utils import create_run_for_test
from dagster_aws.s3 import S3Resource
from deltalake import write_deltalake

from phone_compliance import schema
from phone_compliance.definitions import ingest_landing
from phone_compliance.ingest.batch import ingest
from phone_compliance.ingest.ledger import VERSION_COLUMNS
from phone_compliance.lakehouse.locations import Locations
from phone_compliance.pipeline.assets import LEDGER_KEY
from phone_compliance.pipeline.sensors import s3_landing_sensor
from phone_compliance_tests import files as f
from phone_compliance_tests.files import ts
from phone_compliance_tests.harness import table
from phone_compliance_tests.production.conftest import s3_client

A, PHONE = "1234567890123456", "2125550123"
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
    """Write the ledger's columns the sensor reads to S3, as ingestion would have."""
    client = s3_client()
    etags = [client.head_object(Bucket=lake.bucket, Key=k)["ETag"].strip('"') for k in keys]
    locations = Locations(lake.settings)
    uri, options = locations.delta_rs(locations.table_of(LEDGER_KEY.path))
    count = len(keys)
    columns = {
        "source_file": pa.array([k.rsplit("/", 1)[-1] for k in keys]),
        "fingerprint": pa.array(etags),
        "sha256": pa.array([f"sha-of-{etag}" for etag in etags]),
        "status": pa.array([schema.LEDGER_INGESTED] * count),
        "ingested_at": pa.array([datetime(2020, 1, 2)] * count, pa.timestamp("us")),
    }
    for name in VERSION_COLUMNS:
        columns.setdefault(name, pa.nulls(count, pa.string()))
    write_deltalake(
        uri,
        pa.table(columns),
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


def _kms_key() -> str:
    import boto3

    kms = boto3.client("kms", endpoint_url=s3_client().meta.endpoint_url, region_name="us-east-1")
    return kms.create_key(Description="landing")["KeyMetadata"]["KeyId"]


def _upload_again_multipart(lake, key: str, body: bytes, kms_key: str) -> None:
    """The same bytes delivered again as a multipart upload: a new ETag for the same content."""
    client = s3_client()
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}
    upload = client.create_multipart_upload(Bucket=lake.bucket, Key=key, **kms)
    part = client.upload_part(
        Bucket=lake.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=body
    )
    client.complete_multipart_upload(
        Bucket=lake.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )


def test_sse_kms_identical_redelivery_is_known_by_content_and_stops_the_sensor(
    s3_spark, s3_lake, instance
):
    """Under SSE-KMS an S3 ETag is not the content's MD5, so the same bytes delivered again get a
    new ETag. moto computes an MD5 ETag even for KMS-encrypted objects, so the test changes the
    ETag of identical bytes the other way S3 does: a multipart re-upload. Ingestion recognises
    the content (sha256), records the new ETag as an UNCHANGED delivery without ingesting it
    again, and the sensor stops requesting runs."""
    locations = Locations(s3_lake.settings)
    kms_key = _kms_key()
    path = f.write(
        s3_lake.staging, schema.ENROLLMENT, "2020-01-05", [f.enrollment(A, PHONE, "2020-01-03")]
    )
    key = f"landing/{path.relative_to(s3_lake.staging).as_posix()}"
    body = path.read_bytes()
    s3_client().put_object(
        Bucket=s3_lake.bucket,
        Key=key,
        Body=body,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
    )
    sensor = s3_landing_sensor(ingest_landing, locations)
    assert _evaluate(sensor, instance, s3_lake).run_requests  # new file: a run

    ingest(lambda: s3_spark, locations, b"k" * 32, "run-1")
    assert "all in the ledger" in _evaluate(sensor, instance, s3_lake).skip_message

    before = s3_client().head_object(Bucket=s3_lake.bucket, Key=key)["ETag"]
    _upload_again_multipart(s3_lake, key, body, kms_key)
    assert s3_client().head_object(Bucket=s3_lake.bucket, Key=key)["ETag"] != before
    assert _evaluate(sensor, instance, s3_lake).run_requests  # a new ETag: it must look

    done = ingest(lambda: s3_spark, locations, b"k" * 32, "run-2")
    assert done.summary["files_new"] == 0
    ledger = table(s3_spark, s3_lake.settings, "bronze/file_ledger").collect()
    assert sorted(r["status"] for r in ledger) == [
        schema.LEDGER_INGESTED,
        schema.LEDGER_UNCHANGED,
    ]
    assert len({r["sha256"] for r in ledger}) == 1
    assert table(s3_spark, s3_lake.settings, "bronze/enrollment").count() == 1  # not again
    assert "all in the ledger" in _evaluate(sensor, instance, s3_lake).skip_message
